"""The audit log, read-only, for admins: /api/v1/audit."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from referral_service.api.common import current_principal, page_body
from referral_service.api.schemas import PageArgsSchema, page_schema
from referral_service.db import get_session
from referral_service.services import audit

blp = Blueprint("audit", __name__, description="Who changed what and when (admin keys only).")


class AuditEntrySchema(Schema):
    """One recorded write."""

    id = fields.Integer()
    at = fields.DateTime(metadata={"description": "When the write was committed (UTC)."})
    actor = fields.String(metadata={"description": "The API key or portal user that wrote."})
    action = fields.String(metadata={"description": "What was done, e.g. organization.update."})
    object_type = fields.String()
    object_id = fields.String()
    changes = fields.Dict(metadata={
        "description": "The fields written; on an update each is {\"from\": ..., \"to\": ...}."})


class AuditListArgsSchema(PageArgsSchema):
    """Filters of GET /audit."""

    object_type = fields.String(validate=validate.Length(min=1, max=50),
                                metadata={"description": "e.g. organization, referral, api_key"})
    object_id = fields.String(validate=validate.Length(min=1, max=50))


AuditPageSchema = page_schema(AuditEntrySchema, "AuditPageSchema")


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
        items, total = audit.list_(session=get_session(), actor=current_principal(),
                                   page=args["page"], page_size=args["page_size"], **filters)
        return page_body(items, total, args)
