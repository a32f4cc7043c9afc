"""Marshmallow schemas of the referral and KPI resources."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from models import REFERRAL_STATUSES
from referral_service.api.schemas import (
    Id,
    PageArgsSchema,
    StrictSchema,
    WholeNumber,
    page_schema,
)
from referral_service.services.kpi import MONTH_MESSAGE, MONTH_PATTERN

MONTH = validate.Regexp(MONTH_PATTERN, error=MONTH_MESSAGE)
ROLES = ("referrer", "receiver")


class ClientLocationSchema(StrictSchema):
    """Where the client is: coordinates, or a city (with country), or an address."""

    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90),
                            allow_nan=False)
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180),
                             allow_nan=False)
    city = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    country = fields.String(allow_none=True, validate=validate.Regexp(
        r"^[A-Za-z]{2}$", error="Use an ISO 3166-1 alpha-2 code such as TW."))
    address = fields.String(allow_none=True, validate=validate.Length(min=1, max=300))

    @validates_schema
    def _place_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        has_lat = data.get("latitude") is not None
        has_lon = data.get("longitude") is not None
        if has_lat != has_lon:
            raise ValidationError("Give latitude and longitude together.",
                                  "longitude" if has_lat else "latitude")
        if not has_lat and not data.get("city") and not data.get("address"):
            raise ValidationError("Give coordinates, or a city (with country), or an address.",
                                  "city")


class ClientInSchema(StrictSchema):
    """The client being referred; found by external_ref, else by normalized name."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    location = fields.Nested(ClientLocationSchema, allow_none=True)


class ReferralCreateSchema(StrictSchema):
    """The body of POST /referrals."""

    referrer_organization_id = WholeNumber(required=True, validate=Id)
    receiver_organization_id = WholeNumber(required=True, validate=Id)
    client = fields.Nested(ClientInSchema, required=True)
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    note = fields.String(load_default="", validate=validate.Length(max=5000))
    match_score = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1),
                               allow_nan=False,
                               metadata={"description": "The receiver's match score, if any."})


class IdempotencyHeaderSchema(Schema):
    """The optional Idempotency-Key header of POST /referrals."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(min=1, max=200),
                  validate.Regexp(r"^[\x20-\x7e]+$", error="Use printable ASCII characters.")],
        metadata={"description": "A repeat with the same key and body returns the first "
                                 "response and creates nothing; another body is a 422."},
    )


class ReferralMoveSchema(StrictSchema):
    """The body of PATCH /referrals/{id}: one lifecycle move."""

    status = fields.String(required=True, validate=validate.OneOf(REFERRAL_STATUSES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ReferralListArgsSchema(PageArgsSchema):
    """Filters of GET /referrals."""

    organization_id = fields.Integer(validate=Id,
                                     metadata={"description": "Referrer or receiver."})
    role = fields.String(validate=validate.OneOf(ROLES),
                         metadata={"description": "The side organization_id is on."})
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))
    month = fields.String(validate=MONTH, metadata={"description": "Created in YYYY-MM (UTC)."})


class LocationOutSchema(Schema):
    """Coordinates."""

    latitude = fields.Float()
    longitude = fields.Float()


class ClientOutSchema(Schema):
    """A client as stored."""

    id = fields.Integer()
    name = fields.String()
    external_ref = fields.String(allow_none=True)
    location = fields.Nested(LocationOutSchema, allow_none=True)


class HistoryEntrySchema(Schema):
    """One step of a referral's history."""

    status = fields.String()
    at = fields.DateTime()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class ReferralSchema(Schema):
    """A referral as the API returns it (history only on GET one and PATCH)."""

    id = fields.Integer()
    referrer_organization_id = fields.Integer()
    receiver_organization_id = fields.Integer()
    client = fields.Nested(ClientOutSchema)
    skills = fields.List(fields.String())
    description = fields.String()
    note = fields.String()
    match_score = fields.Float(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    declined_at = fields.DateTime(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    expired_at = fields.DateTime(allow_none=True)
    converted_at = fields.DateTime(allow_none=True)
    lost_at = fields.DateTime(allow_none=True)
    version = fields.Integer()
    history = fields.List(fields.Nested(HistoryEntrySchema))


ReferralPageSchema = page_schema(ReferralSchema, "ReferralPageSchema")


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
