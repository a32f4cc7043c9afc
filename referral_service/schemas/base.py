"""What every schema shares: bounded ids, whole numbers, storable text, paging, problems."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate

from referral_service.texts import Text


class Pattern(validate.Regexp):
    """validate.Regexp that reads its pattern as the OpenAPI document does.

    In Python a final `$` also matches before a trailing newline, so `^[A-Z]{2}$` took "TW\n"
    though the document (ECMA-262, where `$` is the end) refuses it. A pattern ending in `$`
    must match the whole text; `regex` stays the pattern as written, for the document.
    """

    def __init__(self, regex: str, **kwargs: Any) -> None:
        super().__init__(regex, **kwargs)
        whole = regex.endswith("$") and not regex.endswith("\\$")
        self.match = self.regex.fullmatch if whole else self.regex.match

    def __call__(self, value: str) -> str:
        """Return `value` if the pattern matches it as the document says, else raise."""
        if self.match(value) is None:
            # A texts.Text message stays one (the portal translates it); a plain one may
            # name the {input}.
            raise ValidationError(self.error if isinstance(self.error, Text)
                                  else self._format_error(value))
        return value


# Integer inputs are bounded so a huge id is a clean 404/422, never a driver overflow.
MAX_ID = 2**31 - 1
Id = validate.Range(min=1, max=MAX_ID)
# A month: YYYY-MM between 1970-01 and 2999-12 (the KPI's months).
MONTH_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
MONTH_MESSAGE = "Use YYYY-MM between 1970-01 and 2999-12, for example 2026-03."
MONTH = Pattern(MONTH_PATTERN, error=MONTH_MESSAGE)
# Text that names something (a skill, a client) needs a letter or digit (Python's Unicode \w,
# less "_"), as the slugs and comparable names made from it do; it never holds NUL. As a
# pattern, so that the OpenAPI document states the rule the server applies.
NAMED_PATTERN = r"^[^\u0000]*[^\W_][^\u0000]*$"
NAMED = Pattern(NAMED_PATTERN, error="Use at least one letter or digit.")
# Paging of every list (SPEC section 3): fixed by the contract, so not configurable.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PAGE = 1_000_000


def refused(*shapes: dict[str, Any]) -> dict[str, Any]:
    """Return JSON Schema refusing an object of any of `shapes` (a schema's document_rules).

    Cross-field rules are stated only with `not`: generated clients (openapi-python-client)
    read a top-level `anyOf` as a union of models and lose the schema's own properties.
    """
    return {"not": {"anyOf": list(shapes)}}


class WholeNumber(fields.Integer):
    """An integer of a JSON body: a number (not the text "5", as marshmallow also takes),
    without a fraction (2.5 is refused, not truncated to 2).

    Query strings are text: their integers are fields.Integer, parsed from it.
    """

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _Booleans(frozenset):
    """A set of booleans that does not hold 0 or 1 (which equal False and True in Python)."""

    def __contains__(self, value: object) -> bool:
        return type(value) is bool and super().__contains__(value)


def strict_boolean(**kwargs: Any) -> fields.Boolean:
    """A JSON boolean input: true or false, not 0, 1, "yes" or "on" as marshmallow also takes.

    Still a plain fields.Boolean (schemas/compiled.py knows it); only its value sets differ.
    """
    field = fields.Boolean(**kwargs)
    field.truthy, field.falsy = _Booleans({True}), _Booleans({False})
    return field


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
    lead_index = fields.Integer(
        metadata={"description": "Which lead of a visit report (from 0) another firm's "
                                 "referral holds (409, with existing_referral_id)."}
    )
    existing_id = fields.Integer(
        metadata={"description": "The person or department that already has this CRM id or "
                                 "name (409)."}
    )


class ValidationProblemSchema(ProblemSchema):
    """The problem of every 422: one type and title, and `errors` naming each bad field."""

    errors = fields.Dict(required=True, metadata={
        "description": "Each bad field (or query parameter) with its messages; nested "
                       "objects and list items are nested the same way."})


class PageArgsSchema(StrictSchema):
    """Paging query parameters."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
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
