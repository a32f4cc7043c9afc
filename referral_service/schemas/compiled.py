"""A schema's load, compiled for the lines that plainly pass it (bulk imports).

`compile_load(schema)` reads a marshmallow schema's fields, validators and hooks once and
returns `load(raw)`: exactly `schema.load(raw)` for a record every part of which it can check
quickly, or None when it is not sure, and then the schema itself decides (and alone words the
reasons). Nothing is written twice: the limits are the validators' own attributes, the
schema's hooks are called as they are, and a field type or a validator it does not know sends
every record the schema's way. About 25 us a firm of 10 skills and 2 offices, against 135 us
for `schema.load` (bench/bench_import.py, 100k firms: the difference is 11 s of a 25 s
budget).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, missing, validate

from referral_service.schemas.base import WholeNumber

Loader = Callable[[Any], Any]
_UNSURE = object()  # what a compiled check returns when the schema must decide


def compile_load(schema: Schema) -> Callable[[Any], dict[str, Any] | None]:
    """Return load(raw): `schema.load(raw)` when surely valid, else None."""
    check = _compile_schema(schema)

    def load(raw: Any) -> dict[str, Any] | None:
        try:
            loaded = check(raw)
        except ValidationError:
            return None
        return None if loaded is _UNSURE else loaded

    return load


def _never(_value: Any) -> Any:
    return _UNSURE


def _compile_schema(schema: Schema) -> Loader:
    # marshmallow's registry of the schema's decorated methods (a defaultdict: a load adds
    # empty entries for the tags it looked up)
    hooks = {tag: found for tag, found in schema._hooks.items() if found}
    if set(hooks) - {"pre_load", "validates_schema"} or any(
            many or kwargs.get("pass_original") for tag in hooks for _, many, kwargs in
            hooks[tag]) or schema.many or schema.partial or schema.unknown != "raise":
        return _never
    pre = [getattr(schema, name) for name, _, _ in hooks.get("pre_load", [])]
    post = [getattr(schema, name) for name, _, _ in hooks.get("validates_schema", [])]
    loaders: list[tuple[str, Loader, Any, bool]] = []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        if field.data_key not in (None, name) or field.attribute not in (None, name):
            return _never
        default = field.load_default
        loaders.append((name, _compile_field(field), default, field.required))
    names = frozenset(name for name, _, _, _ in loaders)

    def check(raw: Any) -> Any:
        if type(raw) is not dict or not names.issuperset(raw):
            return _UNSURE
        for hook in pre:
            raw = hook(raw, many=False, partial=None, unknown="raise")
        data: dict[str, Any] = {}
        for name, loader, default, required in loaders:
            if name in raw:
                value = loader(raw[name])
                if value is _UNSURE:
                    return _UNSURE
                data[name] = value
            elif required:
                return _UNSURE
            elif default is not missing:
                data[name] = default() if callable(default) else default
        for hook in post:
            hook(data, many=False, partial=None, unknown="raise")
        return data

    return check


def _compile_field(field: fields.Field) -> Loader:
    kind = type(field)
    if kind is fields.String:
        convert = _string
    elif kind is fields.Boolean:
        convert = _boolean
    elif kind in (fields.Integer, WholeNumber):
        convert = _integer
    elif kind is fields.Float and field.allow_nan is False:
        convert = _float
    elif kind is fields.List:
        convert = _list(_compile_field(field.inner))
    elif kind is fields.Nested and not field.many:
        convert = _compile_schema(field.schema)
    else:
        return _never
    checks = [_compile_validator(validator) for validator in field.validators]
    if any(check is None for check in checks):
        return _never
    allow_none = field.allow_none

    def load(value: Any) -> Any:
        if value is None:
            return None if allow_none else _UNSURE
        value = convert(value)
        if value is _UNSURE:
            return _UNSURE
        for check in checks:
            if not check(value):
                return _UNSURE
        return value

    return load


def _compile_validator(validator: Any) -> Callable[[Any], bool] | None:
    """A quick test of the validator's own limits; None for a validator it does not know."""
    kind = type(validator)
    if kind is validate.Length:
        low, high, equal = validator.min, validator.max, validator.equal
        if equal is not None:
            return lambda value: len(value) == equal
        return lambda value: ((low is None or len(value) >= low)
                              and (high is None or len(value) <= high))
    if kind is validate.Range:
        low, high = validator.min, validator.max
        low_in, high_in = validator.min_inclusive, validator.max_inclusive
        return lambda value: ((low is None or (value >= low if low_in else value > low))
                              and (high is None or (value <= high if high_in else value < high)))
    if kind is validate.OneOf:
        choices = frozenset(validator.choices)
        return lambda value: value in choices
    if kind is validate.Regexp:
        return lambda value: validator.regex.match(value) is not None
    return None


def _string(value: Any) -> Any:
    return value if type(value) is str else _UNSURE


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else _UNSURE


def _integer(value: Any) -> Any:
    return value if type(value) is int else _UNSURE


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else _UNSURE
    if kind is int and -2**53 <= value <= 2**53:
        return float(value)
    return _UNSURE


def _list(item: Loader) -> Loader:
    def load(value: Any) -> Any:
        if type(value) is not list:
            return _UNSURE
        loaded = [item(inner) for inner in value]
        return _UNSURE if any(inner is _UNSURE for inner in loaded) else loaded
    return load
