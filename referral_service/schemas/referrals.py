"""Referrals: what POST and PATCH take, the list filters, and the referral the API returns."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from models import REFERRAL_SOURCE_KINDS, REFERRAL_STATUSES
from referral_service.schemas.base import (
    MONTH,
    NAMED,
    Id,
    PageArgsSchema,
    Pattern,
    StrictSchema,
    WholeNumber,
    page_schema,
    refused,
)
from referral_service.schemas.client_sites import ClientSiteRefSchema, NewClientSiteSchema
from referral_service.schemas.compiled import CompiledLoad, compile_dump
from referral_service.schemas.places import LocationSchema, PlaceOutSchema

ROLES = ("referrer", "receiver")


class ConsentSchema(StrictSchema):
    """The client's consent to being referred (SPEC section 11)."""

    given_at = fields.AwareDateTime(required=True, default_timezone=UTC, metadata={
        "description": "When the client gave it (ISO 8601; UTC if no offset is given)."})
    by = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAMED],
                       metadata={"description": "Who gave it, or who recorded it."})


class ClientInSchema(StrictSchema):
    """The client being referred; found by external_ref, else by normalized name."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAMED])
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    location = fields.Nested(LocationSchema, allow_none=True)


class ReferralClientInSchema(ClientInSchema):
    """The client being referred, with its consent (a visit's client records none)."""

    consent = fields.Nested(ConsentSchema, metadata={
        "description": "The client's consent to being referred. Required when the deployment "
                       "sets REQUIRE_CLIENT_CONSENT=true (this document then lists it as "
                       "required): a referral without it is a 422 whose errors name "
                       "client.consent."})


# Where a referral came from (SPEC section 9): the fields each kind takes, and needs.
SOURCE_FIELDS = {"organization": (), "client": ("client_id",),
                 "acquaintance": ("name", "contact"), "visit": ("visit_id", "lead_id")}
SOURCE_REQUIRED = {"client": ("client_id",), "acquaintance": ("name",),
                   "visit": ("visit_id", "lead_id")}


def _source_rules() -> dict:
    """JSON Schema of SourceSchema's rules: each kind's fields given, no other kind's."""
    shapes = [{"required": ["kind"], "properties": {"kind": {"enum": [kind]}},
               "not": {"required": list(needed)}} for kind, needed in SOURCE_REQUIRED.items()]
    for name in ("client_id", "name", "contact", "visit_id", "lead_id"):
        others = [kind for kind, names in SOURCE_FIELDS.items() if name not in names]
        shapes.append({"required": ["kind", name], "properties": {"kind": {"enum": others}}})
    return refused(*shapes)


class SourceSchema(StrictSchema):
    """Where the client came from: a firm (the default), a current client, an acquaintance,
    or a lead a salesperson brought back from a visit."""

    document_rules = _source_rules()

    kind = fields.String(required=True, validate=validate.OneOf(REFERRAL_SOURCE_KINDS))
    client_id = WholeNumber(validate=Id, metadata={"description": "kind client: who "
                                                                  "introduced them."})
    name = fields.String(validate=[validate.Length(min=1, max=200), NAMED],
                         metadata={"description": "kind acquaintance: who."})
    contact = fields.String(validate=validate.Length(max=300),
                            metadata={"description": "kind acquaintance: how to reach them."})
    visit_id = WholeNumber(validate=Id, metadata={"description": "kind visit."})
    lead_id = WholeNumber(validate=Id, metadata={"description": "kind visit."})

    @validates_schema
    def _fields_of_kind(self, data: dict[str, Any], **_kwargs: Any) -> None:
        kind = data["kind"]
        errors = {name: [f"Required for a {kind} source."]
                  for name in SOURCE_REQUIRED.get(kind, ()) if data.get(name) is None}
        errors.update({name: [f"Not part of a {kind} source."] for name in data
                       if name != "kind" and name not in SOURCE_FIELDS[kind]})
        if errors:
            raise ValidationError(errors)


class SourceOutSchema(Schema):
    """Where a referral came from, with the fields of its kind."""

    kind = fields.String()
    client_id = fields.Integer()
    name = fields.String(allow_none=True, metadata={
        "description": "The acquaintance; null for a receiver that has not accepted."})
    contact = fields.String()
    visit_id = fields.Integer()
    lead_id = fields.Integer()


class ReferralCreateSchema(CompiledLoad, StrictSchema):
    """The body of POST /referrals (loaded compiled when it plainly passes:
    schemas.compiled.CompiledLoad)."""

    # A client site's place is the client's: not with client.location as well; a recorded
    # site or a new one, not both.
    document_rules = refused(*({"required": [site, "client"], "properties": {
        "client": {"required": ["location"], "properties": {"location": {"type": "object"}}}}}
        for site in ("client_site_id", "new_client_site")),
        {"required": ["client_site_id", "new_client_site"]})

    referrer_organization_id = WholeNumber(required=True, validate=Id)
    receiver_organization_id = WholeNumber(required=True, validate=Id)
    client = fields.Nested(ReferralClientInSchema, required=True)
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    note = fields.String(load_default="", validate=validate.Length(max=5000))
    match_score = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1),
                               allow_nan=False,
                               metadata={"description": "The receiver's match score, if any."})
    source = fields.Nested(SourceSchema, load_default=lambda: {"kind": "organization"})
    referred_by_person_id = WholeNumber(allow_none=True, validate=Id, metadata={
        "description": "Who at the referrer refers the client."})
    client_site_id = WholeNumber(validate=Id, metadata={
        "description": "The client's work site the need is for: one the referrer recorded for "
                       "this client (POST /clients/{client_id}/sites), else a 422. Its place "
                       "is the referral's client location (leave client.location out)."})
    new_client_site = fields.Nested(NewClientSiteSchema, metadata={
        "description": "A work site of the client to record with the referral, for the "
                       "referrer (as POST /clients/{client_id}/sites would), in the same "
                       "transaction: how a client not known yet names its site on its first "
                       "referral. Its place is the referral's client location (leave "
                       "client.location and client_site_id out); a label the referrer already "
                       "has for this client is a 409."})
    auto_reoffer = fields.Boolean(metadata={
        "description": "Whether a decline or an expiry refers the client on to the next best "
                       "firm not yet tried (SPEC section 11), up to REOFFER_MAX_HOPS times a "
                       "chain; default AUTO_REOFFER (true unless configured otherwise)."})


class IdempotencyHeaderSchema(Schema):
    """The optional Idempotency-Key header of POST /referrals."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(min=1, max=200),
                  Pattern(r"^[\x20-\x7e]+$", error="Use printable ASCII characters.")],
        metadata={"description": "A repeat with the same key and body returns the first "
                                 "response and creates nothing; another body is a 422."},
    )


class ReferralMoveSchema(StrictSchema):
    """The body of PATCH /referrals/{id}: one lifecycle move."""

    status = fields.String(required=True, validate=validate.OneOf(REFERRAL_STATUSES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000), metadata={
        "description": "Why; required to reverse a conversion (converted -> lost, head office "
                       "only)."})
    owner_person_id = WholeNumber(allow_none=True, validate=Id, metadata={
        "description": "With status accepted: who at the receiver owns the client (default: "
                       "the person accepting, when a person accepts in the portal)."})

    document_rules = refused({"required": ["owner_person_id", "status"],
                              "properties": {"owner_person_id": {"type": "integer"},
                                             "status": {"not": {"enum": ["accepted"]}}}})

    @validates_schema
    def _owner_on_accept(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("owner_person_id") is not None and data["status"] != "accepted":
            raise ValidationError("An owner is named when the referral is accepted.",
                                  "owner_person_id")


# The orders GET /referrals offers: a column, "-" first for descending.
REFERRAL_SORTS = tuple(f"{sign}{column}" for column in ("created_at", "updated_at", "status",
                                                          "client") for sign in ("-", ""))


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
    source_kind = fields.String(validate=validate.OneOf(REFERRAL_SOURCE_KINDS))
    person_id = fields.Integer(validate=Id, metadata={
        "description": "Referred by this person, or owned by them at the receiver."})
    client = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "Part of the client's name as its referrer named it, in any case."})
    sort = fields.String(validate=validate.OneOf(REFERRAL_SORTS), load_default="-created_at",
                         metadata={"description": "Order: a column, '-' first for newest or "
                                                  "last first; ties by id the same way."})


class ConsentOutSchema(Schema):
    """The client's consent as the referral recorded it."""

    given_at = fields.DateTime()
    by = fields.String(allow_none=True, metadata={
        "description": "Who gave or recorded it; null for a receiver until it accepts (it may "
                       "name a person), and 'erased' once the client's data was erased."})


class ClientOutSchema(Schema):
    """A referral's client as its referrer named it: the client's id, the name and CRM id as
    sent (trimmed), the place as given and resolved. Another firm's name or place for the
    same client is never shown (docs/SECURITY.md)."""

    id = fields.Integer()
    name = fields.String(allow_none=True, metadata={
        "description": "Null for a receiver until it accepts (need to know: it sees the "
                       "need, the skills and the client's city and country; external_ref, "
                       "address and coordinates are null too)."})
    external_ref = fields.String(allow_none=True)
    location = fields.Nested(PlaceOutSchema, allow_none=True)
    consent = fields.Nested(ConsentOutSchema, allow_none=True, metadata={
        "description": "The client's consent to being referred, null if none was recorded."})


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
    client = fields.Nested(ClientOutSchema, attribute="named_client", metadata={
        "description": "The client as this referral's referrer named it (name, external_ref, "
                       "location as sent): for a client registered before, by another firm "
                       "too, never the name or place stored from elsewhere."})
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
    source = fields.Nested(SourceOutSchema)
    referred_by_person_id = fields.Integer(allow_none=True)
    owner_person_id = fields.Integer(allow_none=True)
    auto_reoffer = fields.Boolean(metadata={
        "description": "Whether a decline or an expiry re-offers the client."})
    previous_referral_id = fields.Integer(allow_none=True, metadata={
        "description": "The declined or expired referral this one re-offers; null for the "
                       "first of a chain."})
    client_site = fields.Nested(ClientSiteRefSchema, allow_none=True, metadata={
        "description": "The client's work site the referral is for (its place is "
                       "client.location), or null; null too for a receiver until it "
                       "accepts."})
    chain = fields.List(fields.Integer(), metadata={
        "description": "The ids of the referral's chain of re-offers, first to last (this "
                       "one among them): each re-offer follows the one before."})
    version = fields.Integer()


class ReferralSchema(ReferralSummarySchema):
    """A referral with its history, oldest first: what POST, GET one and PATCH answer, and
    what webhook events carry."""

    history = fields.List(fields.Nested(HistoryEntrySchema))


ReferralPageSchema = page_schema(ReferralSummarySchema, "ReferralPageSchema")


dump_referral = compile_dump(ReferralSchema())
"""ReferralSchema().dump(referral), compiled (compile_dump)."""
