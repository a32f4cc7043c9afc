"""Groups of firms (SPEC section 8): what GET /groups returns."""

from __future__ import annotations

from marshmallow import Schema, fields

from referral_service.schemas.base import PageArgsSchema, page_schema


class GroupSchema(Schema):
    """A group and how many organizations belong to it."""

    id = fields.Integer()
    name = fields.String(metadata={
        "description": "As first given; organizations name it in any case (`group`)."})
    organizations = fields.Integer(metadata={"description": "Its organizations, inactive too."})
    active_organizations = fields.Integer()


class GroupListArgsSchema(PageArgsSchema):
    """The paging of GET /groups."""


GroupPageSchema = page_schema(GroupSchema, "GroupPageSchema")
