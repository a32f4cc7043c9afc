"""Input schemas of organization profiles, shared by the API and the importer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from models import ORGANIZATION_KINDS

# Integer inputs are bounded so a huge id is a clean 404/422, never a driver overflow.
MAX_ID = 2**31 - 1
Id = validate.Range(min=1, max=MAX_ID)


class WholeNumber(fields.Integer):
    """An integer input that refuses a fraction (2.5) instead of truncating it to 2."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def text_problem(value: str) -> str | None:
    """Return why a text cannot be stored, or None: no database takes NUL or lone surrogates."""
    if "\x00" in value:
        return "Text cannot contain NUL (0x00) characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode (no unpaired surrogates)."
    return None


class StrictSchema(Schema):
    """Refuse unknown fields (and so read-only ones) instead of ignoring them, and text that
    no database can store."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_unstorable_text(self, data: Any, **_kwargs: Any) -> Any:
        # Nested objects are checked by their own (strict) schema; strings and lists here.
        if not isinstance(data, Mapping):
            return data
        errors: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, str) and text_problem(value):
                errors[key] = [text_problem(value)]
            elif isinstance(value, list):
                bad = {str(i): [text_problem(item)] for i, item in enumerate(value)
                       if isinstance(item, str) and text_problem(item)}
                if bad:
                    errors[key] = bad
        if errors:
            raise ValidationError(errors)
        return data


class OfficeSchema(StrictSchema):
    """An office: coordinates given, or resolved from city/country or address."""

    id = WholeNumber(validate=Id, metadata={"description": "Keep this existing office (PATCH)."})
    label = fields.String(allow_none=True, validate=validate.Length(max=100))
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    city = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    # Length too: Python's "$" also matches before a final newline ("TW\n").
    country = fields.String(
        allow_none=True, validate=[validate.Length(equal=2), validate.Regexp(
            r"^[A-Za-z]{2}$", error="Use an ISO 3166-1 alpha-2 code such as TW.")],
    )
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90),
                            allow_nan=False)
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180),
                             allow_nan=False)
    service_radius_km = fields.Float(
        load_default=100.0, validate=validate.Range(min=0.1, max=20_000), allow_nan=False
    )

    @validates_schema
    def _place_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        has_lat = data.get("latitude") is not None
        has_lon = data.get("longitude") is not None
        if has_lat != has_lon:
            missing = "longitude" if has_lat else "latitude"
            raise ValidationError("Give latitude and longitude together.", missing)
        if not has_lat and not data.get("city") and not data.get("address"):
            raise ValidationError(
                "Give coordinates, or a city (with country), or an address.", "city"
            )
        if data.get("country"):
            data["country"] = data["country"].upper()


SkillName = fields.String(validate=validate.Length(min=1, max=100))


class OrganizationCreateSchema(StrictSchema):
    """The body of POST /organizations."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ORGANIZATION_KINDS))
    group = fields.String(allow_none=True, validate=validate.Length(max=100))
    skills = fields.List(SkillName, load_default=list, validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    offices = fields.List(fields.Nested(OfficeSchema), required=True,
                          validate=validate.Length(min=1, max=50))
    capacity = WholeNumber(allow_none=True, validate=validate.Range(min=0, max=1_000_000))
    active = fields.Boolean(load_default=True)
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))


class OrganizationPatchSchema(OrganizationCreateSchema):
    """The body of PATCH /organizations/{id}: any subset of the fields."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    kind = fields.String(validate=validate.OneOf(ORGANIZATION_KINDS))
    skills = fields.List(SkillName, validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=5000))
    offices = fields.List(fields.Nested(OfficeSchema), validate=validate.Length(min=1, max=50))
    active = fields.Boolean()


class LocationSchema(StrictSchema):
    """A client's place: coordinates, or city with country, or an address."""

    latitude = fields.Float(validate=validate.Range(min=-90, max=90), allow_nan=False)
    longitude = fields.Float(validate=validate.Range(min=-180, max=180), allow_nan=False)
    city = fields.String(validate=validate.Length(min=1, max=100))
    country = fields.String(validate=validate.Length(min=2, max=60))
    address = fields.String(validate=validate.Length(min=1, max=300))

    @validates_schema
    def _one_form(self, data: dict[str, Any], **_kwargs: Any) -> None:
        has_lat, has_lon = "latitude" in data, "longitude" in data
        if has_lat != has_lon:
            raise ValidationError("Give latitude and longitude together.",
                                  "longitude" if has_lat else "latitude")
        if not has_lat and not data.get("city") and not data.get("address"):
            raise ValidationError("Give coordinates, a city (with country) or an address.",
                                  "city")


class WeightsSchema(StrictSchema):
    """A per-request override of the match weights (missing ones keep their default)."""

    skill = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    location = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    performance = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)
    capacity = fields.Float(validate=validate.Range(min=0, max=100), allow_nan=False)


class MatchRequestSchema(StrictSchema):
    """The body of POST /match: a client's need and where the client is."""

    skills = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
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

    @validates_schema
    def _need_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("skills") and not (data.get("description") or "").strip():
            raise ValidationError("Give skills or a description of the need.", "skills")
