"""Bulk import of organization profiles from CSV or JSON lines, created or updated by external_ref.

Each line is validated with the API's own schema; a bad line is reported and skipped, never
aborting the good ones. New firms are written in batches through Core inserts (the ORM's
per-object bookkeeping costs several times more at 100k firms).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models import AuditEntry, Office, Organization, OrganizationSkill, OrganizationStats, utcnow
from referral_service.services import organizations
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import ServiceError, ValidationFailed
from referral_service.services.geocoding import Geocoder
from referral_service.services.schemas import OrganizationCreateSchema

BATCH_SIZE = 1000
CSV_OFFICE_COLUMNS = ("label", "address", "city", "country", "latitude", "longitude",
                      "service_radius_km")


@dataclass
class ImportReport:
    """What an import did: counts and the reason for every rejected line."""

    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_lines(text_stream: io.TextIOBase, filename: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw record) from a CSV or JSON-lines stream."""
    if filename.lower().endswith((".jsonl", ".json", ".ndjson")):
        for number, line in enumerate(text_stream, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, ValueError(f"not valid JSON ({error.msg})")
        return
    reader = csv.DictReader(text_stream)
    for record in reader:
        yield reader.line_num, _csv_record(record)


def _csv_record(record: dict[str, str | None]) -> dict[str, Any]:
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


def import_organizations(
    *, session: Session, records: Iterable[tuple[int, Any]], geocoder: Geocoder,
    actor: Principal = SYSTEM, progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update organizations from records; commit per batch."""
    report = ImportReport()
    schema = OrganizationCreateSchema()
    batch: list[tuple[int, dict[str, Any]]] = []
    for number, raw in records:
        if progress:
            progress(1)
        try:
            if isinstance(raw, Exception):
                raise ValueError(str(raw))
            if not isinstance(raw, dict):
                raise ValueError("a line must be a JSON object")
            data = schema.load(raw)
            data["offices"] = organizations.resolve_offices(data["offices"], geocoder)
            data["skills"] = organizations.normalize_skills(data["skills"])
        except ValidationError as error:
            report.rejected.append((number, _describe(error.messages)))
            continue
        except ValidationFailed as error:
            report.rejected.append((number, _describe(error.errors)))
            continue
        except ValueError as error:
            report.rejected.append((number, str(error)))
            continue
        batch.append((number, data))
        if len(batch) >= BATCH_SIZE:
            _write_batch(session, batch, geocoder, actor, report)
            batch = []
    if batch:
        _write_batch(session, batch, geocoder, actor, report)
    return report


def _write_batch(
    session: Session, batch: list[tuple[int, dict[str, Any]]], geocoder: Geocoder,
    actor: Principal, report: ImportReport,
) -> None:
    refs = [data["external_ref"] for _, data in batch if data.get("external_ref")]
    existing = dict(session.execute(
        select(Organization.external_ref, Organization.id)
        .where(Organization.external_ref.in_(refs))
    ).all()) if refs else {}
    new: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, data in batch:
        ref = data.get("external_ref")
        if ref and ref in seen:
            report.rejected.append((number, f"external_ref {ref!r} repeats an earlier line"))
            continue
        if ref:
            seen.add(ref)
        if ref in existing:
            try:
                organizations.update(session=session, organization_id=existing[ref], data=data,
                                     actor=actor, geocoder=geocoder)
            except ServiceError as error:
                session.rollback()
                report.rejected.append((number, error.detail))
                continue
            report.updated += 1
        else:
            new.append((number, data))
    if new:
        _insert_new(session, [data for _, data in new], actor)
        report.created += len(new)
    session.commit()


def _insert_new(session: Session, rows: list[dict[str, Any]], actor: Principal) -> None:
    now = utcnow()
    ids = session.scalars(
        insert(Organization).returning(Organization.id, sort_by_parameter_order=True),
        [{"name": d["name"], "kind": d["kind"], "group": d.get("group"),
          "description": d.get("description", ""), "capacity": d.get("capacity"),
          "active": d.get("active", True), "external_ref": d.get("external_ref"),
          "created_at": now, "updated_at": now, "version": 1} for d in rows],
    ).all()
    session.execute(insert(OrganizationStats), [
        {"organization_id": org_id, "open_referrals": 0, "won": 0, "failed": 0, "updated_at": now}
        for org_id in ids])
    skills = [{"organization_id": org_id, "slug": slug, "position": position}
              for org_id, d in zip(ids, rows, strict=True)
              for position, slug in enumerate(d["skills"])]
    if skills:
        session.execute(insert(OrganizationSkill), skills)
    session.execute(insert(Office), [
        {"organization_id": org_id, "label": o.get("label"), "address": o.get("address"),
         "city": o.get("city"), "country": o.get("country"), "latitude": o["latitude"],
         "longitude": o["longitude"], "service_radius_km": o.get("service_radius_km", 100.0)}
        for org_id, d in zip(ids, rows, strict=True) for o in d["offices"]])
    session.execute(insert(AuditEntry), [
        {"at": now, "actor": actor.name, "action": "organization.import",
         "object_type": "organization", "object_id": str(org_id),
         "changes": {"name": d["name"], "external_ref": d.get("external_ref")}}
        for org_id, d in zip(ids, rows, strict=True)])


def _describe(messages: Any) -> str:
    """Flatten nested validation messages into 'field: message; ...'."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            parts.append(f"{prefix}: {' '.join(str(v) for v in value)}")
        else:
            parts.append(f"{prefix}: {value}")

    walk("", messages)
    return "; ".join(parts)
