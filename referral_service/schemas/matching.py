"""Matching: the body of POST /match and the ranking it returns."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models import ORGANIZATION_KINDS
from referral_service.schemas.base import NAMED, Id, StrictSchema, WholeNumber, refused
from referral_service.schemas.places import LocationSchema, PointSchema
from scoring import MAX_MIN_SKILL_FIT

WEIGHT_NAMES = ("skill", "location", "performance", "capacity")


class WeightsSchema(StrictSchema):
    """A per-request override of the match weights (missing ones keep their default).

    Not all four may be 0: the weights are normalized by their sum.
    """

    document_rules = refused({"required": list(WEIGHT_NAMES), "properties": {
        name: {"type": "number", "maximum": 0} for name in WEIGHT_NAMES}})

    skill = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    location = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    performance = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    capacity = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)


class MatchRequestSchema(StrictSchema):
    """The body of POST /match: a client's need and where the client is.

    The need is skills (at least one) or a description (not blank), or both.
    """

    document_rules = refused({"not": {"anyOf": [
        {"required": ["skills"], "properties": {
            "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
        {"required": ["description"],
         "properties": {"description": {"type": "string", "pattern": "\\S"}}},
    ]}})
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    location = fields.Nested(LocationSchema, required=True)
    limit = WholeNumber(load_default=5, validate=validate.Range(min=1, max=100))
    max_distance_km = fields.Float(allow_none=True, allow_nan=False,
                                   validate=validate.Range(min=0.001, max=25_000))
    kinds = fields.List(fields.String(validate=validate.OneOf(ORGANIZATION_KINDS)),
                        validate=validate.Length(min=1, max=2))
    exclude_organization_ids = fields.List(WholeNumber(validate=Id), load_default=list,
                                           validate=validate.Length(max=1000))
    referrer_organization_id = WholeNumber(allow_none=True, validate=Id)
    weights = fields.Nested(WeightsSchema)
    min_skill_fit = fields.Float(
        allow_nan=False, validate=validate.Range(min=0, max=MAX_MIN_SKILL_FIT),
        metadata={"description": "Relevance floor: firms whose skill fit (breakdown.skill) is "
                                 "below it are not proposed; 0 turns it off. Default: the "
                                 "deployment's MATCH_MIN_SKILL_FIT (0.15). At most "
                                 f"{MAX_MIN_SKILL_FIT}, the skill fit of a firm with every "
                                 "required skill, so such a firm is never left out."})

    @validates_schema
    def _need_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("skills") and not (data.get("description") or "").strip():
            raise ValidationError("Give skills or a description of the need.", "skills")


class BreakdownSchema(Schema):
    """Each score component, in [0, 1]."""

    skill = fields.Float()
    location = fields.Float()
    performance = fields.Float()
    capacity = fields.Float()


class CandidateSchema(Schema):
    """One ranked firm with why it ranks there."""

    rank = fields.Integer()
    organization_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    score = fields.Float()
    breakdown = fields.Nested(BreakdownSchema)
    distance_km = fields.Float()
    office_id = fields.Integer()
    matched_skills = fields.List(fields.String())
    missing_skills = fields.List(fields.String())


class MatchResponseSchema(Schema):
    """The ranking, with the weights it used."""

    location = fields.Nested(PointSchema)
    weights = fields.Nested(BreakdownSchema)
    candidates = fields.List(fields.Nested(CandidateSchema))
