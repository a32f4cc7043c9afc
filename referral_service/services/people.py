"""People and departments of each organization, and whose work a caller may see.

Who sees what (SPEC section 9): admin and crm keys see everyone; a partner key its own
organization's people; a portal user who is a person sees their own work, their people's (the
people who report to them, at any depth) and, as a department's head, everyone in that
department and its sub-departments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Department, Organization, Person, User
from referral_service.services import audit
from referral_service.services.auth import Principal, require_staff
from referral_service.services.clients import ref_key
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.unit_of_work import writes


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
        raise NotFound(f"Person {person_id} does not exist.")
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
        query = query.where(Person.external_ref_key == ref_key(external_ref))
    rows, total = _page(session, query, Person.id, page, page_size)
    return _views(session, rows), total


@writes
def create_person(*, session: Session, data: dict[str, Any], actor: Principal) -> PersonView:
    """Create a person of the caller's (a partner's) or the named organization."""
    organization_id = _writable_organization(session, actor, data.get("organization_id"))
    values = {field: data.get(field) for field in PERSON_FIELDS}
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
        raise PreconditionFailed("The person changed since it was read (stale If-Match).")
    changes = _changes(person, data, PERSON_FIELDS)
    if changes:
        organization_id = person.organization_id
        _check_references(session, organization_id, data, PERSON_REFERENCES)
        if data.get("manager_id") is not None and "manager_id" in changes:
            _lock_hierarchy(session, organization_id)
            if _reaches(session, Person.manager_id, data["manager_id"], person.id):
                raise ValidationFailed("A person cannot be managed by someone they manage.", {
                    "manager_id": [f"Person {data['manager_id']} reports to person "
                                   f"{person.id} (or is them): that would be a cycle."]})
        key = ref_key(data["external_ref"]) if "external_ref" in data else person.external_ref_key
        _refuse_taken(session, Person, organization_id, key, person.id)

        def apply() -> None:
            for field in changes:
                setattr(person, field, data[field])
            person.external_ref_key = key

        _flush_unique(session, apply,
                      lambda: _refuse_taken(session, Person, organization_id, key, person.id))
        audit.record(session=session, actor=actor, action="person.update", object_type="person",
                     object_id=person.id, changes=changes)
    return _views(session, [person])[0]


def get_department(*, session: Session, department_id: int, actor: Principal) -> Department:
    """Return one department of an organization the caller may see (staff: any)."""
    department = session.get(Department, department_id)
    if department is None or not actor.can_see_organization(department.organization_id):
        raise NotFound(f"Department {department_id} does not exist.")
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
    return _page(session, query, Department.id, page, page_size)


@writes
def create_department(*, session: Session, data: dict[str, Any], actor: Principal) -> Department:
    """Create a department of the caller's (a partner's) or the named organization."""
    organization_id = _writable_organization(session, actor, data.get("organization_id"))
    values = {field: data.get(field) for field in DEPARTMENT_FIELDS}
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
        raise PreconditionFailed("The department changed since it was read (stale If-Match).")
    changes = _changes(department, data, DEPARTMENT_FIELDS)
    if not changes:
        return department
    organization_id = department.organization_id
    _check_references(session, organization_id, data, DEPARTMENT_REFERENCES)
    if data.get("parent_id") is not None and "parent_id" in changes:
        _lock_hierarchy(session, organization_id)
        if _reaches(session, Department.parent_id, data["parent_id"], department.id):
            raise ValidationFailed("A department cannot sit under its own sub-department.", {
                "parent_id": [f"Department {data['parent_id']} is under department "
                              f"{department.id} (or is it): that would be a cycle."]})
    key = ref_key(data["external_ref"]) if "external_ref" in data else department.external_ref_key
    name = data.get("name", department.name)

    def refuse_taken() -> None:
        _refuse_taken(session, Department, organization_id, key, department.id)
        _refuse_taken_name(session, organization_id, name, department.id)

    refuse_taken()

    def apply() -> None:
        for field in changes:
            setattr(department, field, data[field])
        department.external_ref_key = key

    _flush_unique(session, apply, refuse_taken)
    audit.record(session=session, actor=actor, action="department.update",
                 object_type="department", object_id=department.id, changes=changes)
    return department


def _writable_organization(session: Session, actor: Principal, organization_id: int | None) -> int:
    """Return the organization a new person or department belongs to, checked for the caller."""
    if actor.is_partner:
        if organization_id is not None and organization_id != actor.organization_id:
            raise Forbidden("A partner adds people and departments to its own organization only.")
        assert actor.organization_id is not None
        return actor.organization_id
    require_staff(actor)
    if organization_id is None:
        raise ValidationFailed("Name the organization.", {
            "organization_id": ["Required for admin and crm keys."]})
    if session.get(Organization, organization_id) is None:
        raise ValidationFailed("The organization does not exist.", {
            "organization_id": [f"No organization {organization_id}."]})
    return organization_id


def _check_references(
    session: Session, organization_id: int, values: dict[str, Any],
    references: dict[str, type[Person] | type[Department]],
) -> None:
    """Refuse (422, naming each field) a reference to nothing or to another organization."""
    errors = {}
    for field, model in references.items():
        target = values.get(field)
        if target is None:
            continue
        owner = session.scalar(select(model.organization_id).where(model.id == target))
        if owner != organization_id:
            noun = "person" if model is Person else "department"
            errors[field] = [f"No {noun} {target} in organization {organization_id}."]
    if errors:
        raise ValidationFailed("A reference names nothing in this organization.", errors)


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
        noun = "person" if model is Person else "department"
        raise Conflict(f"Another {noun} of the organization has external_ref {key!r}.",
                       existing_id=holder)


def _refuse_taken_name(
    session: Session, organization_id: int, name: str, own_id: int | None
) -> None:
    """Refuse (409, with the holder's id) a department name the organization already uses."""
    holder = session.scalar(select(Department.id).where(
        Department.organization_id == organization_id, Department.name == name))
    if holder is not None and holder != own_id:
        raise Conflict(f"The organization already has a department named {name!r}.",
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
    return {field: {"from": getattr(row, field), "to": data[field]} for field in fields
            if field in data and getattr(row, field) != data[field]}


def _fields(row: Person | Department, fields: tuple[str, ...]) -> dict[str, Any]:
    return {"organization_id": row.organization_id,
            **{field: getattr(row, field) for field in fields}}


def _page(session: Session, query: Any, order: Any, page: int, page_size: int
          ) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(order).offset((page - 1) * page_size)
                           .limit(page_size)).all()
    return list(rows), total


def _views(session: Session, people: list[Person]) -> list[PersonView]:
    """Return the people with whether each can sign in, in one query."""
    ids = [person.id for person in people]
    signing_in = set(session.scalars(select(User.person_id).where(User.person_id.in_(ids)))
                     ) if ids else set()
    return [PersonView(person, person.id in signing_in) for person in people]
