"""Places: one location schema with one set of rules, used by offices, matches and clients."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from referral_service.schemas.base import Id, Pattern, StrictSchema, WholeNumber, refused

# Length too: Python's "$" also matches before a final newline ("TW\n").
COUNTRY = [validate.Length(equal=2),
           Pattern(r"^[A-Za-z]{2}$", error="Use an ISO 3166-1 alpha-2 code such as TW.")]
DEFAULT_SERVICE_RADIUS_KM = 100.0


def _given(**types: str) -> dict[str, Any]:
    """JSON Schema: each named field is present, not null (and not empty if text)."""
    return {"required": list(types), "properties": {
        name: {"type": kind, **({"minLength": 1} if kind == "string" else {})}
        for name, kind in types.items()}}


def place_rules(*, unless: str | None = None) -> dict[str, Any]:
    """Return check_place's rules as OpenAPI 3.0 JSON Schema (a schema's document_rules).

    A place is given (coordinates, a city or an address) unless the field `unless` is;
    latitude never comes without longitude, nor longitude without latitude.
    """
    places = [_given(latitude="number", longitude="number"), _given(city="string"),
              _given(address="string")]
    if unless is not None:
        places.insert(0, {"required": [unless]})
    return refused({"not": {"anyOf": places}},
                   {**_given(latitude="number"), "not": _given(longitude="number")},
                   {**_given(longitude="number"), "not": _given(latitude="number")})


class LocationSchema(StrictSchema):
    """A place: coordinates, or a city (with its country), or an address.

    Coordinates come as a pair; a country is an ISO 3166-1 alpha-2 code, stored upper case.
    A null field counts as not given.
    """

    document_rules = place_rules()

    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90),
                            allow_nan=False)
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180),
                             allow_nan=False)
    city = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    country = fields.String(allow_none=True, validate=COUNTRY)
    address = fields.String(allow_none=True, validate=validate.Length(min=1, max=300))

    @validates_schema
    def _place_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        check_place(data, partial=False)


def check_place(data: dict[str, Any], *, partial: bool) -> None:
    """Raise ValidationError unless `data` names a place; upper-case its country.

    With `partial` (an existing office named by id) nothing is required, but coordinates
    still come as a pair.
    """
    has_lat = data.get("latitude") is not None
    has_lon = data.get("longitude") is not None
    if has_lat != has_lon:
        raise ValidationError("Give latitude and longitude together.",
                              "longitude" if has_lat else "latitude")
    if not partial and not has_lat and not data.get("city") and not data.get("address"):
        raise ValidationError("Give coordinates, or a city (with country), or an address.",
                              "city")
    if data.get("country"):
        data["country"] = data["country"].upper()


class OfficeSchema(LocationSchema):
    """An office: its place (as LocationSchema), label and service radius.

    With the `id` of one of the firm's offices (PATCH) it keeps that office and changes only
    the fields given (it is placed anew only when its city, country or address changes
    without coordinates); without `id` it is a new office and needs a place (radius 100 unless
    given). A list of offices is the whole list: the firm's offices left out are removed.
    """

    document_rules = place_rules(unless="id")
    id = WholeNumber(validate=Id, metadata={"description": "Keep this existing office (PATCH)."})
    label = fields.String(allow_none=True, validate=validate.Length(max=100))
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    service_radius_km = fields.Float(validate=validate.Range(min=0.1, max=20_000),
                                     allow_nan=False,
                                     metadata={"description": "Default 100 for a new office."})

    @validates_schema
    def _place_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        check_place(data, partial=data.get("id") is not None)


class PointSchema(Schema):
    """Resolved coordinates."""

    latitude = fields.Float()
    longitude = fields.Float()


class PlaceOutSchema(Schema):
    """A place as kept: what was given and the coordinates it resolved to."""

    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    city = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    address = fields.String(allow_none=True)


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
