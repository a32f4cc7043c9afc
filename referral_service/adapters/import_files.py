"""Import files (CSV, JSON lines; for people also a JSON array), read into the API's shapes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_OFFICE_COLUMNS = ("label", "address", "city", "country", "latitude", "longitude",
                      "service_radius_km")
# The contact's columns, by the part of "contact" each fills.
CSV_CONTACT_COLUMNS = {"name": "contact_name", "email": "contact_email", "phone": "contact_phone"}


def is_json_lines(filename: str) -> bool:
    """Whether the file is read as JSON lines (else as CSV with a header row)."""
    return filename.lower().endswith(JSON_LINES_SUFFIXES)


def read_lines(text_stream: io.TextIOBase, filename: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw record) from a CSV or JSON-lines stream.

    A line that is not valid JSON yields a ValueError saying so, in place of its record.
    """
    if is_json_lines(filename):
        for number, line in enumerate(text_stream, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, ValueError(f"not valid JSON ({error.msg})")
        return
    reader = csv.DictReader(text_stream)
    for record in reader:
        yield reader.line_num, csv_record(record)


def csv_record(record: dict[str, str | None]) -> dict[str, Any]:
    """Turn a flat CSV row into the API's organization shape."""
    row = {key.strip(): (value or "").strip() for key, value in record.items() if key}
    data: dict[str, Any] = {}
    for key in ("name", "kind", "group", "description", "external_ref"):
        if row.get(key):
            data[key] = row[key]
    if row.get("skills"):
        data["skills"] = [s.strip() for s in row["skills"].replace("|", ";").split(";")
                          if s.strip()]
    if row.get("capacity"):
        # A cell is text; the schema takes only numbers (a JSON body's "5" is refused).
        capacity = row["capacity"]
        data["capacity"] = int(capacity) if capacity.isdigit() else capacity
    if row.get("active"):
        data["active"] = row["active"]
    if any(row.get(column) for column in CSV_CONTACT_COLUMNS.values()):
        # Columns left empty leave no part; a file without them keeps the stored contact.
        data["contact"] = {part: row[column] for part, column in CSV_CONTACT_COLUMNS.items()
                           if row.get(column)}
    if row.get("offices"):
        try:
            data["offices"] = json.loads(row["offices"])
        except json.JSONDecodeError:
            data["offices"] = row["offices"]
    else:
        office = {key: row[key] for key in CSV_OFFICE_COLUMNS if row.get(key)}
        data["offices"] = [office] if office else []
    return data


# Text a CSV cell may give for `active`; anything else is left for the schema to refuse.
CSV_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def read_people(text_stream: io.TextIOBase, filename: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw record) from a people file: CSV with a header row, JSON lines,
    or one JSON array (each item numbered by the line it starts on).

    Unparsable JSON yields a ValueError saying so, in place of its record.
    """
    if not is_json_lines(filename):
        reader = csv.DictReader(text_stream)
        for record in reader:
            yield reader.line_num, csv_person(record)
        return
    text = text_stream.read()
    if text.lstrip().startswith("["):
        yield from _json_array(text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                yield number, ValueError(f"not valid JSON ({error.msg})")


def _json_array(text: str) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        position = _skip_blanks(text, position)
        if text.startswith("]", position):
            return
        line = text.count("\n", 0, position) + 1
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            yield error.lineno, ValueError(f"not valid JSON ({error.msg})")
            return
        yield line, value
        position = _skip_blanks(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            yield text.count("\n", 0, position) + 1, ValueError(
                "not valid JSON (expected ',' or ']' between the array's items)")
            return


def _skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def csv_person(record: dict[str, str | None]) -> dict[str, Any]:
    """Turn a CSV row into an import-people record: empty cells left out, `active` a boolean."""
    row = {key.strip(): (value or "").strip() for key, value in record.items() if key}
    data: dict[str, Any] = {key: value for key, value in row.items() if value}
    if "active" in data:
        data["active"] = CSV_BOOLEANS.get(data["active"].lower(), data["active"])
    return data
