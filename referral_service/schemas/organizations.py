"""Organization profiles: what POST and PATCH (and the importer) take, what the API returns."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import ORGANIZATION_KINDS
from referral_service.schemas.base import (
    NAMED,
    PageArgsSchema,
    Pattern,
    StrictSchema,
    WholeNumber,
    page_schema,
    strict_boolean,
)
from referral_service.schemas.places import OfficeOutSchema, OfficeSchema
from referral_service.texts import N_

SkillName = fields.String(validate=[validate.Length(min=1, max=100), NAMED])
# A phone number as people write it: an optional "+" and country code, an optional area code
# in brackets, then groups of digits parted by one space, dot or hyphen ("+886 7 123 4567",
# "(02) 2345-6789", "+886 (7) 123 4567").
# Every part is bounded or needs its separator: no backtracking blow-up on a long text.
PHONE_PATTERN = r"^(\+[0-9]{1,4}[ .-]?)?(\([0-9]{1,6}\)[ .-]?)?[0-9]+([ .-][0-9]+)*$"
PHONE = Pattern(PHONE_PATTERN, error=N_("Use digits parted by spaces, dots or hyphens, with "
                                        "an optional + at the start and an area code in "
                                        "brackets, e.g. +886 7 123 4567."))
# An e-mail address: a local part, "@", then a domain of dot-separated labels. Labels hold no
# dot, so the pattern reads any text in one pass (no backtracking blow-up).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"
EMAIL = Pattern(EMAIL_PATTERN, error=N_("Not a valid e-mail address, e.g. name@firm.example."))
CONTACT_LIMITS = {"name": 200, "email": 254, "phone": 40}  # the columns' widths


class ContactSchema(StrictSchema):
    """A firm's business contact for referrers: each part optional; null or {} clears it."""

    name = fields.String(allow_none=True,
                         validate=[validate.Length(min=1, max=CONTACT_LIMITS["name"]), NAMED])
    email = fields.String(allow_none=True,
                          validate=[validate.Length(min=3, max=CONTACT_LIMITS["email"]), EMAIL])
    phone = fields.String(allow_none=True,
                          validate=[validate.Length(min=5, max=CONTACT_LIMITS["phone"]), PHONE])


class ContactOutSchema(Schema):
    """A firm's business contact as the API returns it."""

    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


CONTACT_DESCRIPTION = (
    "The firm's business contact for referrers (name, email, phone; each optional). Any "
    "signed-in portal user and any API key may read an active firm's (GET "
    "/organizations/{id}/contact): it is the firm's business contact, not a client's "
    "personal data. Given, it replaces the whole contact; "
    "null clears it.")


class OrganizationCreateSchema(StrictSchema):
    """The body of POST /organizations."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ORGANIZATION_KINDS))
    group = fields.String(allow_none=True, validate=validate.Length(max=100), metadata={
        "description": "The group's name (GET /groups): a group is made on its first use, "
                       "and named in any case; blank or null is no group."})
    skills = fields.List(SkillName, load_default=list, validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    offices = fields.List(fields.Nested(OfficeSchema), required=True,
                          validate=validate.Length(min=1, max=50))
    capacity = WholeNumber(allow_none=True, validate=validate.Range(min=0, max=1_000_000))
    active = strict_boolean(load_default=True)
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    contact = fields.Nested(ContactSchema, allow_none=True,
                            metadata={"description": CONTACT_DESCRIPTION})


class OrganizationPatchSchema(OrganizationCreateSchema):
    """The body of PATCH /organizations/{id}: any subset of the fields."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    kind = fields.String(validate=validate.OneOf(ORGANIZATION_KINDS))
    skills = fields.List(SkillName, validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=5000))
    offices = fields.List(fields.Nested(OfficeSchema), validate=validate.Length(min=1, max=50))
    active = strict_boolean()


class OrganizationSchema(Schema):
    """An organization as the API returns it."""

    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    group = fields.String(allow_none=True, metadata={
        "description": "The group's name, as the group spells it."})
    skills = fields.List(fields.String())
    description = fields.String()
    offices = fields.List(fields.Nested(OfficeOutSchema))
    capacity = fields.Integer(allow_none=True)
    active = fields.Boolean()
    external_ref = fields.String(allow_none=True)
    contact = fields.Nested(ContactOutSchema, allow_none=True,
                            metadata={"description": CONTACT_DESCRIPTION})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class OrganizationListArgsSchema(PageArgsSchema):
    """Filters of GET /organizations."""

    kind = fields.String(validate=validate.OneOf(ORGANIZATION_KINDS))
    active = fields.Boolean()
    skill = fields.String(validate=validate.Length(min=1, max=100))
    q = fields.String(validate=validate.Length(min=1, max=200))
    group = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "The organizations of this group (its name, in any case)."})


OrganizationPageSchema = page_schema(OrganizationSchema, "OrganizationPageSchema")

