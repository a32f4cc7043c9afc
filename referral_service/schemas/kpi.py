"""The monthly KPI: its query, its rows, and targets."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from referral_service.schemas.base import MONTH, Id, StrictSchema, WholeNumber


class KpiArgsSchema(StrictSchema):
    """Query parameters of GET /kpi/monthly."""

    month = fields.String(required=True, validate=MONTH)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "xlsx")))
    organization_id = fields.Integer(validate=Id)


class KpiRowSchema(Schema):
    """One organization's KPI for a month."""

    organization_id = fields.Integer()
    organization_name = fields.String()
    kind = fields.String()
    month = fields.String()
    referrals_made = fields.Integer(metadata={"description": "Created that month, as referrer."})
    referrals_received = fields.Integer(
        metadata={"description": "Created that month, as receiver."})
    accepted_received = fields.Integer(
        metadata={"description": "Moved to accepted that month, as receiver."})
    converted_made = fields.Integer(
        metadata={"description": "Moved to converted that month, as referrer."})
    converted_received = fields.Integer(
        metadata={"description": "Moved to converted that month, as receiver."})
    new_client_credits = fields.Integer(
        metadata={"description": "converted_made + converted_received."})
    target = fields.Integer(allow_none=True)
    attainment = fields.Float(allow_none=True,
                              metadata={"description": "Credits / target; null without one."})


class KpiMonthSchema(Schema):
    """The KPI of one month."""

    month = fields.String()
    rows = fields.List(fields.Nested(KpiRowSchema))


class KpiTargetInSchema(StrictSchema):
    """The body of PUT /kpi/targets/{organization_id}/{month}."""

    new_clients = WholeNumber(required=True, validate=validate.Range(min=0, max=1_000_000))


class KpiTargetSchema(Schema):
    """A month's new-client target of one organization."""

    organization_id = fields.Integer()
    month = fields.String()
    new_clients = fields.Integer()
    updated_at = fields.DateTime()
