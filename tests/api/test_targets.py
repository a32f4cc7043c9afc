"""Target proposals through the API (SPEC section 10): a firm and head office propose,
counter, agree, decline and withdraw; history, problems, events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry, KpiTarget, OutboxEvent
from referral_service.db import session_scope

API = "/api/v1/kpi/target-proposals"
MONTH = "2026-03"


@pytest.fixture
def firm(make_org) -> int:
    return make_org(name="Harbor Works")["id"]


@pytest.fixture
def partner(make_key, firm) -> dict[str, str]:
    return make_key("partner", firm)


def propose(client, headers, scope_id: int, new_clients: int = 10, scope: str = "organization",
            month: str = MONTH, note: str = "stretch"):
    return client.post(API, headers=headers, json={
        "scope": scope, "scope_id": scope_id, "month": month, "new_clients": new_clients,
        "note": note})


def test_a_firm_proposes_and_head_office_agrees_it_becomes_the_target(
        app, client, firm, partner, admin_headers):
    proposed = propose(client, partner, firm)
    assert proposed.status_code == 201, proposed.get_json()
    body = proposed.get_json()
    assert (body["status"], body["side"], body["new_clients"], body["note"]) == (
        "proposed", "holder", 10, "stretch")
    assert body["organization_id"] == firm and body["proposed_by"].startswith("key:")
    assert proposed.headers["Location"].endswith(f"{API}/{body['id']}")
    assert [step["id"] for step in body["history"]] == [body["id"]]

    agreed = client.post(f"{API}/{body['id']}/agree", headers=admin_headers,
                         json={"note": "fine"})
    assert agreed.status_code == 200, agreed.get_json()
    assert agreed.get_json()["status"] == "agreed"
    assert agreed.get_json()["decision_note"] == "fine"
    with session_scope(app, write=False) as session:
        target = session.get(KpiTarget, ("organization", firm, MONTH))
        assert (target.new_clients, target.proposal_id) == (10, body["id"])
        assert target.agreed_by.startswith("key:")
        types = session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)).all()
        actions = set(session.scalars(select(AuditEntry.action)))
    assert types[-2:] == ["target.proposed", "target.agreed"]
    assert {"target_proposal.propose", "target_proposal.agree"} <= actions


def test_counters_alternate_sides_and_keep_the_whole_history(
        app, client, firm, partner, admin_headers):
    first = propose(client, partner, firm, 12).get_json()
    second = client.post(f"{API}/{first['id']}/counter", headers=admin_headers,
                         json={"new_clients": 8, "note": "too high"})
    assert second.status_code == 201, second.get_json()
    second = second.get_json()
    assert (second["side"], second["counter_of_id"], second["status"]) == (
        "counterpart", first["id"], "proposed")
    third = client.post(f"{API}/{second['id']}/counter", headers=partner,
                        json={"new_clients": 10}).get_json()
    client.post(f"{API}/{third['id']}/agree", headers=admin_headers, json={})
    shown = client.get(f"{API}/{first['id']}", headers=partner).get_json()
    assert [(s["id"], s["side"], s["new_clients"], s["status"]) for s in shown["history"]] == [
        (first["id"], "holder", 12, "countered"), (second["id"], "counterpart", 8, "countered"),
        (third["id"], "holder", 10, "agreed")]
    assert shown["history"][0]["decision_note"] == "too high"
    assert all(step["decided_at"] for step in shown["history"])
    with session_scope(app, write=False) as session:
        assert session.get(KpiTarget, ("organization", firm, MONTH)).new_clients == 10


def test_only_the_other_side_decides_and_a_closed_proposal_is_a_409(
        client, firm, partner, admin_headers):
    body = propose(client, partner, firm).get_json()
    own = client.post(f"{API}/{body['id']}/agree", headers=partner, json={})
    assert own.status_code == 403
    assert own.mimetype == "application/problem+json"
    assert client.post(f"{API}/{body['id']}/withdraw", headers=admin_headers,
                       json={}).status_code == 403
    declined = client.post(f"{API}/{body['id']}/decline", headers=admin_headers,
                           json={"note": "talk first"})
    assert declined.get_json()["status"] == "declined"
    again = client.post(f"{API}/{body['id']}/agree", headers=admin_headers, json={})
    assert again.status_code == 409
    assert again.get_json()["current_status"] == "declined"
    countered = client.post(f"{API}/{body['id']}/counter", headers=admin_headers,
                            json={"new_clients": 3})
    assert (countered.status_code, countered.get_json()["current_status"]) == (409, "declined")


def test_one_open_proposal_per_scope_and_month(client, firm, partner, admin_headers):
    first = propose(client, partner, firm).get_json()
    second = propose(client, admin_headers, firm, 5)
    assert second.status_code == 409
    assert second.get_json()["open_proposal_id"] == first["id"]
    assert propose(client, admin_headers, firm, 5, month="2026-04").status_code == 201
    withdrawn = client.post(f"{API}/{first['id']}/withdraw", headers=partner, json={})
    assert withdrawn.get_json()["status"] == "withdrawn"
    assert propose(client, admin_headers, firm, 5).status_code == 201


@pytest.mark.parametrize(("change", "field"), [
    ({"new_clients": -1}, "new_clients"), ({"scope_id": 99999}, "scope_id"),
    ({"month": "2026-13"}, "month"), ({"scope": "team"}, "scope"),
    ({"scope": "person"}, "scope_id"), ({"new_clients": "5"}, "new_clients"),
])
def test_bad_proposals_are_422s_naming_the_field(client, firm, partner, change, field):
    body = {"scope": "organization", "scope_id": firm, "month": MONTH, "new_clients": 4,
            **change}
    response = client.post(API, headers=partner, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_a_partner_lists_its_own_firms_proposals_with_filters(
        client, make_org, firm, partner, make_key, admin_headers):
    other = make_org(name="Coast Works")["id"]
    mine = propose(client, partner, firm).get_json()
    theirs = propose(client, make_key("partner", other), other).get_json()
    listed = client.get(API, headers=partner).get_json()
    assert [item["id"] for item in listed["items"]] == [mine["id"]]
    assert client.get(f"{API}/{theirs['id']}", headers=partner).status_code == 404
    assert client.post(f"{API}/{theirs['id']}/agree", headers=partner,
                       json={}).status_code == 404
    everything = client.get(f"{API}?status=proposed&month={MONTH}", headers=admin_headers)
    assert {item["id"] for item in everything.get_json()["items"]} == {mine["id"], theirs["id"]}
    narrowed = client.get(f"{API}?organization_id={other}&scope=organization",
                          headers=admin_headers).get_json()
    assert [item["id"] for item in narrowed["items"]] == [theirs["id"]]
    assert client.get(f"{API}?status=agreed", headers=admin_headers).get_json()["total"] == 0


def test_head_office_is_the_counterpart_of_a_person(client, firm, admin_headers):
    person = client.post("/api/v1/people", headers=admin_headers, json={
        "organization_id": firm, "name": "Sam Seller"}).get_json()["id"]
    proposed = propose(client, admin_headers, person, 4, scope="person")
    assert proposed.status_code == 201
    assert (proposed.get_json()["side"], proposed.get_json()["organization_id"]) == (
        "counterpart", firm)
    # Head office cannot agree its own proposal: the person does, in the portal.
    assert client.post(f"{API}/{proposed.get_json()['id']}/agree", headers=admin_headers,
                       json={}).status_code == 403
