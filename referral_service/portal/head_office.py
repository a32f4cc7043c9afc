"""Head office's pages: organizations, the match form, the KPI month view with its targets,
downloads and charts (the history chart also serves a partner's dashboard)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext, ngettext

from referral_service.db import read_session, write_session
from referral_service.portal import charts
from referral_service.portal.auth import login_required, staff_required
from referral_service.portal.common import (
    PAGE_SIZE,
    blp,
    find_organization,
    need_request,
    organization_names,
    page_number,
    principal,
    rendered,
    run_match,
)
from referral_service.portal.forms import (
    MatchForm,
    NewTargetForm,
    OrganizationFilterForm,
    TargetsForm,
    flatten_errors,
)
from referral_service.schemas.base import MAX_PAGE
from referral_service.services import dashboard as figures
from referral_service.services import kpi, organizations
from referral_service.services.errors import NotFound, ValidationFailed

# The downloads the KPI page offers (their content types are the KPI service's).
EXPORT_FORMATS = ("csv", "xlsx")
HISTORY_MONTHS = 6


@blp.get("/organizations")
@staff_required
def organization_list():
    """Every firm, searchable and filtered, paged."""
    form = OrganizationFilterForm(request.args)
    filters: dict[str, Any] = {}
    if form.validate():
        filters = {name: getattr(form, name).data for name in ("q", "kind", "skill")
                   if getattr(form, name).data}
        if form.active.data:
            filters["active"] = form.active.data == "true"
    page = page_number()
    items, total = organizations.list_(session=read_session(), actor=principal(), page=page,
                                       page_size=PAGE_SIZE, **filters)
    return rendered("organizations.html", form=form, items=items, total=total, page=page,
                    page_size=PAGE_SIZE, status=422 if form.errors else 200)


@blp.route("/match", methods=["GET", "POST"])
@staff_required
def match():
    """Rank firms for a need by hand."""
    form = MatchForm()
    result, general = None, []
    if form.validate_on_submit():
        referrer_id, problem = (find_organization(form.referrer.data, principal())
                                if form.referrer.data else (None, None))
        if problem:
            form.referrer.errors = [problem]
        else:
            body = need_request(form, limit=form.limit.data or 10,
                                max_distance_km=form.max_distance_km.data,
                                kinds=form.kinds.data or None,
                                referrer_organization_id=referrer_id, **form.group_request())
            result, general = run_match(form, body)
    failed = form.is_submitted() and (result is None)
    return rendered("match.html", form=form, result=result, general=general,
                    status=422 if failed else 200)


# --- KPI ----------------------------------------------------------------------------------


def month_arg() -> str | None:
    """Return ?month= if it is a month, the current month if absent, else None."""
    month = request.args.get("month") or figures.this_month()
    return month if figures.valid_month(month) else None


def month_or_404(value: str | None) -> str:
    """Return `value` if it is a month; a page for no month is a 404."""
    if not figures.valid_month(value):
        raise NotFound("Not a month.")
    return value


def neighbour(month: str, delta: int) -> str | None:
    """Return the month `delta` months away, or None past the KPI's range."""
    shifted = figures.shift_month(month, delta)
    return shifted if figures.valid_month(shifted) else None


@blp.get("/kpi")
@staff_required
def kpi_month():
    """The KPI month view: one row per firm, editable targets, chart and downloads; with
    ?level=department or person, the drill-down (a firm's departments, a department's
    people)."""
    month = month_arg()
    if month is None:
        flash(gettext("Give the month as YYYY-MM; here is the current one."), "error")
        return redirect(url_for(".kpi_month"))
    level = request.args.get("level", "organization")
    if level not in kpi.LEVELS:
        raise NotFound("Unknown KPI level.")
    if level != "organization":
        return kpi_level_page(month, level)
    return kpi_page(month)


def kpi_level_page(month: str, level: str):
    """One page of the month's department or person rows, narrowed to a firm or a
    department's tree when the drill-down names one."""
    organization_id = request.args.get("organization_id", type=int)
    department_id = request.args.get("department_id", type=int)
    page = page_number()
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=principal(),
                           level=level, organization_id=organization_id,
                           department_id=department_id)
    corrections = kpi.monthly_corrections(
        session=read_session(), month=month, actor=principal(), level=level,
        organization_id=organization_id, department_id=department_id)
    names = organization_names({row["organization_id"] for row in rows}
                               | {c.organization_id for c in corrections})
    shown = rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    return rendered("kpi.html", month=month, level=level, level_rows=shown, total=len(rows),
                    page=page, page_size=PAGE_SIZE, names=names, corrections=corrections,
                    organization_id=organization_id, department_id=department_id,
                    previous=neighbour(month, -1), next=neighbour(month, 1))


def kpi_page(month: str, *, targets_form: TargetsForm | None = None,
             new_form: NewTargetForm | None = None, status: int = 200):
    """Render one page of the month's KPI rows with the targets form."""
    session, actor, page = read_session(), principal(), page_number()
    summary = figures.kpi_summary(session=session, month=month, actor=actor)
    rows = kpi.monthly_kpi(session=session, month=month, actor=actor, page=page,
                           page_size=PAGE_SIZE)
    corrections = kpi.monthly_corrections(session=session, month=month, actor=actor)
    if targets_form is None:
        targets_form = TargetsForm(formdata=None, month=month, targets=[
            {"organization_id": row["organization_id"], "new_clients": row["target"]}
            for row in rows])
    new_form = new_form or NewTargetForm(formdata=None, month=month)
    inputs = {str(entry.form.organization_id.data): entry.form
              for entry in targets_form.targets.entries}
    return rendered("kpi.html", month=month, level="organization", rows=rows,
                    total=summary["organizations"], corrections=corrections,
                    names=organization_names({c.organization_id for c in corrections}),
                    page=page, page_size=PAGE_SIZE, summary=summary,
                    targets_form=targets_form, target_inputs=inputs, new_form=new_form,
                    previous=neighbour(month, -1), next=neighbour(month, 1), status=status)


@blp.post("/kpi/targets")
@staff_required
def save_targets():
    """Save the targets typed in the KPI table (only those that changed)."""
    form = TargetsForm()
    month = month_or_404(form.month.data)
    if not form.validate():
        return kpi_page(month, targets_form=form, status=422)
    entries = {int(entry.form.organization_id.data): entry.form
               for entry in form.targets.entries
               if (entry.form.organization_id.data or "").isdigit()
               and entry.form.new_clients.data is not None}
    try:
        changed = figures.set_targets(
            session=write_session(), month=month, actor=principal(),
            targets={organization_id: entry.new_clients.data
                     for organization_id, entry in entries.items()})
    except ValidationFailed as error:
        entry = entries.get(error.extra.get("organization_id"))
        if entry is None:
            raise
        entry.new_clients.errors = [m for _p, m in flatten_errors(error.errors)]
        return kpi_page(month, targets_form=form, status=422)
    count = len(changed)
    flash(ngettext("%(num)s target saved for %(month)s.", "%(num)s targets saved for %(month)s.",
                   count, month=month) if count else gettext("No target changed."),
          "success" if count else "info")
    # "Save and go to the next page" (the table's pager): saved first, then the other page.
    go = request.form.get("go", type=int)
    page = go if go is not None and 1 <= go <= MAX_PAGE else request.args.get("page")
    return redirect(url_for(".kpi_month", month=month, page=page))


@blp.post("/kpi/targets/new")
@staff_required
def add_target():
    """Set a target for a firm picked by name or id."""
    form = NewTargetForm()
    month = month_or_404(form.month.data)
    if not form.validate():
        return kpi_page(month, new_form=form, status=422)
    organization_id, problem = find_organization(form.organization.data, principal())
    if problem:
        form.organization.errors = [problem]
        return kpi_page(month, new_form=form, status=422)
    try:
        kpi.set_target(session=write_session(), organization_id=organization_id, month=month,
                       new_clients=form.new_clients.data, actor=principal())
    except ValidationFailed as error:
        form.new_clients.errors = [m for _p, m in flatten_errors(error.errors)]
        return kpi_page(month, new_form=form, status=422)
    name = organization_names({organization_id}).get(organization_id, f"#{organization_id}")
    flash(gettext("Target for %(firm)s in %(month)s set to %(num)s.", firm=name, month=month,
                  num=form.new_clients.data), "success")
    return redirect(url_for(".kpi_month", month=month))


@blp.get("/kpi/export")
@staff_required
def kpi_export():
    """Download the month's KPI rows of one level as CSV or XLSX."""
    month, fmt = month_arg(), request.args.get("format", "csv")
    level = request.args.get("level", "organization")
    if month is None or fmt not in EXPORT_FORMATS or level not in kpi.LEVELS:
        raise NotFound("Unknown month, format or level.")
    body = kpi.monthly_export(session=read_session(), month=month, actor=principal(),
                              fmt=fmt, level=level)
    return Response(body, content_type=kpi.CONTENT_TYPES[fmt],
                    headers={"Content-Disposition":
                             f'attachment; filename="{kpi.filename(month, fmt, level)}"'})


@blp.get("/kpi/chart.png")
@staff_required
def kpi_chart():
    """The month's new-client credits against targets, as a PNG bar chart."""
    month = month_arg()
    if month is None:
        raise NotFound("Not a month.")
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=principal())
    return png(charts.month_chart(rows, month, compact=request.args.get("size") == "small"))


@blp.get("/kpi/history.png")
@login_required
def kpi_history_chart():
    """A firm's credits and targets over the last months (a partner: its own firm)."""
    actor = principal()
    organization_id = actor.organization_id or request.args.get("organization_id", type=int)
    last = figures.this_month()
    points = []
    for offset in range(HISTORY_MONTHS - 1, -1, -1):
        month = figures.shift_month(last, -offset)
        summary = figures.kpi_summary(session=read_session(), month=month, actor=actor,
                                      organization_id=organization_id)
        points.append((month, summary["new_client_credits"], summary["target"]))
    # Months before the firm's first credit or target say nothing; keep at least three.
    while len(points) > 3 and not points[0][1] and points[0][2] is None:
        points.pop(0)
    return png(charts.history_chart(points, compact=request.args.get("size") == "small"))


def png(body: bytes) -> Response:
    """Return a chart; the browser may keep it for a minute."""
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
