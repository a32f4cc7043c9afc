"""Matching: the body of POST /match and the ranking it returns."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from models import ORGANIZATION_KINDS
from referral_service.schemas.base import (
    NAMED,
    Id,
    StrictSchema,
    WholeNumber,
    refused,
    strict_boolean,
)
from referral_service.schemas.places import LocationSchema, PointSchema
from scoring import MAX_MIN_SKILL_FIT

WEIGHT_NAMES = ("skill", "location", "performance", "capacity")


class WeightsSchema(StrictSchema):
    """A per-request override of the match weights (missing ones keep their default).

    Not all four of skill, location, performance and capacity may be 0: the weights are
    normalized by their sum. `group` counts only with prefer_group.
    """

    document_rules = refused({"required": list(WEIGHT_NAMES), "properties": {
        name: {"type": "number", "maximum": 0} for name in WEIGHT_NAMES}})

    skill = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    location = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    performance = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    capacity = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    group = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False, metadata={
        "description": "Weight of the referrer's group, with prefer_group only (default "
                       "MATCH_WEIGHT_GROUP, 0.04)."})


class MatchRequestSchema(StrictSchema):
    """The body of POST /match: a client's need and where the client is.

    The need is skills (at least one) or a description (not blank), or both. The place is
    `location` or one of the caller's client sites (`client_site_id`), not both.
    """

    document_rules = refused({"not": {"anyOf": [
        {"required": ["skills"], "properties": {
            "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
        {"required": ["description"],
         "properties": {"description": {"type": "string", "pattern": "\\S"}}},
    ]}}, {"not": {"anyOf": [{"required": ["location"]}, {"required": ["client_site_id"]}]}},
        {"required": ["location", "client_site_id"]})
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    location = fields.Nested(LocationSchema, metadata={
        "description": "Where the client is; or name a client site instead."})
    client_site_id = WholeNumber(validate=Id, metadata={
        "description": "A client site (POST /clients/{client_id}/sites) whose place is the "
                       "match's; a partner key names its own firm's sites (422 otherwise)."})
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

    prefer_group = strict_boolean(load_default=False, metadata={
        "description": "Firms of the referrer's group get the `group` weight (shown in each "
                       "breakdown). The referrer is the partner key's own firm, else "
                       "referrer_organization_id (422 without one, or when it belongs to no "
                       "group)."})
    same_group_only = strict_boolean(load_default=False, metadata={
        "description": "Only firms of the referrer's group (the referrer as for "
                       "prefer_group)."})

    @validates_schema
    def _need_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("skills") and not (data.get("description") or "").strip():
            raise ValidationError("Give skills or a description of the need.", "skills")

    @validates_schema
    def _one_place(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("location" in data) == (data.get("client_site_id") is not None):
            raise ValidationError("Give a location or a client_site_id, one of them.",
                                  "location")


class BreakdownSchema(Schema):
    """Each score component, in [0, 1]."""

    skill = fields.Float()
    location = fields.Float()
    performance = fields.Float()
    capacity = fields.Float()
    group = fields.Float(metadata={"description": "Only with prefer_group: 1 for a firm of "
                                                  "the referrer's group, else 0."})


class WeightsOutSchema(BreakdownSchema):
    """The weights used, normalized to sum to 1 (`group` only with prefer_group)."""

    group = fields.Float(metadata={"description": "Only with prefer_group."})

    @post_dump
    def _group_only_when_preferred(self, data: dict[str, Any], **_kwargs: Any
                                   ) -> dict[str, Any]:
        if not data.get("group"):
            data.pop("group", None)
        return data


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
    weights = fields.Nested(WeightsOutSchema)
    candidates = fields.List(fields.Nested(CandidateSchema))
