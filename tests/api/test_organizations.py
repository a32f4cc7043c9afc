"""The organizations and skills part of the CRM contract."""

from __future__ import annotations

from tests.conftest import office, org_payload

BASE = "/api/v1/organizations"


def test_create_resolves_office_city_offline_and_returns_201(client, admin_headers):
    response = client.post(BASE, json=org_payload(offices=[office("Taichung", "TW")]),
                           headers=admin_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["skills"] == ["cnc-machining", "anodizing"]
    assert abs(body["offices"][0]["latitude"] - 24.15) < 0.2
    assert abs(body["offices"][0]["longitude"] - 120.68) < 0.2
    assert body["offices"][0]["service_radius_km"] == 100.0
    assert body["version"] == 1
    assert response.headers["ETag"]


def test_unknown_city_is_422_naming_the_field_and_writes_nothing(client, admin_headers):
    response = client.post(BASE, json=org_payload(offices=[office("Atlantisville", "TW")]),
                           headers=admin_headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "city" in response.get_json()["errors"]["offices"]["0"]
    assert client.get(BASE, headers=admin_headers).get_json()["total"] == 0


def test_skill_spellings_normalize_to_one_slug(client, admin_headers, make_org):
    make_org(skills=["CNC Machining", "cnc machining", "cnc-machining"])
    make_org(name="Other", skills=["CNC machining"])
    skills = client.get("/api/v1/skills", headers=admin_headers).get_json()["items"]
    assert {"skill": "cnc-machining", "organizations": 2, "aliases": []} in skills
    assert [s["skill"] for s in skills].count("cnc-machining") == 1


def test_list_filters_and_pages(client, admin_headers, make_org):
    make_org(name="Alpha Works", kind="affiliate", skills=["welding"])
    make_org(name="Beta Works", kind="partner", skills=["anodizing"])
    make_org(name="Gamma Ltd", kind="partner", skills=["welding"])
    get = lambda q: client.get(BASE + q, headers=admin_headers).get_json()  # noqa: E731
    assert [o["name"] for o in get("?kind=partner")["items"]] == ["Beta Works", "Gamma Ltd"]
    assert [o["name"] for o in get("?skill=Welding")["items"]] == ["Alpha Works", "Gamma Ltd"]
    assert [o["name"] for o in get("?q=works")["items"]] == ["Alpha Works", "Beta Works"]
    page = get("?page=2&page_size=2")
    assert (page["total"], page["page"], page["page_size"]) == (3, 2, 2)
    assert [o["name"] for o in page["items"]] == ["Gamma Ltd"]
    assert client.get(BASE + "?page_size=501", headers=admin_headers).status_code == 422


def test_external_ref_is_unique(client, admin_headers, make_org):
    make_org(external_ref="CRM-1")
    response = client.post(BASE, json=org_payload(name="Twin", external_ref="CRM-1"),
                           headers=admin_headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_unknown_and_read_only_fields_are_refused(client, admin_headers, make_org):
    created = make_org()
    for field, value in (("id", 99), ("version", 7), ("created_at", "2020-01-01T00:00:00Z"),
                         ("colour", "red")):
        response = client.patch(f"{BASE}/{created['id']}", json={field: value},
                                headers=admin_headers)
        assert response.status_code == 422, field
        assert field in response.get_json()["errors"]
    assert client.get(f"{BASE}/{created['id']}", headers=admin_headers).get_json()["version"] == 1


def test_patch_with_stale_etag_is_412_and_fresh_etag_applies(client, admin_headers, make_org):
    created = make_org()
    url = f"{BASE}/{created['id']}"
    first_etag = client.get(url, headers=admin_headers).headers["ETag"]
    ok = client.patch(url, json={"capacity": 5}, headers={**admin_headers, "If-Match": first_etag})
    assert ok.status_code == 200
    assert ok.get_json()["capacity"] == 5 and ok.get_json()["version"] == 2
    stale = client.patch(url, json={"capacity": 6},
                         headers={**admin_headers, "If-Match": first_etag})
    assert stale.status_code == 412
    assert client.get(url, headers=admin_headers).get_json()["capacity"] == 5
    no_header = client.patch(url, json={"capacity": 7}, headers=admin_headers)
    assert no_header.status_code == 200


def test_patch_offices_replaces_them_and_moves_version(client, admin_headers, make_org):
    created = make_org()
    url = f"{BASE}/{created['id']}"
    kept = created["offices"][0]["id"]
    response = client.patch(url, json={"offices": [
        {"id": kept, "latitude": 22.6273, "longitude": 120.3014, "service_radius_km": 50},
        office("Tainan", "TW"),
    ]}, headers=admin_headers)
    body = response.get_json()
    assert response.status_code == 200
    assert [o["id"] == kept for o in body["offices"]] == [True, False]
    assert body["offices"][0]["service_radius_km"] == 50
    assert body["version"] == 2


def test_delete_deactivates_and_keeps_the_row(client, admin_headers, make_org):
    created = make_org()
    assert client.delete(f"{BASE}/{created['id']}", headers=admin_headers).status_code == 204
    body = client.get(f"{BASE}/{created['id']}", headers=admin_headers).get_json()
    assert body["active"] is False
    assert client.get(BASE + "?active=false", headers=admin_headers).get_json()["total"] == 1


def test_partner_key_sees_and_edits_only_its_own_organization(client, make_key, make_org):
    mine, other = make_org(name="Mine"), make_org(name="Other")
    headers = make_key("partner", organization_id=mine["id"])
    listing = client.get(BASE, headers=headers).get_json()
    assert [o["id"] for o in listing["items"]] == [mine["id"]]
    assert client.get(f"{BASE}/{other['id']}", headers=headers).status_code == 404
    assert client.patch(f"{BASE}/{other['id']}", json={"capacity": 1},
                        headers=headers).status_code == 404
    assert client.patch(f"{BASE}/{mine['id']}", json={"capacity": 3},
                        headers=headers).status_code == 200
    assert client.patch(f"{BASE}/{mine['id']}", json={"active": False},
                        headers=headers).status_code == 403
    assert client.post(BASE, json=org_payload(), headers=headers).status_code == 403
    assert client.delete(f"{BASE}/{mine['id']}", headers=headers).status_code == 403


def test_missing_or_bad_key_is_401(client):
    assert client.get(BASE).status_code == 401
    response = client.get(BASE, headers={"Authorization": "Bearer rk_nope"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_huge_ids_are_404_not_a_crash(client, admin_headers):
    for raw in ("99999999999", "0", "2147483648"):
        response = client.get(f"{BASE}/{raw}", headers=admin_headers)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_invalid_coordinates_and_half_given_coordinates_are_422(client, admin_headers):
    for bad in ({"latitude": 91, "longitude": 0}, {"latitude": 10},
                {"label": "no place"}, {"latitude": 10, "longitude": "east"}):
        response = client.post(BASE, json=org_payload(offices=[bad]), headers=admin_headers)
        assert response.status_code == 422, bad
        assert "offices" in response.get_json()["errors"]


def test_post_answers_201_with_the_location_of_the_new_organization(client, admin_headers):
    response = client.post(BASE, json=org_payload(), headers=admin_headers)
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"{BASE}/{response.get_json()['id']}")
    document = client.get("/api/v1/openapi.json").get_json()
    headers = document["paths"][BASE]["post"]["responses"]["201"]["headers"]
    assert "Location" in headers and "ETag" in headers


def test_patch_office_by_id_keeps_every_field_it_does_not_give(client, admin_headers,
                                                              make_org):
    created = make_org(offices=[{**office("Kaohsiung", "TW"), "latitude": 22.7,
                                 "longitude": 120.35, "service_radius_km": 80}])
    url = f"{BASE}/{created['id']}"
    kept = created["offices"][0]
    response = client.patch(url, json={"offices": [{"id": kept["id"], "label": "Head office"}]},
                            headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["offices"] == [{**kept, "label": "Head office"}]
    # the same city and country given again: nothing moves, the radius stays
    response = client.patch(url, json={"offices": [
        {"id": kept["id"], "city": "Kaohsiung", "country": "TW"}]}, headers=admin_headers)
    assert response.get_json()["offices"] == [{**kept, "label": "Head office"}]
    # another city without coordinates is placed anew; the radius still stays
    moved = client.patch(url, json={"offices": [{"id": kept["id"], "city": "Tainan"}]},
                         headers=admin_headers).get_json()["offices"][0]
    assert moved["id"] == kept["id"] and moved["service_radius_km"] == 80
    assert abs(moved["latitude"] - 23.0) < 0.2


def test_patch_offices_left_out_are_removed_and_given_again_keep_their_ids(
        client, admin_headers, make_org):
    created = make_org(offices=[office("Taichung", "TW"), office("Tainan", "TW")])
    url = f"{BASE}/{created['id']}"
    first, second = created["offices"]
    same = {key: value for key, value in second.items() if key != "id"}
    body = client.patch(url, json={"offices": [same]}, headers=admin_headers).get_json()
    assert body["offices"] == [second]
    assert body["version"] == 2  # the first office is gone: a change


def test_two_active_firms_may_not_share_a_name_whatever_its_case(client, admin_headers,
                                                                   make_org):
    bravo = make_org(name="Bravo Works")
    for taken in ("bravo works", "BRAVO  WORKS ", "ＢＲＡＶＯ Works"):
        response = client.post(BASE, json=org_payload(name=taken), headers=admin_headers)
        assert response.status_code == 409, taken
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["errors"] == {
            "name": ["Another active organization already has this name."]}
    # A firm that is gone leaves its name free; brought back, it meets the new holder.
    assert client.delete(f"{BASE}/{bravo['id']}", headers=admin_headers).status_code == 204
    again = make_org(name="BRAVO WORKS")
    response = client.patch(f"{BASE}/{bravo['id']}", json={"active": True},
                            headers=admin_headers)
    assert response.status_code == 409
    assert client.get(f"{BASE}/{again['id']}", headers=admin_headers).get_json()["active"]


def test_a_partner_cannot_rename_its_firm_to_another_firms_name(client, make_key, make_org):
    mine, other = make_org(name="Alpha Precision"), make_org(name="Bravo Works")
    headers = make_key("partner", organization_id=mine["id"])
    response = client.patch(f"{BASE}/{mine['id']}", json={"name": "bravo WORKS"},
                            headers=headers)
    assert response.status_code == 409
    assert "name" in response.get_json()["errors"]
    # Its own name in another case is still its own.
    assert client.patch(f"{BASE}/{mine['id']}", json={"name": "ALPHA PRECISION"},
                        headers=headers).status_code == 200
    assert other["name"] == "Bravo Works"
