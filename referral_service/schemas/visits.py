"""Client visits and their leads: what POST /visits and the lead routes take and answer."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from models import LEAD_STATUSES, utcnow
from referral_service.schemas.base import (
    NAMED,
    Id,
    PageArgsSchema,
    Pattern,
    StrictSchema,
    WholeNumber,
    page_schema,
    refused,
)
from referral_service.schemas.compiled import CompiledLoad, compile_dump
from referral_service.schemas.places import LocationSchema, PlaceOutSchema
from referral_service.schemas.referrals import ClientInSchema, ClientOutSchema, ConsentSchema

# One report's leads: a visit names a few potential clients, not a mailing list.
MAX_LEADS = 50
# A phone's clock may run a little ahead of ours.
FUTURE_SLACK = timedelta(minutes=10)
CURRENCY = Pattern(r"^[A-Z]{3}$", error="Use an ISO 4217 code such as TWD or JPY.")
EMPTY_HANDED = ("A visit brings back an order commitment or a list of potential clients; "
                "to file one without either, say why in empty_handed_reason.")


class CommitmentSchema(StrictSchema):
    """An order commitment: what the client committed to, and optionally for how much, when."""

    description = fields.String(required=True,
                                validate=[validate.Length(min=1, max=2000), NAMED])
    # The bounds documented as numbers (apispec would write the Decimal ones as strings).
    amount = fields.Decimal(allow_none=True, places=2, allow_nan=False,
                            validate=validate.Range(min=0, max=10**13),
                            metadata={"minimum": 0, "maximum": 10**13})
    currency = fields.String(allow_none=True, validate=[validate.Length(equal=3), CURRENCY])
    expected_on = fields.Date(allow_none=True)

    document_rules = refused({"required": ["amount"], "properties": {"amount": {"type": "number"}},
                              "not": {"required": ["currency"],
                                      "properties": {"currency": {"type": "string"}}}})

    @validates_schema
    def _amount_has_currency(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("amount") is not None and not data.get("currency"):
            raise ValidationError("An amount needs its currency.", "currency")


class LeadInSchema(StrictSchema):
    """A potential client the visited client named."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAMED])
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    contact = fields.String(load_default="", validate=validate.Length(max=300))
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    location = fields.Nested(LocationSchema, allow_none=True)
    relationship = fields.String(load_default="", validate=validate.Length(max=300), metadata={
        "description": "How the visited client knows them."})


def _empty_report() -> dict[str, Any]:
    """JSON Schema of a report with neither a commitment, nor a lead, nor a reason."""
    return {"allOf": [
        {"not": {"required": ["commitment"], "properties": {"commitment": {"type": "object"}}}},
        {"not": {"required": ["leads"], "properties": {"leads": {"minItems": 1}}}},
        {"not": {"required": ["empty_handed_reason"],
                 "properties": {"empty_handed_reason": {"type": "string"}}}},
    ]}


class VisitCreateSchema(CompiledLoad, StrictSchema):
    """The body of POST /visits: what a salesperson brought back from one client visit
    (loaded compiled when it plainly passes: schemas.compiled.CompiledLoad)."""

    document_rules = refused(_empty_report())

    person_id = WholeNumber(required=True, validate=Id,
                            metadata={"description": "The salesperson who visited."})
    client = fields.Nested(ClientInSchema, required=True,
                           metadata={"description": "The client visited (as in referrals)."})
    visited_at = fields.AwareDateTime(required=True, default_timezone=UTC, metadata={
        "description": "When (UTC if no offset is given); not in the future."})
    commitment = fields.Nested(CommitmentSchema, allow_none=True)
    leads = fields.List(fields.Nested(LeadInSchema), load_default=list,
                        validate=validate.Length(max=MAX_LEADS, error=(
                            f"At most {MAX_LEADS} leads in one report; file the rest in "
                            "another report.")))
    notes = fields.String(load_default="", validate=validate.Length(max=5000))
    empty_handed_reason = fields.String(allow_none=True,
                                        validate=[validate.Length(min=1, max=2000), NAMED])

    @validates("visited_at")
    def _not_in_future(self, value, **_kwargs: Any) -> None:
        if value > utcnow() + FUTURE_SLACK:
            raise ValidationError("A visit cannot be in the future.")

    @validates_schema
    def _not_empty_handed(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("commitment") and not data.get("leads") \
                and not data.get("empty_handed_reason"):
            raise ValidationError(EMPTY_HANDED, "empty_handed_reason")


class VisitListArgsSchema(PageArgsSchema):
    """Filters of GET /visits."""

    person_id = fields.Integer(validate=Id)
    organization_id = fields.Integer(validate=Id)
    empty_handed = fields.Boolean(metadata={"description": "Only empty-handed (or only not)."})
    visited_from = fields.Date(metadata={"description": "Visited on or after (UTC date)."})
    visited_to = fields.Date(metadata={"description": "Visited on or before (UTC date)."})


class LeadListArgsSchema(PageArgsSchema):
    """Filters of GET /leads."""

    person_id = fields.Integer(validate=Id)
    organization_id = fields.Integer(validate=Id)
    visit_id = fields.Integer(validate=Id)
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))


class LeadMoveSchema(StrictSchema):
    """The body of PATCH /leads/{id}: won (became the firm's own client) or lost."""

    status = fields.String(required=True, validate=validate.OneOf(("won", "lost")))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class LeadReferSchema(StrictSchema):
    """The body of POST /leads/{id}/refer: to the best match, or to a named firm."""

    receiver_organization_id = WholeNumber(validate=Id, metadata={
        "description": "Refer to this firm; without it, to the best match for the lead's "
                       "need and place."})
    note = fields.String(load_default="", validate=validate.Length(max=5000))
    referred_by_person_id = WholeNumber(validate=Id, metadata={
        "description": "Who refers it (default: the salesperson who brought the lead)."})
    consent = fields.Nested(ConsentSchema, metadata={
        "description": "The lead's consent to being referred; required when the deployment "
                       "sets REQUIRE_CLIENT_CONSENT=true (a 422 naming consent without "
                       "it)."})


class CommitmentOutSchema(Schema):
    """An order commitment as stored."""

    description = fields.String()
    amount = fields.Float(allow_none=True, metadata={"description": "To the cent, as given."})
    currency = fields.String(allow_none=True)
    expected_on = fields.Date(allow_none=True)


class LeadSchema(Schema):
    """A lead as stored, with its status."""

    id = fields.Integer()
    organization_id = fields.Integer()
    visit_id = fields.Integer()
    person_id = fields.Integer()
    client_id = fields.Integer()
    name = fields.String()
    external_ref = fields.String(allow_none=True)
    contact = fields.String()
    skills = fields.List(fields.String())
    description = fields.String()
    relationship = fields.String()
    location = fields.Nested(PlaceOutSchema, allow_none=True)
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    referral_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class VisitSchema(Schema):
    """A visit report as stored, with its leads."""

    id = fields.Integer()
    organization_id = fields.Integer()
    person_id = fields.Integer()
    client = fields.Nested(ClientOutSchema, attribute="named_client", metadata={
        "description": "The client visited, as this report named it (its id is the stored "
                       "client's)."})
    visited_at = fields.DateTime()
    commitment = fields.Nested(CommitmentOutSchema, allow_none=True)
    leads = fields.List(fields.Nested(LeadSchema))
    notes = fields.String()
    empty_handed = fields.Boolean()
    empty_handed_reason = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()


VisitPageSchema = page_schema(VisitSchema, "VisitPageSchema")
LeadPageSchema = page_schema(LeadSchema, "LeadPageSchema")


dump_visit = compile_dump(VisitSchema())
"""VisitSchema().dump(visit), compiled (compile_dump): the body of POST /visits and its events."""
