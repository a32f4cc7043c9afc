"""The monthly new-client KPI: one SQL aggregate per month, its targets and its exports.

Every figure comes from GROUP BY over the referrals of the month's [start, end) range (UTC):
Python only turns the organization rows into dicts, never walks referrals.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import xlsxwriter
from sqlalchemy import Integer, Select, and_, cast, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import KpiTarget, Organization, Referral, utcnow
from referral_service.services import audit
from referral_service.services.auth import Principal, require_staff
from referral_service.services.errors import NotFound, ValidationFailed

# The columns of a KPI row, in the SPEC's order (also the CSV header and the XLSX columns).
COLUMNS = (
    "organization_id", "organization_name", "kind", "month", "referrals_made",
    "referrals_received", "accepted_received", "converted_made", "converted_received",
    "new_client_credits", "target", "attainment",
)
FORMATS = ("json", "csv", "xlsx")
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ATTAINMENT_DIGITS = 4


def month_range(month: str) -> tuple[datetime, datetime]:
    """Return the UTC [start, end) of a 'YYYY-MM' month; 422 if it is not one."""
    found = _MONTH.match(month or "")
    if found is None or int(found["year"]) < 1970:
        raise ValidationFailed(f"{month!r} is not a month.",
                               {"month": ["Use YYYY-MM, for example 2026-03."]})
    year, number = int(found["year"]), int(found["month"])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def kpi_statement(month: str, organization_id: int | None = None) -> Select:
    """Return the one SELECT that computes every KPI row of `month` (see COLUMNS)."""
    start, end = month_range(month)
    r = Referral.__table__.c

    def within(column):
        return and_(column >= start, column < end)

    zero = literal(0)
    made = (
        select(r.referrer_organization_id.label("org"),
               func.count().filter(within(r.created_at)).label("made"),
               zero.label("received"), zero.label("accepted"),
               func.count().filter(within(r.converted_at)).label("converted_made"),
               zero.label("converted_received"))
        .where(or_(within(r.created_at), within(r.converted_at)))
        .group_by(r.referrer_organization_id)
    )
    received = (
        select(r.receiver_organization_id.label("org"), zero.label("made"),
               func.count().filter(within(r.created_at)).label("received"),
               func.count().filter(within(r.accepted_at)).label("accepted"),
               zero.label("converted_made"),
               func.count().filter(within(r.converted_at)).label("converted_received"))
        .where(or_(within(r.created_at), within(r.accepted_at), within(r.converted_at)))
        .group_by(r.receiver_organization_id)
    )
    if organization_id is not None:
        made = made.where(r.referrer_organization_id == organization_id)
        received = received.where(r.receiver_organization_id == organization_id)
    sides = union_all(made, received).subquery("sides")
    def total(column):
        # PostgreSQL sums counts as NUMERIC; the KPI is a whole number everywhere.
        return cast(func.sum(column), Integer)

    activity = (
        select(sides.c.org,
               total(sides.c.made).label("made"),
               total(sides.c.received).label("received"),
               total(sides.c.accepted).label("accepted"),
               total(sides.c.converted_made).label("converted_made"),
               total(sides.c.converted_received).label("converted_received"))
        .group_by(sides.c.org)
        .subquery("activity")
    )
    targets = (
        select(KpiTarget.organization_id, KpiTarget.new_clients)
        .where(KpiTarget.month == month).subquery("targets")
    )
    converted_made = func.coalesce(activity.c.converted_made, 0)
    converted_received = func.coalesce(activity.c.converted_received, 0)
    statement = (
        select(
            Organization.id.label("organization_id"),
            Organization.name.label("organization_name"),
            Organization.kind.label("kind"),
            literal(month).label("month"),
            func.coalesce(activity.c.made, 0).label("referrals_made"),
            func.coalesce(activity.c.received, 0).label("referrals_received"),
            func.coalesce(activity.c.accepted, 0).label("accepted_received"),
            converted_made.label("converted_made"),
            converted_received.label("converted_received"),
            (converted_made + converted_received).label("new_client_credits"),
            targets.c.new_clients.label("target"),
        )
        .select_from(Organization.__table__)
        .outerjoin(activity, activity.c.org == Organization.id)
        .outerjoin(targets, targets.c.organization_id == Organization.id)
        .where(or_(activity.c.org.is_not(None), targets.c.organization_id.is_not(None)))
        .order_by(Organization.id)
    )
    if organization_id is not None:
        statement = statement.where(Organization.id == organization_id)
    return statement


def monthly_kpi(
    *, session: Session, month: str, actor: Principal, organization_id: int | None = None
) -> list[dict[str, Any]]:
    """Return the KPI rows of `month`: one per organization with activity or a target.

    A partner gets only its own row.
    """
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            raise NotFound(f"Organization {organization_id} does not exist.")
        organization_id = actor.organization_id
    elif organization_id is not None and session.scalar(
            select(Organization.id).where(Organization.id == organization_id)) is None:
        raise NotFound(f"Organization {organization_id} does not exist.")
    result = session.execute(kpi_statement(month, organization_id))
    return [_with_attainment(row) for row in result.mappings()]


def _with_attainment(row: Any) -> dict[str, Any]:
    out = dict(row)
    target = out["target"]
    # attainment = credits / target; no target (or a target of 0) has no attainment.
    out["attainment"] = (round(out["new_client_credits"] / target, ATTAINMENT_DIGITS)
                         if target else None)
    return out


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
        target = session.get(KpiTarget, (organization_id, month), populate_existing=True)
        before = None if target is None else target.new_clients
        if target is None:
            target = KpiTarget(organization_id=organization_id, month=month,
                               new_clients=new_clients, updated_at=utcnow())
            try:
                with session.begin_nested():
                    session.add(target)
            except IntegrityError:
                continue  # set concurrently: update that row instead
        else:
            target.new_clients = new_clients
            target.updated_at = utcnow()
        audit.record(session=session, actor=actor, action="kpi_target.set",
                     object_type="kpi_target", object_id=f"{organization_id}/{month}",
                     changes={"new_clients": {"from": before, "to": new_clients}})
        session.commit()
        return target
    raise RuntimeError("The target kept changing concurrently; giving up.")


# --------------------------------------------------------------------------------- exports


def filename(month: str, fmt: str) -> str:
    """Return the download name of a month's export."""
    return f"kpi-{month}.{fmt}"


def export(rows: list[dict[str, Any]], fmt: str, month: str) -> bytes:
    """Return the rows as JSON, CSV (UTF-8 with BOM) or XLSX bytes; the same rows give the
    same bytes."""
    if fmt == "json":
        return json.dumps({"month": month, "rows": rows}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
    if fmt == "csv":
        return _csv(rows)
    if fmt == "xlsx":
        return _xlsx(rows, month)
    raise ValidationFailed(f"Unknown export format {fmt!r}.",
                           {"format": [f"One of {', '.join(FORMATS)}."]})


def neutralise(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([["" if row[c] is None else neutralise(row[c]) for c in COLUMNS]
                      for row in rows])
    # The BOM makes Excel read the file as UTF-8 (firm names in Chinese, Japanese, ...).
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _xlsx(rows: list[dict[str, Any]], month: str) -> bytes:
    buffer = io.BytesIO()
    # Never turn text into formulas or links, whatever a firm's name starts with.
    workbook = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False,
    })
    start, _ = month_range(month)
    # A fixed creation time: the same month exported twice gives the same bytes.
    workbook.set_properties({"title": f"Referral KPI {month}", "created": start.replace(
        tzinfo=None)})
    sheet = workbook.add_worksheet(f"KPI {month}")
    header = workbook.add_format({"bold": True})
    percent = workbook.add_format({"num_format": "0.0%"})
    for column, name in enumerate(COLUMNS):
        sheet.write_string(0, column, name, header)
    attainment = COLUMNS.index("attainment")
    for number, row in enumerate(rows, start=1):
        for column, name in enumerate(COLUMNS):
            value = row[name]
            if value is None:
                continue
            if isinstance(value, str):
                sheet.write_string(number, column, value)
            else:
                sheet.write_number(number, column, value,
                                   percent if column == attainment else None)
    sheet.freeze_panes(1, 0)
    sheet.set_column(1, 1, 40)
    sheet.set_column(2, len(COLUMNS) - 1, 14)
    workbook.close()
    return buffer.getvalue()
