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
