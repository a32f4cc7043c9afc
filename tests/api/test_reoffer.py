"""Re-offer (SPEC section 11, issue 15): a declined or expired referral goes on to the next best
firm not yet tried, in the same transaction, up to REOFFER_MAX_HOPS; the chain on each
referral; the referrer keeps the credit; capacity and attribution hold for every hop."""

from __future__ import annotations

from sqlalchemy import select

from models import OrganizationStats, OutboxEvent, Referral
from tests.live.races import count

HERE = {"latitude": 22.6273, "longitude": 120.3014}  # the client, Kaohsiung
KM = 1 / 111.0  # about a kilometre of latitude, in degrees


def _firm(make_org, name: str, km: float, skills=("welding",), **extra) -> int:
    place = {"label": "HQ", "latitude": HERE["latitude"] + km * KM,
             "longitude": HERE["longitude"]}
    return make_org(name=name, skills=list(skills), description=f"{name}: steel work.",
                    offices=[place], capacity=extra.pop("capacity", None), **extra)["id"]


def _world(make_org):
    """A referrer and welders at 0, 30 and 60 km from the client, and a florist next door:
    with the skills equal, the nearer welder ranks higher; the florist never fits."""
    return {"referrer": _firm(make_org, "Referrer Trading", 5, skills=("logistics",)),
            "a": _firm(make_org, "Alpha Welding", 0), "b": _firm(make_org, "Bravo Welding", 30),
            "c": _firm(make_org, "Charlie Welding", 60),
            "florist": _firm(make_org, "Daisy Flowers", 0, skills=("floristry",))}


def _refer(client, headers, world, receiver=None, **extra):
    response = client.post("/api/v1/referrals", headers=headers, json={
        "referrer_organization_id": world["referrer"],
        "receiver_organization_id": receiver or world["a"],
        "client": {"name": "Kaohsiung Shipyards Ltd", "external_ref": "CRM-7",
                   "location": {**HERE, "city": "Kaohsiung", "country": "TW"}},
        "skills": ["Welding"], "description": "Welding of steel hull sections.",
        "note": "Call before noon.", **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _move(client, headers, referral_id, status, code=200):
    response = client.patch(f"/api/v1/referrals/{referral_id}", headers=headers,
                            json={"status": status, "reason": "Too busy."})
    assert response.status_code == code, response.get_json()
    return response.get_json()


def _next(session, referral_id):
    session.rollback()  # a new snapshot: see what the requests committed since
    return session.scalars(select(Referral).where(
        Referral.previous_referral_id == referral_id)).one_or_none()


def test_a_decline_re_offers_to_the_next_best_firm_keeping_referrer_source_and_client(
    client, admin_headers, make_key, make_org, session
):
    world = _world(make_org)
    first = _refer(client, admin_headers, world)
    assert (first["chain"], first["previous_referral_id"], first["auto_reoffer"]) == (
        [first["id"]], None, True)
    receiver = make_key("partner", world["a"])

    declined = _move(client, receiver, first["id"], "declined")

    assert declined["status"] == "declined"
    second = _next(session, first["id"])
    assert second.receiver_organization_id == world["b"]  # the nearest welder left
    got = client.get(f"/api/v1/referrals/{second.id}", headers=admin_headers).get_json()
    assert got["previous_referral_id"] == first["id"]
    assert got["chain"] == [first["id"], second.id]
    assert client.get(f"/api/v1/referrals/{first['id']}",
                      headers=admin_headers).get_json()["chain"] == [first["id"], second.id]
    for field in ("referrer_organization_id", "client", "skills", "description", "note",
                  "source", "referred_by_person_id"):
        assert got[field] == first[field], field
    assert got["status"] == "pending" and 0 < got["match_score"] <= 1
    assert got["history"][0]["reason"] == f"Re-offered: referral {first['id']} was declined."
    events = session.scalars(select(OutboxEvent).where(
        OutboxEvent.type == "referral.reoffered")).all()
    assert [event.payload["id"] for event in events] == [second.id]
    assert events[0].payload["chain"] == [first["id"], second.id]
    created = session.scalars(select(OutboxEvent.payload).where(
        OutboxEvent.type == "referral.created")).all()
    assert sorted(body["id"] for body in created) == [first["id"], second.id]
    # The count moved with the client: the re-offer counts like any referral.
    assert session.get(OrganizationStats, world["a"]).open_referrals == 0
    assert session.get(OrganizationStats, world["b"]).open_referrals == 1
    listed = client.get("/api/v1/referrals", headers=admin_headers).get_json()["items"]
    assert {item["id"]: item["chain"] for item in listed} == {
        first["id"]: [first["id"], second.id], second.id: [first["id"], second.id]}


def test_chains_stop_at_reoffer_max_hops(app, client, admin_headers, make_org, session):
    world = _world(make_org)
    first = _refer(client, admin_headers, world)
    _move(client, admin_headers, first["id"], "declined")
    second = _next(session, first["id"])
    _move(client, admin_headers, second.id, "declined")
    third = _next(session, second.id)
    assert third.receiver_organization_id == world["c"]
    assert third.chain_root_id == first["id"]

    _move(client, admin_headers, third.id, "declined")  # two re-offers made: the default

    assert _next(session, third.id) is None
    assert count(session, Referral) == 3
    assert client.get(f"/api/v1/referrals/{third.id}", headers=admin_headers).get_json()[
        "chain"] == [first["id"], second.id, third.id]


def test_a_chain_that_runs_out_of_firms_ends_cleanly(app, client, admin_headers, make_org,
                                                     session):
    app.config["REOFFER_MAX_HOPS"] = 10
    world = _world(make_org)
    referrals = [_refer(client, admin_headers, world)["id"]]
    for _ in range(2):
        _move(client, admin_headers, referrals[-1], "declined")
        referrals.append(_next(session, referrals[-1]).id)
    session.rollback()
    events = count(session, OutboxEvent)

    last = _move(client, admin_headers, referrals[-1], "declined")  # no welder left untried

    assert last["status"] == "declined" and last["chain"] == referrals
    assert _next(session, referrals[-1]) is None
    assert count(session, Referral) == 3
    assert count(session, OutboxEvent) == events + 1  # the status change alone
    receivers = session.scalars(select(Referral.receiver_organization_id)).all()
    assert world["florist"] not in receivers and world["referrer"] not in receivers


def test_no_re_offer_when_the_referral_opted_out_or_the_default_is_off(
    app, client, admin_headers, make_org, session
):
    world = _world(make_org)
    opted_out = _refer(client, admin_headers, world, auto_reoffer=False)
    assert opted_out["auto_reoffer"] is False
    _move(client, admin_headers, opted_out["id"], "declined")
    assert _next(session, opted_out["id"]) is None

    app.config["AUTO_REOFFER"] = False
    by_default = _refer(client, admin_headers, world, receiver=world["b"])
    assert by_default["auto_reoffer"] is False
    _move(client, admin_headers, by_default["id"], "declined")
    assert _next(session, by_default["id"]) is None
    assert count(session, Referral) == 2


def test_a_full_firm_is_passed_over(client, admin_headers, make_org, session):
    world = _world(make_org)
    full = _firm(make_org, "Bravo Two Welding", 10, capacity=1)
    other_client = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": world["referrer"], "receiver_organization_id": full,
        "client": {"name": "Someone Else Co"}})
    assert other_client.status_code == 201
    first = _refer(client, admin_headers, world)

    _move(client, admin_headers, first["id"], "declined")

    assert _next(session, first["id"]).receiver_organization_id == world["b"]
    assert session.get(OrganizationStats, full).open_referrals == 1


def test_a_staff_expiry_and_expire_referrals_re_offer(app, client, admin_headers, make_org,
                                                      session):
    world = _world(make_org)
    first = _refer(client, admin_headers, world)

    result = app.test_cli_runner().invoke(args=["expire-referrals", "--days", "0"])

    assert result.exit_code == 0, result.output
    assert "Expired 1 " in result.output
    second = _next(session, first["id"])
    assert (second.receiver_organization_id, second.status) == (world["b"], "pending")
    assert second.history[0].reason == f"Re-offered: referral {first['id']} was expired."
    _move(client, admin_headers, second.id, "expired")  # head office's own expiry
    assert _next(session, second.id).receiver_organization_id == world["c"]


def test_the_referrer_keeps_the_credit_of_the_chains_conversion(
    client, admin_headers, make_org, session
):
    world = _world(make_org)
    first = _refer(client, admin_headers, world)
    _move(client, admin_headers, first["id"], "declined")
    second = _next(session, first["id"]).id
    _move(client, admin_headers, second, "accepted")
    converted = _move(client, admin_headers, second, "converted")
    month = converted["converted_at"][:7]

    rows = client.get(f"/api/v1/kpi/monthly?month={month}",
                      headers=admin_headers).get_json()["rows"]

    by_firm = {row["organization_id"]: row for row in rows}
    referrer, a, b = (by_firm[world[name]] for name in ("referrer", "a", "b"))
    assert (referrer["converted_made"], referrer["new_client_credits"]) == (1, 1)
    # Each hop is a referral made on the referrer's behalf (SPEC section 3's referrals_made).
    assert referrer["referrals_made"] == 2
    assert (b["referrals_received"], b["converted_received"], b["new_client_credits"]) == (
        1, 1, 1)
    assert (a["referrals_received"], a["new_client_credits"]) == (1, 0)
    assert sum(row["new_client_credits"] for row in rows) == 2  # one conversion, two parties
    # The converted re-offer holds the client: another firm's referral of it is a 409.
    again = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": world["c"], "receiver_organization_id": world["a"],
        "client": {"name": "Kaohsiung Shipyards Ltd", "external_ref": "CRM-7"}})
    assert again.status_code == 409
    assert again.get_json()["existing_referral_id"] == second


def test_a_lead_referral_re_offers_with_its_visit_source_and_salesperson(
    app, client, admin_headers, make_org, session
):
    from tests.api.test_visits import add_person, visit_body

    ours = make_org(name="Harbor Precision", kind="affiliate", skills=["Logistics"])["id"]
    near = make_org(name="Blue Anodizing", skills=["Anodizing"],
                    description="Hard anodising of aluminium parts.")["id"]
    farther = _firm(make_org, "Red Anodizing", 40, skills=("anodizing",))
    seller = add_person(app, ours, "Kenji Sato")
    visit = client.post("/api/v1/visits", json=visit_body(seller),
                        headers=admin_headers).get_json()
    lead_id = visit["leads"][0]["id"]
    first = client.post(f"/api/v1/leads/{lead_id}/refer", json={},
                        headers=admin_headers).get_json()
    assert first["receiver_organization_id"] == near

    _move(client, admin_headers, first["id"], "declined")

    second = client.get(f"/api/v1/referrals/{_next(session, first['id']).id}",
                        headers=admin_headers).get_json()
    assert second["receiver_organization_id"] == farther
    assert second["source"] == first["source"] == {
        "kind": "visit", "visit_id": visit["id"], "lead_id": lead_id}
    assert second["referred_by_person_id"] == seller
    assert second["client"] == first["client"]
