"""import-people: CSV, JSON lines or a JSON array; upserted by (organization, external_ref);
all or nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Department, Person


def run_import(app, tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return app.test_cli_runner().invoke(args=["import-people", str(path)])


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def people(session) -> dict[str, Person]:
    session.rollback()  # a fresh snapshot: the import committed in its own session
    return {person.external_ref: person for person in session.scalars(select(Person))}


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def firms(make_org):
    return (make_org(name="Harbor Works", external_ref="ORG-H")["id"],
            make_org(name="Coast Works", external_ref="ORG-C")["id"])


def test_csv_import_creates_people_departments_and_a_manager_defined_later(
        app, session, tmp_path, firms):
    harbor, coast = firms
    content = (
        "organization_external_ref,organization_id,name,email,external_ref,department,"
        "manager_external_ref,active\n"
        "ORG-H,,Ann Lee,ann@harbor.example,E-1,Sales,E-2,true\n"
        f",{harbor},  Bo Chen ,,E-2,Sales,,\n"
        "ORG-C,,Cy Wu,,E-1,Workshop,,no\n"
    )
    result = run_import(app, tmp_path, "people.csv", content)
    assert result.exit_code == 0, result.output
    assert "created 3, updated 0, unchanged 0, departments created 2" in result.output
    found = {(p.organization_id, p.external_ref): p
             for p in session.scalars(select(Person))}
    ann, bo, cy = found[(harbor, "E-1")], found[(harbor, "E-2")], found[(coast, "E-1")]
    assert ann.manager_id == bo.id and bo.manager_id is None
    assert bo.name == "Bo Chen" and ann.email == "ann@harbor.example"
    assert ann.department_id == bo.department_id != cy.department_id
    assert (ann.active, cy.active) == (True, False)
    assert {(d.organization_id, d.name) for d in session.scalars(select(Department))} == {
        (harbor, "Sales"), (coast, "Workshop")}
    assert count(session, AuditEntry, AuditEntry.action == "person.import") == 3
    assert count(session, AuditEntry, AuditEntry.action == "department.import") == 2


def test_import_again_updates_by_external_ref_and_keeps_what_a_record_leaves_out(
        app, session, tmp_path, firms):
    first = jsonl(
        {"organization_external_ref": "ORG-H", "name": "Ann", "external_ref": "E-1",
         "department": "Sales", "manager_external_ref": "E-2", "email": "ann@h.example"},
        {"organization_external_ref": "ORG-H", "name": "Bo", "external_ref": "E-2"})
    assert run_import(app, tmp_path, "a.jsonl", first).exit_code == 0
    before = people(session)
    second = jsonl(
        # The CRM id in another case is the same person; no department or manager given: kept.
        {"organization_external_ref": "ORG-H", "name": "Ann Lee", "external_ref": "e-1 "},
        {"organization_external_ref": "ORG-H", "name": "Bo", "external_ref": "E-2"},
        {"organization_external_ref": "ORG-H", "name": "Di", "external_ref": "E-3",
         "department": "sales", "manager_external_ref": "E-1"})
    result = run_import(app, tmp_path, "b.jsonl", second)
    assert result.exit_code == 0, result.output
    assert "created 1, updated 1, unchanged 1, departments created 0" in result.output
    after = {person.id: person for person in people(session).values()}
    ann = after[before["E-1"].id]
    # Version 1 created, 2 its manager (the second pass), 3 this import.
    assert (ann.name, ann.external_ref, ann.version) == ("Ann Lee", "e-1", 3)
    assert ann.department_id == before["E-1"].department_id
    assert ann.manager_id == before["E-2"].id
    di = next(p for p in after.values() if p.external_ref == "E-3")
    assert di.department_id == ann.department_id  # "sales" is the existing "Sales"
    assert di.manager_id == ann.id


def test_a_json_array_file_is_read_with_the_line_of_each_item(app, session, tmp_path, firms):
    content = ('[\n  {"organization_external_ref": "ORG-H", "name": "Ann", "external_ref": "A"},'
               '\n  {"organization_external_ref": "ORG-H", "name": "", "external_ref": "B"}\n]\n')
    result = run_import(app, tmp_path, "people.json", content)
    assert result.exit_code != 0
    assert "line 3: rejected: name" in result.output
    content = content.replace('"name": ""', '"name": "Bo"')
    result = run_import(app, tmp_path, "people.json", content)
    assert result.exit_code == 0, result.output
    assert set(people(session)) == {"A", "B"}


def test_a_bad_file_writes_nothing_and_reports_every_bad_line(app, session, tmp_path, firms):
    harbor, _ = firms
    existing = jsonl({"organization_id": harbor, "name": "Zed", "external_ref": "Z"})
    assert run_import(app, tmp_path, "z.jsonl", existing).exit_code == 0
    audit_before = count(session, AuditEntry)
    content = jsonl(
        {"organization_external_ref": "ORG-H", "name": "Ann", "external_ref": "E-1",
         "department": "New Dept", "manager_external_ref": "z"},        # 1 good
        {"organization_external_ref": "ORG-NOPE", "name": "Bo", "external_ref": "E-2"},  # 2
        {"organization_id": harbor, "name": "Cy", "external_ref": "e-1"},  # 3 duplicate
        {"organization_id": harbor, "name": "Di", "external_ref": "E-4",
         "manager_external_ref": "GHOST"},                                 # 4 unknown manager
        {"organization_id": harbor, "name": "Ed", "external_ref": "E-5",
         "email": "not-an-email"},                                         # 5 bad email
        {"organization_id": harbor, "name": "Fay", "external_ref": "E-6", "colour": "red"},
        {"name": "Gus", "external_ref": "E-7"},                            # 7 no organization
        {"organization_id": harbor, "name": "Hal", "external_ref": "E-8",
         "manager_external_ref": "e-8"},                                   # 8 own manager
    ) + "not json\n" + jsonl(
        {"organization_id": harbor, "name": "Zed", "external_ref": "Z", "active": False})
    result = run_import(app, tmp_path, "bad.jsonl", content)
    assert result.exit_code != 0
    for line, field in [(2, "organization_external_ref"), (3, "external_ref"),
                        (4, "manager_external_ref"), (5, "email"), (6, "colour"),
                        (7, "organization_id"), (8, "manager_external_ref"), (9, "not valid JSON")]:
        assert f"line {line}: rejected: {field}" in result.output, (line, result.output)
    assert "line 1:" not in result.output and "line 10:" not in result.output
    assert "nothing imported (bad lines: 8)" in result.output
    assert set(people(session)) == {"Z"} and people(session)["Z"].active is True
    assert count(session, Department) == 0
    assert count(session, AuditEntry) == audit_before


def test_a_manager_cycle_in_the_file_or_with_the_database_is_refused(
        app, session, tmp_path, firms):
    harbor, _ = firms
    base = jsonl({"organization_id": harbor, "name": "Boss", "external_ref": "B"},
                 {"organization_id": harbor, "name": "Ann", "external_ref": "A",
                  "manager_external_ref": "B"})
    assert run_import(app, tmp_path, "base.jsonl", base).exit_code == 0
    # The boss, now managed by Ann, who (in the database) reports to the boss.
    result = run_import(app, tmp_path, "cycle.jsonl", jsonl(
        {"organization_id": harbor, "name": "Boss", "external_ref": "B",
         "manager_external_ref": "A"}))
    assert result.exit_code != 0
    assert "line 1: rejected: manager_external_ref" in result.output
    # A three-person loop inside the file.
    result = run_import(app, tmp_path, "loop.jsonl", jsonl(
        {"organization_id": harbor, "name": "X", "external_ref": "X",
         "manager_external_ref": "Y"},
        {"organization_id": harbor, "name": "Y", "external_ref": "Y",
         "manager_external_ref": "Z"},
        {"organization_id": harbor, "name": "Z", "external_ref": "Z",
         "manager_external_ref": "X"}))
    assert result.exit_code != 0
    assert all(f"line {n}: rejected: manager_external_ref" in result.output for n in (1, 2, 3))
    # Moving Ann under nobody and the boss under Ann, in one file, is fine.
    result = run_import(app, tmp_path, "swap.jsonl", jsonl(
        {"organization_id": harbor, "name": "Boss", "external_ref": "B",
         "manager_external_ref": "A"},
        {"organization_id": harbor, "name": "Ann", "external_ref": "A",
         "manager_external_ref": None}))
    assert result.exit_code == 0, result.output
    found = people(session)
    assert found["B"].manager_id == found["A"].id and found["A"].manager_id is None
