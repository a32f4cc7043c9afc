"""The audit log as the API lists it."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from referral_service.schemas.base import PageArgsSchema, page_schema


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
