"""The referrals part of the CRM contract: POST/GET/PATCH /referrals and the expiry command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import IdempotencyRecord, Referral, utcnow

BASE = "/api/v1/referrals"
TAINAN = {"city": "Tainan", "country": "TW"}


@pytest.fixture
def firms(make_org):
    return {name: make_org(name=name, capacity=None)["id"] for name in ("Alpha", "Beta",
                                                                          "Gamma")}


def body(referrer: int, receiver: int, name: str = "Acme Co., Ltd.", **extra) -> dict:
    payload = {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
               "client": {"name": name}, "skills": ["CNC Machining"],
               "description": "Housings", "note": "Met at the fair", "match_score": 0.82}
    payload.update(extra)
    return payload


@pytest.fixture
def post(client, admin_headers):
    def send(payload: dict, headers: dict | None = None):
        return client.post(BASE, json=payload, headers=headers or admin_headers)

    return send


def count_referrals(app) -> int:
    from referral_service.db import session_scope

    with session_scope(app, write=False) as session:
        return session.scalar(select(func.count()).select_from(Referral))


def test_create_returns_201_with_the_referral_etag_and_location(post, firms):
    response = post(body(firms["Alpha"], firms["Beta"],
                         client={"name": "Acme Ltd", "external_ref": "C-9", "location": TAINAN}))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "pending" and created["version"] == 1
    assert created["client"]["name"] == "Acme Ltd"
    assert created["client"]["external_ref"] == "C-9"
    assert abs(created["client"]["location"]["latitude"] - 23.0) < 0.2
    assert created["skills"] == ["cnc-machining"]
    assert created["match_score"] == 0.82
    for status in ("accepted", "declined", "withdrawn", "expired", "converted", "lost"):
        assert created[f"{status}_at"] is None
    assert response.headers["ETag"] == f'"referral-{created["id"]}-v1"'
    assert response.headers["Location"] == f"{BASE}/{created['id']}"


def test_the_clients_place_comes_back_as_given_with_its_coordinates(client, admin_headers,
                                                                    post, firms):
    given = {"city": "Tainan", "country": "tw", "address": "1 Harbour Rd"}
    created = post(body(firms["Alpha"], firms["Beta"],
                        client={"name": "Acme Ltd", "location": given})).get_json()
    location = created["client"]["location"]
    assert (location["city"], location["country"], location["address"]) == (
        "Tainan", "TW", "1 Harbour Rd")
    assert abs(location["latitude"] - 23.0) < 0.2 and abs(location["longitude"] - 120.2) < 0.2
    read = client.get(f"{BASE}/{created['id']}", headers=admin_headers).get_json()
    assert read["client"]["location"] == location
    at_a_point = post(body(firms["Alpha"], firms["Gamma"], client={
        "name": "Pointed", "location": {"latitude": 22.6, "longitude": 120.3}})).get_json()
    assert at_a_point["client"]["location"] == {"latitude": 22.6, "longitude": 120.3,
                                                "city": None, "country": None, "address": None}
    assert post(body(firms["Beta"], firms["Gamma"], "Nowhere")).get_json()["client"][
        "location"] is None


def test_the_201_documents_its_location_and_etag_headers(client):
    document = client.get("/api/v1/openapi.json").get_json()
    created = document["paths"][BASE]["post"]["responses"]["201"]
    assert {"Location", "ETag"} <= set(created["headers"])


def test_same_client_under_another_spelling_is_409_with_the_existing_id(post, firms):
    first = post(body(firms["Alpha"], firms["Beta"], "Acme Co., Ltd.")).get_json()
    response = post(body(firms["Gamma"], firms["Beta"], "ACME"))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["existing_referral_id"] == first["id"]


def test_receiver_at_capacity_is_409(post, make_org, firms):
    small = make_org(name="Small", capacity=1)["id"]
    assert post(body(firms["Alpha"], small, "One")).status_code == 201
    response = post(body(firms["Alpha"], small, "Two"))
    assert response.status_code == 409
    assert "capacity" in response.get_json()["detail"]


def test_a_duplicate_client_sent_to_a_full_receiver_is_an_attribution_409(post, make_org,
                                                                           firms):
    small = make_org(name="Small", capacity=1)["id"]
    first = post(body(firms["Alpha"], small, "Acme Ltd")).get_json()
    response = post(body(firms["Gamma"], small, "ACME"))
    assert response.status_code == 409
    assert response.get_json()["existing_referral_id"] == first["id"]
    assert "attributed" in response.get_json()["detail"]


def test_a_crm_id_is_one_client_whatever_its_case_and_spaces(client, admin_headers, post,
                                                             firms):
    first = post(body(firms["Alpha"], firms["Beta"],
                      client={"name": "Acme", "external_ref": " CRM-400 "})).get_json()
    assert first["client"]["external_ref"] == "CRM-400"
    response = post(body(firms["Gamma"], firms["Beta"],
                         client={"name": "Another Name", "external_ref": "crm-400"}))
    assert response.status_code == 409
    assert response.get_json()["existing_referral_id"] == first["id"]
    client.patch(f"{BASE}/{first['id']}", json={"status": "declined"}, headers=admin_headers)
    again = post(body(firms["Gamma"], firms["Beta"],
                      client={"name": "Another Name", "external_ref": "crm-400"})).get_json()
    assert again["client"]["id"] == first["client"]["id"]
    # The same client, shown as this referral's referrer named it (issue 11, row 1).
    assert (again["client"]["name"], again["client"]["external_ref"]) == (
        "Another Name", "crm-400")


def test_bad_bodies_are_422_naming_the_field(post, client, admin_headers, make_org, firms):
    inactive = make_org(name="Closed")["id"]
    client.delete(f"/api/v1/organizations/{inactive}", headers=admin_headers)
    cases = [
        (body(firms["Alpha"], firms["Alpha"]), "receiver_organization_id"),
        (body(firms["Alpha"], inactive), "receiver_organization_id"),
        (body(firms["Alpha"], 424242), "receiver_organization_id"),
        (body(firms["Alpha"], firms["Beta"], match_score=1.5), "match_score"),
        (body(firms["Alpha"], firms["Beta"], client={}), "client"),
        (body(firms["Alpha"], firms["Beta"], client={"name": "X", "location": {
            "city": "Atlantisville", "country": "TW"}}), "client"),
        ({**body(firms["Alpha"], firms["Beta"]), "status": "converted"}, "status"),
    ]
    for payload, field in cases:
        response = post(payload)
        assert response.status_code == 422, payload
        assert field in response.get_json()["errors"], response.get_json()
    assert client.get(BASE, headers=admin_headers).get_json()["total"] == 0


def test_idempotent_repeat_returns_the_first_response_and_creates_nothing(
    app, client, admin_headers, firms
):
    headers = {**admin_headers, "Idempotency-Key": "order-77"}
    first = client.post(BASE, json=body(firms["Alpha"], firms["Beta"]), headers=headers)
    again = client.post(BASE, json=body(firms["Alpha"], firms["Beta"]), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    for name in ("ETag", "Location"):
        assert again.headers[name] == first.headers[name]
    assert count_referrals(app) == 1
    # The first response, even after the referral moved on.
    client.patch(f"{BASE}/{first.get_json()['id']}", json={"status": "accepted"},
                 headers=admin_headers)
    later = client.post(BASE, json=body(firms["Alpha"], firms["Beta"]), headers=headers)
    assert (later.status_code, later.get_json()) == (201, first.get_json())
    assert count_referrals(app) == 1
    other = client.post(BASE, json=body(firms["Alpha"], firms["Beta"], note="changed"),
                        headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]


def test_idempotency_keys_belong_to_the_key_that_sent_them(app, client, make_key, firms):
    crm_one = {**make_key("crm"), "Idempotency-Key": "same"}
    crm_two = {**make_key("crm"), "Idempotency-Key": "same"}
    assert client.post(BASE, json=body(firms["Alpha"], firms["Beta"], "One"),
                       headers=crm_one).status_code == 201
    # Another API key may use the same key string for its own request.
    assert client.post(BASE, json=body(firms["Alpha"], firms["Beta"], "Two"),
                       headers=crm_two).status_code == 201
    from referral_service.db import session_scope

    with session_scope(app, write=False) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2


def test_a_refused_request_stores_no_response_for_its_key(app, client, admin_headers, firms):
    headers = {**admin_headers, "Idempotency-Key": "retry-me"}
    client.post(BASE, json=body(firms["Alpha"], firms["Beta"], "Held"), headers=admin_headers)
    assert client.post(BASE, json=body(firms["Gamma"], firms["Beta"], "Held"),
                       headers=headers).status_code == 409
    assert client.post(BASE, json=body(firms["Gamma"], firms["Beta"], "Held"),
                       headers=headers).status_code == 409
    assert count_referrals(app) == 1


def test_created_body_is_what_a_get_then_reads_back(client, admin_headers, post, firms):
    created = post(body(firms["Alpha"], firms["Beta"], note="Needs 5-axis", match_score=0.8125,
                        skills=["CNC machining", "Anodizing"], description="Brackets",
                        client={"name": "Acme", "external_ref": "C-1", "location": TAINAN}))
    read = client.get(f"{BASE}/{created.get_json()['id']}", headers=admin_headers)
    assert [h["status"] for h in created.get_json()["history"]] == ["pending"]
    assert read.get_json() == created.get_json()
    assert read.headers["ETag"] == created.headers["ETag"]


def test_the_webhook_payloads_are_the_apis_json(app, client, admin_headers, post, firms):
    from models import OutboxEvent
    from referral_service.db import session_scope

    created = post(body(firms["Alpha"], firms["Beta"])).get_json()
    moved = client.patch(f"{BASE}/{created['id']}", json={"status": "accepted"},
                         headers=admin_headers).get_json()
    with session_scope(app, write=False) as session:
        payloads = session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id)
                                   .where(OutboxEvent.type.like("referral.%"))).all()
    assert payloads == [created, moved]


def test_get_one_has_history_and_etag_and_patch_moves_it(client, admin_headers, post, firms):
    created = post(body(firms["Alpha"], firms["Beta"])).get_json()
    url = f"{BASE}/{created['id']}"
    accepted = client.patch(url, json={"status": "accepted"}, headers=admin_headers)
    assert accepted.status_code == 200
    assert accepted.headers["ETag"] == f'"referral-{created["id"]}-v2"'
    converted = client.patch(url, json={"status": "converted", "reason": "Signed in May"},
                             headers=admin_headers)
    assert converted.get_json()["converted_at"] is not None
    one = client.get(url, headers=admin_headers)
    assert one.headers["ETag"] == f'"referral-{created["id"]}-v3"'
    history = one.get_json()["history"]
    assert [h["status"] for h in history] == ["pending", "accepted", "converted"]
    assert history[2]["reason"] == "Signed in May"
    assert history[0]["actor"] == "key:test admin"
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]


def test_a_move_outside_the_lifecycle_is_409_and_changes_nothing(
    client, admin_headers, post, firms
):
    created = post(body(firms["Alpha"], firms["Beta"])).get_json()
    url = f"{BASE}/{created['id']}"
    for status in ("converted", "lost", "pending"):
        response = client.patch(url, json={"status": status}, headers=admin_headers)
        assert response.status_code == 409, status
        assert response.mimetype == "application/problem+json"
    assert client.patch(url, json={"status": "paused"}, headers=admin_headers).status_code == 422
    assert client.get(url, headers=admin_headers).get_json()["version"] == 1


def test_if_match_is_honoured(client, admin_headers, post, firms):
    created = post(body(firms["Alpha"], firms["Beta"])).get_json()
    url = f"{BASE}/{created['id']}"
    stale = client.get(url, headers=admin_headers).headers["ETag"]
    fresh = client.patch(url, json={"status": "accepted"},
                         headers={**admin_headers, "If-Match": stale})
    assert fresh.status_code == 200
    refused = client.patch(url, json={"status": "lost"},
                           headers={**admin_headers, "If-Match": stale})
    assert refused.status_code == 412
    assert client.get(url, headers=admin_headers).get_json()["status"] == "accepted"


def test_partner_roles_on_a_referral(client, make_key, post, firms):
    created = post(body(firms["Alpha"], firms["Beta"])).get_json()
    url = f"{BASE}/{created['id']}"
    referrer, receiver = make_key("partner", firms["Alpha"]), make_key("partner", firms["Beta"])
    stranger = make_key("partner", firms["Gamma"])
    assert client.get(url, headers=stranger).status_code == 404
    assert client.patch(url, json={"status": "withdrawn"}, headers=stranger).status_code == 404
    assert client.patch(url, json={"status": "accepted"}, headers=referrer).status_code == 403
    assert client.patch(url, json={"status": "withdrawn"}, headers=receiver).status_code == 403
    assert client.patch(url, json={"status": "accepted"}, headers=receiver).status_code == 200
    assert client.patch(url, json={"status": "withdrawn"}, headers=referrer).status_code == 409
    assert client.patch(url, json={"status": "converted"}, headers=receiver).status_code == 200


def test_a_partner_creates_referrals_only_as_referrer(client, make_key, firms):
    alpha = make_key("partner", firms["Alpha"])
    refused = client.post(BASE, json=body(firms["Beta"], firms["Gamma"]), headers=alpha)
    assert refused.status_code == 403
    assert client.post(BASE, json=body(firms["Alpha"], firms["Gamma"]),
                       headers=alpha).status_code == 201


def test_list_filters_pages_and_partner_scope(client, admin_headers, make_key, post, firms):
    a, b, c = firms["Alpha"], firms["Beta"], firms["Gamma"]
    ab = post(body(a, b, "One")).get_json()
    ca = post(body(c, a, "Two")).get_json()
    cb = post(body(c, b, "Three")).get_json()
    client.patch(f"{BASE}/{cb['id']}", json={"status": "declined"}, headers=admin_headers)

    def ids(query: str, headers=admin_headers) -> list[int]:
        response = client.get(BASE + query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("") == [cb["id"], ca["id"], ab["id"]]
    assert ids(f"?organization_id={a}") == [ca["id"], ab["id"]]
    assert ids(f"?organization_id={a}&role=referrer") == [ab["id"]]
    assert ids(f"?organization_id={b}&role=receiver&status=pending") == [ab["id"]]
    assert ids("?status=declined") == [cb["id"]]
    month = utcnow().strftime("%Y-%m")
    assert len(ids(f"?month={month}")) == 3
    assert ids("?month=2001-01") == []
    page = client.get(BASE + "?page=2&page_size=2", headers=admin_headers).get_json()
    assert (page["total"], page["page"], page["page_size"]) == (3, 2, 2)
    assert [item["id"] for item in page["items"]] == [ab["id"]]
    partner = make_key("partner", a)
    assert ids("", partner) == [ca["id"], ab["id"]]
    assert ids("?role=receiver", partner) == [ca["id"]]
    assert ids(f"?organization_id={b}", partner) == []
    assert len(ids("?role=referrer")) == 3  # no organization_id: no side to narrow
    for bad in ("?month=2026-13", "?role=boss", "?status=paused", "?page_size=501"):
        assert client.get(BASE + bad, headers=admin_headers).status_code == 422, bad


def test_list_sorts_by_date_client_and_status_and_finds_a_client_by_name(
        app, client, admin_headers, make_key, post, firms):
    from referral_service.db import session_scope

    a, b = firms["Alpha"], firms["Beta"]
    made = {name: post(body(a, b, name)).get_json()["id"]
            for name in ("Harbour Bikes", "acme 100% Steel", "Zenith Harbour Co")}
    # Recorded out of date order, as an import of older referrals would be.
    days = {"Harbour Bikes": 3, "acme 100% Steel": 1, "Zenith Harbour Co": 2}
    with session_scope(app) as session:
        for name, ago in days.items():
            session.get(Referral, made[name]).created_at = utcnow() - timedelta(days=ago)
        session.commit()
    client.patch(f"{BASE}/{made['Zenith Harbour Co']}", json={"status": "accepted"},
                 headers=admin_headers)

    def names(query: str, headers=admin_headers) -> list[str]:
        response = client.get(BASE + query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [item["client"]["name"] for item in response.get_json()["items"]]

    newest_first = ["acme 100% Steel", "Zenith Harbour Co", "Harbour Bikes"]
    assert names("") == newest_first  # by date, not by id
    assert names("?sort=-created_at") == newest_first
    assert names("?sort=created_at") == newest_first[::-1]
    assert names("?sort=client") == ["acme 100% Steel", "Harbour Bikes", "Zenith Harbour Co"]
    assert names("?sort=-client") == ["Zenith Harbour Co", "Harbour Bikes", "acme 100% Steel"]
    assert names("?sort=status") == ["Zenith Harbour Co", "Harbour Bikes", "acme 100% Steel"]
    assert names("?sort=-updated_at")[0] == "Zenith Harbour Co"
    assert names("?client=harbour") == ["Zenith Harbour Co", "Harbour Bikes"]
    assert names("?client=HARBOUR%20b") == ["Harbour Bikes"]
    assert names("?client=100%25") == ["acme 100% Steel"]  # % is a character, not a pattern
    assert names("?client=_") == []
    assert names("?client=harbour&sort=client", make_key("partner", a)) == [
        "Harbour Bikes", "Zenith Harbour Co"]
    for bad in ("?sort=id", "?sort=--client", "?client=", "?client=" + "x" * 201):
        response = client.get(BASE + bad, headers=admin_headers)
        assert response.status_code == 422, bad
        assert response.content_type == "application/problem+json"


def test_unknown_referral_is_404(client, admin_headers):
    assert client.get(f"{BASE}/999", headers=admin_headers).status_code == 404
    assert client.patch(f"{BASE}/999", json={"status": "accepted"},
                        headers=admin_headers).status_code == 404


def test_expire_referrals_command_expires_old_pending_ones(app, post, firms):
    from referral_service.db import session_scope

    old = post(body(firms["Alpha"], firms["Beta"], "Old")).get_json()
    new = post(body(firms["Alpha"], firms["Beta"], "New")).get_json()
    with session_scope(app) as session:
        session.execute(update(Referral).where(Referral.id == old["id"])
                        .values(created_at=utcnow() - timedelta(days=15)))
        session.commit()
    with app.app_context():  # as `flask --app wsgi expire-referrals` runs it
        result = app.test_cli_runner().invoke(args=["expire-referrals"])
    assert result.exit_code == 0, result.output
    assert "Expired 1 " in result.output
    with session_scope(app, write=False) as session:
        statuses = dict(session.execute(select(Referral.id, Referral.status)).all())
    assert statuses == {old["id"]: "expired", new["id"]: "pending"}


def test_capacity_and_track_record_reach_matching(client, admin_headers, make_org, post):
    place = {"latitude": 22.63, "longitude": 120.31}
    referrer = make_org(name="Referrer", skills=["bookkeeping"])["id"]
    full = make_org(name="Full Firm", capacity=1, skills=["anodizing"], offices=[place])["id"]
    winner = make_org(name="Winner", capacity=None, skills=["anodizing"], offices=[place])["id"]
    loser = make_org(name="Decliner", capacity=None, skills=["anodizing"], offices=[place])["id"]
    post(body(referrer, full, "Fills It"))
    for number in range(3):
        for firm, path in ((winner, ["accepted", "converted"]), (loser, ["declined"])):
            made = post(body(referrer, firm, f"Client {firm}-{number}")).get_json()
            for status in path:
                client.patch(f"{BASE}/{made['id']}", json={"status": status},
                             headers=admin_headers)
    response = client.post("/api/v1/match", headers=admin_headers, json={
        "skills": ["anodizing"], "location": place, "limit": 10})
    assert response.status_code == 200
    names = [c["name"] for c in response.get_json()["candidates"]]
    assert "Full Firm" not in names
    assert names.index("Winner") < names.index("Decliner")
