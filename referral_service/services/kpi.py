"""The monthly new-client KPI: one SQL aggregate per month and level, targets and exports.

Three levels (SPEC section 10): organization, department and person. Every figure comes from
GROUP BY over the month's [start, end) range (UTC) of referrals, visits and leads, in one
statement per level built once: Python only turns the rows into dicts, never walks referrals.

- A person's figures: their visits, leads, leads won, leads referred, and credits (own leads
  won + one per referral converted that month where they are the referrer's
  `referred_by_person_id` or the receiver's `owner_person_id`).
- A department's figures sum the people whose department is it or one of its sub-departments
  (at any depth). A department's KPI is its head's: the head's person row shows the figures of
  the department they head (of the top-most ones, added up, if they head several), and its
  target is that department's agreed target (the head's own person target is not used).
- An organization's credits are its converted referrals made + received, plus its leads won.
- `target` is the agreed target of the row's scope (kpi_targets); `target_status` is agreed,
  else proposed (an open proposal for that scope and month), else none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from models import (
    Department,
    KpiCorrection,
    KpiTarget,
    KpiTargetProposal,
    Lead,
    Organization,
    Person,
    Referral,
    UTCDateTime,
    Visit,
    utcnow,
)
from referral_service.adapters import kpi_files

# The formats offered and their names, for the API and the portal.
from referral_service.adapters.kpi_files import CONTENT_TYPES, FORMATS, filename  # noqa: F401
from referral_service.adapters.sql import dict_rows
from referral_service.schemas.base import MONTH_MESSAGE, MONTH_PATTERN
from referral_service.schemas.kpi import LEVELS
from referral_service.services import audit, months, people
from referral_service.services.auth import Principal, require_staff
from referral_service.services.errors import NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_

# The sales-force figures every level has (SPEC section 10), after the level's own columns.
ACTIVITY = ("visits", "empty_handed_visits", "commitments", "leads", "leads_won",
            "leads_referred")
# The columns of a KPI row, in the SPEC's order (also the CSV header and the XLSX columns):
# the organization level's first twelve as they always were, the new ones after them.
COLUMNS = (
    "organization_id", "organization_name", "kind", "month", "referrals_made",
    "referrals_received", "accepted_received", "converted_made", "converted_received",
    "new_client_credits", "target", "attainment", *ACTIVITY, "target_status",
)
DEPARTMENT_COLUMNS = (
    "department_id", "department_name", "organization_id", "month", *ACTIVITY,
    "new_client_credits", "target", "target_status", "attainment",
)
PERSON_COLUMNS = (
    "person_id", "person_name", "organization_id", "department_id", "month", *ACTIVITY,
    "new_client_credits", "target", "target_status", "attainment",
)
LEVEL_COLUMNS = {"organization": COLUMNS, "department": DEPARTMENT_COLUMNS,
                 "person": PERSON_COLUMNS}
# A month is YYYY-MM from 1970-01 to 2999-12: a later year would put the end of December past
# what datetime holds (9999), an earlier one before the epoch. ASCII digits only (Python's \d
# also matches other scripts' digits); also the pattern the API documents.
_MONTH = re.compile(MONTH_PATTERN)
ATTAINMENT_DIGITS = 4


def month_range(month: str) -> tuple[datetime, datetime]:
    """Return the UTC [start, end) of a 'YYYY-MM' month; 422 if it is not one."""
    if _MONTH.fullmatch(month or "") is None:
        raise ValidationFailed(N_("%(month)r is not a month.", month=month),
                               {"month": [MONTH_MESSAGE]})
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


# The statements' parameters, one object each wherever they appear.
_START = bindparam("start", type_=UTCDateTime())
_END = bindparam("end", type_=UTCDateTime())
_MONTH_PARAM = bindparam("month", type_=String())
_ORGANIZATION = bindparam("organization_id", type_=Integer())
_ZERO, _ONE = literal_column("0"), literal_column("1")
# The figures of one fact row, each 0 or 1, in the order every union below uses.
_FACTS = ("made", "received", "accepted", "converted_made", "converted_received", *ACTIVITY,
          "credits", "counts", "proposed")
# The figures a person's or a department's row adds up.
_SALES = (*ACTIVITY, "credits")


def _within(column):
    return and_(column >= _START, column < _END)


def _converted_within():
    """A conversion counts in its month while it stands: one head office reversed
    (converted -> lost, SPEC section 10) counts in no month's recomputed rows; a closed
    month's shows it through a correction (services/months.py)."""
    return and_(Referral.status == "converted", _within(Referral.converted_at))


def _flag(condition):
    return case((condition, _ONE), else_=_ZERO)


def _facts(key, *, target=None, **figures) -> list:
    """The columns of one fact row: its key, every figure of _FACTS (0 unless given), target."""
    return [key.label("key"), *(figures.get(name, _ZERO).label(name) for name in _FACTS),
            # A typed NULL: PostgreSQL reads several untyped ones in a UNION as text.
            (cast(null(), Integer) if target is None else target).label("target")]


def _sides():
    """Each referral twice: side 0 its referrer, side 1 its receiver."""
    return select(_ZERO.label("side")).union_all(select(_ONE)).subquery("sides")


def _visit_facts(key) -> Select:
    return select(*_facts(key, visits=_ONE, empty_handed_visits=_flag(Visit.empty_handed),
                          commitments=_flag(Visit.commitment_description.is_not(None)),
                          counts=_ONE)).where(_within(Visit.visited_at))


def _lead_facts(key) -> Select:
    """Leads created that month, and leads won that month (a won lead's updated_at is when it
    was won: won is final). A lead won is a credit."""
    created = _within(Lead.created_at)
    won = and_(Lead.status == "won", _within(Lead.updated_at))
    return select(*_facts(key, leads=_flag(created), leads_won=_flag(won), credits=_flag(won),
                          counts=_ONE)).where(or_(created, won))


def _referred_facts(key) -> Select:
    """Leads whose referral was created that month."""
    return (select(*_facts(key, leads_referred=_ONE, counts=_ONE))
            .select_from(Referral).join(Lead, Lead.referral_id == Referral.id)
            .where(_within(Referral.created_at)))


def _scope_facts(scope: str, *, one_organization: bool) -> list[Select]:
    """The month's agreed targets and open proposals of one scope, keyed by scope_id."""
    targets = select(*_facts(KpiTarget.scope_id, counts=_ONE, target=KpiTarget.new_clients)
                     ).where(KpiTarget.month == _MONTH_PARAM, KpiTarget.scope == scope)
    proposals = select(*_facts(KpiTargetProposal.scope_id, counts=_ONE, proposed=_ONE)).where(
        KpiTargetProposal.month == _MONTH_PARAM, KpiTargetProposal.scope == scope,
        KpiTargetProposal.status == "proposed")
    if one_organization:
        targets = targets.where(KpiTarget.organization_id == _ORGANIZATION)
        proposals = proposals.where(KpiTargetProposal.organization_id == _ORGANIZATION)
    return [targets, proposals]


def _status(agreed, proposed):
    """target_status: agreed, else proposed, else none."""
    return case((agreed, literal_column("'agreed'", String())),
                (proposed, literal_column("'proposed'", String())),
                else_=literal_column("'none'", String())).label("target_status")


def _attainment(credits, target):
    """credits / target; no target (or a target of 0) has no attainment."""
    return case(
        (target > _ZERO,
         # 1.0 written out: NUMERIC on PostgreSQL (which rounds only NUMERIC), REAL on SQLite.
         cast(func.round(credits * literal_column("1.0") / target,
                         literal_column(str(ATTAINMENT_DIGITS))), Float)),
        else_=null(),
    ).label("attainment")


def _whole(value, name: str):
    # PostgreSQL sums integers as BIGINT; the KPI is a plain whole number everywhere.
    return cast(value, Integer).label(name)


def _organization_statement(*, one_organization: bool) -> Select:
    """The organization level: one row per firm with activity or a target (see COLUMNS).

    Shape: one indexed pass over the month's referrals, each seen twice (side 0: its
    referrer, side 1: its receiver), the month's visits and leads, plus the month's targets
    and open proposals, all grouped by organization; the grouped rows then look up their
    organization by primary key.
    """
    r = Referral
    created, accepted, converted = (_within(r.created_at), _within(r.accepted_at),
                                    _converted_within())
    sides = _sides()
    as_referrer, as_receiver = sides.c.side == _ZERO, sides.c.side == _ONE
    referral_rows = (
        select(*_facts(
            case((as_referrer, r.referrer_organization_id), else_=r.receiver_organization_id),
            made=_flag(and_(as_referrer, created)), received=_flag(and_(as_receiver, created)),
            accepted=_flag(and_(as_receiver, accepted)),
            converted_made=_flag(and_(as_referrer, converted)),
            converted_received=_flag(and_(as_receiver, converted)),
            # A referrer whose referral was only accepted this month has nothing to count.
            counts=_flag(or_(as_receiver, created, converted))))
        .select_from(Referral).join(sides, true())
        .where(or_(created, accepted, converted))
    )
    visit_rows = _visit_facts(Visit.organization_id)
    lead_rows = _lead_facts(Lead.organization_id)
    referred_rows = _referred_facts(Lead.organization_id)
    if one_organization:
        referral_rows = referral_rows.where(or_(r.referrer_organization_id == _ORGANIZATION,
                                                r.receiver_organization_id == _ORGANIZATION))
        visit_rows = visit_rows.where(Visit.organization_id == _ORGANIZATION)
        lead_rows = lead_rows.where(Lead.organization_id == _ORGANIZATION)
        referred_rows = referred_rows.where(Lead.organization_id == _ORGANIZATION)
    rows = union_all(referral_rows, visit_rows, lead_rows, referred_rows,
                     *_scope_facts("organization", one_organization=one_organization)
                     ).subquery("kpi_rows")
    grouped = (
        select(rows.c.key, *(func.sum(rows.c[name]).label(name) for name in _FACTS
                             if name != "counts"),
               func.max(rows.c.target).label("target"))
        .group_by(rows.c.key)
        .having(func.sum(rows.c.counts) > _ZERO)
        .subquery("activity")
    )
    g = grouped.c
    credits = g.converted_made + g.converted_received + g.credits
    statement = (
        select(
            Organization.id.label("organization_id"),
            Organization.name.label("organization_name"),
            Organization.kind.label("kind"),
            _MONTH_PARAM.label("month"),
            _whole(g.made, "referrals_made"),
            _whole(g.received, "referrals_received"),
            _whole(g.accepted, "accepted_received"),
            _whole(g.converted_made, "converted_made"),
            _whole(g.converted_received, "converted_received"),
            _whole(credits, "new_client_credits"),
            g.target.label("target"),
            _attainment(credits, g.target),
            *(_whole(g[name], name) for name in ACTIVITY),
            _status(g.target.is_not(None), g.proposed > _ZERO),
        )
        .select_from(grouped).join(Organization, Organization.id == g.key)
        .order_by(g.key)  # the grouping's own order: no second sort
    )
    if one_organization:
        statement = statement.where(Organization.id == _ORGANIZATION)
    return statement


def _people_parts(*, one_organization: bool):
    """The CTEs the department and person levels share.

    person_activity: the month's figures of each person with any (visits, leads, leads
    referred, credits: own leads won, and a referral converted that month for its
    referred_by_person_id and its owner_person_id). department_tree: (ancestor, department)
    for every department and each of its sub-departments at any depth, itself included.
    department_activity: each department's figures, the sum over the people of its tree.
    """
    r = Referral
    sides = _sides()
    as_referrer, as_receiver = sides.c.side == _ZERO, sides.c.side == _ONE
    credit_rows = (
        select(*_facts(case((as_referrer, r.referred_by_person_id),
                            else_=r.owner_person_id), credits=_ONE))
        .select_from(Referral).join(sides, true())
        .where(_converted_within(),
               or_(and_(as_referrer, r.referred_by_person_id.is_not(None)),
                   and_(as_receiver, r.owner_person_id.is_not(None))))
    )
    visit_rows = _visit_facts(Visit.person_id)
    lead_rows = _lead_facts(Lead.person_id)
    referred_rows = _referred_facts(Lead.person_id)
    departments = select(Department.id.label("ancestor"), Department.id.label("department"))
    if one_organization:
        credit_rows = credit_rows.where(or_(
            and_(as_referrer, r.referrer_organization_id == _ORGANIZATION),
            and_(as_receiver, r.receiver_organization_id == _ORGANIZATION)))
        visit_rows = visit_rows.where(Visit.organization_id == _ORGANIZATION)
        lead_rows = lead_rows.where(Lead.organization_id == _ORGANIZATION)
        referred_rows = referred_rows.where(Lead.organization_id == _ORGANIZATION)
        departments = departments.where(Department.organization_id == _ORGANIZATION)
    rows = union_all(visit_rows, lead_rows, referred_rows, credit_rows).subquery("facts")
    person_activity = (
        select(rows.c.key.label("person"), *(func.sum(rows.c[name]).label(name)
                                             for name in _SALES))
        .group_by(rows.c.key).cte("person_activity")
    )
    tree = departments.cte("department_tree", recursive=True)
    child = aliased(Department, name="child")
    # UNION, not UNION ALL: it would stop even on a cycle (people.py refuses those).
    tree = tree.union(select(tree.c.ancestor, child.id).where(child.parent_id == tree.c.department))
    member = aliased(Person, name="member")
    department_activity = (
        select(tree.c.ancestor.label("department"),
               *(func.sum(person_activity.c[name]).label(name) for name in _SALES))
        .select_from(tree)
        .join(member, member.department_id == tree.c.department)
        .join(person_activity, person_activity.c.person == member.id)
        .group_by(tree.c.ancestor).cte("department_activity")
    )
    return person_activity, tree, department_activity


def _agreed_and_open(scope: str, scope_id, name: str):
    """The agreed target and the open proposal of a scope this month, as outer joins."""
    target = aliased(KpiTarget, name=f"{name}_target")
    proposal = aliased(KpiTargetProposal, name=f"{name}_proposal")
    return (
        target, and_(target.scope == scope, target.scope_id == scope_id,
                     target.month == _MONTH_PARAM),
        proposal, and_(proposal.scope == scope, proposal.scope_id == scope_id,
                       proposal.month == _MONTH_PARAM, proposal.status == "proposed"),
    )


def _department_statement(*, one_organization: bool) -> Select:
    """The department level: one row per department with activity in its tree or a target."""
    _, _, activity = _people_parts(one_organization=one_organization)
    target, on_target, proposal, on_proposal = _agreed_and_open(
        "department", Department.id, "department")
    credits = func.coalesce(activity.c.credits, _ZERO)
    statement = (
        select(
            Department.id.label("department_id"),
            Department.name.label("department_name"),
            Department.organization_id.label("organization_id"),
            _MONTH_PARAM.label("month"),
            *(_whole(func.coalesce(activity.c[name], _ZERO), name) for name in ACTIVITY),
            _whole(credits, "new_client_credits"),
            target.new_clients.label("target"),
            _status(target.scope.is_not(None), proposal.id.is_not(None)),
            _attainment(credits, target.new_clients),
        )
        .select_from(Department)
        .outerjoin(activity, activity.c.department == Department.id)
        .outerjoin(target, on_target).outerjoin(proposal, on_proposal)
        .where(or_(activity.c.department.is_not(None), target.scope.is_not(None),
                   proposal.id.is_not(None)))
        .order_by(Department.id)
    )
    if one_organization:
        statement = statement.where(Department.organization_id == _ORGANIZATION)
    return statement


def _person_statement(*, one_organization: bool) -> Select:
    """The person level: one row per person with activity or a target; a department head's
    row carries the figures and the target of the top-most departments they head."""
    person_activity, tree, department_activity = _people_parts(
        one_organization=one_organization)
    headed, above = aliased(Department, name="headed"), aliased(Department, name="above")
    # The departments a person heads that are not under another department they head.
    top_heads = select(headed.head_person_id.label("person"),
                       headed.id.label("department")).where(
        headed.head_person_id.is_not(None),
        ~select(_ONE).select_from(tree).join(above, above.id == tree.c.ancestor).where(
            tree.c.department == headed.id, tree.c.ancestor != headed.id,
            above.head_person_id == headed.head_person_id).exists())
    if one_organization:
        top_heads = top_heads.where(headed.organization_id == _ORGANIZATION)
    top_heads = top_heads.subquery("top_heads")
    head_target, on_head_target, head_proposal, on_head_proposal = _agreed_and_open(
        "department", top_heads.c.department, "head")
    heads = (
        select(top_heads.c.person,
               *(func.sum(func.coalesce(department_activity.c[name], _ZERO)).label(name)
                 for name in _SALES),
               func.sum(head_target.new_clients).label("target"),
               func.count(department_activity.c.department).label("active"),
               func.count(head_target.scope).label("agreed"),
               func.count(head_proposal.id).label("proposed"))
        .select_from(top_heads)
        .outerjoin(department_activity,
                   department_activity.c.department == top_heads.c.department)
        .outerjoin(head_target, on_head_target).outerjoin(head_proposal, on_head_proposal)
        .group_by(top_heads.c.person).subquery("heads")
    )
    target, on_target, proposal, on_proposal = _agreed_and_open("person", Person.id, "person")
    is_head, not_head = heads.c.person.is_not(None), heads.c.person.is_(None)

    def figure(name: str):
        return case((is_head, heads.c[name]),
                    else_=func.coalesce(person_activity.c[name], _ZERO))

    credits = figure("credits")
    row_target = case((is_head, heads.c.target), else_=target.new_clients)
    statement = (
        select(
            Person.id.label("person_id"),
            Person.name.label("person_name"),
            Person.organization_id.label("organization_id"),
            Person.department_id.label("department_id"),
            _MONTH_PARAM.label("month"),
            *(_whole(figure(name), name) for name in ACTIVITY),
            _whole(credits, "new_client_credits"),
            _whole(row_target, "target"),
            _status(or_(heads.c.agreed > _ZERO, and_(not_head, target.scope.is_not(None))),
                    or_(heads.c.proposed > _ZERO, and_(not_head, proposal.id.is_not(None)))),
            _attainment(credits, row_target),
        )
        .select_from(Person)
        .outerjoin(person_activity, person_activity.c.person == Person.id)
        .outerjoin(heads, heads.c.person == Person.id)
        .outerjoin(target, on_target).outerjoin(proposal, on_proposal)
        .where(or_(
            and_(is_head, or_(heads.c.active > _ZERO, heads.c.agreed > _ZERO,
                              heads.c.proposed > _ZERO)),
            and_(not_head, or_(person_activity.c.person.is_not(None),
                               target.scope.is_not(None), proposal.id.is_not(None)))))
        .order_by(Person.id)
    )
    if one_organization:
        statement = statement.where(Person.organization_id == _ORGANIZATION)
    return statement


_BUILDERS = {"organization": _organization_statement, "department": _department_statement,
             "person": _person_statement}
# Built once: a request only binds the values.
_STATEMENTS = {(level, one): build(one_organization=one)
               for level, build in _BUILDERS.items() for one in (False, True)}


def level_query(level: str, month: str, organization_id: int | None = None
                ) -> tuple[Select, dict[str, Any]]:
    """Return the KPI statement of one level for `month` and its parameters (also timed by
    bench/)."""
    if level not in LEVELS:
        raise ValidationFailed(N_("Unknown KPI level %(level)r.", level=level),
                               {"level": [N_("One of %(levels)s.", levels=", ".join(LEVELS))]})
    start, end = month_range(month)
    params: dict[str, Any] = {"start": start, "end": end, "month": month}
    if organization_id is None:
        return _STATEMENTS[level, False], params
    return _STATEMENTS[level, True], {**params, "organization_id": organization_id}


def kpi_query(month: str, organization_id: int | None = None) -> tuple[Select, dict[str, Any]]:
    """Return the organization level's KPI statement of `month` and its parameters."""
    return level_query("organization", month, organization_id)


def scoped_query(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None,
    level: str = "organization",
) -> tuple[Select, dict[str, Any]]:
    """Return the KPI statement of the rows of `month` the caller may see, and its parameters.

    A partner sees only its own organization's rows, at every level.
    """
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            raise NotFound(N_("Organization %(organization_id)s does not exist.",
                              organization_id=organization_id))
        organization_id = actor.organization_id
    elif organization_id is not None and session.scalar(
            select(Organization.id).where(Organization.id == organization_id)) is None:
        raise NotFound(N_("Organization %(organization_id)s does not exist.",
                          organization_id=organization_id))
    return level_query(level, month, organization_id)


def monthly_kpi(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None,
    page: int | None = None, page_size: int | None = None, level: str = "organization",
    department_id: int | None = None,
) -> list[dict[str, Any]]:
    """Return the KPI rows of `month` at one level (see LEVEL_COLUMNS): one per organization,
    department or person with activity or a target (agreed or proposed), in id order.

    A partner gets only its own organization's rows; a portal user who is a person, at the
    person and department levels, only the people whose work they see (people.scope_of) and
    the departments headed by one of them. With `page` and `page_size`, only that page.
    A closed month's rows are those stored when it closed (services/months.py).
    With `department_id` (department and person levels: the portal's drill-down), only that
    department's tree: its sub-departments, the people in them and its head.
    """
    statement, params = scoped_query(session=session, month=month, actor=actor,
                                     organization_id=organization_id, level=level)
    paged = page is not None and page_size is not None
    frozen = months.frozen_rows(session=session, month=month, level=level)
    if frozen is not None:
        # A closed month: its rows as stored at close (services/months.py), never recomputed.
        rows = [row for row in frozen if "organization_id" not in params
                or row["organization_id"] == params["organization_id"]]
        if paged:
            rows = rows[(page - 1) * page_size:page * page_size]
    else:
        if paged:
            statement = statement.limit(page_size).offset((page - 1) * page_size)
        rows = dict_rows(session, statement, params, LEVEL_COLUMNS[level])
    if level != "organization" and actor.person_id is not None and not actor.is_staff:
        rows = _seen_by_person(session, actor, level, rows)
    if department_id is not None and level != "organization":
        rows = _in_tree(session, department_id, level, rows)
    return rows


def _in_tree(session: Session, department_id: int, level: str,
             rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the rows of one department's tree (people: its members and its head)."""
    tree, frontier = {department_id}, {department_id}
    while frontier:
        frontier = set(session.scalars(select(Department.id).where(
            Department.parent_id.in_(frontier)))) - tree
        tree |= frontier
    if level == "department":
        return [row for row in rows if row["department_id"] in tree]
    head = session.scalar(select(Department.head_person_id).where(
        Department.id == department_id))
    return [row for row in rows if row["department_id"] in tree or row["person_id"] == head]


def _seen_by_person(session: Session, actor: Principal, level: str,
                    rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the rows of the people a person's scope holds (departments: by their head)."""
    seen = people.scope_of(session=session, actor=actor).person_ids or frozenset()
    if level == "person":
        return [row for row in rows if row["person_id"] in seen]
    heads = dict(session.execute(
        select(Department.id, Department.head_person_id).where(
            Department.id.in_([row["department_id"] for row in rows]))).all())
    return [row for row in rows if heads.get(row["department_id"]) in seen]


@writes
def set_target(
    *, session: Session, organization_id: int, month: str, new_clients: int, actor: Principal
) -> KpiTarget:
    """Set an organization's new-client target for a month (head office and CRM only)."""
    require_staff(actor)
    month_range(month)
    months.require_open(session=session, month=month)
    if new_clients < 0:
        raise ValidationFailed(N_("A target cannot be negative."),
                               {"new_clients": [N_("Must be 0 or more.")]})
    if session.scalar(select(Organization.id).where(Organization.id == organization_id)) is None:
        raise NotFound(N_("Organization %(organization_id)s does not exist.",
                          organization_id=organization_id))
    for _ in range(3):
        target = session.get(KpiTarget, ("organization", organization_id, month),
                             populate_existing=True)
        before = None if target is None else target.new_clients
        if target is None:
            # Head office's direct setting: agreed by head office (SPEC section 10).
            target = KpiTarget(scope="organization", scope_id=organization_id, month=month,
                               organization_id=organization_id, new_clients=new_clients,
                               agreed_by=actor.name, proposal_id=None, updated_at=utcnow())
            try:
                with session.begin_nested():
                    session.add(target)
            except IntegrityError:
                continue  # set concurrently: update that row instead
        else:
            target.new_clients, target.agreed_by, target.proposal_id = (
                new_clients, actor.name, None)
            target.updated_at = utcnow()
        audit.record(session=session, actor=actor, action="kpi_target.set",
                     object_type="kpi_target", object_id=f"{organization_id}/{month}",
                     changes={"new_clients": {"from": before, "to": new_clients}})
        return target
    raise RuntimeError("The target kept changing concurrently; giving up.")


# --------------------------------------------------------------------------------- exports


def monthly_corrections(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None,
    level: str = "organization", department_id: int | None = None,
) -> list[KpiCorrection]:
    """Return the corrections of closed months booked in `month` at one level, oldest first,
    narrowed as monthly_kpi narrows its rows (a partner: its own firm's)."""
    if actor.is_partner:
        organization_id = actor.organization_id
    found = months.corrections_in(session=session, month=month, level=level,
                                  organization_id=organization_id)
    person_scoped = actor.person_id is not None and not actor.is_staff
    if level == "organization" or not found or not (person_scoped or department_id):
        return found
    # The rows these corrections are of, narrowed by the functions that narrow the rows.
    key = months.ROW_ID[level]
    rows = [{key: correction.row_id} for correction in found]
    if level == "person":
        homes = dict(session.execute(select(Person.id, Person.department_id).where(
            Person.id.in_([correction.row_id for correction in found]))).all())
        rows = [{**row, "department_id": homes.get(row[key])} for row in rows]
    if person_scoped:
        rows = _seen_by_person(session, actor, level, rows)
    if department_id is not None:
        rows = _in_tree(session, department_id, level, rows)
    kept = {row[key] for row in rows}
    return [correction for correction in found if correction.row_id in kept]


def monthly_export(
    *, session: Session, month: str, actor: Principal, fmt: str,
    organization_id: int | None = None, level: str = "organization",
) -> bytes:
    """Return GET /kpi/monthly's body: a month's rows of one level (monthly_kpi) and the
    corrections booked in it, as JSON, CSV or XLSX. Staff asking for a closed month's every
    organization get the bytes stored when it closed (services/months.py): no file is
    written again."""
    if actor.is_staff and organization_id is None:
        stored = months.stored_export(session=session, month=month, level=level, fmt=fmt)
        if stored is not None:
            return stored
    rows = monthly_kpi(session=session, month=month, actor=actor,
                       organization_id=organization_id, level=level)
    corrections = monthly_corrections(session=session, month=month, actor=actor,
                                      organization_id=organization_id, level=level)
    return export(rows, fmt, month, level, corrections=corrections)


def correction_rows(corrections: list[KpiCorrection], level: str) -> list[dict[str, Any]]:
    """Return corrections as the JSON export shows them: correction_of, organization_id, the
    row's department_id or person_id (those levels), referral_ids, reason, deltas (by
    column), created_at, actor."""
    key = months.ROW_ID[level]
    return [{"correction_of": c.correction_of, "organization_id": c.organization_id,
             **({key: c.row_id} if key else {}), "referral_ids": c.referral_ids,
             "reason": c.reason, "deltas": c.deltas,
             "created_at": c.created_at.isoformat(), "actor": c.actor}
            for c in corrections]


def export(rows: list[dict[str, Any]], fmt: str, month: str, level: str = "organization",
           *, corrections: Sequence[KpiCorrection] = ()) -> bytes:
    """Return a month's rows of one level as JSON, CSV or XLSX bytes (adapters/kpi_files.py
    writes them). The XLSX has the level's sheet, and with the department level a chart sheet
    of credits against agreed targets by department. The corrections booked in the month go
    in the JSON (`corrections`) and, if any, in the XLSX's Corrections sheet; CSV rows stay
    as they are."""
    return export_levels({level: rows}, fmt, month, corrections={level: list(corrections)})


def export_levels(levels: dict[str, list[dict[str, Any]]], fmt: str, month: str,
                  corrections: dict[str, list[KpiCorrection]] | None = None) -> bytes:
    """Return a month's rows of one or more levels; several only as XLSX (one sheet each)."""
    if fmt not in FORMATS:
        raise ValidationFailed(N_("Unknown export format %(fmt)r.", fmt=fmt),
                               {"format": [N_("One of %(formats)s.", formats=", ".join(FORMATS))]})
    if len(levels) > 1 and fmt != "xlsx":
        raise ValidationFailed(N_("Only an XLSX export holds several levels."),
                               {"format": [N_("Use xlsx for every level at once.")]})
    created = month_range(month)[0].replace(tzinfo=None)
    corrections = corrections or {}
    if fmt == "xlsx":
        return kpi_files.write_sheets(
            [kpi_files.Sheet(level, LEVEL_COLUMNS[level], rows)
             for level, rows in levels.items()], month, created=created,
            corrections=[_correction_sheet(level, corrections.get(level, []))
                         for level in levels])
    ((level, rows),) = levels.items()
    return kpi_files.write(rows, fmt, month, columns=LEVEL_COLUMNS[level], created=created,
                           corrections=correction_rows(corrections.get(level, []), level))


def _correction_sheet(level: str, corrections: list[KpiCorrection]) -> kpi_files.Sheet:
    """The corrections of one level as sheet rows: one column per figure changed."""
    key = months.ROW_ID[level]
    names = months.figures(level)
    columns = ("correction_of", "organization_id", *((key,) if key else ()), "referral_ids",
               "reason", "created_at", "actor", *names)
    rows = [{"correction_of": c.correction_of, "organization_id": c.organization_id,
             **({key: c.row_id} if key else {}),
             "referral_ids": ", ".join(map(str, c.referral_ids)), "reason": c.reason,
             "created_at": c.created_at.isoformat(), "actor": c.actor,
             **{name: c.deltas.get(name) for name in names}} for c in corrections]
    return kpi_files.Sheet(level, columns, rows)
