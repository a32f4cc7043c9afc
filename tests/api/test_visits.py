"""Visit reports, leads and referring a lead on (SPEC section 9), through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models import Department, Lead, OutboxEvent, Person, Referral, Visit
from referral_service.db import session_scope

KAOHSIUNG = {"latitude": 22.6273, "longitude": 120.3014}


@pytest.fixture
def firms(make_org):
    """Our firm (the salespeople's) and two others that take referrals."""
    ours = make_org(name="Harbor Precision", kind="affiliate")
    finisher = make_org(name="Blue Anodizing", skills=["Anodizing"],
                        description="Hard anodising of aluminium parts.")
    other = make_org(name="Far Welding", skills=["Welding"], description="Welding of steel.")
    return ours, finisher, other


def add_person(app, organization_id: int, name: str, **extra) -> int:
    with session_scope(app) as session:
        person = Person(organization_id=organization_id, name=name, active=True, **extra)
        session.add(person)
        session.flush()
        person_id = person.id
        session.commit()
    return person_id


@pytest.fixture
def staff(app, firms):
    """A manager and two salespeople reporting to them, and one person of another firm."""
    ours = firms[0]["id"]
    manager = add_person(app, ours, "Mei Lin")
    seller = add_person(app, ours, "Kenji Sato", manager_id=manager)
    peer = add_person(app, ours, "Ana Cruz", manager_id=manager)
    stranger = add_person(app, firms[2]["id"], "Other Firm's Seller")
    return {"manager": manager, "seller": seller, "peer": peer, "stranger": stranger}


def visit_body(person_id: int, **extra) -> dict:
    body = {
        "person_id": person_id,
        "client": {"name": "Acme Bicycles", "external_ref": "CRM-77"},
        "visited_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "leads": [{"name": "Delta Frames", "contact": "Mr Wu, 07-555-0101",
                   "skills": ["Anodizing"], "description": "anodising of bicycle frames",
                   "location": KAOHSIUNG, "relationship": "their frame supplier"}],
    }
    body.update(extra)
    return body


def test_a_visit_with_leads_is_stored_with_them(client, admin_headers, staff, firms):
    response = client.post("/api/v1/visits", json=visit_body(staff["seller"]),
                           headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/visits/{body['id']}")
    assert body["empty_handed"] is False
    assert body["organization_id"] == firms[0]["id"]
    assert body["client"]["name"] == "Acme Bicycles"
    [lead] = body["leads"]
    assert lead["name"] == "Delta Frames" and lead["status"] == "open"
    assert lead["skills"] == ["anodizing"]
    assert lead["location"]["latitude"] == pytest.approx(22.6273)
    again = client.get(f"/api/v1/visits/{body['id']}", headers=admin_headers)
    assert again.get_json() == body


def test_the_same_lead_named_twice_is_kept_twice_as_typed(client, admin_headers, staff):
    response = client.post("/api/v1/visits", headers=admin_headers, json=visit_body(
        staff["seller"], leads=[{"name": "Delta Frames"}, {"name": "DELTA FRAMES LTD"}]))
    assert response.status_code == 201
    first, second = response.get_json()["leads"]
    assert (first["name"], second["name"]) == ("Delta Frames", "DELTA FRAMES LTD")
    assert first["client_id"] == second["client_id"]


def test_a_visit_with_a_commitment_and_no_leads(client, admin_headers, staff):
    response = client.post("/api/v1/visits", headers=admin_headers, json=visit_body(
        staff["seller"], leads=[], commitment={"description": "200 frames in March",
                                               "amount": 125000, "currency": "TWD",
                                               "expected_on": "2027-03-01"}))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["commitment"] == {"description": "200 frames in March", "amount": 125000.0,
                                  "currency": "TWD", "expected_on": "2027-03-01"}
    assert body["empty_handed"] is False and body["leads"] == []


def test_empty_handed_without_a_reason_is_refused_and_nothing_is_written(
        app, client, admin_headers, staff):
    response = client.post("/api/v1/visits", headers=admin_headers,
                           json=visit_body(staff["seller"], leads=[]))
    assert response.status_code == 422
    problem = response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "commitment or a list of potential clients" in \
        problem["errors"]["empty_handed_reason"][0]
    with session_scope(app) as session:
        assert session.query(Visit).count() == 0


def test_empty_handed_with_a_reason_is_stored_flagged_and_announced(
        app, client, admin_headers, staff):
    response = client.post("/api/v1/visits", headers=admin_headers, json=visit_body(
        staff["seller"], leads=[], empty_handed_reason="The buyer was out; met the guard."))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["empty_handed"] is True
    assert body["empty_handed_reason"] == "The buyer was out; met the guard."
    with session_scope(app) as session:
        types = sorted(event.type for event in session.query(OutboxEvent)
                       if event.type.startswith("visit."))
    assert types == ["visit.empty_handed", "visit.recorded"]
    listed = client.get("/api/v1/visits?empty_handed=true", headers=admin_headers).get_json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]


def test_bad_reports_are_clear_problems(client, admin_headers, staff):
    cases = {
        "future": visit_body(staff["seller"], visited_at=(
            datetime.now(UTC) + timedelta(days=2)).isoformat()),
        "too many leads": visit_body(staff["seller"], leads=[
            {"name": f"Lead {n}"} for n in range(1000)]),
        "amount without currency": visit_body(staff["seller"], commitment={
            "description": "x1", "amount": 5}),
        "unknown person": visit_body(999999),
    }
    fields = {"future": "visited_at", "too many leads": "leads",
              "amount without currency": "commitment", "unknown person": "person_id"}
    for name, body in cases.items():
        response = client.post("/api/v1/visits", json=body, headers=admin_headers)
        assert response.status_code == 422, name
        assert fields[name] in response.get_json()["errors"], (name, response.get_json())


def test_a_partner_reports_only_for_its_own_people(client, make_key, staff, firms):
    ours = make_key("partner", firms[0]["id"])
    response = client.post("/api/v1/visits", headers=ours, json=visit_body(staff["stranger"]))
    assert response.status_code == 422
    assert "person_id" in response.get_json()["errors"]
    created = client.post("/api/v1/visits", headers=ours, json=visit_body(staff["seller"]))
    assert created.status_code == 201
    theirs = make_key("partner", firms[2]["id"])
    visit_id = created.get_json()["id"]
    assert client.get(f"/api/v1/visits/{visit_id}", headers=theirs).status_code == 404
    assert client.get("/api/v1/visits", headers=theirs).get_json()["total"] == 0
    assert client.get("/api/v1/leads", headers=theirs).get_json()["total"] == 0


def test_a_lead_another_firm_holds_is_a_409_naming_its_referral(
        app, client, admin_headers, staff, firms):
    _, finisher, other = firms
    held = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": finisher["id"], "receiver_organization_id": other["id"],
        "client": {"name": "Delta Frames"}})
    assert held.status_code == 201
    response = client.post("/api/v1/visits", json=visit_body(staff["seller"]),
                           headers=admin_headers)
    assert response.status_code == 409
    assert response.get_json()["existing_referral_id"] == held.get_json()["id"]
    assert response.get_json()["lead_index"] == 0
    with session_scope(app) as session:
        assert session.query(Visit).count() == 0 and session.query(Lead).count() == 0


def test_a_resent_visit_with_the_same_key_is_stored_once(app, client, admin_headers, staff):
    headers = {**admin_headers, "Idempotency-Key": "phone-42"}
    body = visit_body(staff["seller"])
    first = client.post("/api/v1/visits", json=body, headers=headers)
    second = client.post("/api/v1/visits", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    other = client.post("/api/v1/visits", json=visit_body(staff["peer"]), headers=headers)
    assert other.status_code == 422
    with session_scope(app) as session:
        assert session.query(Visit).count() == 1


def test_a_salesperson_sees_their_own_a_manager_their_people(app, staff):
    from referral_service.services import visits
    from referral_service.services.auth import Principal

    ours = _org_of(app, staff["seller"])

    def principal(person_id):
        return Principal(name=f"person:{person_id}", role="partner", organization_id=ours,
                         person_id=person_id)

    with session_scope(app) as session:
        for person in ("seller", "peer"):
            visits.record_visit(session=session, data=_loaded(visit_body(
                staff[person], client={"name": f"Client of {person}"}, leads=[
                    {"name": f"Lead of {person}"}])), actor=principal(staff["manager"]),
                geocoder=None, attribution_window_days=90)
        seen = {}
        for person in ("seller", "peer", "manager"):
            items, _ = visits.list_visits(session=session, actor=principal(staff[person]),
                                          page=1, page_size=50)
            seen[person] = sorted(item.client.name for item in items)
    assert seen == {"seller": ["Client of seller"], "peer": ["Client of peer"],
                    "manager": ["Client of peer", "Client of seller"]}


def test_a_department_head_sees_the_department(app, staff, firms):
    from referral_service.services import people
    from referral_service.services.auth import Principal

    ours = firms[0]["id"]
    head = add_person(app, ours, "Head of Sales")
    with session_scope(app) as session:
        department = Department(organization_id=ours, name="Sales", head_person_id=head)
        session.add(department)
        session.flush()
        session.get(Person, staff["peer"]).department_id = department.id
        session.commit()
        scope = people.scope_of(session=session, actor=Principal(
            name="head", role="partner", organization_id=ours, person_id=head))
    assert scope.person_ids == {head, staff["peer"]}


def test_refer_a_lead_to_the_best_match(app, client, admin_headers, staff, firms):
    _, finisher, _ = firms
    visit = client.post("/api/v1/visits", json=visit_body(staff["seller"]),
                        headers=admin_headers).get_json()
    lead_id = visit["leads"][0]["id"]
    response = client.post(f"/api/v1/leads/{lead_id}/refer", json={}, headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    referral = response.get_json()
    assert referral["receiver_organization_id"] == finisher["id"]
    assert referral["referrer_organization_id"] == visit["organization_id"]
    assert referral["source"] == {"kind": "visit", "visit_id": visit["id"], "lead_id": lead_id}
    assert referral["referred_by_person_id"] == staff["seller"]
    assert referral["client"]["name"] == "Delta Frames"
    lead = client.get(f"/api/v1/leads/{lead_id}", headers=admin_headers).get_json()
    assert lead["status"] == "referred" and lead["referral_id"] == referral["id"]
    again = client.post(f"/api/v1/leads/{lead_id}/refer", json={}, headers=admin_headers)
    assert again.status_code == 409
    assert again.get_json()["existing_referral_id"] == referral["id"]
    by_source = client.get("/api/v1/referrals?source_kind=visit", headers=admin_headers)
    assert [item["id"] for item in by_source.get_json()["items"]] == [referral["id"]]
    by_person = client.get(f"/api/v1/referrals?person_id={staff['seller']}",
                           headers=admin_headers)
    assert by_person.get_json()["total"] == 1


def test_a_repeated_lead_referral_with_its_idempotency_key_gets_the_first_answer(
        client, admin_headers, staff, firms):
    visit = client.post("/api/v1/visits", json=visit_body(staff["seller"]),
                        headers=admin_headers).get_json()
    lead_id = visit["leads"][0]["id"]
    headers = {**admin_headers, "Idempotency-Key": "lead-refer-1"}
    first = client.post(f"/api/v1/leads/{lead_id}/refer", json={"note": "hot"},
                        headers=headers)
    assert first.status_code == 201, first.get_json()
    # The CRM did not get the answer and sends the same request again: the same referral,
    # not "the lead is referred already".
    again = client.post(f"/api/v1/leads/{lead_id}/refer", json={"note": "hot"},
                        headers=headers)
    assert again.status_code == 201, again.get_json()
    assert again.get_json() == first.get_json()
    listed = client.get("/api/v1/referrals?source_kind=visit", headers=admin_headers)
    assert listed.get_json()["total"] == 1
    # The same key with another body is refused; without a key the lead is referred already.
    other = client.post(f"/api/v1/leads/{lead_id}/refer", json={"note": "cold"},
                        headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]
    plain = client.post(f"/api/v1/leads/{lead_id}/refer", json={"note": "hot"},
                        headers=admin_headers)
    assert plain.status_code == 409


def test_refer_a_lead_to_a_named_firm_and_mark_others_won_or_lost(
        client, admin_headers, staff, firms):
    _, _, other = firms
    visit = client.post("/api/v1/visits", headers=admin_headers, json=visit_body(
        staff["seller"], leads=[{"name": "Lead A"}, {"name": "Lead B"}, {"name": "Lead C"}],
    )).get_json()
    a, b, c = (lead["id"] for lead in visit["leads"])
    referred = client.post(f"/api/v1/leads/{a}/refer", headers=admin_headers,
                           json={"receiver_organization_id": other["id"]})
    assert referred.status_code == 201
    assert referred.get_json()["receiver_organization_id"] == other["id"]
    own = client.post(f"/api/v1/leads/{c}/refer", headers=admin_headers,
                      json={"receiver_organization_id": visit["organization_id"]})
    assert own.status_code == 409 and "another firm" in own.get_json()["detail"]
    # Lead B has no place or need: the match cannot run, and the answer says what to do.
    unmatched = client.post(f"/api/v1/leads/{b}/refer", headers=admin_headers, json={})
    assert unmatched.status_code == 409
    assert "receiver_organization_id" in unmatched.get_json()["detail"]
    won = client.patch(f"/api/v1/leads/{b}", headers=admin_headers, json={"status": "won"})
    assert won.status_code == 200 and won.get_json()["status"] == "won"
    lost = client.patch(f"/api/v1/leads/{c}", headers=admin_headers,
                        json={"status": "lost", "reason": "Closed down"})
    assert lost.get_json()["status_reason"] == "Closed down"
    final = client.patch(f"/api/v1/leads/{c}", headers=admin_headers, json={"status": "won"})
    assert final.status_code == 409 and final.get_json()["current_status"] == "lost"
    assert client.patch(f"/api/v1/leads/{a}", headers=admin_headers,
                        json={"status": "referred"}).status_code == 422


def test_referral_sources_and_people(app, client, admin_headers, staff, firms):
    ours, finisher, other = firms
    receiver_person = add_person(app, finisher["id"], "Receiver Owner")
    base = {"referrer_organization_id": ours["id"], "receiver_organization_id": finisher["id"]}
    acquaintance = client.post("/api/v1/referrals", headers=admin_headers, json={
        **base, "client": {"name": "Friend Co"}, "referred_by_person_id": staff["seller"],
        "source": {"kind": "acquaintance", "name": "Mr Chen", "contact": "golf club"}})
    assert acquaintance.status_code == 201, acquaintance.get_json()
    assert acquaintance.get_json()["source"] == {"kind": "acquaintance", "name": "Mr Chen",
                                                 "contact": "golf club"}
    current = client.post("/api/v1/referrals", headers=admin_headers, json={
        **base, "client": {"name": "Introduced Co"},
        "source": {"kind": "client", "client_id": acquaintance.get_json()["client"]["id"]}})
    assert current.status_code == 201
    assert current.get_json()["source"]["kind"] == "client"
    plain = client.post("/api/v1/referrals", headers=admin_headers, json={
        **base, "client": {"name": "Plain Co"}}).get_json()
    assert plain["source"] == {"kind": "organization"} and plain["owner_person_id"] is None
    bad = {
        "client source without id": {"source": {"kind": "client"}},
        "acquaintance with lead": {"source": {"kind": "acquaintance", "name": "X",
                                              "lead_id": 3}},
        "person of the receiver as referrer": {"referred_by_person_id": receiver_person},
        "unknown client": {"source": {"kind": "client", "client_id": 999999}},
    }
    for name, extra in bad.items():
        response = client.post("/api/v1/referrals", headers=admin_headers, json={
            **base, "client": {"name": f"Bad {name}"}, **extra})
        assert response.status_code == 422, (name, response.get_json())
    wrong_owner = client.patch(f"/api/v1/referrals/{plain['id']}", headers=admin_headers,
                               json={"status": "accepted", "owner_person_id": staff["seller"]})
    assert wrong_owner.status_code == 422
    accepted = client.patch(f"/api/v1/referrals/{plain['id']}", headers=admin_headers,
                            json={"status": "accepted", "owner_person_id": receiver_person})
    assert accepted.status_code == 200
    assert accepted.get_json()["owner_person_id"] == receiver_person
    with session_scope(app) as session:
        kinds = sorted(r.source_kind for r in session.query(Referral))
    assert kinds == ["acquaintance", "client", "organization"]


def _org_of(app, person_id):
    with session_scope(app) as session:
        return session.get(Person, person_id).organization_id


def _loaded(body):
    from referral_service.schemas.visits import VisitCreateSchema

    return VisitCreateSchema().load(body)


def test_a_visit_shows_its_client_as_the_salesperson_named_it(client, admin_headers, staff,
                                                               firms):
    _, finisher, other = firms
    held = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": finisher["id"], "receiver_organization_id": other["id"],
        "client": {"name": "Secret Stored Name Co", "external_ref": "CRM-SECRET",
                   "location": KAOHSIUNG}})
    assert held.status_code == 201
    body = client.post("/api/v1/visits", headers=admin_headers, json=visit_body(
        staff["seller"], client={"name": "What I Call Them", "external_ref": "crm-secret"},
    )).get_json()
    shown = client.get(f"/api/v1/visits/{body['id']}", headers=admin_headers).get_json()
    for answer in (body, shown):
        assert answer["client"]["name"] == "What I Call Them"
        assert answer["client"]["external_ref"] == "crm-secret"
        assert answer["client"]["location"] is None
        assert answer["client"]["id"] == held.get_json()["client"]["id"]
