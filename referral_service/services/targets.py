"""KPI targets agreed between two sides (SPEC section 10): proposals, counters and decisions.

Every target has two sides. The **holder** answers for it and the **counterpart** agrees it:
- a person's target: the person (a portal user who is them) and their manager (a portal user
  who is the manager);
- a department's target (its head's): the department's head and the head's manager;
- an organization's target: the firm (a partner key or user of it) and head office.
Head office (admin and crm) may also act as the counterpart of any scope.

One side proposes; only the other side agrees, counters (which closes the proposal as
`countered` and opens the counter-proposal, `counter_of_id`, from the other side) or
declines; the proposing side may withdraw. Agreeing writes the scope's KpiTarget for the month
(`agreed_by`, `proposal_id`): only an agreed value is a KPI row's target.

Concurrency, held by the database: at most one proposal per scope and month is open, by the
partial unique index `uq_kpi_target_proposals_open` (two proposals, or a counter and a new
proposal, at once: the second is a 409 naming the open one). A decision first locks the
proposal's row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes
writers) and the version column guards the update, so two decisions at once (two counters,
agree and counter) leave one winner and a 409 carrying the proposal's status to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import Department, KpiTarget, KpiTargetProposal, Organization, Person, utcnow
from referral_service.schemas.targets import MAX_TARGET, TargetProposalDetailSchema
from referral_service.services import audit, events, months, people
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral_service.services.pages import page_of
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_

HOLDER, COUNTERPART = "holder", "counterpart"
OPEN = "proposed"
# Which side may take each decision on an open proposal: the other side, or (withdraw) its own.
DECISIONS = {"agree": "agreed", "decline": "declined", "withdraw": "withdrawn"}
_DETAIL = TargetProposalDetailSchema()


@dataclass(frozen=True)
class ScopeSides:
    """A scope that exists, its organization, and the people on each side (None: nobody
    particular; for an organization the firm and head office)."""

    scope: str
    scope_id: int
    organization_id: int
    holder_person_id: int | None
    counterpart_person_id: int | None

    def sides_of(self, actor: Principal) -> frozenset[str]:
        """Return the sides the caller may speak for."""
        sides = set()
        if actor.is_staff:
            sides.add(COUNTERPART)  # head office, for any scope
        if actor.organization_id != self.organization_id:
            return frozenset(sides)
        if self.scope == "organization":
            if actor.is_partner:
                sides.add(HOLDER)
        elif actor.person_id is not None:
            if actor.person_id == self.holder_person_id:
                sides.add(HOLDER)
            if actor.person_id == self.counterpart_person_id:
                sides.add(COUNTERPART)
        return frozenset(sides)


@dataclass(frozen=True)
class ProposalView:
    """A proposal and its history: every proposal of its chain of counters, oldest first."""

    proposal: KpiTargetProposal
    history: list[KpiTargetProposal]


def other(side: str) -> str:
    """Return the other side."""
    return COUNTERPART if side == HOLDER else HOLDER


def scope_sides(*, session: Session, scope: str, scope_id: int, actor: Principal) -> ScopeSides:
    """Return the scope with its two sides; a scope that does not exist, or of a firm the
    caller may not see, is a 422 naming scope_id."""
    missing = ValidationFailed(N_("No %(scope)s %(scope_id)s.", scope=scope, scope_id=scope_id), {
        "scope_id": [N_("No %(scope)s %(scope_id)s exists.", scope=scope, scope_id=scope_id)]})
    if scope == "organization":
        if session.get(Organization, scope_id) is None or not actor.can_see_organization(
                scope_id):
            raise missing
        return ScopeSides(scope, scope_id, scope_id, None, None)
    if scope == "person":
        person = session.get(Person, scope_id)
        if person is None or not actor.can_see_organization(person.organization_id):
            raise missing
        return ScopeSides(scope, scope_id, person.organization_id, person.id, person.manager_id)
    if scope == "department":
        department = session.get(Department, scope_id)
        if department is None or not actor.can_see_organization(department.organization_id):
            raise missing
        head = (session.get(Person, department.head_person_id)
                if department.head_person_id is not None else None)
        return ScopeSides(scope, scope_id, department.organization_id,
                          department.head_person_id, head.manager_id if head else None)
    raise ValidationFailed(N_("Unknown scope %(scope)r.", scope=scope), {
        "scope": [N_("One of organization, department, person.")]})


# ------------------------------------------------------------------------------------ reads


def get(*, session: Session, proposal_id: int, actor: Principal) -> ProposalView:
    """Return one proposal the caller may see, with its history."""
    proposal = session.get(KpiTargetProposal, proposal_id)
    if proposal is None or not _visible(session, actor, proposal.scope, proposal.scope_id,
                                        proposal.organization_id):
        raise NotFound(N_("Target proposal %(proposal_id)s does not exist.",
                          proposal_id=proposal_id))
    return ProposalView(proposal, _history(session, proposal))


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int,
    scope: str | None = None, scope_id: int | None = None, month: str | None = None,
    status: str | None = None, organization_id: int | None = None,
) -> tuple[list[KpiTargetProposal], int]:
    """Return one page of the proposals the caller may see (newest first), and the total."""
    query = _visible_query(session, actor)
    for column, value in ((KpiTargetProposal.scope, scope),
                          (KpiTargetProposal.scope_id, scope_id),
                          (KpiTargetProposal.month, month),
                          (KpiTargetProposal.status, status),
                          (KpiTargetProposal.organization_id, organization_id)):
        if value is not None:
            query = query.where(column == value)
    return page_of(session, query, KpiTargetProposal.id.desc(), page=page, page_size=page_size)


def open_for_counterpart(*, session: Session, actor: Principal) -> list[KpiTargetProposal]:
    """Return the open proposals the caller may agree, counter or decline, oldest first."""
    found = session.scalars(_visible_query(session, actor).where(
        KpiTargetProposal.status == OPEN).order_by(KpiTargetProposal.id)).all()
    sides: dict[tuple[str, int], frozenset[str]] = {}
    mine = []
    for proposal in found:
        key = (proposal.scope, proposal.scope_id)
        if key not in sides:
            sides[key] = scope_sides(session=session, scope=proposal.scope,
                                     scope_id=proposal.scope_id, actor=actor).sides_of(actor)
        if other(proposal.side) in sides[key]:
            mine.append(proposal)
    return mine


def agreed_targets(*, session: Session, actor: Principal, scope: str, scope_id: int
                   ) -> list[KpiTarget]:
    """Return the agreed targets of a scope the caller may see, latest month first."""
    sides = scope_sides(session=session, scope=scope, scope_id=scope_id, actor=actor)
    if not _visible(session, actor, scope, scope_id, sides.organization_id):
        raise NotFound(N_("No %(scope)s %(scope_id)s.", scope=scope, scope_id=scope_id))
    return list(session.scalars(select(KpiTarget).where(
        KpiTarget.scope == scope, KpiTarget.scope_id == scope_id).order_by(
        KpiTarget.month.desc())))


def proposable_scopes(*, session: Session, actor: Principal) -> list[tuple[str, int, str]]:
    """Return (scope, id, label) of the scopes a portal user holds or is the counterpart of:
    themselves, their direct reports, the departments they head or whose head they manage,
    and (a firm's user) their firm. Head office names any scope by its id instead."""
    found: list[tuple[str, int, str]] = []
    if actor.person_id is not None:
        me = session.get(Person, actor.person_id)
        found.append(("person", actor.person_id, f"Me ({me.name})" if me else "Me"))
        found += [("person", person.id, person.name) for person in session.scalars(
            select(Person).where(Person.manager_id == actor.person_id, Person.active.is_(True))
            .order_by(Person.name))]
        reports = select(Person.id).where(Person.manager_id == actor.person_id)
        found += [("department", department.id, f"Department {department.name}")
                  for department in session.scalars(select(Department).where(or_(
                      Department.head_person_id == actor.person_id,
                      Department.head_person_id.in_(reports))).order_by(Department.name))]
    if actor.is_partner and actor.organization_id is not None:
        firm = session.get(Organization, actor.organization_id)
        found.append(("organization", actor.organization_id,
                      f"Our firm ({firm.name})" if firm else "Our firm"))
    return found


def _visible(session: Session, actor: Principal, scope: str, scope_id: int,
             organization_id: int) -> bool:
    """Return whether the caller may see a scope's targets and proposals (staff: all; a firm:
    its own; a person: their own, their people's and the departments they or their people
    head)."""
    if actor.is_staff:
        return True
    if actor.organization_id != organization_id:
        return False
    if actor.person_id is None or scope == "organization":
        return True
    under = people.people_under(session=session, person_id=actor.person_id)
    if scope == "person":
        return scope_id in under
    head = session.scalar(select(Department.head_person_id).where(Department.id == scope_id))
    return head in under


def _visible_query(session: Session, actor: Principal) -> Any:
    """Return the SELECT of the proposals the caller may see (as _visible decides)."""
    query = select(KpiTargetProposal)
    if actor.is_staff:
        return query
    query = query.where(KpiTargetProposal.organization_id == actor.organization_id)
    if actor.person_id is None:
        return query
    under = people.people_under(session=session, person_id=actor.person_id)
    headed = select(Department.id).where(Department.head_person_id.in_(under))
    return query.where(or_(
        KpiTargetProposal.scope == "organization",
        (KpiTargetProposal.scope == "person") & KpiTargetProposal.scope_id.in_(under),
        (KpiTargetProposal.scope == "department") & KpiTargetProposal.scope_id.in_(headed)))


def _history(session: Session, proposal: KpiTargetProposal) -> list[KpiTargetProposal]:
    """Return the chain of counters the proposal belongs to, oldest first."""
    same_scope = session.scalars(select(KpiTargetProposal).where(
        KpiTargetProposal.scope == proposal.scope,
        KpiTargetProposal.scope_id == proposal.scope_id,
        KpiTargetProposal.month == proposal.month).order_by(KpiTargetProposal.id)).all()
    by_id = {row.id: row for row in same_scope}
    countered_by = {row.counter_of_id: row for row in same_scope if row.counter_of_id}
    root = proposal
    while root.counter_of_id in by_id:
        root = by_id[root.counter_of_id]
    chain = [root]
    while chain[-1].id in countered_by:
        chain.append(countered_by[chain[-1].id])
    return chain


# ----------------------------------------------------------------------------------- writes


@writes
def propose(*, session: Session, data: dict[str, Any], actor: Principal) -> ProposalView:
    """Propose a target for a scope and month, from the caller's side."""
    _check_value(data["new_clients"])
    months.require_open(session=session, month=data["month"])
    sides = scope_sides(session=session, scope=data["scope"], scope_id=data["scope_id"],
                        actor=actor)
    mine = sides.sides_of(actor)
    if not mine:
        raise Forbidden(_who_may(sides.scope))
    # Someone on both sides (an admin who is also the person) proposes as the holder.
    side = HOLDER if HOLDER in mine else COUNTERPART
    proposal = _open(session, actor, sides, data["month"], side, data["new_clients"],
                     data.get("note") or "", counter_of=None)
    return _view(session, proposal)


@writes
def counter(*, session: Session, proposal_id: int, new_clients: int, note: str = "",
            actor: Principal) -> ProposalView:
    """Counter an open proposal of the other side with the caller's own value."""
    _check_value(new_clients)
    proposal, sides = _locked_open(session, proposal_id, actor, other_side=True)
    months.require_open(session=session, month=proposal.month)
    _decide(session, proposal, "countered", actor, note)
    audit.record(session=session, actor=actor, action="target_proposal.counter",
                 object_type="kpi_target_proposal", object_id=proposal.id,
                 changes={"status": {"from": OPEN, "to": "countered"},
                          "new_clients": {"from": proposal.new_clients, "to": new_clients},
                          "note": note})
    new = _open(session, actor, sides, proposal.month, other(proposal.side), new_clients,
                note, counter_of=proposal)
    return _view(session, new)


@writes
def decide(*, session: Session, proposal_id: int, decision: str, note: str = "",
           actor: Principal) -> ProposalView:
    """Agree to or decline the other side's open proposal, or withdraw one's own."""
    status = DECISIONS[decision]
    proposal, _ = _locked_open(session, proposal_id, actor,
                               other_side=decision != "withdraw")
    if status == "agreed":
        months.require_open(session=session, month=proposal.month)
    _decide(session, proposal, status, actor, note)
    audit.record(session=session, actor=actor, action=f"target_proposal.{decision}",
                 object_type="kpi_target_proposal", object_id=proposal.id,
                 changes={"status": {"from": OPEN, "to": status}, "note": note})
    if status == "agreed":
        _write_target(session, proposal, actor)
    view = _view(session, proposal)
    if status == "agreed":
        events.emit(session=session, type_="target.agreed", payload=_DETAIL.dump(view))
    return view


def _check_value(new_clients: int) -> None:
    if not 0 <= new_clients <= MAX_TARGET:
        raise ValidationFailed(N_("A target cannot be negative."), {
            "new_clients": [N_("Must be between 0 and %(limit)s.", limit=MAX_TARGET)]})


def _who_may(scope: str) -> str:
    return {"person": N_("Only the person or their manager (or head office) may propose its "
                         "target."),
            "department": N_("Only the department's head or the head's manager (or head "
                             "office) may propose its target."),
            "organization": N_("Only the firm or head office may propose its target.")}[scope]


def _open(
    session: Session, actor: Principal, sides: ScopeSides, month: str, side: str,
    new_clients: int, note: str, counter_of: KpiTargetProposal | None,
) -> KpiTargetProposal:
    """Write a new open proposal, its audit entry and `target.proposed`; 409 if the scope
    already has an open one for the month (the partial unique index decides under races)."""
    _refuse_open(session, sides.scope, sides.scope_id, month)
    proposal = KpiTargetProposal(
        scope=sides.scope, scope_id=sides.scope_id, month=month,
        organization_id=sides.organization_id, new_clients=new_clients, note=note,
        status=OPEN, side=side, proposed_by=actor.name, proposed_by_person_id=actor.person_id,
        created_at=utcnow(), counter_of_id=counter_of.id if counter_of else None)
    try:
        with session.begin_nested():
            session.add(proposal)
    except IntegrityError:
        _refuse_open(session, sides.scope, sides.scope_id, month)
        raise
    audit.record(session=session, actor=actor, action="target_proposal.propose",
                 object_type="kpi_target_proposal", object_id=proposal.id,
                 changes={"scope": sides.scope, "scope_id": sides.scope_id, "month": month,
                          "new_clients": new_clients, "side": side, "note": note,
                          "counter_of_id": proposal.counter_of_id})
    events.emit(session=session, type_="target.proposed",
                payload=_DETAIL.dump(_view(session, proposal)))
    return proposal


def _refuse_open(session: Session, scope: str, scope_id: int, month: str) -> None:
    """Refuse (409 naming it) a second open proposal for a scope and month."""
    holder = session.scalar(select(KpiTargetProposal.id).where(
        KpiTargetProposal.scope == scope, KpiTargetProposal.scope_id == scope_id,
        KpiTargetProposal.month == month, KpiTargetProposal.status == OPEN))
    if holder is not None:
        raise Conflict(N_("Proposal %(holder)s for this %(scope)s and %(month)s is "
                          "still open: agree, counter or decline it (or withdraw it) "
                          "first.", holder=holder, scope=scope, month=month),
                       open_proposal_id=holder)


def _locked_open(session: Session, proposal_id: int, actor: Principal, *, other_side: bool
                 ) -> tuple[KpiTargetProposal, ScopeSides]:
    """Return a proposal locked for a decision by the caller, with its scope's sides.

    404 if the caller may not see it, 403 if the decision is not the caller's side's, 409
    (with its status) if it is no longer open.
    """
    proposal = session.scalar(
        select(KpiTargetProposal).where(KpiTargetProposal.id == proposal_id)
        .with_for_update().execution_options(populate_existing=True))
    if proposal is None or not _visible(session, actor, proposal.scope, proposal.scope_id,
                                        proposal.organization_id):
        raise NotFound(N_("Target proposal %(proposal_id)s does not exist.",
                          proposal_id=proposal_id))
    sides = scope_sides(session=session, scope=proposal.scope, scope_id=proposal.scope_id,
                        actor=actor)
    needed = other(proposal.side) if other_side else proposal.side
    if needed not in sides.sides_of(actor):
        raise Forbidden(
            N_("Only the other side may agree, counter or decline a proposal.") if other_side
            else N_("Only the side that proposed may withdraw a proposal."))
    if proposal.status != OPEN:
        raise Conflict(N_("Target proposal %(id)s is %(status)s, no longer open.",
                          id=proposal.id, status=proposal.status),
                       current_status=proposal.status)
    return proposal, sides


def _decide(session: Session, proposal: KpiTargetProposal, status: str, actor: Principal,
            note: str) -> None:
    """Close an open proposal; a concurrent decision that came first is a 409 with its
    status (the version column's guard, should the row lock not have been taken)."""
    proposal_id = proposal.id
    proposal.status, proposal.decided_by, proposal.decided_at = status, actor.name, utcnow()
    proposal.decision_note = note
    try:
        with session.begin_nested():
            session.flush()
    except StaleDataError:
        current = session.scalar(select(KpiTargetProposal.status).where(
            KpiTargetProposal.id == proposal_id))
        raise Conflict(N_("Target proposal %(proposal_id)s is %(current)s, no longer "
                          "open.", proposal_id=proposal_id, current=current),
                       current_status=current) from None


def _write_target(session: Session, proposal: KpiTargetProposal, actor: Principal) -> None:
    """Make the agreed value the scope's target for the month."""
    key = (proposal.scope, proposal.scope_id, proposal.month)
    for _ in range(3):
        target = session.get(KpiTarget, key, populate_existing=True)
        if target is None:
            target = KpiTarget(scope=proposal.scope, scope_id=proposal.scope_id,
                               month=proposal.month, organization_id=proposal.organization_id,
                               new_clients=proposal.new_clients, agreed_by=actor.name,
                               proposal_id=proposal.id, updated_at=utcnow())
            try:
                with session.begin_nested():
                    session.add(target)
            except IntegrityError:
                continue  # set concurrently (PUT /kpi/targets): update that row instead
        else:
            target.new_clients, target.agreed_by = proposal.new_clients, actor.name
            target.proposal_id, target.updated_at = proposal.id, utcnow()
        return
    raise RuntimeError("The target kept changing concurrently; giving up.")


def _view(session: Session, proposal: KpiTargetProposal) -> ProposalView:
    session.flush()
    return ProposalView(proposal, _history(session, proposal))
