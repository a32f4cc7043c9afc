"""The monthly KPI: definitions, targets, partner scope and the three export formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import openpyxl
import pytest
from sqlalchemy import update

from models import Referral
from referral_service.adapters import kpi_files
from referral_service.services import kpi, organizations, referrals
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import Forbidden, NotFound, ValidationFailed

STAFF = Principal(name="key:crm", role="crm")
MARCH = "2026-03"


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


@pytest.fixture
def firms(session, app):
    def create(name: str, kind: str = "partner") -> int:
        return organizations.create(
            session=session, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            data={"name": name, "kind": kind, "skills": [], "description": "",
                  "offices": [{"latitude": 22.6, "longitude": 120.3}], "active": True},
        ).id

    return {name: create(name, kind) for name, kind in (
        ("Alpha", "affiliate"), ("Beta", "partner"), ("Gamma", "partner"), ("Idle", "partner"))}


@pytest.fixture
def history(session, app, firms):
    """Referrals with timestamps placed in February, March and April 2026."""

    def referral(referrer, receiver, client, created, accepted=None, converted=None):
        made = referrals.record_referral(
            session=session, actor=STAFF, geocoder=app.extensions["geocoder"],
            attribution_window_days=365,
            data={"referrer_organization_id": firms[referrer],
                  "receiver_organization_id": firms[receiver], "client": {"name": client}})
        status = "converted" if converted else "accepted" if accepted else "pending"
        session.execute(update(Referral).where(Referral.id == made.id).values(
            created_at=created, accepted_at=accepted, converted_at=converted, status=status))
        session.commit()

    # Created in February, accepted and converted in March: counts only as March conversions.
    referral("Alpha", "Beta", "Client 1", at(20, 2), at(25, 2), at(5))
    # Created, accepted and converted in March.
    referral("Alpha", "Beta", "Client 2", at(2), at(3), at(4))
    # Created and accepted in March, still open.
    referral("Gamma", "Beta", "Client 3", at(10), at(11))
    # Created in March, pending.
    referral("Beta", "Alpha", "Client 4", at(31))
    # Created in March, converted in April: a March referral, an April credit.
    referral("Gamma", "Alpha", "Client 5", at(15), at(16), at(1, 4))


def by_id(rows):
    return {row["organization_id"]: row for row in rows}


def test_rows_follow_the_spec_definitions(session, firms, history):
    kpi.set_target(session=session, organization_id=firms["Alpha"], month=MARCH,
                   new_clients=4, actor=STAFF)
    rows = kpi.monthly_kpi(session=session, month=MARCH, actor=STAFF)
    assert all(tuple(row) == kpi.COLUMNS for row in rows)
    table = by_id(rows)
    assert set(table) == {firms["Alpha"], firms["Beta"], firms["Gamma"]}
    alpha, beta, gamma = table[firms["Alpha"]], table[firms["Beta"]], table[firms["Gamma"]]
    assert (alpha["organization_name"], alpha["kind"], alpha["month"]) == (
        "Alpha", "affiliate", MARCH)
    figures = ("referrals_made", "referrals_received", "accepted_received", "converted_made",
               "converted_received", "new_client_credits", "target", "attainment")
    assert [alpha[f] for f in figures] == [1, 2, 1, 2, 0, 2, 4, 0.5]
    assert [beta[f] for f in figures] == [1, 2, 2, 0, 2, 2, None, None]
    assert [gamma[f] for f in figures] == [2, 0, 0, 0, 0, 0, None, None]
    # Plain ints and floats on every database (PostgreSQL's SUM is NUMERIC otherwise).
    assert all(type(row[f]) is int for row in rows for f in figures[:7] if row[f] is not None)
    assert type(alpha["attainment"]) is float


def test_april_counts_the_conversion_of_a_march_referral(session, firms, history):
    april = by_id(kpi.monthly_kpi(session=session, month="2026-04", actor=STAFF))
    assert set(april) == {firms["Alpha"], firms["Gamma"]}
    assert april[firms["Gamma"]]["converted_made"] == 1
    assert april[firms["Alpha"]]["converted_received"] == 1
    assert april[firms["Alpha"]]["referrals_received"] == 0


def test_a_target_alone_gives_a_row_and_a_zero_target_no_attainment(session, firms):
    kpi.set_target(session=session, organization_id=firms["Idle"], month=MARCH,
                   new_clients=0, actor=STAFF)
    kpi.set_target(session=session, organization_id=firms["Beta"], month=MARCH,
                   new_clients=2, actor=STAFF)
    rows = by_id(kpi.monthly_kpi(session=session, month=MARCH, actor=STAFF))
    assert rows[firms["Idle"]]["new_client_credits"] == 0
    assert rows[firms["Idle"]]["attainment"] is None
    assert rows[firms["Beta"]]["attainment"] == 0.0
    assert kpi.monthly_kpi(session=session, month="2026-05", actor=STAFF) == []


def test_setting_a_target_twice_updates_it(session, firms):
    for goal in (3, 5):
        target = kpi.set_target(session=session, organization_id=firms["Beta"], month=MARCH,
                                new_clients=goal, actor=STAFF)
    assert target.new_clients == 5
    assert by_id(kpi.monthly_kpi(session=session, month=MARCH, actor=STAFF))[
        firms["Beta"]]["target"] == 5


def test_targets_are_head_office_business(session, firms):
    with pytest.raises(Forbidden):
        kpi.set_target(session=session, organization_id=firms["Beta"], month=MARCH,
                       new_clients=1, actor=Principal(name="p", role="partner",
                                                      organization_id=firms["Beta"]))
    with pytest.raises(NotFound):
        kpi.set_target(session=session, organization_id=99999, month=MARCH, new_clients=1,
                       actor=STAFF)


def test_a_partner_gets_only_its_own_row(session, firms, history):
    beta = Principal(name="p", role="partner", organization_id=firms["Beta"])
    rows = kpi.monthly_kpi(session=session, month=MARCH, actor=beta)
    assert [row["organization_id"] for row in rows] == [firms["Beta"]]
    with pytest.raises(NotFound):
        kpi.monthly_kpi(session=session, month=MARCH, actor=beta,
                        organization_id=firms["Alpha"])
    narrowed = kpi.monthly_kpi(session=session, month=MARCH, actor=STAFF,
                               organization_id=firms["Gamma"])
    assert [row["organization_id"] for row in narrowed] == [firms["Gamma"]]


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "26-03", "2026-00", "", "march"])
def test_a_month_that_is_not_yyyy_mm_is_refused(session, month):
    with pytest.raises(ValidationFailed) as refused:
        kpi.monthly_kpi(session=session, month=month, actor=STAFF)
    assert "month" in refused.value.errors


def test_december_ends_at_the_new_year():
    assert kpi.month_range("2025-12") == (datetime(2025, 12, 1, tzinfo=UTC),
                                          datetime(2026, 1, 1, tzinfo=UTC))


ROWS = [
    {"organization_id": 1, "organization_name": "=HYPERLINK(\"http://evil\")",
     "kind": "partner", "month": MARCH, "referrals_made": 1, "referrals_received": 0,
     "accepted_received": 0, "converted_made": 1, "converted_received": 0,
     "new_client_credits": 1, "target": 2, "attainment": 0.5},
    {"organization_id": 2, "organization_name": "台灣精密股份有限公司", "kind": "affiliate",
     "month": MARCH, "referrals_made": 0, "referrals_received": 1, "accepted_received": 1,
     "converted_made": 0, "converted_received": 0, "new_client_credits": 0, "target": None,
     "attainment": None},
    {"organization_id": 3, "organization_name": "@SUM(A1)", "kind": "partner", "month": MARCH,
     "referrals_made": 0, "referrals_received": 0, "accepted_received": 0, "converted_made": 0,
     "converted_received": 0, "new_client_credits": 0, "target": 1, "attainment": 0.0},
]
for _row in ROWS:  # the sales-force columns the levels added (SPEC section 10), after them
    _row.update(dict.fromkeys(kpi.ACTIVITY, 0),
                target_status="none" if _row["target"] is None else "agreed")


def test_csv_is_utf8_with_the_spec_header_and_neutralised_formulas():
    data = kpi.export(ROWS, "csv", MARCH)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(table[0]) == kpi.COLUMNS
    assert table[1][1] == "'=HYPERLINK(\"http://evil\")"
    assert table[2][1] == "台灣精密股份有限公司"
    assert table[3][1] == "'@SUM(A1)"
    assert table[2][10:12] == ["", ""]
    for cell in ("+1", "-1", "\tx", "\rx"):
        assert kpi_files.neutralise(cell) == "'" + cell


def test_xlsx_writes_text_as_text_never_as_formulas(tmp_path):
    data = kpi.export(ROWS, "xlsx", MARCH)
    assert kpi.export(ROWS, "xlsx", MARCH) == data  # the same rows give the same bytes
    path = tmp_path / "kpi.xlsx"
    path.write_bytes(data)
    workbook = openpyxl.load_workbook(path)
    assert len(workbook.worksheets) == 1
    sheet = workbook.active
    assert tuple(cell.value for cell in sheet[1]) == kpi.COLUMNS
    assert sheet["B2"].value == "=HYPERLINK(\"http://evil\")"
    assert sheet["B2"].data_type == "s"
    assert sheet["B4"].data_type == "s"
    assert sheet["B3"].value == "台灣精密股份有限公司"
    assert sheet["L2"].value == 0.5 and sheet["K3"].value is None
    # The one formula guard marks the cells it catches: text kept as text when edited.
    assert sheet["B2"].quotePrefix and sheet["B4"].quotePrefix
    assert not sheet["B3"].quotePrefix
    workbook.close()


GUARDED_CELLS = (" =1+1", "\n=1+1", "\t=1", "\r=1", ";=1", "=1", "+1", "-1", "@SUM(A1)",
                 "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\ufe661", "\u22121",
                 "\u3000=1", "\xa0=1")


@pytest.mark.parametrize("cell", GUARDED_CELLS)
def test_every_export_guards_cells_a_spreadsheet_could_run(cell, tmp_path):
    rows = [{**ROWS[1], "organization_name": cell}]
    table = list(csv.reader(io.StringIO(kpi.export(rows, "csv", MARCH).decode("utf-8-sig"))))
    assert table[1][1] == "'" + cell
    path = tmp_path / "kpi.xlsx"
    path.write_bytes(kpi.export(rows, "xlsx", MARCH))
    workbook = openpyxl.load_workbook(path)
    assert workbook.active["B2"].quotePrefix
    assert workbook.active["B2"].value.endswith(cell[1:])  # the value itself unchanged
    workbook.close()


@pytest.mark.parametrize("cell", ["Alpha", "台灣精密", "1-2-3 Ltd", "", "(=) Co"])
def test_the_formula_guard_leaves_plain_names_alone(cell):
    assert kpi_files.neutralise(cell) == cell
    assert not kpi_files.formula_like(cell)


def test_json_export_is_the_month_its_rows_and_its_corrections():
    assert json.loads(kpi.export(ROWS, "json", MARCH)) == {"month": MARCH, "rows": ROWS,
                                                           "corrections": []}
