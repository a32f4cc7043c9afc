"""People and departments as use cases: rights, references, cycles, all-or-nothing imports."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Person
from referral_service.adapters import import_files
from referral_service.db import new_session
from referral_service.services import people
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed


@pytest.fixture
def firms(make_org):
    return make_org(name="Harbor Works")["id"], make_org(name="Coast Works")["id"]


@pytest.fixture
def write(app):
    """A write session, as a request or the CLI has."""
    db_session = new_session(app, write=True)
    yield db_session
    db_session.close()


def partner_of(organization_id: int) -> Principal:
    return Principal(name="partner", role="partner", organization_id=organization_id)


def add(write, organization_id: int, name: str, actor: Principal = SYSTEM, **extra) -> int:
    view = people.create_person(session=write, actor=actor,
                                data={"organization_id": organization_id, "name": name, **extra})
    return view.person.id


def test_a_partner_creates_only_in_its_own_organization(write, firms):
    harbor, coast = firms
    view = people.create_person(session=write, data={"name": "Ann"}, actor=partner_of(harbor))
    assert view.person.organization_id == harbor and view.can_sign_in is False
    with pytest.raises(Forbidden):
        people.create_department(session=write, data={"name": "Ops", "organization_id": coast},
                                 actor=partner_of(harbor))
    with pytest.raises(NotFound):
        people.update_person(session=write, person_id=add(write, coast, "Cy"),
                             data={"name": "Mine"}, actor=partner_of(harbor))


def test_a_long_chain_cannot_be_closed_into_a_cycle(write, firms):
    ids = [add(write, firms[0], "Person 0")]
    for number in range(1, 30):
        ids.append(add(write, firms[0], f"Person {number}", manager_id=ids[-1]))
    with pytest.raises(ValidationFailed) as refused:
        people.update_person(session=write, person_id=ids[0], data={"manager_id": ids[-1]},
                             actor=SYSTEM)
    assert set(refused.value.errors) == {"manager_id"}
    moved = people.update_person(session=write, person_id=ids[-1], data={"manager_id": ids[0]},
                                 actor=SYSTEM)
    assert moved.person.manager_id == ids[0] and moved.person.version == 2


def test_a_refused_write_leaves_nothing_behind(write, session, firms):
    add(write, firms[0], "Ann", external_ref="CRM-1")
    audit_before = session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(Conflict) as conflict:
        add(write, firms[0], "Twin", external_ref="crm-1")
    assert conflict.value.extra["existing_id"] > 0
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Person)) == 1
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audit_before


def test_lists_keep_a_partner_to_its_own_organization(write, session, firms):
    harbor, coast = firms
    add(write, harbor, "Ann")
    add(write, coast, "Cy")
    mine, total = people.list_people(session=session, actor=partner_of(harbor), page=1,
                                     page_size=50)
    assert ([view.person.name for view in mine], total) == (["Ann"], 1)
    theirs, total = people.list_people(session=session, actor=partner_of(harbor), page=1,
                                       page_size=50, organization_id=coast)
    assert (theirs, total) == ([], 0)


def test_import_records_resolve_a_manager_later_in_the_file(write, session, firms):
    harbor, _ = firms
    records = [
        (1, {"organization_id": harbor, "name": "Ann", "external_ref": "A",
             "manager_external_ref": "B"}),
        (2, {"organization_id": harbor, "name": "Bo", "external_ref": "B"}),
    ]
    report = people.import_people(session=write, records=records)
    assert (report.created, report.updated, report.rejected) == (2, 0, [])
    found = {p.external_ref: p for p in session.scalars(select(Person))}
    assert found["A"].manager_id == found["B"].id


def test_import_reports_unreadable_records_and_writes_nothing(write, session, firms):
    records = [(1, {"organization_id": firms[0], "name": "Ann", "external_ref": "A"}),
               (2, ValueError("not valid JSON (Expecting value)")), (3, ["a", "list"])]
    report = people.import_people(session=write, records=records)
    assert [number for number, _ in report.rejected] == [2, 3]
    assert report.created == 0
    assert session.scalar(select(func.count()).select_from(Person)) == 0


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("p.csv", "name,external_ref,active,organization_id\nAnn, A ,Yes,1\nBo,B,,2\n",
     [(2, {"name": "Ann", "external_ref": "A", "active": True, "organization_id": "1"}),
      (3, {"name": "Bo", "external_ref": "B", "organization_id": "2"})]),
    ("p.jsonl", '{"name": "Ann"}\n\n{"name": "Bo"}\n',
     [(1, {"name": "Ann"}), (3, {"name": "Bo"})]),
    ("p.json", '[{"name": "Ann"},\n\n {"name": "Bo"}]',
     [(1, {"name": "Ann"}), (3, {"name": "Bo"})]),
])
def test_people_files_are_read_with_line_numbers(name, content, expected):
    assert list(import_files.read_people(io.StringIO(content), name)) == expected


def test_a_broken_json_array_says_where():
    read = list(import_files.read_people(io.StringIO('[{"name": "Ann"},\n {"name": }]'),
                                         "p.json"))
    assert read[0] == (1, {"name": "Ann"})
    assert read[1][0] == 2 and isinstance(read[1][1], ValueError)
