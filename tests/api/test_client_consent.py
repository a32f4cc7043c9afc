"""A referral's client.consent (SPEC section 11): stored, shown on need to know, and required
with REQUIRE_CLIENT_CONSENT."""

from __future__ import annotations

import pytest

CONSENT = {"given_at": "2026-11-30T08:15:00+08:00", "by": "Wen Chao, the client's owner"}


@pytest.fixture
def pair(make_org):
    """A referrer and a receiver."""
    return make_org(name="Harbor Precision"), make_org(name="Blue Anodizing")


def referral_body(pair, **client) -> dict:
    referrer, receiver = pair
    return {"referrer_organization_id": referrer["id"],
            "receiver_organization_id": receiver["id"],
            "client": {"name": "Consenting Client Co", **client}}


def test_consent_is_stored_and_returned_in_utc(client, admin_headers, pair):
    created = client.post("/api/v1/referrals", json=referral_body(pair, consent=CONSENT),
                          headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    expected = {"given_at": "2026-11-30T00:15:00+00:00", "by": "Wen Chao, the client's owner"}
    assert created.get_json()["client"]["consent"] == expected
    read = client.get(f"/api/v1/referrals/{created.get_json()['id']}", headers=admin_headers)
    assert read.get_json()["client"]["consent"] == expected
    listed = client.get("/api/v1/referrals", headers=admin_headers).get_json()["items"]
    assert listed[0]["client"]["consent"] == expected


def test_a_referral_without_consent_shows_none(client, admin_headers, pair):
    created = client.post("/api/v1/referrals", json=referral_body(pair), headers=admin_headers)
    assert created.status_code == 201
    assert created.get_json()["client"]["consent"] is None


def test_the_receiver_learns_who_gave_consent_only_once_it_accepts(
    client, admin_headers, make_key, pair,
):
    referral = client.post("/api/v1/referrals", json=referral_body(pair, consent=CONSENT),
                           headers=admin_headers).get_json()
    receiver = make_key("partner", pair[1]["id"])
    before = client.get(f"/api/v1/referrals/{referral['id']}", headers=receiver).get_json()
    assert before["client"]["name"] is None
    assert before["client"]["consent"] == {"given_at": "2026-11-30T00:15:00+00:00",
                                           "by": None}
    referrer = make_key("partner", pair[0]["id"])
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=referrer
                      ).get_json()["client"]["consent"]["by"] == CONSENT["by"]
    assert client.patch(f"/api/v1/referrals/{referral['id']}", headers=receiver,
                        json={"status": "accepted"}).status_code == 200
    after = client.get(f"/api/v1/referrals/{referral['id']}", headers=receiver).get_json()
    assert after["client"]["consent"]["by"] == CONSENT["by"]


@pytest.mark.parametrize("consent", [{"by": "someone"}, {"given_at": "2026-11-30T08:15:00Z"},
                                     {**CONSENT, "by": ""}, {**CONSENT, "when": "now"},
                                     {**CONSENT, "given_at": "yesterday"}])
def test_a_malformed_consent_is_a_422_naming_the_field(client, admin_headers, pair, consent):
    refused = client.post("/api/v1/referrals", json=referral_body(pair, consent=consent),
                          headers=admin_headers)
    assert refused.status_code == 422
    assert refused.content_type == "application/problem+json"
    assert "consent" in refused.get_json()["errors"]["client"]


def test_with_require_client_consent_a_referral_without_it_is_a_422(
    app, client, admin_headers, pair,
):
    app.config["REQUIRE_CLIENT_CONSENT"] = True
    refused = client.post("/api/v1/referrals", json=referral_body(pair), headers=admin_headers)
    assert refused.status_code == 422
    assert refused.content_type == "application/problem+json"
    problem = refused.get_json()
    assert list(problem["errors"]) == ["client"] and list(problem["errors"]["client"]) == [
        "consent"]
    assert "consent" in problem["detail"]
    assert client.get("/api/v1/referrals", headers=admin_headers).get_json()["total"] == 0
    accepted = client.post("/api/v1/referrals", json=referral_body(pair, consent=CONSENT),
                           headers=admin_headers)
    assert accepted.status_code == 201


def test_with_require_client_consent_referring_a_lead_needs_it_too(
    app, client, admin_headers, pair,
):
    from tests.api.test_visits import add_person

    seller = add_person(app, pair[0]["id"], "Kenji Sato")
    visit = client.post("/api/v1/visits", headers=admin_headers, json={
        "person_id": seller, "client": {"name": "Visited Host Co"},
        "visited_at": "2026-11-30T08:00:00Z",
        "leads": [{"name": "Lead Needing Consent"}]}).get_json()
    lead_id = visit["leads"][0]["id"]
    app.config["REQUIRE_CLIENT_CONSENT"] = True
    body = {"receiver_organization_id": pair[1]["id"]}
    refused = client.post(f"/api/v1/leads/{lead_id}/refer", json=body, headers=admin_headers)
    assert refused.status_code == 422
    assert list(refused.get_json()["errors"]) == ["consent"]
    referred = client.post(f"/api/v1/leads/{lead_id}/refer", headers=admin_headers,
                           json={**body, "consent": CONSENT})
    assert referred.status_code == 201, referred.get_json()
    assert referred.get_json()["client"]["consent"]["by"] == CONSENT["by"]


def test_the_openapi_document_states_consent_and_when_it_is_required(client, database_url):
    from referral_service import create_app

    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    consent = schemas["ReferralClientIn"]["properties"]["consent"]
    assert "REQUIRE_CLIENT_CONSENT" in consent["description"]
    assert "consent" not in schemas["ReferralClientIn"]["required"]
    assert "consent" not in schemas["LeadRefer"].get("required", [])
    assert sorted(schemas["Consent"]["required"]) == ["by", "given_at"]
    assert "consent" not in schemas["ClientIn"]["properties"]  # a visit's client has none
    erase = document["paths"]["/api/v1/clients/{client_id}"]["delete"]
    assert {"204", "401", "403", "404"} <= set(erase["responses"])
    strict = create_app({"DATABASE_URL": database_url, "TESTING": True,
                         "REQUIRE_CLIENT_CONSENT": True})
    try:
        required = strict.test_client().get("/api/v1/openapi.json").get_json()[
            "components"]["schemas"]
    finally:
        strict.extensions["db_engine"].dispose()
    assert "consent" in required["ReferralClientIn"]["required"]
    assert "consent" in required["LeadRefer"]["required"]
    assert "consent" not in required["ClientIn"].get("required", [])


def test_a_visits_client_takes_no_consent(app, client, admin_headers, pair):
    from tests.api.test_visits import add_person

    seller = add_person(app, pair[0]["id"], "Kenji Sato")
    refused = client.post("/api/v1/visits", headers=admin_headers, json={
        "person_id": seller, "client": {"name": "Visited Host Co", "consent": CONSENT},
        "visited_at": "2026-11-30T08:00:00Z", "leads": [{"name": "Some Lead"}]})
    assert refused.status_code == 422  # never taken and dropped
    assert "consent" in refused.get_json()["errors"]["client"]


def test_a_re_offer_carries_the_consent_of_the_referral_it_follows(
    client, admin_headers, make_key, make_org, session,
):
    from tests.api.test_reoffer import HERE, _move, _next, _world

    world = _world(make_org)
    first = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": world["referrer"], "receiver_organization_id": world["a"],
        "client": {"name": "Kaohsiung Shipyards Ltd", "consent": CONSENT, "location": HERE},
        "skills": ["Welding"], "description": "Welding of steel hull sections."}).get_json()
    _move(client, make_key("partner", world["a"]), first["id"], "declined")
    second = _next(session, first["id"])
    assert second is not None
    body = client.get(f"/api/v1/referrals/{second.id}", headers=admin_headers).get_json()
    assert body["client"]["consent"] == first["client"]["consent"]
    assert body["client"]["consent"]["by"] == CONSENT["by"]
