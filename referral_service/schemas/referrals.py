"""Referrals: what POST and PATCH take, the list filters, and the referral the API returns."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from models import REFERRAL_STATUSES
from referral_service.schemas.base import (
    MONTH,
    NAMED,
    Id,
    PageArgsSchema,
    StrictSchema,
    WholeNumber,
    page_schema,
)
from referral_service.schemas.compiled import compile_dump
from referral_service.schemas.places import LocationSchema, PlaceOutSchema

ROLES = ("referrer", "receiver")


class ClientInSchema(StrictSchema):
    """The client being referred; found by external_ref, else by normalized name."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAMED])
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    location = fields.Nested(LocationSchema, allow_none=True)


class ReferralCreateSchema(StrictSchema):
    """The body of POST /referrals."""

    referrer_organization_id = WholeNumber(required=True, validate=Id)
    receiver_organization_id = WholeNumber(required=True, validate=Id)
    client = fields.Nested(ClientInSchema, required=True)
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
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
                         metadata={"description": "The side organization_id is matched on "
                                                  "(a partner's own by default); without "
                                                  "organization_id it narrows nothing."})
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))
    month = fields.String(validate=MONTH, metadata={"description": "Created in YYYY-MM (UTC)."})


class ClientOutSchema(Schema):
    """A client as stored: the CRM id as sent (trimmed), the place as given and resolved."""

    id = fields.Integer()
    name = fields.String()
    external_ref = fields.String(allow_none=True)
    location = fields.Nested(PlaceOutSchema, allow_none=True)


class HistoryEntrySchema(Schema):
    """One step of a referral's history."""

    status = fields.String()
    at = fields.DateTime()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class ReferralSummarySchema(Schema):
    """A referral in a list: everything but its history."""

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


class ReferralSchema(ReferralSummarySchema):
    """A referral with its history, oldest first: what POST, GET one and PATCH answer, and
    what webhook events carry."""

    history = fields.List(fields.Nested(HistoryEntrySchema))


ReferralPageSchema = page_schema(ReferralSummarySchema, "ReferralPageSchema")


dump_referral = compile_dump(ReferralSchema())
"""ReferralSchema().dump(referral), compiled (compile_dump)."""
