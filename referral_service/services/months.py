"""Closed KPI months (SPEC section 10): closing freezes a month's rows of every level.

Closing stores the rows of every level, for every organization and the whole month, as
computed then (kpi_month_snapshots), and the export bytes of every level and format
(kpi_month_exports: what head office and the CRM are served, without writing a file again);
from then on GET /kpi/monthly for that month is made from them, so its exports are
byte-identical for ever (a firm renamed later keeps its old name there). Targets of a closed
month cannot change (`require_open`). The kpi_months primary key decides between two closings
at once: the second is a 409.

A later change to a closed month's figures (a conversion reversed, a late expiry) is booked as
correction rows in the first open month after it (`book_corrections`): the change's closed
months are recomputed for the firms it touches, at every level, and whatever differs from the
snapshot plus the corrections already booked for it becomes one row per organization,
department or person. Lock order: the change's own rows (referral, counts), then the KPI
months' gate (adapters/sql.gate "kpi_months": shared by bookings, exclusive for a closing, so a
closing reads every change committed before it and a change committed after it sees the month
closed and books its correction; a correction lands in a month before it closes or in a later
one), then the closed months' kpi_months rows (FOR UPDATE, in month order), so that two
corrections of one month follow each other and the second sees the first.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    KpiCorrection,
    KpiMonth,
    KpiMonthExport,
    KpiMonthSnapshot,
    Lead,
    Referral,
    Visit,
    utcnow,
)
from referral_service.adapters.sql import gate, plain_rows
from referral_service.schemas.kpi import LEVELS, KpiMonthStatusSchema
from referral_service.services import audit, events, kpi
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict, Forbidden
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_

# The reason a late expiry's correction carries.
EXPIRED_AFTER_CLOSE = "Expired after the month closed."
# A referral's moments: a change to it may alter the figures of each one's month.
_MOMENTS = ("created_at", "accepted_at", "converted_at", "declined_at", "withdrawn_at",
            "expired_at", "lost_at")
# The month.closed event's data: the month as POST /kpi/months/{month}/close answers it.
_STATUS = KpiMonthStatusSchema()
# The columns of a row that say whose it is or what its target is; the others are figures.
_NOT_FIGURES = frozenset({"organization_id", "organization_name", "kind", "month",
                          "department_id", "department_name", "person_id", "person_name",
                          "target", "attainment", "target_status"})


def figures(level: str) -> tuple[str, ...]:
    """Return the figure columns of one level's rows, in their order (what a correction
    changes)."""
    return tuple(name for name in kpi.LEVEL_COLUMNS[level] if name not in _NOT_FIGURES)


# The column naming a row within its organization (an organization's row is the firm's own).
ROW_ID = {"organization": None, "department": "department_id", "person": "person_id"}


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
        raise Conflict(N_("%(month)s is closed: its targets cannot change.", month=month))


def frozen_rows(*, session: Session, month: str, level: str) -> list[dict[str, Any]] | None:
    """Return a closed month's rows of one level as stored at close; None if it is open."""
    snapshot = session.get(KpiMonthSnapshot, (month, level))
    return None if snapshot is None else snapshot.rows


def stored_export(*, session: Session, month: str, level: str, fmt: str) -> bytes | None:
    """Return a closed month's export of one level and format, every organization's, as made
    at close; None if the month is open (or closed before exports were stored)."""
    stored = session.scalar(select(KpiMonthExport.body_zlib).where(
        KpiMonthExport.month == month, KpiMonthExport.level == level,
        KpiMonthExport.format == fmt))
    return None if stored is None else zlib.decompress(stored)


def corrections_in(*, session: Session, month: str, level: str,
                   organization_id: int | None = None) -> list[KpiCorrection]:
    """Return the corrections booked in `month` of one level's rows, oldest first (one
    organization's, if given)."""
    query = select(KpiCorrection).where(KpiCorrection.month == month,
                                        KpiCorrection.level == level)
    if organization_id is not None:
        query = query.where(KpiCorrection.organization_id == organization_id)
    return list(session.scalars(query.order_by(KpiCorrection.id)))


def book_corrections(*, session: Session, referrals: Iterable[Referral], reason: str,
                     actor: Principal) -> list[KpiCorrection]:
    """Book, in the first open month after each, what a change to these referrals (already
    flushed) altered in the figures of closed months; return the rows booked.

    The closed months are those of any of the referrals' moments; their rows are recomputed
    for the firms party to the referrals, at every level, and compared with the snapshot plus
    the corrections already booked for that month: only the remainder is booked.
    """
    touched: dict[str, dict[int, set[int]]] = {}  # month -> organization -> referral ids
    for referral in referrals:
        for name in _MOMENTS:
            moment = getattr(referral, name)
            if moment is None:
                continue
            firms = touched.setdefault(_month_of(moment), {})
            for organization_id in (referral.referrer_organization_id,
                                    referral.receiver_organization_id):
                firms.setdefault(organization_id, set()).add(referral.id)
    return book_changes(session=session, touched=touched, reason=reason, actor=actor)


def book_changes(*, session: Session, touched: dict[str, dict[int, set[int]]], reason: str,
                 actor: Principal) -> list[KpiCorrection]:
    """Book what a change altered in the figures of the closed months among `touched` (month
    -> organization -> the ids of the referrals changed, maybe none); return the rows booked.
    Any change to rows a closed month counts (a visit or a lead dated in it) goes here."""
    if not touched:
        return []
    gate(session, "kpi_months", exclusive=False)
    closed = session.scalars(select(KpiMonth.month).where(KpiMonth.month.in_(touched))
                             .order_by(KpiMonth.month).with_for_update()).all()
    booked: list[KpiCorrection] = []
    for month in closed:
        booked += _book_month(session, month, touched[month], reason, actor)
    if booked:
        audit.record(session=session, actor=actor, action="kpi_month.correct",
                     object_type="kpi_month", object_id=",".join(closed),
                     changes={"corrections": len(booked), "month": booked[0].month,
                              "reason": reason})
    return booked


ORG_CHART_REASON = "People or departments changed after the month closed."


def book_org_chart_change(*, session: Session, organization_id: int,
                          actor: Principal) -> list[KpiCorrection]:
    """Book, for every closed month, what a change of the firm's people or departments (a
    department, manager, head or parent changed; someone deactivated) moves between its
    department and person rows, under its own reason, so that the next referral's correction
    carries only its own change."""
    closed = session.scalars(select(KpiMonth.month)).all()
    return book_changes(session=session, reason=ORG_CHART_REASON, actor=actor,
                        touched={month: {organization_id: set()} for month in closed})


def _book_month(session: Session, month: str, firms: dict[int, set[int]], reason: str,
                actor: Principal) -> list[KpiCorrection]:
    """Book the remainder of one closed month's rows of these firms, at every level."""
    landing = first_open_after(session=session, month=month)
    now = utcnow()
    booked = []
    for level in LEVELS:
        names, row_id = figures(level), ROW_ID[level]
        already: dict[tuple[int, int | None], dict[str, int]] = {}
        for correction in session.scalars(select(KpiCorrection).where(
                KpiCorrection.correction_of == month, KpiCorrection.level == level,
                KpiCorrection.organization_id.in_(firms))):
            key = (correction.organization_id, correction.row_id)
            sums = already.setdefault(key, {})
            for name, delta in correction.deltas.items():
                sums[name] = sums.get(name, 0) + delta
        frozen = [row for row in frozen_rows(session=session, month=month, level=level) or []
                  if row["organization_id"] in firms]
        stated = {(row["organization_id"], row_id and row[row_id]): row for row in frozen}
        columns = kpi.LEVEL_COLUMNS[level]
        now_rows: dict[tuple[int, int | None], dict[str, Any]] = {}
        for organization_id in sorted(firms):
            statement, params = kpi.level_query(level, month, organization_id)
            for values in plain_rows(session, statement, params):
                row = dict(zip(columns, values, strict=True))
                now_rows[row["organization_id"], row_id and row[row_id]] = row
        for key in sorted(now_rows.keys() | stated.keys() | already.keys(),
                          key=lambda key: (key[0], key[1] or 0)):
            deltas = {}
            for name in names:
                shown = (stated.get(key, {}).get(name) or 0) + already.get(key, {}).get(name, 0)
                remainder = (now_rows.get(key, {}).get(name) or 0) - shown
                if remainder:
                    deltas[name] = remainder
            if deltas:
                correction = KpiCorrection(
                    month=landing, correction_of=month, organization_id=key[0], level=level,
                    row_id=key[1], referral_ids=sorted(firms[key[0]]), reason=reason,
                    deltas=deltas, created_at=now, actor=actor.name)
                session.add(correction)
                booked.append(correction)
    session.flush()
    return booked


def first_open_after(*, session: Session, month: str) -> str:
    """Return the first month after `month` that is not closed."""
    closed = set(session.scalars(select(KpiMonth.month).where(KpiMonth.month > month)))
    landing = _next_month(month)
    while landing in closed:
        landing = _next_month(landing)
    return landing


@writes
def close(*, session: Session, month: str, actor: Principal,
          now: datetime | None = None) -> MonthView:
    """Close a month: store every level's rows as computed now (head office only).

    Any month before the current one (UTC) may close, and the current one on its last day.
    """
    if actor.role != "admin":
        raise Forbidden(N_("Only head office may close a month."))
    kpi.month_range(month)  # 422 unless a month
    now = now or utcnow()
    current = _month_of(now)
    if month > current or (month == current and _month_of(now + timedelta(days=1)) == current):
        raise Conflict(N_("%(month)s is not over: a month closes from its last day "
                          "(UTC) on.", month=month))
    if session.get(KpiMonth, month) is not None:
        raise Conflict(N_("%(month)s is already closed.", month=month))
    # No change is booking corrections while this month's rows are read (module docstring).
    gate(session, "kpi_months", exclusive=True)
    closed = KpiMonth(month=month, closed_at=now, closed_by=actor.name)
    try:
        with session.begin_nested():
            session.add(closed)
            session.flush()
    except IntegrityError:
        raise Conflict(N_("%(month)s is already closed.", month=month)) from None
    for level in LEVELS:
        statement, params = kpi.level_query(level, month)
        columns = kpi.LEVEL_COLUMNS[level]
        rows = [dict(zip(columns, row, strict=True))
                for row in plain_rows(session, statement, params)]
        session.add(KpiMonthSnapshot(month=month, level=level, rows=rows))
        booked = corrections_in(session=session, month=month, level=level)
        for fmt in kpi.FORMATS:
            body = kpi.export(rows, fmt, month, level, corrections=booked)
            session.add(KpiMonthExport(month=month, level=level, format=fmt,
                                       body_zlib=zlib.compress(body),
                                       sha256=hashlib.sha256(body).hexdigest()))
    audit.record(session=session, actor=actor, action="kpi_month.close",
                 object_type="kpi_month", object_id=month,
                 changes={"status": {"from": "open", "to": "closed"}})
    view = MonthView(month=month, status="closed", closed_at=now, closed_by=actor.name)
    events.emit(session=session, type_="month.closed", payload=_STATUS.dump(view))
    return view


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
