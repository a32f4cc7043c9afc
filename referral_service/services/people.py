"""People and departments of each organization, and whose work a caller may see.

Who sees what (SPEC section 9): admin and crm keys see everyone; a partner key its own
organization's people; a portal user who is a person sees their own work, their people's (the
people who report to them, at any depth) and, as a department's head, everyone in that
department and its sub-departments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, Person
from referral_service.services.auth import Principal
from referral_service.services.errors import NotFound


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
