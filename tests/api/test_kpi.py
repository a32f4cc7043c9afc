"""GET /kpi/monthly in JSON, CSV and XLSX, PUT /kpi/targets, and the kpi-export command."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from models import utcnow

MONTHLY = "/api/v1/kpi/monthly"
COLUMNS = ["organization_id", "organization_name", "kind", "month", "referrals_made",
           "referrals_received", "accepted_received", "converted_made", "converted_received",
           "new_client_credits", "target", "attainment",
           # SPEC section 10: the sales-force columns, after the first twelve
           "visits", "empty_handed_visits", "commitments", "leads", "leads_won",
           "leads_referred", "target_status"]


@pytest.fixture
def month() -> str:
    return utcnow().strftime("%Y-%m")


@pytest.fixture
def activity(client, admin_headers, make_org, month):
    """Two firms with one converted referral between them this month, and a target."""
    alpha = make_org(name="=Alpha Precision")["id"]
    beta = make_org(name="台灣精密股份有限公司", kind="affiliate")["id"]
    made = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": alpha, "receiver_organization_id": beta,
        "client": {"name": "Acme Ltd"}}).get_json()
    for status in ("accepted", "converted"):
        client.patch(f"/api/v1/referrals/{made['id']}", json={"status": status},
                     headers=admin_headers)
    response = client.put(f"/api/v1/kpi/targets/{alpha}/{month}", json={"new_clients": 4},
                          headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json()["new_clients"] == 4
    return {"alpha": alpha, "beta": beta}


def test_json_rows_have_exactly_the_spec_columns(client, admin_headers, activity, month):
    response = client.get(f"{MONTHLY}?month={month}", headers=admin_headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["month"] == month
    rows = {row["organization_id"]: row for row in body["rows"]}
    assert all(list(row) == COLUMNS for row in body["rows"])
    alpha, beta = rows[activity["alpha"]], rows[activity["beta"]]
    assert (alpha["referrals_made"], alpha["converted_made"], alpha["new_client_credits"],
            alpha["target"], alpha["attainment"]) == (1, 1, 1, 4, 0.25)
    assert (beta["referrals_received"], beta["accepted_received"], beta["converted_received"],
            beta["new_client_credits"], beta["target"], beta["attainment"]) == (
        1, 1, 1, 1, None, None)


def test_csv_download_is_utf8_with_header_and_neutralised_cells(
    client, admin_headers, activity, month
):
    response = client.get(f"{MONTHLY}?month={month}&format=csv", headers=admin_headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f'filename="kpi-{month}.csv"' in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0] == COLUMNS
    names = {row[1] for row in table[1:]}
    assert names == {"'=Alpha Precision", "台灣精密股份有限公司"}


def test_xlsx_download_keeps_text_as_text(client, admin_headers, activity, month, tmp_path):
    response = client.get(f"{MONTHLY}?month={month}&format=xlsx", headers=admin_headers)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    path = tmp_path / "kpi.xlsx"
    path.write_bytes(response.data)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.active
    assert [cell.value for cell in sheet[1]] == COLUMNS
    names = {sheet.cell(row=r, column=2).value: sheet.cell(row=r, column=2).data_type
             for r in (2, 3)}
    assert names == {"=Alpha Precision": "s", "台灣精密股份有限公司": "s"}
    workbook.close()


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_kpi_export_command_writes_the_same_bytes_as_the_api(
    app, client, admin_headers, activity, month, tmp_path, fmt
):
    from_api = client.get(f"{MONTHLY}?month={month}&format={fmt}", headers=admin_headers).data
    output = tmp_path / f"kpi.{fmt}"
    with app.app_context():  # as `flask --app wsgi kpi-export` runs it
        result = app.test_cli_runner().invoke(args=[
            "kpi-export", "--month", month, "--format", fmt, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == from_api


def test_a_partner_sees_only_its_own_row(client, make_key, activity, month):
    headers = make_key("partner", activity["beta"])
    rows = client.get(f"{MONTHLY}?month={month}", headers=headers).get_json()["rows"]
    assert [row["organization_id"] for row in rows] == [activity["beta"]]
    other = client.get(f"{MONTHLY}?month={month}&organization_id={activity['alpha']}",
                       headers=headers)
    assert other.status_code == 404
    assert client.put(f"/api/v1/kpi/targets/{activity['beta']}/{month}",
                      json={"new_clients": 99}, headers=headers).status_code == 403


def test_bad_months_and_formats_are_422(client, admin_headers, activity):
    for query in ("?month=2026-13", "?month=2026-3", "", "?month=2026-03&format=pdf"):
        response = client.get(MONTHLY + query, headers=admin_headers)
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"
    bad_target = client.put(f"/api/v1/kpi/targets/{activity['alpha']}/March",
                            json={"new_clients": 1}, headers=admin_headers)
    assert bad_target.status_code == 422
    assert "month" in bad_target.get_json()["errors"]
    negative = client.put(f"/api/v1/kpi/targets/{activity['alpha']}/2026-03",
                          json={"new_clients": -1}, headers=admin_headers)
    assert negative.status_code == 422
    missing = client.put("/api/v1/kpi/targets/999999/2026-03", json={"new_clients": 1},
                         headers=admin_headers)
    assert missing.status_code == 404


def test_a_month_without_activity_has_no_rows(client, admin_headers, activity):
    response = client.get(f"{MONTHLY}?month=2001-01&format=csv", headers=admin_headers)
    assert response.data.decode("utf-8-sig").splitlines() == [",".join(COLUMNS)]
