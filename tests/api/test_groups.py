"""Groups as objects (SPEC section 8): named by organizations, listed, filtered on."""

from __future__ import annotations

from tests.conftest import org_payload

API = "/api/v1"


def test_a_group_named_by_firms_is_listed_with_its_members(client, admin_headers, make_org):
    make_org(name="Formosa Anodizing", group="Formosa Group")
    make_org(name="Formosa Machining", group="formosa  GROUP")  # the same group, any case
    make_org(name="Sakura Coatings", group="Sakura Holdings", active=False)
    make_org(name="Independent Works")

    body = client.get(f"{API}/groups", headers=admin_headers).get_json()

    assert body["total"] == 2
    assert [(g["name"], g["organizations"], g["active_organizations"])
            for g in body["items"]] == [("Formosa Group", 2, 2), ("Sakura Holdings", 1, 0)]


def test_a_firm_shows_its_group_as_the_group_spells_it(client, admin_headers, make_org):
    make_org(name="Formosa Anodizing", group="Formosa Group")
    second = make_org(name="Formosa Machining", group=" formosa group ")

    assert second["group"] == "Formosa Group"
    fetched = client.get(f"{API}/organizations/{second['id']}", headers=admin_headers)
    assert fetched.get_json()["group"] == "Formosa Group"


def test_naming_the_group_in_another_case_is_no_change(client, admin_headers, make_org):
    firm = make_org(name="Formosa Anodizing", group="Formosa Group")

    again = client.patch(f"{API}/organizations/{firm['id']}", headers=admin_headers,
                         json={"group": "FORMOSA GROUP"}).get_json()

    assert again["group"] == "Formosa Group"
    assert again["version"] == firm["version"]  # nothing written


def test_a_firm_moves_between_groups_and_leaves_them(client, admin_headers, make_org):
    firm = make_org(name="Formosa Anodizing", group="Formosa Group")

    moved = client.patch(f"{API}/organizations/{firm['id']}", headers=admin_headers,
                         json={"group": "Sakura Holdings"}).get_json()
    assert moved["group"] == "Sakura Holdings"
    left = client.patch(f"{API}/organizations/{firm['id']}", headers=admin_headers,
                        json={"group": ""}).get_json()
    assert left["group"] is None

    counts = {g["name"]: g["organizations"] for g in
              client.get(f"{API}/groups", headers=admin_headers).get_json()["items"]}
    assert counts == {"Formosa Group": 0, "Sakura Holdings": 0}


def test_organizations_filter_by_group_in_any_case(client, admin_headers, make_org):
    one = make_org(name="Formosa Anodizing", group="Formosa Group")
    two = make_org(name="Formosa Machining", group="Formosa Group")
    make_org(name="Sakura Coatings", group="Sakura Holdings")
    make_org(name="Independent Works")

    listed = client.get(f"{API}/organizations?group=formosa+group", headers=admin_headers)
    assert listed.status_code == 200
    assert sorted(item["id"] for item in listed.get_json()["items"]) == [one["id"], two["id"]]
    assert listed.get_json()["total"] == 2

    unknown = client.get(f"{API}/organizations?group=Nobody", headers=admin_headers)
    assert unknown.get_json() == {"items": [], "total": 0, "page": 1, "page_size": 50}


def test_a_partner_lists_groups_and_filters_only_its_own_firm(client, make_key, make_org):
    own = make_org(name="Formosa Anodizing", group="Formosa Group")
    make_org(name="Formosa Machining", group="Formosa Group")
    partner = make_key("partner", own["id"])

    groups = client.get(f"{API}/groups", headers=partner).get_json()
    assert [(g["name"], g["organizations"]) for g in groups["items"]] == [("Formosa Group", 2)]
    listed = client.get(f"{API}/organizations?group=Formosa+Group", headers=partner).get_json()
    assert [item["id"] for item in listed["items"]] == [own["id"]]


def test_a_partner_may_not_change_its_group(client, make_key, make_org):
    own = make_org(name="Formosa Anodizing", group="Formosa Group")
    partner = make_key("partner", own["id"])

    response = client.patch(f"{API}/organizations/{own['id']}", headers=partner,
                            json={"group": "Sakura Holdings"})

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_a_group_name_too_long_is_a_422(client, admin_headers):
    response = client.post(f"{API}/organizations", headers=admin_headers,
                           json=org_payload(group="G" * 101))

    assert response.status_code == 422
    assert "group" in response.get_json()["errors"]


def test_the_openapi_document_states_groups(client):
    document = client.get(f"{API}/openapi.json").get_json()

    assert "/api/v1/groups" in document["paths"]
    parameters = document["paths"]["/api/v1/organizations"]["get"]["parameters"]
    assert "group" in {parameter["name"] for parameter in parameters}


# ---------------------------------------------------------------------------------- matching

NEAR, FAR = {"latitude": 22.6273, "longitude": 120.3014}, {"latitude": 22.70, "longitude": 120.33}


def _match(client, headers, **body):
    return client.post(f"{API}/match", headers=headers, json={
        "skills": ["CNC Machining"], "location": NEAR, "limit": 10, **body})


def _firms(make_org):
    """A referrer of the Formosa group, its affiliate 9 km away and an outsider at the door."""
    referrer = make_org(name="Formosa Trading", group="Formosa Group", skills=["Trading"])
    affiliate = make_org(name="Formosa Machining", kind="affiliate", group="Formosa Group",
                         offices=[{"label": "Works", **FAR}])
    outsider = make_org(name="Harbor Precision")
    return referrer, affiliate, outsider


def test_prefer_group_ranks_the_referrers_affiliate_first_with_its_weight(
    client, admin_headers, make_org
):
    referrer, affiliate, outsider = _firms(make_org)

    plain = _match(client, admin_headers, referrer_organization_id=referrer["id"]).get_json()
    body = _match(client, admin_headers, referrer_organization_id=referrer["id"],
                  prefer_group=True).get_json()

    assert [c["organization_id"] for c in plain["candidates"]] == [outsider["id"],
                                                                    affiliate["id"]]
    assert "group" not in plain["weights"]
    assert "group" not in plain["candidates"][0]["breakdown"]
    assert [c["organization_id"] for c in body["candidates"]] == [affiliate["id"],
                                                                   outsider["id"]]
    assert [c["breakdown"]["group"] for c in body["candidates"]] == [1.0, 0.0]
    assert body["weights"]["group"] > 0
    assert abs(sum(body["weights"].values()) - 1.0) < 1e-9


def test_same_group_only_proposes_only_the_referrers_group(client, admin_headers, make_org):
    referrer, affiliate, _outsider = _firms(make_org)

    body = _match(client, admin_headers, referrer_organization_id=referrer["id"],
                  same_group_only=True).get_json()

    assert [c["organization_id"] for c in body["candidates"]] == [affiliate["id"]]


def test_a_partners_group_is_its_own_firms(client, make_key, make_org):
    referrer, affiliate, _outsider = _firms(make_org)
    partner = make_key("partner", referrer["id"])

    body = _match(client, partner, same_group_only=True).get_json()

    assert [c["organization_id"] for c in body["candidates"]] == [affiliate["id"]]


def test_a_group_match_without_a_referrer_is_a_422_naming_it(client, admin_headers, make_org):
    _firms(make_org)

    response = _match(client, admin_headers, prefer_group=True)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "referrer_organization_id" in response.get_json()["errors"]


def test_a_group_match_for_a_referrer_of_no_group_is_a_422(client, admin_headers, make_org):
    _referrer, _affiliate, outsider = _firms(make_org)

    for flag in ("prefer_group", "same_group_only"):
        response = _match(client, admin_headers, referrer_organization_id=outsider["id"],
                          **{flag: True})
        assert response.status_code == 422
        assert "belongs to no group" in response.get_json()["errors"][flag][0]
    unknown = _match(client, admin_headers, referrer_organization_id=999_999,
                     prefer_group=True)
    assert "referrer_organization_id" in unknown.get_json()["errors"]


def test_a_group_change_reaches_the_match_index(app, client, admin_headers, make_org):
    referrer, affiliate, outsider = _firms(make_org)
    app.extensions["match_index"].refresh_seconds = 0
    asked = {"referrer_organization_id": referrer["id"], "same_group_only": True}
    assert [c["organization_id"] for c in
            _match(client, admin_headers, **asked).get_json()["candidates"]] == [affiliate["id"]]

    client.patch(f"{API}/organizations/{outsider['id']}", headers=admin_headers,
                 json={"group": "formosa group"})
    client.patch(f"{API}/organizations/{affiliate['id']}", headers=admin_headers,
                 json={"group": None})

    assert [c["organization_id"] for c in
            _match(client, admin_headers, **asked).get_json()["candidates"]] == [outsider["id"]]
