"""Referrals: what POST and PATCH take, the list filters, and the referral the API returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, missing, utils, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from models import REFERRAL_STATUSES
from referral_service.schemas.base import (
    MONTH,
    NAMED,
    Id,
    PageArgsSchema,
    StrictSchema,
    WholeNumber,
    page_schema,
)
from referral_service.schemas.places import LocationSchema, PlaceOutSchema

ROLES = ("referrer", "receiver")


class ClientInSchema(StrictSchema):
    """The client being referred; found by external_ref, else by normalized name."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAMED])
    external_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    location = fields.Nested(LocationSchema, allow_none=True)


class ReferralCreateSchema(StrictSchema):
    """The body of POST /referrals."""

    referrer_organization_id = WholeNumber(required=True, validate=Id)
    receiver_organization_id = WholeNumber(required=True, validate=Id)
    client = fields.Nested(ClientInSchema, required=True)
    skills = fields.List(fields.String(validate=[validate.Length(min=1, max=100), NAMED]),
                         load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    note = fields.String(load_default="", validate=validate.Length(max=5000))
    match_score = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1),
                               allow_nan=False,
                               metadata={"description": "The receiver's match score, if any."})


class IdempotencyHeaderSchema(Schema):
    """The optional Idempotency-Key header of POST /referrals."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(min=1, max=200),
                  validate.Regexp(r"^[\x20-\x7e]+$", error="Use printable ASCII characters.")],
        metadata={"description": "A repeat with the same key and body returns the first "
                                 "response and creates nothing; another body is a 422."},
    )


class ReferralMoveSchema(StrictSchema):
    """The body of PATCH /referrals/{id}: one lifecycle move."""

    status = fields.String(required=True, validate=validate.OneOf(REFERRAL_STATUSES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ReferralListArgsSchema(PageArgsSchema):
    """Filters of GET /referrals."""

    organization_id = fields.Integer(validate=Id,
                                     metadata={"description": "Referrer or receiver."})
    role = fields.String(validate=validate.OneOf(ROLES),
                         metadata={"description": "The side organization_id is matched on "
                                                  "(a partner's own by default); without "
                                                  "organization_id it narrows nothing."})
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))
    month = fields.String(validate=MONTH, metadata={"description": "Created in YYYY-MM (UTC)."})


class ClientOutSchema(Schema):
    """A client as stored: the CRM id as sent (trimmed), the place as given and resolved."""

    id = fields.Integer()
    name = fields.String()
    external_ref = fields.String(allow_none=True)
    location = fields.Nested(PlaceOutSchema, allow_none=True)


class HistoryEntrySchema(Schema):
    """One step of a referral's history."""

    status = fields.String()
    at = fields.DateTime()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class ReferralSummarySchema(Schema):
    """A referral in a list: everything but its history."""

    id = fields.Integer()
    referrer_organization_id = fields.Integer()
    receiver_organization_id = fields.Integer()
    client = fields.Nested(ClientOutSchema)
    skills = fields.List(fields.String())
    description = fields.String()
    note = fields.String()
    match_score = fields.Float(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    declined_at = fields.DateTime(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    expired_at = fields.DateTime(allow_none=True)
    converted_at = fields.DateTime(allow_none=True)
    lost_at = fields.DateTime(allow_none=True)
    version = fields.Integer()


class ReferralSchema(ReferralSummarySchema):
    """A referral with its history, oldest first: what POST, GET one and PATCH answer, and
    what webhook events carry."""

    history = fields.List(fields.Nested(HistoryEntrySchema))


ReferralPageSchema = page_schema(ReferralSummarySchema, "ReferralPageSchema")


# ------------------------------------------------------------------------- compiled dump


def compile_dump(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    """Return dump(obj): `schema.dump(obj)` of one object, compiled once from its fields.

    One generated function per (nested) schema reads each attribute (or key, from a dict) and
    converts it inline, as the fields would: 17 us a referral with its client and first
    history entry against 50 us for ReferralSchema().dump (POST /referrals dumps each new
    referral once, for its referral.created event and the response). A field type, option
    or hook it does not know leaves the whole dump to the schema; an object that is neither
    a dict nor read by attribute goes to its schema.
    """
    compiler = _DumpCompiler()
    try:
        name = compiler.schema(schema)
    except _Unsupported:
        return schema.dump
    namespace: dict[str, Any] = dict(compiler.constants)
    exec(compile("\n".join(compiler.source), "<compiled dump>", "exec"),  # noqa: S102
         namespace)
    return namespace[name]


class _Unsupported(Exception):
    """A part of the schema compile_dump does not reproduce."""


class _DumpCompiler:
    # Types whose dump is a plain conversion of a value that is not None (each field's
    # _serialize): exact types only, a subclass may serialize otherwise.
    NUMBERS = {fields.Integer: "int", fields.Float: "float"}
    # How marshmallow's get_value reads one attribute: by key first from what has
    # __getitem__ (a dict: the key if present, else the attribute), else the attribute.
    READ = {"attribute": "getattr(o, {name!r}, _missing)",
            "dict": "o[{name!r}] if {name!r} in o else getattr(o, {name!r}, _missing)"}

    def __init__(self) -> None:
        self.source: list[str] = []
        self.constants: dict[str, Any] = {"_missing": missing, "_text": utils.ensure_text_type}
        self.names = 0

    def name(self) -> str:
        """A new name in the generated source."""
        self.names += 1
        return f"_n{self.names}"

    def constant(self, value: Any) -> str:
        name = self.name()
        self.constants[name] = value
        return name

    def schema(self, schema: Schema) -> str:
        if (schema.many or schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]
                or type(schema).get_attribute is not Schema.get_attribute):
            raise _Unsupported
        name = self.name()
        body = []
        for attr_name, field in schema.dump_fields.items():
            attribute = field.attribute or attr_name
            if (not attribute.isidentifier() or field.dump_default is not missing
                    or not field._CHECK_ATTRIBUTE):
                raise _Unsupported
            key = field.data_key if field.data_key is not None else attr_name
            body.append((attribute, key, self.value(field, "v")))
        lines = [f"def {name}(o):", "    out = {}"]
        for way, test in (("attribute", "not hasattr(o, '__getitem__')"),
                          ("dict", "type(o) is dict")):
            lines.append(f"    {'if' if way == 'attribute' else 'elif'} {test}:")
            for attribute, key, value in body:
                lines += [f"        v = {self.READ[way].format(name=attribute)}",
                          "        if v is not _missing:",
                          f"            out[{key!r}] = None if v is None else {value}"]
        lines += ["    else:", f"        return {self.constant(schema.dump)}(o)",
                  "    return out"]
        self.source += lines
        return name

    def value(self, field: fields.Field, v: str) -> str:
        """Python expression of the dump of value `v` (not None) by `field`."""
        kind = type(field)
        if kind in self.NUMBERS and not field.as_string:
            return f"{self.NUMBERS[kind]}({v})"
        if kind is fields.String:
            return f"({v} if type({v}) is str else _text({v}))"
        if kind is fields.DateTime:
            function = fields.DateTime.SERIALIZATION_FUNCS.get(field.format)
            if function is None:
                raise _Unsupported
            return f"{self.constant(function)}({v})"
        if kind is fields.List:
            item = self.name()
            inner = self.value(field.inner, item)
            return f"[None if {item} is None else {inner} for {item} in {v}]"
        if kind is fields.Nested and not field.many and isinstance(field.schema, Schema):
            return f"{self.schema(field.schema)}({v})"
        raise _Unsupported


dump_referral = compile_dump(ReferralSchema())
"""ReferralSchema().dump(referral), compiled (compile_dump)."""
