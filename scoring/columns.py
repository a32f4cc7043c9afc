"""Frozen dataclasses as columns of numpy arrays, decoded one row at a time.

A snapshot of the match index stores its firms this way (`encode`), so that loading it makes
no Python object per firm: `Rows` decodes a firm when a query refines it. The columns follow
the dataclass's fields, whatever they are, as long as each holds one of: an int, a float or a
bool (any of them may be None), a str, a tuple of str, or a tuple of another such dataclass.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

# Decoded rows kept per Rows: the firms queries refine again and again cost no decoding.
CACHE_SIZE = 16384


def _kind(values: list[Any]) -> str:
    """Return how a field's values are stored: "int", "float", "bool", "str", "strs", "rows"
    or "none" (every value is None)."""
    present = [v for v in values if v is not None]
    if not present:
        return "none"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    if all(isinstance(v, str) for v in present):
        return "str"
    if all(isinstance(v, tuple) for v in present):
        items = [item for v in present for item in v]
        if all(isinstance(item, str) for item in items):
            return "strs"
        if items and all(dataclasses.is_dataclass(item) for item in items) and len(
                {type(item) for item in items}) == 1:
            return "rows"
    raise TypeError(f"No column for values like {present[0]!r}.")


def _strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return UTF-8 bytes of all strings and where each starts (len + 1 offsets)."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


def encode(rows: Sequence[Any], cls: type, prefix: str = "") -> dict[str, np.ndarray]:
    """Return the columns of dataclass instances of `cls`, keyed `prefix + field + part`.

    The layout (each field's kind) is kept under `prefix + "layout"` as JSON, so that `Rows`
    needs nothing else.
    """
    columns: dict[str, np.ndarray] = {}
    layout: dict[str, str] = {}
    for field in dataclasses.fields(cls):
        name = prefix + field.name
        values = [getattr(row, field.name) for row in rows]
        kind = layout[field.name] = _kind(values)
        if kind in ("int", "float", "bool"):
            dtype = {"int": np.int64, "float": np.float64, "bool": bool}[kind]
            columns[name] = np.array([0 if v is None else v for v in values], dtype)
            if any(v is None for v in values):
                columns[name + ".none"] = np.array([v is None for v in values], bool)
        elif kind == "str":
            columns[name + ".bytes"], columns[name + ".at"] = _strings(values)
        elif kind in ("strs", "rows"):
            counts = np.zeros(len(values) + 1, np.int64)
            np.cumsum([len(v) for v in values], out=counts[1:])
            columns[name + ".at"] = counts
            items = [item for v in values for item in v]
            if kind == "strs":
                columns[name + ".bytes"], columns[name + ".item_at"] = _strings(items)
            else:
                layout[field.name] = "rows:" + type(items[0]).__name__
                columns.update(encode(items, type(items[0]), name + "."))
    columns[prefix + "layout"] = np.frombuffer(json.dumps(layout).encode(), np.uint8).copy()
    return columns


class Rows(Sequence):
    """The rows of columns made by `encode`, each decoded (and cached) when first read."""

    def __init__(self, columns: dict[str, np.ndarray], cls: type, prefix: str = "",
                 nested: dict[str, type] | None = None) -> None:
        # plain ndarray views: indexing a np.memmap goes through its Python subclass
        columns = {name: np.asarray(column).view(np.ndarray) for name, column in columns.items()}
        self.columns, self.cls, self.prefix = columns, cls, prefix
        self.layout = json.loads(columns[prefix + "layout"].tobytes())
        nested = nested or {}
        self.nested = {
            field: Rows(columns, nested[kind.split(":", 1)[1]], f"{prefix}{field}.", nested)
            for field, kind in self.layout.items() if kind.startswith("rows:")
        }
        first = next(iter(self.layout))
        kind = self.layout[first]
        name = prefix + first
        self.size = len(columns[name + ".at"]) - 1 if kind not in (
            "int", "float", "bool") else len(columns[name])
        self._cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        row = self._cache.get(index)
        if row is None:
            if not 0 <= index < self.size:
                raise IndexError(index)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            # The values were checked when the rows were made: set them without __init__
            # (validation is most of a firm's decoding time).
            row = self._cache[index] = object.__new__(self.cls)
            for field, kind in self.layout.items():
                object.__setattr__(row, field, self._value(field, kind, index))
        return row

    def _value(self, field: str, kind: str, i: int) -> Any:
        name = self.prefix + field
        columns = self.columns
        if kind in ("int", "float", "bool"):
            none = columns.get(name + ".none")
            return None if none is not None and none[i] else columns[name][i].item()
        if kind == "none":
            return None
        if kind == "str":
            at = columns[name + ".at"]
            return columns[name + ".bytes"][at[i]:at[i + 1]].tobytes().decode()
        start, end = columns[name + ".at"][i:i + 2].tolist()
        if kind == "strs":
            at, data = columns[name + ".item_at"], columns[name + ".bytes"]
            return tuple(data[at[k]:at[k + 1]].tobytes().decode() for k in range(start, end))
        rows = self.nested[field]
        return tuple(rows[k] for k in range(start, end))
