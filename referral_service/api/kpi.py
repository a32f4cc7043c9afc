"""The monthly new-client KPI and its targets: /api/v1/kpi."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal
from referral_service.db import read_session, write_session
from referral_service.schemas import kpi as schemas
from referral_service.services import kpi, months

blp = Blueprint("kpi", __name__,
                description="The monthly new-client KPI of referrers and receivers, and targets.")


@blp.route("/monthly")
class MonthlyKpi(MethodView):
    """One month's KPI rows."""

    @blp.arguments(schemas.KpiArgsSchema(), location="query")
    @blp.response(200, schemas.KpiMonthSchema,
                  description="JSON by default, with the month's `corrections` of closed "
                              "months; format=csv (UTF-8 with BOM) sends the rows alone, "
                              "format=xlsx the rows and, if any, a Corrections sheet.")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(responses={200: {"content": {
        "text/csv": {"schema": {"type": "string"}},
        kpi.CONTENT_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
    }}})
    def get(self, args):
        """The KPI of a month, one row per organization, department or person (level); a
        partner gets only its own organization's rows. A closed month (POST
        /kpi/months/{month}/close) is served as stored when it closed, byte-identical for ever.
        A later change to a closed month's figures (a conversion head office reversed, a late
        expiry) is not written into it: it is a correction in the first open month after it,
        listed in that month's `corrections` (JSON) and Corrections sheet (XLSX), not in its
        CSV rows."""
        month, fmt, level = args["month"], args["format"], args["level"]
        body = kpi.monthly_export(session=read_session(), month=month, fmt=fmt, level=level,
                                  actor=current_principal(),
                                  organization_id=args.get("organization_id"))
        response = Response(body, content_type=kpi.CONTENT_TYPES[fmt])
        if fmt != "json":
            response.headers["Content-Disposition"] = (
                f'attachment; filename="{kpi.filename(month, fmt, level)}"')
        return response


@blp.route("/targets/<id:organization_id>/<month:month>")
class KpiTargetResource(MethodView):
    """An organization's new-client target for one month."""

    @blp.arguments(schemas.KpiTargetInSchema())
    @blp.response(200, schemas.KpiTargetSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(operationId="setKpiTarget")
    def put(self, data, organization_id, month):
        """Set the target (head office and CRM only)."""
        return kpi.set_target(session=write_session(), organization_id=organization_id,
                              month=month, new_clients=data["new_clients"],
                              actor=current_principal())


@blp.route("/months")
class KpiMonths(MethodView):
    """The months of the KPI, open or closed."""

    @blp.response(200, schemas.KpiMonthListSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self):
        """Months with activity (a partner: its own firm's) or closed, latest first."""
        return {"items": months.list_(session=read_session(), actor=current_principal())}


@blp.route("/months/<month:month>/close")
class KpiMonthClose(MethodView):
    """Closing a month."""

    @blp.arguments(schemas.KpiMonthCloseInSchema())
    @blp.response(200, schemas.KpiMonthStatusSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(operationId="closeKpiMonth")
    def post(self, _data, month):
        """Close a month (head office only): its KPI rows of every level are stored as they
        are now and served from then on. A month closes once it is over, or on its last day
        (UTC); closing it again is a 409."""
        return months.close(session=write_session(), month=month, actor=current_principal())
