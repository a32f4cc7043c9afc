"""People and departments of each organization, and whose work a caller may see.

Who sees what (SPEC section 9): admin and crm keys see everyone; a partner key its own
organization's people; a portal user who is a person sees their own work, their people's (the
people who report to them, at any depth) and, as a department's head, everyone in that
department and its sub-departments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import AuditEntry, Department, Organization, Person, User, utcnow
from referral_service.adapters import sql
from referral_service.schemas.people import PersonImportSchema
from referral_service.services import audit, auth, months, unit_of_work
from referral_service.services.auth import SYSTEM, Principal, require_staff
from referral_service.services.clients import ref_key
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.pages import page_of
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_


@dataclass(frozen=True)
class Scope:
    """The people whose visits and leads a caller may see.

    `organization_id` None: every organization (staff). `person_ids` None: everyone of the
    organization; else exactly these people.
    """

    organization_id: int | None
    person_ids: frozenset[int] | None

    def covers(self, organization_id: int, person_id: int) -> bool:
        """Return whether a record of this organization and person is visible."""
        if self.organization_id is not None and organization_id != self.organization_id:
            return False
        return self.person_ids is None or person_id in self.person_ids


def scope_of(*, session: Session, actor: Principal) -> Scope:
    """Return whose work the caller may see."""
    if actor.is_staff:
        return Scope(None, None)
    if actor.person_id is None:
        return Scope(actor.organization_id, None)
    return Scope(actor.organization_id,
                 frozenset(people_under(session=session, person_id=actor.person_id)))


def people_under(*, session: Session, person_id: int) -> set[int]:
    """Return the person, everyone reporting to them at any depth, and everyone in the
    departments (and sub-departments) they head."""
    seen = {person_id}
    departments = set(session.scalars(
        select(Department.id).where(Department.head_person_id == person_id)))
    frontier_departments = set(departments)
    while frontier_departments:
        children = set(session.scalars(
            select(Department.id).where(Department.parent_id.in_(frontier_departments))))
        frontier_departments = children - departments
        departments |= children
    if departments:
        seen |= set(session.scalars(
            select(Person.id).where(Person.department_id.in_(departments))))
    frontier = set(seen)
    while frontier:
        reports = set(session.scalars(select(Person.id).where(Person.manager_id.in_(frontier))))
        frontier = reports - seen
        seen |= reports
    return seen


def get_person(*, session: Session, person_id: int, actor: Principal) -> Person:
    """Return one person of an organization the caller may see (staff: any)."""
    person = session.get(Person, person_id)
    if person is None or not actor.can_see_organization(person.organization_id):
        raise NotFound(N_("Person %(person_id)s does not exist.", person_id=person_id))
    return person


# ------------------------------------------------------------------ people and departments
#
# Who writes (SPEC section 9): admin and crm keys any organization's people and departments, a
# partner its own. Every reference (department, manager, parent, head) stays inside the
# organization, which the composite foreign keys also hold. A CRM id (external_ref) and a
# department's name are unique in the organization: checked first for a clear 409 naming the
# holder, and held under concurrency by the unique constraints (the loser's IntegrityError is
# answered the same way). Cycles (A manages B manages A; a department under its own
# sub-department) are refused; a change of manager or parent first locks the organization's
# row, so that two concurrent changes cannot close a cycle between them (SQLite's BEGIN
# IMMEDIATE already serializes writers).

PERSON_FIELDS = ("name", "email", "external_ref", "department_id", "manager_id", "active")
DEPARTMENT_FIELDS = ("name", "parent_id", "head_person_id", "external_ref")
# The changes that move figures between a closed month's department and person rows: booked as
# corrections when they happen (months.book_org_chart_change).
ORG_CHART_PERSON_FIELDS = frozenset({"department_id", "manager_id", "active"})
ORG_CHART_DEPARTMENT_FIELDS = frozenset({"parent_id", "head_person_id"})
# What each reference must be: a row of this model in the same organization.
PERSON_REFERENCES = {"department_id": Department, "manager_id": Person}
DEPARTMENT_REFERENCES = {"parent_id": Department, "head_person_id": Person}


@dataclass(frozen=True)
class PersonView:
    """A person as the API shows them: the row, and whether a portal user signs in as them."""

    person: Person
    can_sign_in: bool


def get_person_view(*, session: Session, person_id: int, actor: Principal) -> PersonView:
    """Return one person the caller may see, with whether they can sign in."""
    return _views(session, [get_person(session=session, person_id=person_id, actor=actor)])[0]


def list_people(
    *, session: Session, actor: Principal, page: int, page_size: int,
    organization_id: int | None = None, department_id: int | None = None,
    manager_id: int | None = None, active: bool | None = None, external_ref: str | None = None,
) -> tuple[list[PersonView], int]:
    """Return one page of the people the caller may see, and the total."""
    query = select(Person)
    if actor.is_partner:
        query = query.where(Person.organization_id == actor.organization_id)
    if organization_id is not None:
        query = query.where(Person.organization_id == organization_id)
    if department_id is not None:
        query = query.where(Person.department_id == department_id)
    if manager_id is not None:
        query = query.where(Person.manager_id == manager_id)
    if active is not None:
        query = query.where(Person.active.is_(active))
    if external_ref is not None:
        # A blank one names nobody (not the people without a CRM id).
        query = query.where(Person.external_ref_key == (ref_key(external_ref) or ""))
    rows, total = page_of(session, query, Person.id, page=page, page_size=page_size)
    return _views(session, rows), total


@writes
def create_person(*, session: Session, data: dict[str, Any], actor: Principal) -> PersonView:
    """Create a person of the caller's (a partner's) or the named organization."""
    organization_id = _writable_organization(session, actor, data.get("organization_id"))
    values = {column: data.get(column) for column in PERSON_FIELDS}
    values["active"] = data.get("active", True)
    _check_references(session, organization_id, values, PERSON_REFERENCES)
    key = ref_key(values["external_ref"])
    _refuse_taken(session, Person, organization_id, key, None)
    person = Person(organization_id=organization_id, external_ref_key=key, **values)
    _flush_unique(session, lambda: session.add(person),
                  lambda: _refuse_taken(session, Person, organization_id, key, None))
    audit.record(session=session, actor=actor, action="person.create", object_type="person",
                 object_id=person.id, changes=_fields(person, PERSON_FIELDS))
    return _views(session, [person])[0]


@writes
def update_person(
    *, session: Session, person_id: int, data: dict[str, Any], actor: Principal,
    expected_version: int | None = None,
) -> PersonView:
    """Change some fields of a person; with `expected_version`, refuse a stale one (412)."""
    person = get_person(session=session, person_id=person_id, actor=actor)
    if expected_version is not None and person.version != expected_version:
        raise PreconditionFailed(N_("The person changed since it was read (stale If-Match)."))
    changes = _changes(person, data, PERSON_FIELDS)
    if changes:
        organization_id = person.organization_id
        _check_references(session, organization_id, data, PERSON_REFERENCES)
        if data.get("manager_id") is not None and "manager_id" in changes:
            _lock_hierarchy(session, organization_id)
            if _reaches(session, Person.manager_id, data["manager_id"], person.id):
                raise ValidationFailed(N_("A person cannot be managed by someone they manage."), {
                    "manager_id": [N_("Person %(manager_id)s reports to person %(id)s (or is "
                                      "them): that would be a cycle.",
                                      manager_id=data["manager_id"], id=person.id)]})
        key = ref_key(data["external_ref"]) if "external_ref" in data else person.external_ref_key
        _refuse_taken(session, Person, organization_id, key, person.id)

        def apply() -> None:
            for column in changes:
                setattr(person, column, data[column])
            person.external_ref_key = key

        _flush_unique(session, apply,
                      lambda: _refuse_taken(session, Person, organization_id, key, person.id))
        audit.record(session=session, actor=actor, action="person.update", object_type="person",
                     object_id=person.id, changes=changes)
        if changes.keys() & ORG_CHART_PERSON_FIELDS:
            months.book_org_chart_change(session=session, organization_id=organization_id,
                                         actor=actor)
        if "active" in changes:
            # Deactivated or back again: no session begun before counts (docs/SECURITY.md).
            user_id = session.scalar(select(User.id).where(User.person_id == person.id))
            if user_id is not None:
                auth.end_sessions(session=session, user_id=user_id, actor=actor,
                                  reason="person deactivated" if not person.active
                                  else "person reactivated")
    return _views(session, [person])[0]


def get_department(*, session: Session, department_id: int, actor: Principal) -> Department:
    """Return one department of an organization the caller may see (staff: any)."""
    department = session.get(Department, department_id)
    if department is None or not actor.can_see_organization(department.organization_id):
        raise NotFound(N_("Department %(department_id)s does not exist.",
                          department_id=department_id))
    return department


def list_departments(
    *, session: Session, actor: Principal, page: int, page_size: int,
    organization_id: int | None = None, parent_id: int | None = None,
) -> tuple[list[Department], int]:
    """Return one page of the departments the caller may see, and the total."""
    query = select(Department)
    if actor.is_partner:
        query = query.where(Department.organization_id == actor.organization_id)
    if organization_id is not None:
        query = query.where(Department.organization_id == organization_id)
    if parent_id is not None:
        query = query.where(Department.parent_id == parent_id)
    return page_of(session, query, Department.id, page=page, page_size=page_size)


@writes
def create_department(*, session: Session, data: dict[str, Any], actor: Principal) -> Department:
    """Create a department of the caller's (a partner's) or the named organization."""
    organization_id = _writable_organization(session, actor, data.get("organization_id"))
    values = {column: data.get(column) for column in DEPARTMENT_FIELDS}
    _check_references(session, organization_id, values, DEPARTMENT_REFERENCES)
    key = ref_key(values["external_ref"])

    def refuse_taken() -> None:
        _refuse_taken(session, Department, organization_id, key, None)
        _refuse_taken_name(session, organization_id, values["name"], None)

    refuse_taken()
    department = Department(organization_id=organization_id, external_ref_key=key, **values)
    _flush_unique(session, lambda: session.add(department), refuse_taken)
    audit.record(session=session, actor=actor, action="department.create",
                 object_type="department", object_id=department.id,
                 changes=_fields(department, DEPARTMENT_FIELDS))
    return department


@writes
def update_department(
    *, session: Session, department_id: int, data: dict[str, Any], actor: Principal,
    expected_version: int | None = None,
) -> Department:
    """Change some fields of a department; with `expected_version`, refuse a stale one (412)."""
    department = get_department(session=session, department_id=department_id, actor=actor)
    if expected_version is not None and department.version != expected_version:
        raise PreconditionFailed(N_("The department changed since it was read (stale If-Match)."))
    changes = _changes(department, data, DEPARTMENT_FIELDS)
    if not changes:
        return department
    organization_id = department.organization_id
    _check_references(session, organization_id, data, DEPARTMENT_REFERENCES)
    if data.get("parent_id") is not None and "parent_id" in changes:
        _lock_hierarchy(session, organization_id)
        if _reaches(session, Department.parent_id, data["parent_id"], department.id):
            raise ValidationFailed(N_("A department cannot sit under its own sub-department."), {
                "parent_id": [N_("Department %(parent_id)s is under department %(id)s (or "
                                 "is it): that would be a cycle.",
                                 parent_id=data["parent_id"], id=department.id)]})
    key = ref_key(data["external_ref"]) if "external_ref" in data else department.external_ref_key
    name = data.get("name", department.name)

    def refuse_taken() -> None:
        _refuse_taken(session, Department, organization_id, key, department.id)
        _refuse_taken_name(session, organization_id, name, department.id)

    refuse_taken()

    def apply() -> None:
        for column in changes:
            setattr(department, column, data[column])
        department.external_ref_key = key

    _flush_unique(session, apply, refuse_taken)
    audit.record(session=session, actor=actor, action="department.update",
                 object_type="department", object_id=department.id, changes=changes)
    if changes.keys() & ORG_CHART_DEPARTMENT_FIELDS:
        months.book_org_chart_change(session=session, organization_id=organization_id,
                                     actor=actor)
    return department


def _writable_organization(session: Session, actor: Principal, organization_id: int | None) -> int:
    """Return the organization a new person or department belongs to, checked for the caller."""
    if actor.is_partner:
        if organization_id is not None and organization_id != actor.organization_id:
            raise Forbidden(N_("A partner adds people and departments to its own organization "
                               "only."))
        assert actor.organization_id is not None
        return actor.organization_id
    require_staff(actor)
    if organization_id is None:
        raise ValidationFailed(N_("Name the organization."), {
            "organization_id": [N_("Required for admin and crm keys.")]})
    if session.get(Organization, organization_id) is None:
        raise ValidationFailed(N_("The organization does not exist."), {
            "organization_id": [N_("No organization %(organization_id)s.",
                                   organization_id=organization_id)]})
    return organization_id


def _check_references(
    session: Session, organization_id: int, values: dict[str, Any],
    references: dict[str, type[Person] | type[Department]],
) -> None:
    """Refuse (422, naming each field) a reference to nothing or to another organization."""
    errors = {}
    for column, model in references.items():
        target = values.get(column)
        if target is None:
            continue
        owner = session.scalar(select(model.organization_id).where(model.id == target))
        if owner != organization_id:
            noun = N_("person") if model is Person else N_("department")
            errors[column] = [N_("No %(noun)s %(target)s in organization %(organization_id)s.",
                                 noun=noun, target=target, organization_id=organization_id)]
    if errors:
        raise ValidationFailed(N_("A reference names nothing in this organization."), errors)


def _refuse_taken(
    session: Session, model: type[Person] | type[Department], organization_id: int,
    key: str | None, own_id: int | None,
) -> None:
    """Refuse (409, with the holder's id) a CRM id another row of the organization has."""
    if key is None:
        return
    holder = session.scalar(select(model.id).where(model.organization_id == organization_id,
                                                   model.external_ref_key == key))
    if holder is not None and holder != own_id:
        noun = N_("person") if model is Person else N_("department")
        raise Conflict(N_("Another %(noun)s of the organization has external_ref "
                          "%(key)r.", noun=noun, key=key),
                       existing_id=holder)


def _refuse_taken_name(
    session: Session, organization_id: int, name: str, own_id: int | None
) -> None:
    """Refuse (409, with the holder's id) a department name the organization already uses."""
    holder = session.scalar(select(Department.id).where(
        Department.organization_id == organization_id, Department.name == name))
    if holder is not None and holder != own_id:
        raise Conflict(N_("The organization already has a department named %(name)r.", name=name),
                       existing_id=holder)


def _flush_unique(session: Session, change: Callable[[], None],
                  refuse_taken: Callable[[], None]) -> None:
    """Make `change` and flush it in a savepoint; a unique constraint that a concurrent
    transaction won is answered by `refuse_taken` (a Conflict naming the winner)."""
    try:
        # The change is made inside the savepoint: begin_nested flushes what is pending first.
        with session.begin_nested():
            change()
    except IntegrityError:
        refuse_taken()
        raise


def _lock_hierarchy(session: Session, organization_id: int) -> None:
    """Lock the organization's row until the commit: changes of manager or parent queue."""
    session.scalar(select(Organization.id).where(Organization.id == organization_id)
                   .with_for_update())


def _reaches(session: Session, up: Any, start: int, target: int) -> bool:
    """Return whether following `up` (manager_id, parent_id) from `start` reaches `target`."""
    seen: set[int] = set()
    current: int | None = start
    model = up.class_
    while current is not None and current not in seen:
        if current == target:
            return True
        seen.add(current)
        current = session.scalar(select(up).where(model.id == current))
    return False


def _changes(row: Person | Department, data: dict[str, Any],
             fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Return the audit diff {field: {"from", "to"}} of applying `data` to `row`."""
    return {column: {"from": getattr(row, column), "to": data[column]} for column in fields
            if column in data and getattr(row, column) != data[column]}


def _fields(row: Person | Department, fields: tuple[str, ...]) -> dict[str, Any]:
    return {"organization_id": row.organization_id,
            **{column: getattr(row, column) for column in fields}}


def _views(session: Session, people: list[Person]) -> list[PersonView]:
    """Return the people with whether each can sign in, in one query."""
    ids = [person.id for person in people]
    signing_in = set(session.scalars(select(User.person_id).where(User.person_id.in_(ids)))
                     ) if ids else set()
    return [PersonView(person, person.id in signing_in) for person in people]


# ---------------------------------------------------------------------------- import-people


@dataclass
class PeopleImport:
    """What import-people did: counts, or (nothing written) the reason for every bad line."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    departments_created: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Line:
    """One checked record of the file: its organization and the CRM id's key."""

    number: int
    organization_id: int
    key: str
    data: dict[str, Any]


# A person in the manager graph of an import: ("ref", organization, key) for the file's people,
# ("id", person id) for the others.
_Node = tuple[Any, ...]


def import_people(
    *, session: Session, records: Iterable[tuple[int, Any]], actor: Principal = SYSTEM,
) -> PeopleImport:
    """Create or update people by (organization, external_ref) from (line number, record) pairs.

    All or nothing: every line is checked first (the schema, the organization, duplicates in
    the file, the manager, manager cycles); with any bad line nothing is written and every
    bad line is reported. Otherwise one unit of work creates the departments named but
    missing, then the people (an existing one updated with the fields its record gives),
    then sets managers: a second pass, so that a manager may come later in the file.
    """
    schema = PersonImportSchema()
    loaded: list[tuple[int, dict[str, Any]]] = []
    problems: dict[int, list[str]] = {}
    for number, raw in records:
        if isinstance(raw, Exception):
            problems[number] = [str(raw)]
        elif not isinstance(raw, dict):
            problems[number] = ["a record must be a JSON object"]
        else:
            try:
                loaded.append((number, schema.load(raw)))
            except ValidationError as error:
                problems[number] = [_describe(error.messages)]
    return unit_of_work.run(session, lambda: _import_people(session, loaded, problems, actor))


def _import_people(
    session: Session, loaded: list[tuple[int, dict[str, Any]]],
    schema_problems: dict[int, list[str]], actor: Principal,
) -> PeopleImport:
    problems = {number: list(messages) for number, messages in schema_problems.items()}

    def refuse(number: int, message: str) -> None:
        problems.setdefault(number, []).append(message)

    lines = _with_organizations(session, loaded, refuse)
    organizations = {line.organization_id for line in lines}
    staff = list(session.scalars(select(Person).where(
        Person.organization_id.in_(organizations)))) if organizations else []
    existing = {(p.organization_id, p.external_ref_key): p for p in staff if p.external_ref_key}
    in_file: dict[tuple[int, str], _Line] = {}
    for line in lines:
        first = in_file.setdefault((line.organization_id, line.key), line)
        if first is not line:
            refuse(line.number, f"external_ref: {line.data['external_ref']!r} is also on line "
                                f"{first.number}")
    for line in lines:
        manager = _manager_key(line)
        if manager is None:
            continue
        if manager == line.key:
            refuse(line.number, "manager_external_ref: a person cannot manage themselves")
        elif ((line.organization_id, manager) not in in_file
              and (line.organization_id, manager) not in existing):
            refuse(line.number, f"manager_external_ref: no person "
                                f"{line.data['manager_external_ref']!r} in the organization "
                                "or the file")
    if not problems:
        for line in _in_cycles(lines, staff, in_file, existing):
            refuse(line.number, "manager_external_ref: the managers in the file would make a "
                                "cycle (someone managing their own manager)")
    if problems:
        return PeopleImport(rejected=[(number, "; ".join(problems[number]))
                                      for number in sorted(problems)])
    try:
        return _write_people(session, lines, in_file, existing, actor)
    except IntegrityError:
        raise Conflict(N_("People or departments of these organizations were written meanwhile; "
                          "run the import again.")) from None


def _with_organizations(
    session: Session, loaded: list[tuple[int, dict[str, Any]]],
    refuse: Callable[[int, str], None],
) -> list[_Line]:
    """Return the records whose organization exists, each with it; refuse the others."""
    refs = {data["organization_external_ref"] for _, data in loaded
            if "organization_external_ref" in data}
    ids = {data["organization_id"] for _, data in loaded if "organization_id" in data}
    by_ref = dict(session.execute(
        select(Organization.external_ref, Organization.id)
        .where(Organization.external_ref.in_(refs))).all()) if refs else {}
    known = set(session.scalars(select(Organization.id).where(Organization.id.in_(ids)))
                ) if ids else set()
    lines = []
    for number, data in loaded:
        if "organization_id" in data:
            organization_id = data["organization_id"] if data["organization_id"] in known else None
            named = f"organization_id: no organization {data['organization_id']}"
        else:
            organization_id = by_ref.get(data["organization_external_ref"])
            named = (f"organization_external_ref: no organization "
                     f"{data['organization_external_ref']!r}")
        key = ref_key(data["external_ref"])
        if organization_id is None:
            refuse(number, named)
        else:
            assert key is not None  # the schema refuses a blank external_ref
            lines.append(_Line(number, organization_id, key, data))
    return lines


def _manager_key(line: _Line) -> str | None:
    return ref_key(line.data.get("manager_external_ref"))


def _in_cycles(
    lines: list[_Line], staff: list[Person], in_file: dict[tuple[int, str], _Line],
    existing: dict[tuple[int, str], Person],
) -> list[_Line]:
    """Return the file's lines whose person would manage, at some depth, their own manager."""
    by_id = {person.id: person for person in staff}

    def node_of_id(person_id: int | None) -> _Node | None:
        if person_id is None:
            return None
        person = by_id[person_id]
        key = (person.organization_id, person.external_ref_key)
        return ("ref", *key) if key in in_file else ("id", person_id)

    def manager_of(node: _Node) -> _Node | None:
        if node[0] == "id":
            return node_of_id(by_id[node[1]].manager_id)
        line = in_file[(node[1], node[2])]
        if "manager_external_ref" not in line.data:  # kept as it is
            person = existing.get((node[1], node[2]))
            return node_of_id(person.manager_id) if person else None
        manager = _manager_key(line)
        if manager is None:
            return None
        if (node[1], manager) in in_file:
            return ("ref", node[1], manager)
        return node_of_id(existing[(node[1], manager)].id)

    found = []
    for line in lines:
        start: _Node = ("ref", line.organization_id, line.key)
        seen = {start}
        current = manager_of(start)
        while current is not None and current not in seen:
            seen.add(current)
            current = manager_of(current)
        if current == start:
            found.append(line)
    return found


def _write_people(
    session: Session, lines: list[_Line], in_file: dict[tuple[int, str], _Line],
    existing: dict[tuple[int, str], Person], actor: Principal,
) -> PeopleImport:
    report = PeopleImport()
    now = utcnow()
    audit_rows: list[dict[str, Any]] = []
    departments = _departments_for(session, lines, report, audit_rows, actor)
    changes: dict[tuple[int, str], dict[str, Any]] = {}
    people: dict[tuple[int, str], Person] = {}
    for line in lines:
        data, key = line.data, (line.organization_id, line.key)
        values = {column: data[column] for column in ("name", "email", "external_ref", "active")
                  if column in data}
        if "department" in data:
            values["department_id"] = (None if data["department"] is None else departments[
                (line.organization_id, data["department"].casefold())].id)
        person = existing.get(key)
        if person is None:
            person = Person(organization_id=line.organization_id, external_ref_key=line.key,
                            **{"active": True, **values})
            session.add(person)
            changes[key] = {"created": True}
        else:
            changes[key] = _changes(person, values, PERSON_FIELDS)
            for name in changes[key]:
                setattr(person, name, values[name])
        people[key] = person
    session.flush()
    for line in lines:  # managers, now that everyone in the file has an id
        if "manager_external_ref" not in line.data:
            continue
        manager = _manager_key(line)
        person = people[(line.organization_id, line.key)]
        manager_id = None if manager is None else (
            people.get((line.organization_id, manager))
            or existing[(line.organization_id, manager)]).id
        if person.manager_id != manager_id:
            changed = changes[(line.organization_id, line.key)]
            if "created" not in changed:
                changed["manager_id"] = {"from": person.manager_id, "to": manager_id}
            person.manager_id = manager_id
    session.flush()
    for key, person in people.items():
        changed = changes[key]
        if "created" in changed:
            report.created += 1
            changed = _fields(person, PERSON_FIELDS)
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
            continue
        audit_rows.append(audit.entry(actor=actor, action="person.import", object_type="person",
                                      object_id=person.id, changes=changed, at=now)[1])
    if audit_rows:
        sql.insert_many(session, {AuditEntry: audit_rows})
    return report


def _departments_for(
    session: Session, lines: list[_Line], report: PeopleImport,
    audit_rows: list[dict[str, Any]], actor: Principal,
) -> dict[tuple[int, str], Department]:
    """Return the departments the file names, by (organization, case-folded name); create
    those missing."""
    named = {(line.organization_id, line.data["department"].casefold()): line.data["department"]
             for line in reversed(lines) if line.data.get("department") is not None}
    if not named:
        return {}
    found: dict[tuple[int, str], Department] = {}
    for department in session.scalars(select(Department).where(
            Department.organization_id.in_({organization for organization, _ in named}))):
        found.setdefault((department.organization_id, department.name.casefold()), department)
    new = [Department(organization_id=organization, name=name)
           for (organization, folded), name in named.items() if (organization, folded)
           not in found]
    if new:
        session.add_all(new)
        session.flush()
        for department in new:
            found[(department.organization_id, department.name.casefold())] = department
            audit_rows.append(audit.entry(
                actor=actor, action="department.import", object_type="department",
                object_id=department.id, changes=_fields(department, DEPARTMENT_FIELDS))[1])
        report.departments_created = len(new)
    return found


def _describe(messages: Any) -> str:
    """Flatten a schema's messages into 'field: message; ...'."""
    if not isinstance(messages, dict):
        return str(messages)
    return "; ".join(f"{name}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                     for name, value in messages.items())
