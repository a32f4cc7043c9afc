"""A client's work sites (SPEC section 8): what POST /clients/{id}/sites takes and returns."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from referral_service.schemas.base import NAMED, Id, StrictSchema, WholeNumber
from referral_service.schemas.places import LocationSchema, PlaceOutSchema


class NewClientSiteSchema(StrictSchema):
    """A site of the client to record with a referral (POST /referrals new_client_site), for
    the referrer."""

    label = fields.String(required=True, validate=[validate.Length(min=1, max=100), NAMED],
                          metadata={"description": "Unique (case aside) among the firm's "
                                                   "sites of the client."})
    location = fields.Nested(LocationSchema, required=True)


class ClientSiteInSchema(NewClientSiteSchema):
    """A site to record: its label and place, for one firm."""

    organization_id = WholeNumber(validate=Id, metadata={
        "description": "The firm the site is recorded for, whose referrals may name it: "
                       "required for head office and the CRM; a partner key records its "
                       "own firm's (naming another firm is a 403)."})


class ClientSiteSchema(Schema):
    """A client's site as recorded: the place as given, with its coordinates."""

    id = fields.Integer()
    client_id = fields.Integer()
    organization_id = fields.Integer()
    label = fields.String()
    location = fields.Nested(PlaceOutSchema)
    created_at = fields.DateTime()


class ClientSiteListSchema(Schema):
    """The client's sites the caller may see."""

    items = fields.List(fields.Nested(ClientSiteSchema))


class ClientSiteRefSchema(Schema):
    """The client site a referral is for."""

    id = fields.Integer()
    label = fields.String()
