"""The skill vocabulary (SPEC section 8): skills with their aliases, declaring an alias,
merging two slugs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from referral_service.schemas.base import NAMED, StrictSchema

SkillName = fields.String(required=True, validate=[validate.Length(min=1, max=100), NAMED])


class SkillSchema(Schema):
    """A known skill, how many active organizations offer it, and its aliases."""

    skill = fields.String()
    organizations = fields.Integer()
    aliases = fields.List(fields.String(), metadata={
        "description": "Head office's other names of the skill: a need naming one asks for "
                       "this skill."})


class SkillListSchema(Schema):
    """The known skills."""

    items = fields.List(fields.Nested(SkillSchema))


class AliasCreateSchema(StrictSchema):
    """The body of POST /skills/aliases: `alias` becomes another name of `skill`."""

    alias = SkillName
    skill = SkillName


class AliasSchema(Schema):
    """An alias as the API returns it (both slugs)."""

    alias = fields.String()
    skill = fields.String()
    created_at = fields.DateTime()


class MergeSchema(StrictSchema):
    """The body of POST /skills/merge: every firm's `from` tag becomes `into`."""

    from_ = fields.String(data_key="from", required=True,
                          validate=[validate.Length(min=1, max=100), NAMED])
    into = SkillName


class MergeResultSchema(Schema):
    """What a merge did."""

    from_ = fields.String(data_key="from")
    into = fields.String()
    organizations = fields.Integer(metadata={
        "description": "How many organizations' tags were re-pointed."})
