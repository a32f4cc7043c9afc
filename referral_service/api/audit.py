"""The audit log, read-only, for admins: /api/v1/audit."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal, page_body
from referral_service.db import read_session
from referral_service.schemas.audit import AuditListArgsSchema, AuditPageSchema
from referral_service.services import audit

blp = Blueprint("audit", __name__, description="Who changed what and when (admin keys only).")


@blp.route("")
class AuditEntries(MethodView):
    """The audit log."""

    @blp.arguments(AuditListArgsSchema(), location="query")
    @blp.response(200, AuditPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self, args):
        """List audit entries, newest first; filter by object_type and object_id."""
        filters = {key: args[key] for key in ("object_type", "object_id") if key in args}
        items, total = audit.list_(session=read_session(), actor=current_principal(),
                                   page=args["page"], page_size=args["page_size"], **filters)
        return page_body(items, total, args)
