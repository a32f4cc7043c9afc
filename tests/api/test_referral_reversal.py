"""Head office reverses a conversion (SPEC section 10: converted -> lost, admin only, reason
required), and a change to a closed month's figures becomes correction rows in the first open
month: GET /kpi/monthly `corrections` (JSON), the Corrections sheet (XLSX), CSV unchanged."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
from sqlalchemy import func, select

from models import AuditEntry, KpiCorrection, OrganizationStats, Referral
from referral_service.services import referrals
from tests.api import test_kpi_months
from tests.api.test_kpi_months import API, close, hashes
from tests.services.test_kpi_levels import MARCH, at

world = test_kpi_months.world  # the fixture: March 2026, firm A (Sales: Ann, Cy), firm B (Dee)

APRIL, MAY = "2026-04", "2026-05"


def converted_referral(app) -> int:
    """The world's referral converted in March (March 8)."""
    with app.extensions["db_engine"].connect() as connection:
        return connection.execute(select(Referral.id).where(
            Referral.status == "converted")).scalar_one()


def reverse(client, headers, referral_id: int, reason: str | None = "Signed by mistake"):
    """PATCH the referral to lost (a reversal when it is converted)."""
    body = {"status": "lost"} if reason is None else {"status": "lost", "reason": reason}
    return client.patch(f"/api/v1/referrals/{referral_id}", headers=headers, json=body)


def monthly(client, headers, month: str, level: str = "organization", fmt: str = "json"):
    response = client.get(f"{API}/monthly?month={month}&level={level}&format={fmt}",
                          headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_only_head_office_reverses_a_conversion_and_only_with_a_reason(
        app, client, admin_headers, make_key, world):
    referral_id = converted_referral(app)
    receiver, referrer = world["organization"]
    for headers in (make_key("crm"), make_key("partner", receiver),
                    make_key("partner", referrer)):
        refused = reverse(client, headers, referral_id)
        assert refused.status_code == 403, refused.get_json()
        assert refused.mimetype == "application/problem+json"
    for reason in (None, "", "   "):
        refused = reverse(client, admin_headers, referral_id, reason)
        assert refused.status_code == 422, refused.get_json()
        assert "reason" in refused.get_json()["errors"]
    assert client.get(f"/api/v1/referrals/{referral_id}",
                      headers=admin_headers).get_json()["status"] == "converted"
    reversed_ = reverse(client, admin_headers, referral_id, "The client never signed")
    assert reversed_.status_code == 200, reversed_.get_json()
    body = reversed_.get_json()
    assert body["status"] == "lost"
    assert body["history"][-1]["status"] == "lost"
    assert body["history"][-1]["reason"] == "The client never signed"
    # A lost referral is final: a second reversal, or a move back, is a 409.
    assert reverse(client, admin_headers, referral_id).status_code == 409
    with app.extensions["db_engine"].connect() as connection:
        entry = connection.execute(select(AuditEntry).where(
            AuditEntry.action == "referral.move", AuditEntry.object_id == str(referral_id))
            .order_by(AuditEntry.id.desc())).first()
    assert entry.changes == {"status": {"from": "converted", "to": "lost"},
                             "reason": "The client never signed"}


def test_a_reversal_keeps_the_receivers_won_and_failed_counts_true(client, admin_headers,
                                                                   make_org, app):
    referrer, receiver = make_org(name="Reversal Referrer")["id"], make_org(
        name="Reversal Receiver")["id"]
    made = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": referrer, "receiver_organization_id": receiver,
        "client": {"name": "Mistaken Signing Ltd"}})
    assert made.status_code == 201, made.get_json()
    referral_id = made.get_json()["id"]
    for status in ("accepted", "converted"):
        assert client.patch(f"/api/v1/referrals/{referral_id}", headers=admin_headers,
                            json={"status": status}).status_code == 200

    def counts():
        with app.extensions["db_engine"].connect() as connection:
            stats = connection.execute(select(OrganizationStats.won, OrganizationStats.failed)
                                       .where(OrganizationStats.organization_id == receiver)
                                       ).one()
            real = dict(connection.execute(
                select(Referral.status, func.count()).where(
                    Referral.receiver_organization_id == receiver)
                .group_by(Referral.status)).all())
        return tuple(stats), (real.get("converted", 0), sum(
            real.get(status, 0) for status in referrals.FAILED_STATUSES))

    assert counts() == ((1, 0), (1, 0))
    assert reverse(client, admin_headers, referral_id).status_code == 200
    assert counts() == ((0, 1), (0, 1))


def test_the_document_states_the_reversal_rule(client):
    document = client.get("/api/v1/openapi.json").get_json()
    patch = document["paths"]["/api/v1/referrals/{referral_id}"]["patch"]
    assert "converted -> lost" in patch["description"]
    assert "403" in patch["responses"] and "422" in patch["responses"]
    monthly_ = document["paths"]["/api/v1/kpi/monthly"]["get"]
    assert "corrections" in monthly_["responses"]["200"]["description"]
    assert "corrections" in document["components"]["schemas"]["KpiMonth"]["properties"]


def test_a_reversal_in_a_closed_month_is_a_correction_in_the_first_open_month(
        app, client, admin_headers, make_key, world):
    receiver, referrer = world["organization"]
    ann, cy, dee = world["person"]
    department = world["department"][0]
    before = hashes(client, admin_headers)
    assert close(client, admin_headers, MARCH).status_code == 200
    referral_id = converted_referral(app)
    assert reverse(client, admin_headers, referral_id, "Signed by mistake").status_code == 200

    assert hashes(client, admin_headers) == before  # March: byte-identical
    april = monthly(client, admin_headers, APRIL).get_json()
    assert april["rows"] == []
    corrections = {c["organization_id"]: c for c in april["corrections"]}
    assert set(corrections) == {receiver, referrer}
    for correction in corrections.values():
        assert (correction["correction_of"], correction["referral_ids"],
                correction["reason"]) == (MARCH, [referral_id], "Signed by mistake")
        assert correction["actor"].startswith("key:")
        datetime.fromisoformat(correction["created_at"])
    assert corrections[referrer]["deltas"] == {"converted_made": -1, "new_client_credits": -1}
    assert corrections[receiver]["deltas"] == {"converted_received": -1,
                                               "new_client_credits": -1}
    # Department and person rows: Cy owned it (Sales, headed by Ann), Dee referred it.
    departments = monthly(client, admin_headers, APRIL, "department").get_json()["corrections"]
    assert [(c["department_id"], c["deltas"]) for c in departments] == [
        (department, {"new_client_credits": -1})]
    people = monthly(client, admin_headers, APRIL, "person").get_json()["corrections"]
    assert {c["person_id"]: c["deltas"] for c in people} == {
        person: {"new_client_credits": -1} for person in (ann, cy, dee)}
    # A partner sees its own firm's corrections only.
    mine = monthly(client, make_key("partner", referrer), APRIL).get_json()["corrections"]
    assert [c["organization_id"] for c in mine] == [referrer]
    assert monthly(client, make_key("partner", referrer), APRIL,
                   "department").get_json()["corrections"] == []
    # The XLSX carries them on a Corrections sheet; the CSV holds the rows alone.
    workbook = openpyxl.load_workbook(io.BytesIO(monthly(client, admin_headers, APRIL,
                                                         fmt="xlsx").get_data()))
    assert workbook.sheetnames == ["Organizations", "Corrections"]
    sheet = list(workbook["Corrections"].values)
    assert sheet[0][:7] == ("correction_of", "organization_id", "referral_ids", "reason",
                            "created_at", "actor", "referrals_made")
    header = sheet[0]
    by_firm = {row[1]: dict(zip(header, row, strict=True)) for row in sheet[1:]}
    assert by_firm[referrer]["converted_made"] == -1
    assert by_firm[referrer]["reason"] == "Signed by mistake"
    assert by_firm[referrer]["referrals_made"] is None
    text = monthly(client, admin_headers, APRIL, fmt="csv").get_data().decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        list(monthly(client, admin_headers, MARCH, fmt="csv").get_data()
             .decode("utf-8-sig").splitlines()[0].split(","))]


def test_corrections_land_after_the_closed_months_and_freeze_when_their_month_closes(
        app, client, admin_headers, world):
    for month in (MARCH, APRIL):
        assert close(client, admin_headers, month).status_code == 200
    april_before = {level: monthly(client, admin_headers, APRIL, level).get_data()
                    for level in ("organization", "person")}
    assert reverse(client, admin_headers, converted_referral(app)).status_code == 200
    for level, body in april_before.items():
        assert monthly(client, admin_headers, APRIL, level).get_data() == body
    may = monthly(client, admin_headers, MAY).get_json()["corrections"]
    assert {c["correction_of"] for c in may} == {MARCH}
    may_bytes = {(level, fmt): monthly(client, admin_headers, MAY, level, fmt).get_data()
                 for level in ("organization", "person") for fmt in ("json", "xlsx")}
    assert close(client, admin_headers, MAY).status_code == 200
    for (level, fmt), body in may_bytes.items():  # May's export froze with its corrections
        assert monthly(client, admin_headers, MAY, level, fmt).get_data() == body


def test_a_late_expiry_leaves_a_closed_month_as_it_was(app, client, admin_headers, world):
    """An expiry changes none of a month's figures (a referral made that month stays made):
    the closed month stays byte-identical and no correction is booked."""
    from referral_service.db import new_session

    session = new_session(app)
    try:
        receiver, referrer = world["organization"]
        late = Referral(referrer_organization_id=referrer, receiver_organization_id=receiver,
                        client_id=_a_client(session), created_at=at(25), updated_at=at(25),
                        status="pending")
        session.add(late)
        session.commit()
    finally:
        session.close()
    before = hashes(client, admin_headers)
    assert close(client, admin_headers, MARCH).status_code == 200
    session = new_session(app)
    try:
        expired = referrals.expire_pending(session=session, older_than_days=14,
                                           now=datetime.now(UTC) + timedelta(seconds=1))
    finally:
        session.close()
    assert expired >= 1
    assert hashes(client, admin_headers) == before
    with app.extensions["db_engine"].connect() as connection:
        assert connection.execute(select(func.count()).select_from(KpiCorrection)).scalar() == 0


def _a_client(session) -> int:
    from models import Client

    client = Client(name="Late Expiry Co", normalized_name="late expiry co")
    session.add(client)
    session.flush()
    return client.id


def test_staff_are_served_the_bytes_stored_at_close(app, client, admin_headers, make_key,
                                                    world):
    """Closing stores every level and format; a staff request of the whole month gets those
    bytes (their SHA-256 as stored), a partner's own-firm view is made from the rows."""
    import hashlib

    from models import KpiMonthExport, KpiMonthSnapshot

    assert close(client, admin_headers, MARCH).status_code == 200
    served = hashes(client, admin_headers)
    with app.extensions["db_engine"].begin() as connection:
        stored = {(row.level, row.format): row.sha256
                  for row in connection.execute(select(KpiMonthExport))}
        # The snapshot rows emptied behind the service: staff still get the stored bytes.
        connection.execute(KpiMonthSnapshot.__table__.update().values(rows=[]))
    assert stored == served
    assert hashes(client, make_key("crm")) == served
    assert monthly(client, admin_headers, MARCH).get_json()["rows"]
    mine = world["organization"][0]
    assert monthly(client, make_key("partner", mine), MARCH).get_json()["rows"] == []
    body = monthly(client, admin_headers, MARCH, "person", "xlsx").get_data()
    assert hashlib.sha256(body).hexdigest() == stored["person", "xlsx"]


def test_the_kpi_export_command_carries_the_corrections_too(app, client, admin_headers, world,
                                                            tmp_path):
    assert close(client, admin_headers, MARCH).status_code == 200
    assert reverse(client, admin_headers, converted_referral(app)).status_code == 200

    def command(*args: str) -> bytes:
        output = tmp_path / "kpi.out"
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["kpi-export", "--month", APRIL,
                                                        *args, "--output", str(output)])
        assert result.exit_code == 0, result.output
        return output.read_bytes()

    for level in ("organization", "person"):
        for fmt in ("json", "xlsx"):
            assert command("--format", fmt, "--level", level) == monthly(
                client, admin_headers, APRIL, level, fmt).get_data()
    workbook = openpyxl.load_workbook(io.BytesIO(command("--format", "xlsx", "--level", "all")))
    assert workbook.sheetnames == ["Organizations", "Departments", "People",
                                   "Corrections, Organizations", "Corrections, Departments",
                                   "Corrections, People"]


def test_any_change_dated_in_a_closed_month_can_be_booked(app, client, admin_headers, world):
    """months.book_changes books the remainder for any rows dated in a closed month: here a
    visit written into March after it closed (what a backdated visit report would call)."""
    from models import Visit
    from referral_service.db import new_session
    from referral_service.services import months
    from referral_service.services.auth import SYSTEM

    assert close(client, admin_headers, MARCH).status_code == 200
    receiver = world["organization"][0]
    cy = world["person"][1]
    session = new_session(app)
    try:
        session.add(Visit(organization_id=receiver, person_id=cy, client_id=_a_client(session),
                          visited_at=at(30), created_by="test", commitment_description="Order"))
        session.flush()
        booked = months.book_changes(session=session, touched={MARCH: {receiver: set()}},
                                     reason="Visit recorded after the month closed.",
                                     actor=SYSTEM)
        session.commit()
        assert {(c.level, c.row_id): c.deltas for c in booked} == {
            ("organization", None): {"visits": 1, "commitments": 1},
            ("department", world["department"][0]): {"visits": 1, "commitments": 1},
            ("person", cy): {"visits": 1, "commitments": 1},
            ("person", world["person"][0]): {"visits": 1, "commitments": 1},  # Ann, the head
        }
        # Booked once: asked again, nothing remains.
        assert months.book_changes(session=session, touched={MARCH: {receiver: set()}},
                                   reason="again", actor=SYSTEM) == []
    finally:
        session.close()
    april = monthly(client, admin_headers, APRIL).get_json()["corrections"]
    assert [(c["organization_id"], c["referral_ids"], c["deltas"]) for c in april] == [
        (receiver, [], {"visits": 1, "commitments": 1})]


def test_a_visit_reported_into_a_closed_month_books_its_correction(client, admin_headers,
                                                                     world):
    """POST /visits dated in a closed month: that month stays as closed, the first open month
    carries the correction (visits, commitments of the firm, its department, the person and
    the head), in the same transaction as the visit."""
    assert close(client, admin_headers, MARCH).status_code == 200
    before = monthly(client, admin_headers, MARCH).get_data()
    receiver, cy = world["organization"][0], world["person"][1]
    response = client.post("/api/v1/visits", headers=admin_headers, json={
        "person_id": cy, "client": {"name": "Backdated Bikes Ltd"},
        "visited_at": at(30).isoformat(),
        "commitment": {"description": "Order of 40 frames"}})
    assert response.status_code == 201, response.get_json()
    assert monthly(client, admin_headers, MARCH).get_data() == before
    april = monthly(client, admin_headers, APRIL).get_json()["corrections"]
    assert [(c["correction_of"], c["organization_id"], c["deltas"], c["reason"])
            for c in april] == [(MARCH, receiver, {"visits": 1, "commitments": 1},
                                 "Visit reported after its month closed.")]
    # A visit of today (an open month) books nothing.
    today = client.post("/api/v1/visits", headers=admin_headers, json={
        "person_id": cy, "client": {"name": "Today Bikes Ltd"},
        "visited_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "commitment": {"description": "Order"}})
    assert today.status_code == 201, today.get_json()
    assert len(monthly(client, admin_headers, APRIL).get_json()["corrections"]) == 1


def test_an_org_chart_change_after_a_close_is_booked_under_its_own_reason(
        app, client, admin_headers, world):
    """Cy leaves Sales after March closed: March stays as closed; April books what that moves
    between March's department and person rows under its own reason, so that a reversal's
    correction afterwards carries only the reversal."""
    from referral_service.services.months import ORG_CHART_REASON

    assert close(client, admin_headers, MARCH).status_code == 200
    before = {level: monthly(client, admin_headers, MARCH, level).get_data()
              for level in ("organization", "department", "person")}
    cy = world["person"][1]
    moved = client.patch(f"/api/v1/people/{cy}", headers=admin_headers,
                         json={"department_id": None})
    assert moved.status_code == 200, moved.get_json()
    for level, body in before.items():
        assert monthly(client, admin_headers, MARCH, level).get_data() == body, level
    chart = [c for c in monthly(client, admin_headers, APRIL, "department").get_json()[
        "corrections"] if c["reason"] == ORG_CHART_REASON]
    assert chart, "the move was not booked"
    # Sales no longer counts Cy's March visit and won lead.
    assert all(delta < 0 for c in chart for delta in c["deltas"].values())
    assert reverse(client, admin_headers, converted_referral(app)).status_code == 200
    reversal = [c for level in ("organization", "department", "person")
                for c in monthly(client, admin_headers, APRIL, level).get_json()["corrections"]
                if c["reason"] == "Signed by mistake"]
    assert reversal
    touched = {name for c in reversal for name in c["deltas"]}
    assert not touched & {"visits", "commitments", "leads", "leads_won"}, touched
