"""POST /api/v1/match: the CRM asks which firm fits a client's need best."""

from __future__ import annotations

import pytest

from tests.conftest import office

MATCH = "/api/v1/match"
KAOHSIUNG = {"latitude": 22.6273, "longitude": 120.3014}


def need(**extra) -> dict:
    body = {"skills": ["CNC machining", "anodizing"], "location": KAOHSIUNG, "limit": 5}
    body.update(extra)
    return body


@pytest.fixture
def firms(make_org):
    """Three firms around southern Taiwan."""
    return {
        "near_full": make_org(name="Near Full", skills=["cnc machining", "anodizing"],
                              offices=[{"latitude": 22.63, "longitude": 120.31}]),
        "far_full": make_org(name="Far Full", skills=["cnc-machining", "anodizing"],
                             offices=[{"latitude": 22.99, "longitude": 120.22,
                                       "service_radius_km": 200}]),
        "near_none": make_org(name="Near None", skills=["legal services"],
                              description="Company law and contracts.",
                              offices=[{"latitude": 22.627, "longitude": 120.301}]),
    }


def test_match_ranks_by_skill_then_distance(client, admin_headers, firms):
    response = client.post(MATCH, json=need(), headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    names = [c["name"] for c in body["candidates"]]
    # the law firm at the client's door has no relation to the need: below the floor
    assert names == ["Near Full", "Far Full"]
    first = body["candidates"][0]
    assert first["rank"] == 1
    assert first["matched_skills"] == ["cnc-machining", "anodizing"]
    assert first["missing_skills"] == []
    assert first["office_id"] == firms["near_full"]["offices"][0]["id"]
    assert first["distance_km"] < 2
    weights = body["weights"]
    for candidate in body["candidates"]:
        total = sum(weights[k] * candidate["breakdown"][k] for k in weights)
        assert candidate["score"] == pytest.approx(total, abs=1e-6)
        assert all(0 <= v <= 1 for v in candidate["breakdown"].values())


def test_match_excludes_referrer_excluded_inactive_and_far(client, admin_headers, firms):
    client.delete(f"/api/v1/organizations/{firms['near_none']['id']}", headers=admin_headers)
    body = client.post(MATCH, json=need(
        referrer_organization_id=firms["near_full"]["id"], max_distance_km=10,
    ), headers=admin_headers).get_json()
    assert [c["name"] for c in body["candidates"]] == []
    body = client.post(MATCH, json=need(exclude_organization_ids=[firms["far_full"]["id"]]),
                       headers=admin_headers).get_json()
    assert [c["name"] for c in body["candidates"]] == ["Near Full"]


def test_firm_at_capacity_is_not_proposed(client, admin_headers, firms):
    client.patch(f"/api/v1/organizations/{firms['near_full']['id']}", json={"capacity": 0},
                 headers=admin_headers)
    body = client.post(MATCH, json=need(), headers=admin_headers).get_json()
    assert "Near Full" not in [c["name"] for c in body["candidates"]]


def test_kinds_filter(client, admin_headers, make_org):
    make_org(name="Aff", kind="affiliate", skills=["welding"])
    make_org(name="Par", kind="partner", skills=["welding"])
    body = client.post(MATCH, json=need(skills=["welding"], kinds=["affiliate"]),
                       headers=admin_headers).get_json()
    assert [c["name"] for c in body["candidates"]] == ["Aff"]


def test_location_by_city_and_unknown_city_names_the_field(client, admin_headers, firms):
    ok = client.post(MATCH, json=need(location={"city": "Kaohsiung", "country": "TW"}),
                     headers=admin_headers)
    assert ok.status_code == 200
    assert abs(ok.get_json()["location"]["latitude"] - 22.63) < 0.2
    bad = client.post(MATCH, json=need(location={"city": "Atlantisville", "country": "TW"}),
                      headers=admin_headers)
    assert bad.status_code == 422
    assert "city" in bad.get_json()["errors"]["location"]


@pytest.mark.parametrize("body", [
    {"skills": ["x"]},
    {"location": KAOHSIUNG},
    need(limit=0), need(limit=101), need(max_distance_km=-5),
    need(location={"latitude": 95, "longitude": 0}),
    need(kinds=["robot"]), need(weights={"skill": -1}),
    need(weights={"skill": 0, "location": 0, "performance": 0, "capacity": 0}),
    need(exclude_organization_ids=[10**20]),
])
def test_bad_match_requests_are_422(client, admin_headers, body):
    response = client.post(MATCH, json=body, headers=admin_headers)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_weights_override_is_used_and_returned(client, admin_headers, firms):
    body = client.post(MATCH, json=need(weights={"skill": 0, "location": 1, "performance": 0,
                                                 "capacity": 0}),
                       headers=admin_headers).get_json()
    assert body["weights"] == {"skill": 0, "location": 1, "performance": 0, "capacity": 0}
    assert body["candidates"][0]["name"] in ("Near None", "Near Full")
    assert body["candidates"][-1]["name"] == "Far Full"


def test_profile_change_shows_in_matches(app, client, admin_headers, firms):
    app.extensions["match_index"].refresh_seconds = 0
    client.post(MATCH, json=need(), headers=admin_headers)
    client.patch(f"/api/v1/organizations/{firms['near_none']['id']}",
                 json={"skills": ["CNC machining", "anodizing"],
                       "offices": [office("Kaohsiung", "TW")]}, headers=admin_headers)
    body = client.post(MATCH, json=need(), headers=admin_headers).get_json()
    near_none = next(c for c in body["candidates"] if c["name"] == "Near None")
    assert near_none["matched_skills"] == ["cnc-machining", "anodizing"]


def test_partner_match_never_proposes_its_own_firm(client, make_key, firms):
    headers = make_key("partner", organization_id=firms["near_full"]["id"])
    body = client.post(MATCH, json=need(), headers=headers).get_json()
    assert "Near Full" not in [c["name"] for c in body["candidates"]]


def test_relevance_floor_is_set_per_request_and_0_turns_it_off(client, admin_headers, firms):
    off = client.post(MATCH, json=need(min_skill_fit=0), headers=admin_headers).get_json()
    assert [c["name"] for c in off["candidates"]] == ["Near Full", "Far Full", "Near None"]
    assert off["candidates"][-1]["breakdown"]["skill"] < 0.15
    # a floor of 0.75 still keeps every firm with all the required skills
    high = client.post(MATCH, json=need(min_skill_fit=0.75), headers=admin_headers).get_json()
    assert [c["name"] for c in high["candidates"]] == ["Near Full", "Far Full"]
    plain = client.post(MATCH, json={"description": "contracts and company law advice",
                                     "location": KAOHSIUNG}, headers=admin_headers).get_json()
    assert [c["name"] for c in plain["candidates"]] == ["Near None"]


def test_deployment_floor_comes_from_configuration(database_url, client, admin_headers, firms):
    from referral_service import create_app

    other = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "x",
                        "RATELIMIT_ENABLED": False, "MATCH_MIN_SKILL_FIT": 0.0})
    try:
        body = other.test_client().post(MATCH, json=need(), headers=admin_headers).get_json()
    finally:
        other.extensions["db_engine"].dispose()
    assert [c["name"] for c in body["candidates"]] == ["Near Full", "Far Full", "Near None"]
    with pytest.raises(ValueError, match="MATCH_MIN_SKILL_FIT"):
        create_app({"DATABASE_URL": database_url, "TESTING": True,
                    "MATCH_MIN_SKILL_FIT": 0.9})


@pytest.mark.parametrize("floor", [-0.1, 0.76, 1, "high", None])
def test_bad_min_skill_fit_is_a_422_naming_the_field(client, admin_headers, floor):
    response = client.post(MATCH, json=need(min_skill_fit=floor), headers=admin_headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "min_skill_fit" in response.get_json()["errors"]


def test_min_skill_fit_and_its_range_are_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    request = document["components"]["schemas"]["MatchRequest"]["properties"]["min_skill_fit"]
    assert (request["minimum"], request["maximum"]) == (0, 0.75)
    assert "floor" in request["description"]


def test_a_skill_spelled_differently_counts_as_the_skill(client, admin_headers, make_org):
    # issue 12: an Osaka client asking for anodizing got Osaka's anodising firm at #9
    osaka = {"latitude": 34.6937, "longitude": 135.5023}
    make_org(name="Taichung Anodizing", skills=["Anodizing"],
             offices=[{"latitude": 24.1477, "longitude": 120.6736, "service_radius_km": 3000}])
    make_org(name="Osaka Anodising", skills=["Anodising"],
             offices=[{"latitude": 34.70, "longitude": 135.50}])
    body = client.post(MATCH, json={"skills": ["anodizing"], "location": osaka},
                       headers=admin_headers).get_json()
    first = body["candidates"][0]
    assert first["name"] == "Osaka Anodising"
    assert (first["matched_skills"], first["missing_skills"]) == (["anodizing"], [])


def test_office_named_is_the_one_whose_radius_serves_the_client(client, admin_headers, make_org):
    # issue 12: a Taichung studio (5 km) and a Tainan works (300 km); the client 30 km north
    firm = make_org(name="Studio and Works", skills=["welding"], offices=[
        {"label": "Studio", "latitude": 24.1477, "longitude": 120.6736, "service_radius_km": 5},
        {"label": "Works", "latitude": 22.9999, "longitude": 120.2270, "service_radius_km": 300}])
    client_place = {"latitude": 24.42, "longitude": 120.70}
    body = client.post(MATCH, json={"skills": ["welding"], "location": client_place},
                       headers=admin_headers).get_json()
    first = body["candidates"][0]
    works = next(o for o in firm["offices"] if o["label"] == "Works")
    assert first["office_id"] == works["id"]
    assert first["breakdown"]["location"] > 0
    assert 150 < first["distance_km"] < 180
