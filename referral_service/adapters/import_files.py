"""Organization import files: CSV or JSON lines, read into the API's organization shape."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_OFFICE_COLUMNS = ("label", "address", "city", "country", "latitude", "longitude",
                      "service_radius_km")


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
        data["capacity"] = row["capacity"]
    if row.get("active"):
        data["active"] = row["active"]
    if row.get("offices"):
        try:
            data["offices"] = json.loads(row["offices"])
        except json.JSONDecodeError:
            data["offices"] = row["offices"]
    else:
        office = {key: row[key] for key in CSV_OFFICE_COLUMNS if row.get(key)}
        data["offices"] = [office] if office else []
    return data
