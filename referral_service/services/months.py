"""Closed KPI months (SPEC section 10): closing freezes a month's rows of every level.

Closing stores the rows of every level, for every organization and the whole month, as
computed then (kpi_month_snapshots); from then on GET /kpi/monthly for that month is made from
them, so its exports are byte-identical for ever (a firm renamed later keeps its old name
there). Targets of a closed month cannot change (`require_open`). The kpi_months primary key
decides between two closings at once: the second is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import KpiMonth, KpiMonthSnapshot, Lead, Referral, Visit, utcnow
from referral_service.adapters.sql import plain_rows
from referral_service.schemas.kpi import LEVELS
from referral_service.services import audit, kpi
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict, Forbidden
from referral_service.services.unit_of_work import writes


@dataclass(frozen=True)
class MonthView:
    """A month of the KPI: open, or closed with when and by whom."""

    month: str
    status: str  # open | closed
    closed_at: datetime | None = None
    closed_by: str | None = None


def _month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def require_open(*, session: Session, month: str) -> None:
    """Refuse (409) a change to the targets of a closed month."""
    if session.get(KpiMonth, month) is not None:
        raise Conflict(f"{month} is closed: its targets cannot change.")


def frozen_rows(*, session: Session, month: str, level: str) -> list[dict[str, Any]] | None:
    """Return a closed month's rows of one level as stored at close; None if it is open."""
    snapshot = session.get(KpiMonthSnapshot, (month, level))
    return None if snapshot is None else snapshot.rows


@writes
def close(*, session: Session, month: str, actor: Principal,
          now: datetime | None = None) -> MonthView:
    """Close a month: store every level's rows as computed now (head office only).

    Any month before the current one (UTC) may close, and the current one on its last day.
    """
    if actor.role != "admin":
        raise Forbidden("Only head office may close a month.")
    kpi.month_range(month)  # 422 unless a month
    now = now or utcnow()
    current = _month_of(now)
    if month > current or (month == current and _month_of(now + timedelta(days=1)) == current):
        raise Conflict(f"{month} is not over: a month closes from its last day (UTC) on.")
    if session.get(KpiMonth, month) is not None:
        raise Conflict(f"{month} is already closed.")
    closed = KpiMonth(month=month, closed_at=now, closed_by=actor.name)
    try:
        with session.begin_nested():
            session.add(closed)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{month} is already closed.") from None
    for level in LEVELS:
        statement, params = kpi.level_query(level, month)
        columns = kpi.LEVEL_COLUMNS[level]
        session.add(KpiMonthSnapshot(month=month, level=level, rows=[
            dict(zip(columns, row, strict=True))
            for row in plain_rows(session, statement, params)]))
    audit.record(session=session, actor=actor, action="kpi_month.close",
                 object_type="kpi_month", object_id=month,
                 changes={"status": {"from": "open", "to": "closed"}})
    return MonthView(month=month, status="closed", closed_at=now, closed_by=actor.name)


def list_(*, session: Session, actor: Principal) -> list[MonthView]:
    """Return every month from the first activity to the last, and every closed month, with
    open or closed, latest first; a partner's activity is only its own firm's."""
    closed = {row.month: row for row in session.scalars(select(KpiMonth))}
    referrals = select(func.min(Referral.created_at), func.max(Referral.updated_at))
    visits = select(func.min(Visit.visited_at), func.max(Visit.visited_at))
    leads = select(func.min(Lead.created_at), func.max(Lead.updated_at))
    if actor.is_partner:
        firm = actor.organization_id
        referrals = referrals.where(or_(Referral.referrer_organization_id == firm,
                                        Referral.receiver_organization_id == firm))
        visits = visits.where(Visit.organization_id == firm)
        leads = leads.where(Lead.organization_id == firm)
    moments = [moment for statement in (referrals, visits, leads)
               for moment in session.execute(statement).one() if moment is not None]
    months = set(closed)
    if moments:
        month, last = _month_of(min(moments)), _month_of(max(moments))
        while month <= last:
            months.add(month)
            month = _next_month(month)
    return [MonthView(month=month, status="closed", closed_at=closed[month].closed_at,
                      closed_by=closed[month].closed_by)
            if month in closed else MonthView(month=month, status="open")
            for month in sorted(months, reverse=True)]
