"""A client's work sites (SPEC section 8): recorded per firm, named by matches and referrals."""

from __future__ import annotations

import pytest

from tests.conftest import org_payload

API = "/api/v1"
TAICHUNG = {"label": "Taichung works", "location": {
    "city": "Taichung", "country": "tw", "address": "12 Gongye Rd, Taichung"}}
TAINAN = {"label": "Tainan warehouse", "location": {"latitude": 22.99, "longitude": 120.21,
                                                    "city": "Tainan", "country": "TW"}}


@pytest.fixture
def world(client, admin_headers, make_org, make_key):
    """Alpha refers Acme to Bravo; Charlie is a third firm."""
    alpha = make_org(name="Alpha Trading")
    bravo = make_org(name="Bravo Machining")
    charlie = make_org(name="Charlie Coatings")
    referral = client.post(f"{API}/referrals", headers=admin_headers, json={
        "referrer_organization_id": alpha["id"], "receiver_organization_id": bravo["id"],
        "client": {"name": "Acme Ltd"}, "skills": ["CNC Machining"]}).get_json()
    client.patch(f"{API}/referrals/{referral['id']}", headers=admin_headers,
                 json={"status": "withdrawn"})
    return {"alpha": alpha["id"], "bravo": bravo["id"], "charlie": charlie["id"],
            "acme": referral["client"]["id"], "alpha_key": make_key("partner", alpha["id"]),
            "bravo_key": make_key("partner", bravo["id"]),
            "charlie_key": make_key("partner", charlie["id"])}


def _site(client, headers, client_id, body, **extra):
    return client.post(f"{API}/clients/{client_id}/sites", headers=headers,
                       json={**body, **extra})


def test_a_site_is_recorded_with_its_place_resolved(client, admin_headers, world):
    response = _site(client, admin_headers, world["acme"], TAICHUNG,
                     organization_id=world["alpha"])

    assert response.status_code == 201, response.get_json()
    site = response.get_json()
    assert site["label"] == "Taichung works"
    assert site["client_id"] == world["acme"] and site["organization_id"] == world["alpha"]
    location = site["location"]
    assert (location["city"], location["country"], location["address"]) == (
        "Taichung", "TW", "12 Gongye Rd, Taichung")
    assert 23.9 < location["latitude"] < 24.4 and 120.4 < location["longitude"] < 120.9


def test_a_firm_has_one_site_per_label_whatever_its_case(client, admin_headers, world):
    _site(client, admin_headers, world["acme"], TAICHUNG, organization_id=world["alpha"])

    again = _site(client, admin_headers, world["acme"], {**TAICHUNG, "label": "TAICHUNG WORKS"},
                  organization_id=world["alpha"])
    other_firm = _site(client, admin_headers, world["acme"], TAICHUNG,
                       organization_id=world["bravo"])

    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert other_firm.status_code == 201


def test_head_office_names_the_firm_a_site_is_for(client, admin_headers, world):
    response = _site(client, admin_headers, world["acme"], TAICHUNG)

    assert response.status_code == 422
    assert "organization_id" in response.get_json()["errors"]
    unknown = _site(client, admin_headers, 999_999, TAICHUNG, organization_id=world["alpha"])
    assert unknown.status_code == 404


def test_a_partner_sees_and_records_only_its_own_firms_sites(client, admin_headers, world):
    _site(client, admin_headers, world["acme"], TAICHUNG, organization_id=world["bravo"])

    own = _site(client, world["alpha_key"], world["acme"], TAINAN)
    assert own.status_code == 201
    assert own.get_json()["organization_id"] == world["alpha"]
    listed = client.get(f"{API}/clients/{world['acme']}/sites", headers=world["alpha_key"])
    assert [s["label"] for s in listed.get_json()["items"]] == ["Tainan warehouse"]
    everything = client.get(f"{API}/clients/{world['acme']}/sites", headers=admin_headers)
    assert len(everything.get_json()["items"]) == 2

    for_another = _site(client, world["alpha_key"], world["acme"], TAICHUNG,
                        organization_id=world["bravo"])
    assert for_another.status_code == 403


def test_a_partner_that_does_not_know_the_client_gets_a_404(client, world):
    # Charlie never referred, accepted or visited Acme; Bravo received it but never accepted.
    for key in ("charlie_key", "bravo_key"):
        assert client.get(f"{API}/clients/{world['acme']}/sites",
                          headers=world[key]).status_code == 404
        assert _site(client, world[key], world["acme"], TAICHUNG).status_code == 404


def _refer(http, headers, world, **body):
    return http.post(f"{API}/referrals", headers=headers, json={
        "referrer_organization_id": world["alpha"], "receiver_organization_id": world["charlie"],
        "client": {"name": "ACME Ltd."}, "skills": ["CNC Machining"], **body})


def test_a_referral_for_a_site_keeps_its_place_and_shows_it_to_the_receiver_in_time(
    client, admin_headers, world
):
    site = _site(client, admin_headers, world["acme"], TAICHUNG,
                 organization_id=world["alpha"]).get_json()

    response = _refer(client, world["alpha_key"], world, client_site_id=site["id"])

    assert response.status_code == 201, response.get_json()
    referral = response.get_json()
    assert referral["client_site"] == {"id": site["id"], "label": "Taichung works"}
    assert referral["client"]["location"] == site["location"]
    # The receiver sees the city before it accepts, and the site once it has.
    before = client.get(f"{API}/referrals/{referral['id']}", headers=world["charlie_key"])
    assert before.get_json()["client_site"] is None
    assert before.get_json()["client"]["location"] == {
        "latitude": None, "longitude": None, "city": "Taichung", "country": "TW",
        "address": None}
    client.patch(f"{API}/referrals/{referral['id']}", headers=world["charlie_key"],
                 json={"status": "accepted"})
    after = client.get(f"{API}/referrals/{referral['id']}", headers=world["charlie_key"])
    assert after.get_json()["client_site"]["label"] == "Taichung works"
    assert after.get_json()["client"]["location"]["address"] == "12 Gongye Rd, Taichung"


@pytest.mark.parametrize("case", ["unknown", "another_firms", "another_clients", "and_place"])
def test_a_site_the_referral_cannot_name_is_a_422(client, admin_headers, world, case):
    bravo_site = _site(client, admin_headers, world["acme"], TAICHUNG,
                       organization_id=world["bravo"]).get_json()
    other = client.post(f"{API}/referrals", headers=admin_headers, json={
        "referrer_organization_id": world["alpha"], "receiver_organization_id": world["bravo"],
        "client": {"name": "Globex"}}).get_json()
    globex_site = _site(client, admin_headers, other["client"]["id"], TAINAN,
                        organization_id=world["alpha"]).get_json()
    body = {"unknown": {"client_site_id": 999_999},
            "another_firms": {"client_site_id": bravo_site["id"]},
            "another_clients": {"client_site_id": globex_site["id"]},
            "and_place": {"client_site_id": globex_site["id"],
                          "client": {"name": "Globex", "location": TAINAN["location"]}}}[case]

    response = _refer(client, world["alpha_key"], world, **body)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "client_site_id" in response.get_json()["errors"]
    listed = client.get(f"{API}/referrals?organization_id={world['charlie']}",
                        headers=admin_headers).get_json()
    assert listed["total"] == 0  # nothing recorded


def _new_client(http, headers, world, **body):
    return http.post(f"{API}/referrals", headers=headers, json={
        "referrer_organization_id": world["alpha"], "receiver_organization_id": world["charlie"],
        "client": {"name": "Nova Bikes"}, "skills": ["CNC Machining"], **body})


def _clients_named(app, name: str) -> int:
    from sqlalchemy import func, select

    from models import Client
    from referral_service.db import session_scope

    with session_scope(app) as session:
        return session.scalar(select(func.count()).select_from(Client)
                              .where(Client.name == name))


def test_a_new_clients_first_referral_records_its_site_with_it(client, admin_headers, world):
    response = _new_client(client, world["alpha_key"], world, new_client_site=TAICHUNG)

    assert response.status_code == 201, response.get_json()
    referral = response.get_json()
    assert referral["client_site"]["label"] == "Taichung works"
    location = referral["client"]["location"]
    assert location["address"] == "12 Gongye Rd, Taichung"
    assert 23.9 < location["latitude"] < 24.4
    sites = client.get(f"{API}/clients/{referral['client']['id']}/sites",
                       headers=world["alpha_key"]).get_json()["items"]
    assert [(s["id"], s["label"], s["organization_id"]) for s in sites] == [
        (referral["client_site"]["id"], "Taichung works", world["alpha"])]
    # the next referral of the client names the site it recorded
    client.patch(f"{API}/referrals/{referral['id']}", headers=admin_headers,
                 json={"status": "withdrawn"})
    again = _new_client(client, world["alpha_key"], world,
                        client_site_id=referral["client_site"]["id"])
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["client_site"]["label"] == "Taichung works"


@pytest.mark.parametrize("case", ["no_label", "blank_label", "no_location", "unknown_place",
                                  "and_place", "and_site_id"])
def test_a_new_site_the_referral_cannot_record_is_a_422_and_nothing_is_written(
    app, client, admin_headers, world, case
):
    acme_site = _site(client, admin_headers, world["acme"], TAINAN,
                      organization_id=world["alpha"]).get_json()
    body = {"no_label": {"new_client_site": {"location": TAICHUNG["location"]}},
            "blank_label": {"new_client_site": {**TAICHUNG, "label": "  "}},
            "no_location": {"new_client_site": {"label": "Works"}},
            "unknown_place": {"new_client_site": {"label": "Works", "location": {
                "city": "Nowhere At All", "country": "TW"}}},
            "and_place": {"new_client_site": TAICHUNG,
                          "client": {"name": "Nova Bikes", "location": TAINAN["location"]}},
            "and_site_id": {"new_client_site": TAICHUNG, "client_site_id": acme_site["id"]},
            }[case]

    response = _new_client(client, world["alpha_key"], world, **body)

    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert "new_client_site" in response.get_json()["errors"]
    assert _clients_named(app, "Nova Bikes") == 0
    listed = client.get(f"{API}/referrals?organization_id={world['charlie']}",
                        headers=admin_headers).get_json()
    assert listed["total"] == 0


def test_a_new_site_whose_label_the_referrer_has_is_a_409_and_nothing_is_written(
    client, admin_headers, world
):
    _site(client, admin_headers, world["acme"], TAICHUNG, organization_id=world["alpha"])

    response = client.post(f"{API}/referrals", headers=world["alpha_key"], json={
        "referrer_organization_id": world["alpha"], "receiver_organization_id": world["charlie"],
        "client": {"name": "Acme Ltd"}, "new_client_site": {**TAICHUNG, "label": "taichung "
                                                                                  "WORKS"}})

    assert response.status_code == 409, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == {"new_client_site": {"label": ["Already taken."]}}
    listed = client.get(f"{API}/referrals?organization_id={world['charlie']}",
                        headers=admin_headers).get_json()
    assert listed["total"] == 0
    sites = client.get(f"{API}/clients/{world['acme']}/sites", headers=admin_headers)
    assert len(sites.get_json()["items"]) == 1


def test_a_match_for_a_site_ranks_from_its_place(client, admin_headers, make_org, world):
    near = make_org(name="Taichung Machining", offices=[{"city": "Taichung", "country": "TW"}])
    alpha_site = _site(client, admin_headers, world["acme"], TAICHUNG,
                       organization_id=world["alpha"]).get_json()
    bravo_site = _site(client, admin_headers, world["acme"], TAICHUNG,
                       organization_id=world["bravo"]).get_json()

    matched = client.post(f"{API}/match", headers=world["alpha_key"], json={
        "skills": ["CNC Machining"], "client_site_id": alpha_site["id"]})

    assert matched.status_code == 200, matched.get_json()
    body = matched.get_json()
    assert body["location"] == {"latitude": alpha_site["location"]["latitude"],
                                "longitude": alpha_site["location"]["longitude"]}
    assert body["candidates"][0]["organization_id"] == near["id"]
    foreign = client.post(f"{API}/match", headers=world["alpha_key"], json={
        "skills": ["CNC Machining"], "client_site_id": bravo_site["id"]})
    assert foreign.status_code == 422
    assert "client_site_id" in foreign.get_json()["errors"]
    staff = client.post(f"{API}/match", headers=admin_headers, json={
        "skills": ["CNC Machining"], "client_site_id": bravo_site["id"]})
    assert staff.status_code == 200


@pytest.mark.parametrize("place", [{}, {"location": {"city": "Taichung", "country": "TW"},
                                        "client_site_id": 1}])
def test_a_match_names_a_location_or_a_site_not_both_nor_neither(client, admin_headers, place):
    response = client.post(f"{API}/match", headers=admin_headers,
                           json={"skills": ["CNC Machining"], **place})

    assert response.status_code == 422
    assert "location" in response.get_json()["errors"]


def test_the_openapi_document_states_client_sites(client):
    document = client.get(f"{API}/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    assert "/api/v1/clients/{client_id}/sites" in document["paths"]
    assert "client_site_id" in schemas["MatchRequest"]["properties"]
    assert "prefer_group" in schemas["MatchRequest"]["properties"]
    assert "client_site_id" in schemas["ReferralCreate"]["properties"]
    assert "new_client_site" in schemas["ReferralCreate"]["properties"]
    assert "client_site" in schemas["Referral"]["properties"]


def test_a_firm_without_a_group_says_so(make_org):
    assert make_org(**org_payload(name="Plain Works"))["group"] is None
