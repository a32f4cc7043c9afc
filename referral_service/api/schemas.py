"""Marshmallow schemas of the API v1 contract, shared by its resources."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from models import ORGANIZATION_KINDS
from referral_service.services.schemas import (  # noqa: F401  (re-exported for the resources)
    MAX_ID,
    Id,
    OfficeSchema,
    OrganizationCreateSchema,
    OrganizationPatchSchema,
    StrictSchema,
    WholeNumber,
)


class ProblemSchema(Schema):
    """An RFC 9457 problem body."""

    class Meta:
        # RFC 9457 lets a problem carry extension members: the document must allow them.
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "Each bad field with its messages (422)."})
    existing_referral_id = fields.Integer(
        metadata={"description": "The referral that holds the credit (409 attribution)."}
    )
    current_status = fields.String(
        metadata={"description": "The referral's status when a move is refused (409)."}
    )
    receiver_organization_id = fields.Integer(
        metadata={"description": "The receiver that is at capacity (409)."}
    )


# Paging of every list (SPEC section 3): fixed by the contract, so not configurable.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class PageArgsSchema(StrictSchema):
    """Paging query parameters."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=DEFAULT_PAGE_SIZE,
                               validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """Return a schema class of one page of `item`."""
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "total": fields.Integer(required=True),
            "page": fields.Integer(required=True),
            "page_size": fields.Integer(required=True),
        },
    )


class OfficeOutSchema(Schema):
    """An office as stored, coordinates resolved."""

    id = fields.Integer()
    label = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    latitude = fields.Float()
    longitude = fields.Float()
    service_radius_km = fields.Float()


class OrganizationSchema(Schema):
    """An organization as the API returns it."""

    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    group = fields.String(allow_none=True)
    skills = fields.List(fields.String())
    description = fields.String()
    offices = fields.List(fields.Nested(OfficeOutSchema))
    capacity = fields.Integer(allow_none=True)
    active = fields.Boolean()
    external_ref = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class OrganizationListArgsSchema(PageArgsSchema):
    """Filters of GET /organizations."""

    kind = fields.String(validate=validate.OneOf(ORGANIZATION_KINDS))
    active = fields.Boolean()
    skill = fields.String(validate=validate.Length(min=1, max=100))
    q = fields.String(validate=validate.Length(min=1, max=200))


OrganizationPageSchema = page_schema(OrganizationSchema, "OrganizationPageSchema")


class SkillSchema(Schema):
    """A known skill and how many active organizations offer it."""

    skill = fields.String()
    organizations = fields.Integer()


class SkillListSchema(Schema):
    """The known skills."""

    items = fields.List(fields.Nested(SkillSchema))
