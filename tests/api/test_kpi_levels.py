"""GET /kpi/monthly?level=department|person: columns, exports, filters, partners, the CLI."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from referral_service.services import kpi
from tests.services.test_kpi_levels import MARCH, at, build

MONTHLY = "/api/v1/kpi/monthly"


@pytest.fixture
def world(app):
    """Firm A: Sales (head Ann) over Sales North (head Bob, member Cy); firm B: Dee."""
    from referral_service.db import new_session

    session = new_session(app)
    try:
        return build(session, {
            "orgs": 2,
            "departments": [{"org": 0, "parent": None, "head": 0},
                            {"org": 0, "parent": 0, "head": 1}],
            "people": [{"org": 0, "department": 0, "manager": None},
                       {"org": 0, "department": 1, "manager": 0},
                       {"org": 0, "department": 1, "manager": 1},
                       {"org": 1, "department": None, "manager": None}],
            "visits": [{"person": 2, "at": at(2), "kind": "commitment"},
                       {"person": 3, "at": at(3), "kind": "empty"}],
            "leads": [{"person": 2, "at": at(2), "status": "won", "later": 3,
                       "receiver": 0}],
            "referrals": [],
            "targets": {(("department", 0), MARCH): 2},
            "proposals": {(("person", 3), MARCH): "proposed"},
        })
    finally:
        session.close()


@pytest.mark.parametrize("level", kpi.LEVELS)
def test_each_level_has_its_columns_in_json_and_csv(client, admin_headers, world, level):
    body = client.get(f"{MONTHLY}?month={MARCH}&level={level}", headers=admin_headers)
    assert body.status_code == 200
    rows = body.get_json()["rows"]
    assert rows and all(list(row) == list(kpi.LEVEL_COLUMNS[level]) for row in rows)
    response = client.get(f"{MONTHLY}?month={MARCH}&level={level}&format=csv",
                          headers=admin_headers)
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0] == list(kpi.LEVEL_COLUMNS[level])
    if level != "organization":
        assert f'kpi-{MARCH}-{level}.csv' in response.headers["Content-Disposition"]


def test_department_and_head_rows(client, admin_headers, world):
    top, north = world["department"]
    ann, bob, cy, dee = world["person"]
    departments = {row["department_id"]: row for row in client.get(
        f"{MONTHLY}?month={MARCH}&level=department", headers=admin_headers).get_json()["rows"]}
    assert departments[top]["new_client_credits"] == 1
    assert (departments[top]["target"], departments[top]["target_status"]) == (2, "agreed")
    assert departments[north]["target_status"] == "none"
    people = {row["person_id"]: row for row in client.get(
        f"{MONTHLY}?month={MARCH}&level=person", headers=admin_headers).get_json()["rows"]}
    assert (people[ann]["commitments"], people[ann]["target"], people[ann]["attainment"]) == (
        1, 2, 0.5)
    assert people[bob]["leads_won"] == 1 and people[cy]["leads_won"] == 1
    assert (people[dee]["empty_handed_visits"], people[dee]["target_status"]) == (1, "proposed")


def test_organization_id_narrows_and_a_partner_sees_its_own(client, admin_headers, make_key,
                                                             world):
    firm_a, firm_b = world["organization"]
    for level in ("department", "person"):
        rows = client.get(f"{MONTHLY}?month={MARCH}&level={level}&organization_id={firm_b}",
                          headers=admin_headers).get_json()["rows"]
        assert {row["organization_id"] for row in rows} <= {firm_b}
    partner = make_key("partner", firm_b)
    rows = client.get(f"{MONTHLY}?month={MARCH}&level=person", headers=partner).get_json()
    assert [row["person_id"] for row in rows["rows"]] == [world["person"][3]]
    assert client.get(f"{MONTHLY}?month={MARCH}&level=person&organization_id={firm_a}",
                      headers=partner).status_code == 404


def test_an_unknown_level_is_422(client, admin_headers):
    response = client.get(f"{MONTHLY}?month={MARCH}&level=team", headers=admin_headers)
    assert response.status_code == 422
    assert "level" in response.get_json()["errors"]


def test_the_department_xlsx_has_its_sheet_and_the_chart(client, admin_headers, world,
                                                         tmp_path):
    url = f"{MONTHLY}?month={MARCH}&level=department&format=xlsx"
    data = client.get(url, headers=admin_headers).data
    assert client.get(url, headers=admin_headers).data == data  # deterministic
    path = tmp_path / "departments.xlsx"
    path.write_bytes(data)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Departments", "Credits by department"]
    workbook.close()


@pytest.mark.parametrize("level", ["person", "all"])
def test_kpi_export_command_levels(app, client, admin_headers, world, tmp_path, level):
    output = tmp_path / "kpi.xlsx"
    with app.app_context():
        result = app.test_cli_runner().invoke(args=[
            "kpi-export", "--month", MARCH, "--format", "xlsx", "--level", level,
            "--output", str(output)])
    assert result.exit_code == 0, result.output
    if level == "person":
        assert output.read_bytes() == client.get(
            f"{MONTHLY}?month={MARCH}&level=person&format=xlsx", headers=admin_headers).data
        return
    workbook = openpyxl.load_workbook(output)
    assert workbook.sheetnames == ["Organizations", "Departments", "People",
                                   "Credits by department"]
    workbook.close()
    with app.app_context():
        refused = app.test_cli_runner().invoke(args=[
            "kpi-export", "--month", MARCH, "--format", "csv", "--level", "all",
            "--output", str(tmp_path / "all.csv")])
    assert refused.exit_code != 0
