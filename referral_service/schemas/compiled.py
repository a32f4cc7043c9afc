"""A schema's load and dump, compiled: for the lines that plainly pass it (bulk imports), and
for the referral every creation dumps (compile_dump, at the end).

`compile_load(schema)` reads a marshmallow schema's fields, validators and hooks once and
returns `load(raw)`: exactly `schema.load(raw)` for a record every part of which it can check
quickly, or None when it is not sure, and then the schema itself decides (and alone words the
reasons). Nothing is written twice: the limits are the validators' own attributes, the
schema's hooks are called as they are, and a field type, a validator or a hook it does not
know sends every record the schema's way.

The checks are compiled to Python source, one function per (nested) schema, each field's
type test and its validators' limits inline: 17 us a firm of bench/bench_import.py (10
skills, 1-2 offices) against 35 us for the same checks made by a closure per field and
validator, and 210 us for `schema.load` (measured side by side on 5,000 of its lines): at 100k
firms, 1.7 s of CPU saved.
StrictSchema's text hook (base.text_problem on each text of the record) is the one hook run
differently: once, on the record's texts joined (text_problem finds NUL or a lone surrogate
in the joined text exactly when it finds one in a piece), after the fields' checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, missing, utils, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from referral_service.schemas.base import Pattern, StrictSchema, WholeNumber, text_problem

_UNSURE = object()  # what a compiled check returns when the schema must decide
# Field types whose parse is left to the field's own deserialize (dates, decimals): exact
# types only, a subclass may parse otherwise.
_OWN_DESERIALIZE = frozenset({fields.AwareDateTime, fields.DateTime, fields.NaiveDateTime,
                              fields.Date, fields.Decimal})
# Hooks run on the texts instead: each one's check of a single text.
_TEXT_HOOKS: dict[Any, Callable[[str], str | None]] = {
    StrictSchema._refuse_unstorable_text: text_problem}


def compile_load(schema: Schema) -> Callable[[Any], dict[str, Any] | None]:
    """Return load(raw): `schema.load(raw)` when surely valid, else None."""
    check, text_checks = _Compiler().compile(schema)

    def load(raw: Any) -> dict[str, Any] | None:
        texts: list[str] = []
        try:
            loaded = check(raw, texts)
        except ValidationError:
            return None
        if loaded is _UNSURE:
            return None
        if text_checks:
            joined = "".join(texts)
            if any(text_check(joined) for text_check in text_checks):
                return None
        return loaded

    return load


class CompiledLoad:
    """A schema mixin: `load` of a body the compiled check is sure of (compile_load) skips
    marshmallow's field-by-field load; any other body, and any load with options, takes the
    schema's own (which alone words the errors).

    For the request bodies every POST /visits and POST /referrals parses: a visit with 5
    leads in about 60 us instead of 330 us (bench/bench_visits.py, py-spy).
    """

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,
             unknown: str | None = None) -> Any:
        """Return the loaded body: the compiled check's if it is sure, else Schema.load's."""
        if many is None and partial is None and unknown is None:
            quick = self.__dict__.get("_compiled_load")
            if quick is None:
                quick = self.__dict__["_compiled_load"] = compile_load(self)
            loaded = quick(data)
            if loaded is not None:
                return loaded
        return super().load(data, many=many, partial=partial,  # type: ignore[misc]
                            unknown=unknown)


def _never(_raw: Any, _texts: list[str]) -> Any:
    return _UNSURE


class _Unknown(Exception):
    """A field type, validator or hook the compiler does not know."""


class _Compiler:
    """Python source of one check function per schema, and the constants it uses."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_UNSURE": _UNSURE, "_isfinite": math.isfinite,
                                          "ValidationError": ValidationError}
        self.source: list[str] = []
        self.text_checks: list[Callable[[str], str | None]] = []
        self.count = 0

    def compile(self, schema: Schema) -> tuple[Callable[..., Any], list[Any]]:
        try:
            name = self.schema(schema)
        except _Unknown:
            return _never, []
        exec(compile("\n".join(self.source), "<compiled load>", "exec"),  # noqa: S102
             self.namespace)
        return self.namespace[name], self.text_checks

    def const(self, value: Any) -> str:
        self.count += 1
        name = f"_c{self.count}"
        self.namespace[name] = value
        return name

    def schema(self, schema: Schema) -> str:
        # marshmallow's registry of the schema's decorated methods (a defaultdict: a load adds
        # empty entries for the tags it looked up)
        hooks = {tag: found for tag, found in schema._hooks.items() if found}
        if set(hooks) - {"pre_load", "validates", "validates_schema"} or any(
                many or kwargs.get("pass_original") for tag in hooks for _, many, kwargs in
                hooks[tag]) or schema.many or schema.partial or schema.unknown != "raise":
            raise _Unknown
        pre, texts = [], False
        for hook_name, _, _ in hooks.get("pre_load", []):
            text_check = _TEXT_HOOKS.get(getattr(type(schema), hook_name, None))
            if text_check is None:
                pre.append(self.const(getattr(schema, hook_name)))
                continue
            texts = True
            if text_check not in self.text_checks:
                self.text_checks.append(text_check)
        # A field's validator (@validates) gets the loaded value and its data key, after
        # every field is loaded; a field left out is not validated (_invoke_field_validators).
        field_hooks = []
        for hook_name, _, kwargs in hooks.get("validates", []):
            hook = self.const(getattr(schema, hook_name))
            for field_name in kwargs["field_names"]:
                field = schema.fields.get(field_name)
                if field is None or field.data_key not in (None, field_name) \
                        or field.attribute not in (None, field_name):
                    raise _Unknown
                field_hooks.append(f"if {field_name!r} in data:\n"
                                   f"    {hook}(data[{field_name!r}], data_key={field_name!r})")
        post = [self.const(getattr(schema, hook_name))
                for hook_name, _, _ in hooks.get("validates_schema", [])]
        body: list[str] = []
        names = []
        for name, field in schema.fields.items():
            if field.dump_only:
                continue
            if field.data_key not in (None, name) or field.attribute not in (None, name):
                raise _Unknown
            names.append(name)
            key = repr(name)
            body.append(f"if {key} in raw:")
            body.append(f"    v = raw[{key}]")
            body += ["    " + line for line in self.field(field, "v", texts, 0)]
            body.append(f"    data[{key}] = v")
            if field.required:
                body.append("else:\n    return _UNSURE")
            elif field.load_default is not missing:
                default = self.const(field.load_default)
                call = "()" if callable(field.load_default) else ""
                body.append(f"else:\n    data[{key}] = {default}{call}")
        self.count += 1
        function = f"_schema{self.count}"
        lines = [f"def {function}(raw, texts):",
                 f"    if type(raw) is not dict or not {self.const(frozenset(names))}"
                 ".issuperset(raw):",
                 "        return _UNSURE"]
        lines += [f"    raw = {hook}(raw, many=False, partial=None, unknown='raise')"
                  for hook in pre]
        lines.append("    data = {}")
        lines += ["    " + line for line in "\n".join(body).split("\n")]
        lines += ["    " + line for line in "\n".join(field_hooks).split("\n") if field_hooks]
        lines += [f"    {hook}(data, many=False, partial=None, unknown='raise')" for hook in post]
        lines.append("    return data")
        self.source.append("\n".join(lines))
        return function

    def field(self, field: fields.Field, var: str, texts: bool, depth: int) -> list[str]:
        """Lines that check `var` as `field` loads it (leaving the loaded value in `var`) or
        return _UNSURE."""
        kind = type(field)
        if kind is fields.String:
            convert = [f"if type({var}) is not str:", "    return _UNSURE"]
            if texts:
                convert.append(f"texts.append({var})")
        elif kind is fields.Boolean:
            convert = [f"if type({var}) is not bool:", "    return _UNSURE"]
        elif kind in (fields.Integer, WholeNumber):
            convert = [f"if type({var}) is not int:", "    return _UNSURE"]
        elif kind is fields.Float and field.allow_nan is False:
            convert = [f"if type({var}) is float:",
                       f"    if not _isfinite({var}):",
                       "        return _UNSURE",
                       f"elif type({var}) is int and -9007199254740992 <= {var} "
                       "<= 9007199254740992:",
                       f"    {var} = float({var})",
                       "else:",
                       "    return _UNSURE"]
        elif kind is fields.List:
            item = f"i{depth}"
            convert = [f"if type({var}) is not list:", "    return _UNSURE",
                       f"l{depth} = []", f"for {item} in {var}:"]
            convert += ["    " + line for line in self.field(field.inner, item, texts,
                                                             depth + 1)]
            convert += [f"    l{depth}.append({item})", f"{var} = l{depth}"]
        elif kind is fields.Nested and not field.many:
            nested = self.schema(field.schema)
            convert = [f"{var} = {nested}({var}, texts)",
                       f"if {var} is _UNSURE:", "    return _UNSURE"]
        elif kind in _OWN_DESERIALIZE:
            # Parsed by the field itself, validators included (a ValidationError sends the
            # record the schema's way); its text, if text, is checked with the others.
            convert = [f"if type({var}) is str:", f"    texts.append({var})"] if texts else []
            convert.append(f"{var} = {self.const(field.deserialize)}({var})")
            lines = "\n".join(convert).split("\n")
            none = "pass" if field.allow_none else "return _UNSURE"
            return [f"if {var} is None:", f"    {none}", "else:"] + ["    " + line
                                                                    for line in lines]
        else:
            raise _Unknown
        checks = [self.validator(validator, var, scalar=kind not in (fields.List,
                                                                     fields.Nested))
                  for validator in field.validators]
        lines = convert + [f"if not ({check}):\n    return _UNSURE" for check in checks]
        lines = "\n".join(lines).split("\n")
        none = "pass" if field.allow_none else "return _UNSURE"
        return [f"if {var} is None:", f"    {none}", "else:"] + ["    " + line for line in lines]

    def validator(self, validator: Any, var: str, *, scalar: bool) -> str:
        """A Python expression true when `var` passes the validator's own limits."""
        kind = type(validator)
        if kind is validate.Length:
            if validator.equal is not None:
                return f"len({var}) == {self.const(validator.equal)}"
            parts = []
            if validator.min is not None:
                parts.append(f"{self.const(validator.min)} <= len({var})")
            if validator.max is not None:
                parts.append(f"len({var}) <= {self.const(validator.max)}")
            return " and ".join(parts) or "True"
        if kind is validate.Range:
            parts = []
            if validator.min is not None:
                operator = "<=" if validator.min_inclusive else "<"
                parts.append(f"{self.const(validator.min)} {operator} {var}")
            if validator.max is not None:
                operator = "<=" if validator.max_inclusive else "<"
                parts.append(f"{var} {operator} {self.const(validator.max)}")
            return " and ".join(parts) or "True"
        if kind is validate.OneOf and scalar:
            return f"{var} in {self.const(frozenset(validator.choices))}"
        if kind is validate.Regexp and scalar:
            return f"{self.const(validator.regex.match)}({var}) is not None"
        if kind is Pattern and scalar:
            return f"{self.const(validator.match)}({var}) is not None"
        raise _Unknown


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
        if kind is fields.Boolean:
            return v  # Boolean dumps the value as it is (Field._serialize)
        if kind in (fields.DateTime, fields.Date):
            function = kind.SERIALIZATION_FUNCS.get(field.format)
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
