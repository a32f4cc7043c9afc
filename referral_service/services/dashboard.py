"""What the portal's dashboard and KPI pages show: months, KPI totals, recent outcomes.

Every figure is computed by the database: the totals are one aggregate over the month's KPI
statement (services/kpi.py), the recent outcomes one ordered, limited query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, REFERRAL_STATUSES, Referral
from referral_service.adapters.sql import plain_rows
from referral_service.schemas.base import MONTH_PATTERN
from referral_service.services import kpi
from referral_service.services.auth import Principal
from referral_service.services.errors import ValidationFailed
from referral_service.services.unit_of_work import writes

# A referral in one of these has its outcome: the lifecycle ends there.
OUTCOME_STATUSES = tuple(s for s in REFERRAL_STATUSES if s not in OPEN_STATUSES)
# The summed columns of a KPI row (the rest are names, the target and a ratio).
KPI_COUNTS = ("referrals_made", "referrals_received", "accepted_received", "converted_made",
              "converted_received", "new_client_credits")
_MONTH = re.compile(MONTH_PATTERN)


# ---------------------------------------------------------------------------------- months


def this_month(now: datetime | None = None) -> str:
    """Return the current month (or `now`'s) in UTC as YYYY-MM."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def shift_month(month: str, delta: int) -> str:
    """Return the month `delta` months after `month` (YYYY-MM); it may fall outside the KPI's
    range (check it with valid_month)."""
    year, number = int(month[:4]), int(month[5:7])
    index = year * 12 + number - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def valid_month(value: str | None) -> bool:
    """Return whether `value` is a month the KPI knows (schemas.base.MONTH_PATTERN)."""
    return bool(value) and _MONTH.fullmatch(value) is not None


# ------------------------------------------------------------------------------------- KPI


def kpi_summary(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None
) -> dict[str, Any]:
    """Return the month's KPI added up over the rows the caller may see (a partner: its own).

    Keys: each of KPI_COUNTS, `organizations` (the number of rows), `target` (the sum of the
    targets set, None if none is) and `attainment` (credits / target, None without a target).
    """
    statement, params = kpi.scoped_query(session=session, month=month, actor=actor,
                                         organization_id=organization_id)
    rows = statement.subquery("kpi")
    totals = select(
        func.count().label("organizations"),
        *(func.coalesce(func.sum(rows.c[name]), 0).label(name) for name in KPI_COUNTS),
        func.sum(rows.c.target).label("target"),  # NULL when no row has a target
    )
    found = plain_rows(session, totals, params)[0]._asdict()
    summary = {name: int(value) if value is not None else None for name, value in found.items()}
    # attainment = credits / target; no target (or a target of 0) has no attainment.
    summary["attainment"] = (summary["new_client_credits"] / summary["target"]
                             if summary["target"] else None)
    return summary


@writes
def set_targets(
    *, session: Session, month: str, targets: Mapping[int, int], actor: Principal
) -> list[int]:
    """Set the month's targets that changed, for firms with a KPI row; return their ids.

    One unit of work: a refused target leaves every other unchanged. A ValidationFailed
    names the firm in `extra["organization_id"]`.
    """
    current = {row["organization_id"]: row["target"] for row in
               kpi.monthly_kpi(session=session, month=month, actor=actor)}
    changed = [organization_id for organization_id, value in targets.items()
               if organization_id in current and current[organization_id] != value]
    for organization_id in changed:
        try:
            kpi.set_target(session=session, organization_id=organization_id, month=month,
                           new_clients=targets[organization_id], actor=actor)
        except ValidationFailed as error:
            error.extra["organization_id"] = organization_id
            raise
    return changed


# ------------------------------------------------------------------------------- referrals


def recent_outcomes(*, session: Session, actor: Principal, count: int = 8) -> list[Referral]:
    """Return the latest referrals with an outcome that the caller is party to, newest first
    (head office without a firm: the whole network's)."""
    query = select(Referral).where(Referral.status.in_(OUTCOME_STATUSES))
    if actor.organization_id is not None:
        query = query.where(or_(Referral.referrer_organization_id == actor.organization_id,
                                Referral.receiver_organization_id == actor.organization_id))
    query = query.order_by(Referral.updated_at.desc(), Referral.id.desc()).limit(count)
    return list(session.scalars(query).unique())
