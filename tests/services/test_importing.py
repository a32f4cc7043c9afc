"""import-organizations: CSV and JSON lines, created or updated by external_ref."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from models import AuditEntry, Office, Organization, OrganizationSkill

CSV = (
    "name,kind,group,skills,description,capacity,external_ref,city,country,latitude,longitude\n"
    "Harbor Works,partner,,CNC Machining;Anodizing,Machining,5,X1,Kaohsiung,TW,,\n"
    "Bad Kind,robot,,welding,,,X2,Tainan,TW,,\n"
    "No Place,partner,,welding,,,X3,Atlantisville,TW,,\n"
    "Coords Co,affiliate,Formosa,anodizing,,,X4,,,22.1,120.2\n"
    "Bad Capacity,partner,,welding,,lots,X5,Tainan,TW,,\n"
)


def run_import(app, tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return app.test_cli_runner().invoke(args=["import-organizations", str(path)])


def test_csv_import_creates_good_rows_and_reports_each_rejected_line(app, session, tmp_path):
    result = run_import(app, tmp_path, "firms.csv", CSV)
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, rejected 3" in result.output
    assert "line 3: rejected: kind" in result.output
    assert "line 4: rejected: offices.0.city" in result.output
    assert "line 6: rejected: capacity" in result.output
    names = set(session.scalars(select(Organization.name)))
    assert names == {"Harbor Works", "Coords Co"}
    harbor = session.scalar(select(Organization).where(Organization.external_ref == "X1"))
    assert harbor.skills == ["cnc-machining", "anodizing"]
    assert abs(harbor.offices[0].latitude - 22.6) < 0.2
    assert harbor.stats.open_referrals == 0
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_import_again_updates_by_external_ref(app, session, tmp_path):
    run_import(app, tmp_path, "a.csv", CSV)
    lines = [
        json.dumps({"name": "Harbor Works Renamed", "kind": "partner", "external_ref": "X1",
                    "skills": ["welding"],
                    "offices": [{"city": "Taichung", "country": "TW"}]}),
        "{not json",
        json.dumps({"name": "Fresh", "kind": "partner",
                    "offices": [{"latitude": 25.03, "longitude": 121.56}]}),
        json.dumps(["a list"]),
    ]
    result = run_import(app, tmp_path, "b.jsonl", "\n".join(lines) + "\n")
    assert "created 1, updated 1, rejected 2" in result.output, result.output
    assert "line 2: rejected: not valid JSON" in result.output
    harbor = session.scalar(select(Organization).where(Organization.external_ref == "X1"))
    assert harbor.name == "Harbor Works Renamed"
    assert harbor.skills == ["welding"]
    assert harbor.version == 2
    assert session.scalar(select(func.count()).select_from(Office)
                          .where(Office.organization_id == harbor.id)) == 1
    assert session.scalar(select(func.count()).select_from(OrganizationSkill)
                          .where(OrganizationSkill.organization_id == harbor.id)) == 1


def test_repeated_external_ref_in_one_file_is_rejected_not_doubled(app, session, tmp_path):
    row = {"name": "Twin", "kind": "partner", "external_ref": "T1",
           "offices": [{"latitude": 25.03, "longitude": 121.56}]}
    result = run_import(app, tmp_path, "t.jsonl", json.dumps(row) + "\n" + json.dumps(row) + "\n")
    assert "created 1, updated 0, rejected 1" in result.output
    assert session.scalar(select(func.count()).select_from(Organization)) == 1


def test_seed_demo_loads_once_and_prints_sign_in(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin@demo.example" in first.output
    assert "rk_" in first.output
    count = session.scalar(select(func.count()).select_from(Organization))
    assert count >= 24
    countries = set(session.scalars(select(Office.country)))
    assert {"TW", "JP", "SG"} <= countries
    second = runner.invoke(args=["seed-demo"])
    assert "already" in second.output
    assert session.scalar(select(func.count()).select_from(Organization)) == count


def test_create_api_key_prints_key_last_and_stores_only_a_hash(app, session):
    from models import ApiKey

    result = app.test_cli_runner().invoke(args=["create-api-key", "--name", "crm",
                                                "--role", "crm"])
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("rk_")
    stored = session.scalar(select(ApiKey))
    assert raw not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64
    with app.test_client() as client:
        ok = client.get("/api/v1/skills", headers={"Authorization": f"Bearer {raw}"})
        assert ok.status_code == 200


def test_partner_key_needs_an_existing_organization(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-api-key", "--name", "p", "--role", "partner"]).exit_code
    result = runner.invoke(args=["create-api-key", "--name", "p", "--role", "partner",
                                 "--organization", "999"])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_create_user_hashes_the_password(app, session, make_org):
    from models import User

    org = make_org()
    result = app.test_cli_runner().invoke(args=[
        "create-user", "--email", "Staff@Firm.example", "--role", "partner",
        "--organization", str(org["id"]), "--password", "correct horse"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User))
    assert user.email == "staff@firm.example"
    assert "correct horse" not in user.password_hash
