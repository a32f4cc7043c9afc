"""A client's consent and the erasure of its personal data (SPEC section 11), through the API
and the CLI, on the database as a whole: after erasure a dump of the whole database no longer
holds the client's name, contact or references, and the KPI exports are byte-identical."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models import (
    AuditEntry,
    Client,
    ClientSite,
    IdempotencyRecord,
    KpiCorrection,
    Lead,
    OutboxEvent,
    Referral,
    Visit,
)
from referral_service.db import session_scope
from referral_service.services import kpi
from tests.api.test_visits import add_person

NAME = "Zyxwv Erasure Testco"
REF = "ZYX-REF-90210"
CONTACT = "qjorvik.buyer@zyxwv-testco.example"
ADDRESS = "88 Plumvexq Lane"
CONSENT_BY = "Hjalmvar Consentgiver"
SITE_ADDRESS = "7 Qzxvbn Works Road"
PERSONAL = (NAME, REF, CONTACT, ADDRESS, CONSENT_BY, SITE_ADDRESS)
KAOHSIUNG = {"latitude": 22.6273, "longitude": 120.3014, "city": "Kaohsiung", "country": "TW"}
CONSENT = {"given_at": "2026-11-02T09:30:00Z", "by": CONSENT_BY}
KPI = "/api/v1/kpi"


def database_dump(app) -> str:
    """The whole database as SQL text: sqlite3's iterdump, or pg_dump's plain format."""
    url = app.extensions["db_engine"].url
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
    finished = subprocess.run(["pg_dump", "--no-owner", "--dbname", uri],  # noqa: S603, S607
                              capture_output=True, text=True, check=True)
    return finished.stdout


def found_in_dump(app) -> dict[str, list[str]]:
    """The personal values a dump of the whole database still holds (in any case), each with
    the first lines of the dump that hold it."""
    lines = database_dump(app).splitlines()
    found: dict[str, list[str]] = {}
    for value in PERSONAL:
        holding = [line[:300] for line in lines if value.casefold() in line.casefold()]
        if holding:
            found[value] = holding[:3]
    return found


@pytest.fixture
def firms(make_org):
    """The referrer (whose salesperson brought the lead) and the receiver."""
    return (make_org(name="Harbor Precision", kind="affiliate"),
            make_org(name="Blue Anodizing", skills=["Anodizing"],
                     description="Hard anodising of aluminium parts."))


@pytest.fixture
def erased_world(app, client, admin_headers, make_key, firms):
    """The client brought back from a visit as a lead (with its contact and address), referred
    with its consent and an Idempotency-Key, accepted and converted with a reason naming it,
    all of it last month, which head office then closed."""
    referrer, receiver = firms
    seller = add_person(app, referrer["id"], "Kenji Sato")
    visit = client.post("/api/v1/visits", headers=admin_headers, json={
        "person_id": seller, "client": {"name": "Visited Host Co"},
        "visited_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "notes": f"Their supplier {NAME} needs anodising.",
        "leads": [{"name": NAME, "external_ref": REF, "contact": CONTACT,
                   "skills": ["Anodizing"], "description": "anodising of bicycle frames",
                   "location": {**KAOHSIUNG, "address": ADDRESS},
                   "relationship": f"{NAME} supplies their frames"}]})
    assert visit.status_code == 201, visit.get_json()
    lead_id = visit.get_json()["leads"][0]["id"]
    referred = client.post(f"/api/v1/leads/{lead_id}/refer", headers={
        **admin_headers, "Idempotency-Key": "erasure-test-1"}, json={
        "receiver_organization_id": receiver["id"], "consent": CONSENT,
        "note": f"Ask for the buyer at {NAME}."})
    assert referred.status_code == 201, referred.get_json()
    referral = referred.get_json()
    receiver_headers = make_key("partner", receiver["id"])
    for status, reason in (("accepted", None), ("converted", f"{NAME} signed the order.")):
        moved = client.patch(f"/api/v1/referrals/{referral['id']}", headers=receiver_headers,
                             json={"status": status, "reason": reason})
        assert moved.status_code == 200, moved.get_json()
    # All of it last month, so that it is in a closed month's stored exports too.
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).replace(
        day=10, hour=12, minute=0, second=0, microsecond=0)
    with session_scope(app) as session:
        # One of the client's work sites (SPEC section 8), named in the referral.
        label = f"{NAME} north plant"
        site = ClientSite(client_id=referral["client"]["id"], organization_id=referrer["id"],
                          label=label, label_key=label.casefold(), latitude=22.6273,
                          longitude=120.3014, city="Kaohsiung", country="TW",
                          address=SITE_ADDRESS)
        session.add(site)
        session.flush()
        session.execute(update(Referral).values(client_site_id=site.id,
                                                client_site_label=label))
        session.execute(update(Referral).values(
            created_at=last_month, updated_at=last_month + timedelta(days=2),
            accepted_at=last_month + timedelta(days=1),
            converted_at=last_month + timedelta(days=2)))
        session.execute(update(Visit).values(visited_at=last_month, created_at=last_month))
        session.execute(update(Lead).values(created_at=last_month,
                                            updated_at=last_month))
        session.execute(update(Client).values(created_at=last_month))
        session.commit()
    month = last_month.strftime("%Y-%m")
    closed = client.post(f"{KPI}/months/{month}/close", headers=admin_headers, json={})
    assert closed.status_code == 200, closed.get_json()
    return {"referral": referral, "client_id": referral["client"]["id"], "month": month,
            "lead_id": lead_id, "visit": visit.get_json(), "receiver": receiver,
            "referrer": referrer, "this_month": datetime.now(UTC).strftime("%Y-%m")}


def kpi_bytes(app, client, headers, months: tuple[str, ...]) -> dict[tuple, str]:
    """The SHA-256 of every KPI export of the months: the API's at every level and format,
    and the CLI's kpi-export (csv, json); and the JSON rows of GET /kpi/monthly."""
    found: dict[tuple, str] = {}
    runner = app.test_cli_runner()
    for month in months:
        for level in kpi.LEVELS:
            for fmt in kpi.FORMATS:
                response = client.get(f"{KPI}/monthly?month={month}&level={level}&format={fmt}",
                                      headers=headers)
                assert response.status_code == 200, (month, level, fmt)
                found["api", month, level, fmt] = hashlib.sha256(
                    response.get_data()).hexdigest()
        for fmt in ("csv", "json"):
            result = runner.invoke(args=["kpi-export", "--month", month, "--format", fmt,
                                         "--output", "-"])
            assert result.exit_code == 0, result.output
            found["cli", month, fmt] = hashlib.sha256(result.stdout_bytes).hexdigest()
    return found


def test_erasing_a_client_leaves_nothing_of_it_in_the_database_and_the_kpi_as_it_was(
    app, client, admin_headers, make_key, erased_world,
):
    world = erased_world
    months = (world["month"], world["this_month"])
    # The test can fail: every value is in the dump, in the audit log's diffs, the outbox's
    # payloads and the stored idempotent answer before the erasure.
    assert set(found_in_dump(app)) == set(PERSONAL)
    with session_scope(app, write=False) as session:
        audit_text = str([e.changes for e in session.scalars(select(AuditEntry))])
        outbox_text = str([e.payload for e in session.scalars(select(OutboxEvent))])
        stored_text = str([r.response_body for r in session.scalars(select(IdempotencyRecord))])
    assert NAME in audit_text and NAME in outbox_text and NAME in stored_text
    assert CONSENT_BY in outbox_text and REF in stored_text
    before = kpi_bytes(app, client, admin_headers, months)
    figures_before = client.get(f"{KPI}/monthly?month={world['month']}",
                                headers=admin_headers).get_json()
    referral_before = client.get(f"/api/v1/referrals/{world['referral']['id']}",
                                 headers=admin_headers).get_json()

    client_id = world["client_id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204

    assert found_in_dump(app) == {}
    assert kpi_bytes(app, client, admin_headers, months) == before
    assert client.get(f"{KPI}/monthly?month={world['month']}",
                      headers=admin_headers).get_json() == figures_before
    # The referral stays, with its status, dates, city and country; the name a placeholder.
    referral = client.get(f"/api/v1/referrals/{world['referral']['id']}",
                          headers=admin_headers).get_json()
    for field in ("status", "created_at", "accepted_at", "converted_at", "updated_at",
                  "skills", "receiver_organization_id", "referrer_organization_id"):
        assert referral[field] == referral_before[field], field
    assert referral["client"]["name"] == f"erased client #{client_id}"
    assert referral["client"]["external_ref"] is None
    assert referral["client"]["location"]["city"] == "Kaohsiung"
    assert referral["client"]["location"]["country"] == "TW"
    assert referral["client"]["location"]["address"] is None
    assert referral["client"]["location"]["latitude"] == pytest.approx(22.6)
    assert referral["client"]["consent"] == {"given_at": "2026-11-02T09:30:00+00:00",
                                             "by": "erased"}
    assert [step["status"] for step in referral["history"]] == [
        "pending", "accepted", "converted"]
    with session_scope(app, write=False) as session:
        site = session.scalars(select(ClientSite)).one()
        assert (site.label, site.address, site.city) == (f"site #{site.id}", None, "Kaohsiung")
        assert session.get(Referral, referral["id"]).client_site_label == site.label
    lead = client.get(f"/api/v1/leads/{world['lead_id']}", headers=admin_headers).get_json()
    assert lead["name"] == f"erased client #{client_id}" and lead["contact"] == ""
    assert lead["status"] == "referred"
    # Who erased it, and when, without a personal value.
    [entry] = client.get(f"/api/v1/audit?object_type=client&object_id={client_id}",
                         headers=admin_headers).get_json()["items"]
    assert entry["action"] == "client.erase" and entry["actor"] == "key:test admin"
    with session_scope(app, write=False) as session:
        erased = session.get(Client, client_id)
        assert erased.erased_at is not None and erased.external_ref_key is None


def test_a_second_erasure_answers_204_and_changes_nothing(client, admin_headers, erased_world):
    client_id = erased_world["client_id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204
    audit_before = client.get("/api/v1/audit?object_type=client",
                              headers=admin_headers).get_json()["total"]
    again = client.delete(f"/api/v1/clients/{client_id}", headers=admin_headers)
    assert again.status_code == 204
    assert client.get("/api/v1/audit?object_type=client",
                      headers=admin_headers).get_json()["total"] == audit_before


def test_only_head_office_erases_and_an_unknown_client_is_a_404(
    client, admin_headers, make_key, erased_world,
):
    client_id = erased_world["client_id"]
    for headers in (make_key("crm"), make_key("partner", erased_world["referrer"]["id"]),
                    make_key("partner", erased_world["receiver"]["id"])):
        refused = client.delete(f"/api/v1/clients/{client_id}", headers=headers)
        assert refused.status_code == 403
        assert refused.content_type == "application/problem+json"
    assert client.delete(f"/api/v1/clients/{client_id}").status_code == 401
    unknown = client.delete("/api/v1/clients/999999", headers=admin_headers)
    assert unknown.status_code == 404 and unknown.content_type == "application/problem+json"
    # Nothing was erased by the refused calls.
    referral = client.get(f"/api/v1/referrals/{erased_world['referral']['id']}",
                          headers=admin_headers).get_json()
    assert referral["client"]["name"] == NAME


def test_a_referral_with_an_erased_clients_old_reference_makes_a_new_client(
    client, admin_headers, erased_world,
):
    client_id = erased_world["client_id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204
    again = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": erased_world["referrer"]["id"],
        "receiver_organization_id": erased_world["receiver"]["id"],
        "client": {"name": "Someone Else Entirely", "external_ref": REF}})
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["client"]["id"] != client_id
    # And the placeholder name is not a name a request can find.
    by_name = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": erased_world["referrer"]["id"],
        "receiver_organization_id": erased_world["receiver"]["id"],
        "client": {"name": f"erased client #{client_id}"}})
    assert by_name.status_code == 201
    assert by_name.get_json()["client"]["id"] not in (client_id, again.get_json()["client"]["id"])


def test_erase_client_from_the_cli_and_replay_the_register_after_a_restore(
    app, client, admin_headers, erased_world, tmp_path,
):
    client_id = erased_world["client_id"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["erase-client", str(client_id), "--by", "dpo@example.com"])
    assert result.exit_code == 0, result.output
    assert f"Erased client {client_id}" in result.output
    assert found_in_dump(app) == {}
    register = runner.invoke(args=["erase-client", "--register"])
    assert register.exit_code == 0
    [line] = register.output.splitlines()
    assert line.startswith(f"{client_id}\t")
    # A restore of a backup taken before the erasure brings the data back: the register
    # erases it again (here: the erasure undone by hand, as the restore would have it).
    with session_scope(app) as session:
        session.execute(update(Client).where(Client.id == client_id).values(
            name=NAME, external_ref=REF, erased_at=None))
        session.commit()
    assert NAME in found_in_dump(app)
    register_file = tmp_path / "erasure-register.tsv"
    register_file.write_text(register.output)
    replayed = runner.invoke(args=["erase-client", "--replay", str(register_file)])
    assert replayed.exit_code == 0, replayed.output
    assert "Erased 1 clients again" in replayed.output
    assert found_in_dump(app) == {}
    twice = runner.invoke(args=["erase-client", "--replay", str(register_file)])
    assert "Erased 0 clients again; 1 were" in twice.output


def test_purge_erases_only_clients_with_nothing_open_and_no_recent_activity(
    app, client, admin_headers, erased_world,
):
    referrer, receiver = erased_world["referrer"], erased_world["receiver"]
    recent = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": referrer["id"], "receiver_organization_id": receiver["id"],
        "client": {"name": "Qoppa Recent Pending"}}).get_json()
    runner = app.test_cli_runner()
    # Last month's converted client is idle for 15 days or so, not for 60.
    kept = runner.invoke(args=["purge-personal-data", "--older-than", "60"])
    assert kept.exit_code == 0 and "of 0 clients" in kept.output
    purged = runner.invoke(args=["purge-personal-data", "--older-than", "1"])
    assert purged.exit_code == 0, purged.output
    # The visited host (its visit last month) and the converted client; not the pending one.
    assert "of 2 clients" in purged.output
    assert found_in_dump(app) == {}
    pending = client.get(f"/api/v1/referrals/{recent['id']}", headers=admin_headers).get_json()
    assert pending["client"]["name"] == "Qoppa Recent Pending"
    again = runner.invoke(args=["purge-personal-data", "--older-than", "1"])
    assert "of 0 clients" in again.output


def test_a_repeat_of_an_idempotent_request_after_erasure_gets_the_erased_answer(
    client, admin_headers, firms,
):
    referrer, receiver = firms
    body = {"referrer_organization_id": referrer["id"],
            "receiver_organization_id": receiver["id"],
            "client": {"name": NAME, "external_ref": REF, "consent": CONSENT}}
    headers = {**admin_headers, "Idempotency-Key": "erase-then-repeat"}
    first = client.post("/api/v1/referrals", json=body, headers=headers).get_json()
    client_id = first["client"]["id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204
    repeat = client.post("/api/v1/referrals", json=body, headers=headers)
    assert repeat.status_code == 201
    answer = repeat.get_json()
    assert answer["id"] == first["id"]
    assert answer["client"]["name"] == f"erased client #{client_id}"
    assert answer["client"]["external_ref"] is None
    assert answer["client"]["consent"]["by"] == "erased"
    assert client.get("/api/v1/referrals", headers=admin_headers).get_json()["total"] == 1


def test_erasing_a_client_leaves_another_whose_name_starts_the_same_whole(
    app, client, admin_headers, firms,
):
    referrer, receiver = firms

    def refer(name: str, note: str) -> dict:
        response = client.post("/api/v1/referrals", headers=admin_headers, json={
            "referrer_organization_id": referrer["id"],
            "receiver_organization_id": receiver["id"], "client": {"name": name},
            "note": note})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    erased = refer("Qwerty", "Qwerty's buyer asked for us.")
    kept = refer("Qwerty Industries", "Not to be confused with Qwertyco.")
    with session_scope(app, write=False) as session:
        payloads_before = {event.payload["id"]: event.payload for event in session.scalars(
            select(OutboxEvent))}
    assert client.delete(f"/api/v1/clients/{erased['client']['id']}",
                         headers=admin_headers).status_code == 204
    again = client.get(f"/api/v1/referrals/{kept['id']}", headers=admin_headers).get_json()
    assert (again["client"]["name"], again["note"]) == (
        "Qwerty Industries", "Not to be confused with Qwertyco.")
    gone = client.get(f"/api/v1/referrals/{erased['id']}", headers=admin_headers).get_json()
    placeholder = f"erased client #{erased['client']['id']}"
    assert gone["note"] == f"{placeholder}'s buyer asked for us."
    with session_scope(app, write=False) as session:
        payloads = {event.payload["id"]: event.payload
                    for event in session.scalars(select(OutboxEvent))}
    assert payloads[kept["id"]] == payloads_before[kept["id"]]
    assert payloads[erased["id"]]["client"]["name"] == placeholder


def test_a_kpi_corrections_reason_naming_the_client_is_kept_and_reported(
    app, client, admin_headers, erased_world,
):
    """The one exception (docs/OPERATIONS.md): a reversal's reason is head office's free text
    and part of the KPI exports, which must not change; erase-client names such corrections
    instead of rewriting them."""
    referral_id = erased_world["referral"]["id"]
    reversed_ = client.patch(f"/api/v1/referrals/{referral_id}", headers=admin_headers,
                             json={"status": "lost", "reason": f"{NAME} cancelled."})
    assert reversed_.status_code == 200, reversed_.get_json()
    months = (erased_world["month"], erased_world["this_month"])
    before = kpi_bytes(app, client, admin_headers, months)
    result = app.test_cli_runner().invoke(args=["erase-client",
                                                str(erased_world["client_id"])])
    assert result.exit_code == 0, result.output
    assert "reasons of KPI corrections" in result.output
    assert kpi_bytes(app, client, admin_headers, months) == before
    # In the corrections' reasons, and only there: one dump line a row.
    assert set(found_in_dump(app)) == {NAME}
    holding = [line for line in database_dump(app).splitlines() if NAME in line]
    with session_scope(app, write=False) as session:
        reasons = [c.reason for c in session.scalars(select(KpiCorrection)) if NAME in c.reason]
    assert len(holding) == len(reasons) >= 1


def test_an_address_that_only_names_the_city_is_not_erased_from_other_texts(
    client, admin_headers, firms,
):
    referrer, receiver = firms
    city_only = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": referrer["id"],
        "receiver_organization_id": receiver["id"], "client": {
            "name": "Vbnmq Harbour Works", "location": {**KAOHSIUNG, "address": "Kaohsiung"}}})
    other = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": referrer["id"],
        "receiver_organization_id": receiver["id"], "client": {"name": "Other Client"},
        "note": "Their plant is in Kaohsiung."}).get_json()
    client_id = city_only.get_json()["client"]["id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/referrals/{other['id']}", headers=admin_headers).get_json()[
        "note"] == "Their plant is in Kaohsiung."
    erased = client.get(f"/api/v1/referrals/{city_only.get_json()['id']}",
                        headers=admin_headers).get_json()
    assert erased["client"]["location"]["address"] is None
    assert erased["client"]["location"]["city"] == "Kaohsiung"


def test_a_short_name_or_crm_id_goes_from_the_clients_own_rows_only(
    app, client, admin_headers, firms,
):
    referrer, receiver = firms
    person = client.post("/api/v1/people", headers=admin_headers, json={
        "organization_id": referrer["id"], "name": "Staffer QZ", "external_ref": "77"})
    assert person.status_code == 201, person.get_json()
    referral = client.post("/api/v1/referrals", headers={
        **admin_headers, "Idempotency-Key": "short-values"}, json={
        "referrer_organization_id": referrer["id"],
        "receiver_organization_id": receiver["id"],
        "client": {"name": "QZ", "external_ref": "77"}}).get_json()
    client_id = referral["client"]["id"]
    assert client.delete(f"/api/v1/clients/{client_id}",
                         headers=admin_headers).status_code == 204
    placeholder = f"erased client #{client_id}"
    with session_scope(app, write=False) as session:
        payload = session.scalars(select(OutboxEvent).where(
            OutboxEvent.type == "referral.created")).one().payload
        stored = session.scalars(select(IdempotencyRecord)).one().response_body
        person_entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "person.create")).one().changes
    for body in (payload, stored):
        assert (body["client"]["name"], body["client"]["external_ref"]) == (placeholder, None)
    assert "77" in str(person_entry) and "QZ" in str(person_entry)  # another's, untouched
