"""The monthly new-client KPI: one SQL aggregate per month, its targets and its exports.

Every figure comes from GROUP BY over the referrals of the month's [start, end) range (UTC):
Python only turns the organization rows into dicts, never walks referrals.
"""

from __future__ import annotations

import re
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
from sqlalchemy.orm import Session

from models import KpiTarget, Organization, Referral, UTCDateTime, utcnow
from referral_service.adapters import kpi_files

# The formats offered and their names, for the API and the portal.
from referral_service.adapters.kpi_files import CONTENT_TYPES, FORMATS, filename  # noqa: F401
from referral_service.adapters.sql import plain_rows
from referral_service.schemas.base import MONTH_MESSAGE, MONTH_PATTERN
from referral_service.services import audit
from referral_service.services.auth import Principal, require_staff
from referral_service.services.errors import NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes

# The columns of a KPI row, in the SPEC's order (also the CSV header and the XLSX columns).
COLUMNS = (
    "organization_id", "organization_name", "kind", "month", "referrals_made",
    "referrals_received", "accepted_received", "converted_made", "converted_received",
    "new_client_credits", "target", "attainment",
)
# A month is YYYY-MM from 1970-01 to 2999-12: a later year would put the end of December past
# what datetime holds (9999), an earlier one before the epoch. ASCII digits only (Python's \d
# also matches other scripts' digits); also the pattern the API documents.
_MONTH = re.compile(MONTH_PATTERN)
ATTAINMENT_DIGITS = 4


def month_range(month: str) -> tuple[datetime, datetime]:
    """Return the UTC [start, end) of a 'YYYY-MM' month; 422 if it is not one."""
    if _MONTH.fullmatch(month or "") is None:
        raise ValidationFailed(f"{month!r} is not a month.",
                               {"month": [MONTH_MESSAGE]})
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _kpi_statement(*, one_organization: bool) -> Select:
    """Build the one SELECT that computes every KPI row of a month (see COLUMNS).

    Parameters: start, end (the month's UTC range), month ('YYYY-MM') and, for one
    organization, organization_id. Built once: a request only binds the values.

    Shape: one indexed pass over the month's referrals, each seen twice (side 0: its
    referrer, side 1: its receiver), plus the month's targets, all grouped by organization;
    the grouped rows then look up their organization by primary key.
    """
    r = Referral
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    month = bindparam("month", type_=String())
    zero, one = literal_column("0"), literal_column("1")

    def within(column):
        return and_(column >= start, column < end)

    def flag(condition):
        return case((condition, one), else_=zero)

    created, accepted, converted = (within(r.created_at), within(r.accepted_at),
                                    within(r.converted_at))
    sides = select(zero.label("side")).union_all(select(one)).subquery("sides")
    as_referrer, as_receiver = sides.c.side == zero, sides.c.side == one
    referral_rows = (
        select(case((as_referrer, r.referrer_organization_id),
                    else_=r.receiver_organization_id).label("org"),
               flag(and_(as_referrer, created)).label("made"),
               flag(and_(as_receiver, created)).label("received"),
               flag(and_(as_receiver, accepted)).label("accepted"),
               flag(and_(as_referrer, converted)).label("converted_made"),
               flag(and_(as_receiver, converted)).label("converted_received"),
               # A referrer whose referral was only accepted this month has nothing to count.
               flag(or_(as_receiver, created, converted)).label("counts"),
               null().label("target"))
        .select_from(Referral).join(sides, true())
        .where(or_(created, accepted, converted))
    )
    target_rows = (
        select(KpiTarget.scope_id.label("org"), zero, zero, zero, zero, zero, one,
               KpiTarget.new_clients)
        .where(KpiTarget.month == month, KpiTarget.scope == "organization")
    )
    if one_organization:
        organization_id = bindparam("organization_id", type_=Integer())
        referral_rows = referral_rows.where(or_(r.referrer_organization_id == organization_id,
                                                r.receiver_organization_id == organization_id))
        target_rows = target_rows.where(KpiTarget.scope_id == organization_id)
    rows = union_all(referral_rows, target_rows).subquery("kpi_rows")
    grouped = (
        select(rows.c.org, *(func.sum(rows.c[name]).label(name) for name in (
                   "made", "received", "accepted", "converted_made", "converted_received")),
               func.max(rows.c.target).label("target"))
        .group_by(rows.c.org)
        .having(func.sum(rows.c.counts) > zero)
        .subquery("activity")
    )
    credits = grouped.c.converted_made + grouped.c.converted_received
    # attainment = credits / target; no target (or a target of 0) has no attainment.
    attainment = case(
        (grouped.c.target > zero,
         # 1.0 written out: NUMERIC on PostgreSQL (which rounds only NUMERIC), REAL on SQLite.
         cast(func.round(credits * literal_column("1.0") / grouped.c.target,
                         literal_column(str(ATTAINMENT_DIGITS))), Float)),
        else_=null(),
    )
    statement = (
        select(
            Organization.id.label("organization_id"),
            Organization.name.label("organization_name"),
            Organization.kind.label("kind"),
            month.label("month"),
            # PostgreSQL sums integers as BIGINT; the KPI is a plain whole number everywhere.
            cast(grouped.c.made, Integer).label("referrals_made"),
            cast(grouped.c.received, Integer).label("referrals_received"),
            cast(grouped.c.accepted, Integer).label("accepted_received"),
            cast(grouped.c.converted_made, Integer).label("converted_made"),
            cast(grouped.c.converted_received, Integer).label("converted_received"),
            cast(credits, Integer).label("new_client_credits"),
            grouped.c.target.label("target"),
            attainment.label("attainment"),
        )
        .select_from(grouped).join(Organization, Organization.id == grouped.c.org)
        .order_by(grouped.c.org)  # the grouping's own order: no second sort
    )
    if one_organization:
        statement = statement.where(Organization.id == organization_id)
    return statement


_ALL_ORGANIZATIONS = _kpi_statement(one_organization=False)
_ONE_ORGANIZATION = _kpi_statement(one_organization=True)


def kpi_query(month: str, organization_id: int | None = None) -> tuple[Select, dict[str, Any]]:
    """Return the KPI statement of `month` and its parameters (also timed by bench/)."""
    start, end = month_range(month)
    params: dict[str, Any] = {"start": start, "end": end, "month": month}
    if organization_id is None:
        return _ALL_ORGANIZATIONS, params
    return _ONE_ORGANIZATION, {**params, "organization_id": organization_id}


def scoped_query(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None
) -> tuple[Select, dict[str, Any]]:
    """Return the KPI statement of the rows of `month` the caller may see, and its parameters.

    A partner sees only its own row.
    """
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            raise NotFound(f"Organization {organization_id} does not exist.")
        organization_id = actor.organization_id
    elif organization_id is not None and session.scalar(
            select(Organization.id).where(Organization.id == organization_id)) is None:
        raise NotFound(f"Organization {organization_id} does not exist.")
    return kpi_query(month, organization_id)


def monthly_kpi(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None,
    page: int | None = None, page_size: int | None = None,
) -> list[dict[str, Any]]:
    """Return the KPI rows of `month`: one per organization with activity or a target.

    A partner gets only its own row. With `page` and `page_size`, only that page of the rows
    (in organization id order).
    """
    statement, params = scoped_query(session=session, month=month, actor=actor,
                                     organization_id=organization_id)
    if page is not None and page_size is not None:
        statement = statement.limit(page_size).offset((page - 1) * page_size)
    rows = plain_rows(session, statement, params)
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@writes
def set_target(
    *, session: Session, organization_id: int, month: str, new_clients: int, actor: Principal
) -> KpiTarget:
    """Set an organization's new-client target for a month (head office and CRM only)."""
    require_staff(actor)
    month_range(month)
    if new_clients < 0:
        raise ValidationFailed("A target cannot be negative.",
                               {"new_clients": ["Must be 0 or more."]})
    if session.scalar(select(Organization.id).where(Organization.id == organization_id)) is None:
        raise NotFound(f"Organization {organization_id} does not exist.")
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


def export(rows: list[dict[str, Any]], fmt: str, month: str) -> bytes:
    """Return a month's rows as JSON, CSV or XLSX bytes (adapters/kpi_files.py writes them)."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"Unknown export format {fmt!r}.",
                               {"format": [f"One of {', '.join(FORMATS)}."]})
    return kpi_files.write(rows, fmt, month, columns=COLUMNS,
                           created=month_range(month)[0].replace(tzinfo=None))
