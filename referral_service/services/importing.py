"""Bulk import of organization profiles from CSV or JSON lines, created or updated by external_ref.

Each line is validated with the API's own rules; a bad line is reported and skipped, never
aborting the good ones. A line of the usual shape (exact JSON types, every value plainly within
the schema's bounds) is checked by `fast_load`, ten times cheaper than the schema; any
other line, and so every rejected one, goes through the schema itself, which alone words the
reasons. New firms are written in batches through Core inserts against the tables (the ORM's
per-object bookkeeping, and its row-by-row RETURNING on SQLite, cost several times more at
100k firms). Existing firms are updated in the same batches: their current profiles read in
three queries, the changes computed by the rules of organizations.update itself
(`planned_profile`, `profile_changes`), and written with executemany statements: exactly the
rows and audit entries the update writes one firm at a time, over ten times faster.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.orm import Session

from models import (
    ORGANIZATION_KINDS,
    AuditEntry,
    Office,
    Organization,
    OrganizationSkill,
    OrganizationStats,
    utcnow,
)
from referral_service.adapters.geocoding import (
    Geocoder,
    GeocodingError,
    GeocodingUnavailable,
    Place,
)
from referral_service.adapters.sql import bulk_insert, reserve_ids
from referral_service.schemas.base import text_problem
from referral_service.schemas.organizations import OrganizationCreateSchema
from referral_service.services import audit, organizations
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import ServiceError, ValidationFailed

BATCH_SIZE = 1000
# A bulk import of at least this many new firms refreshes PostgreSQL's table statistics.
ANALYZE_AFTER_CREATED = 1000
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
    geocoder = MemoGeocoder(geocoder)
    batch: list[tuple[int, dict[str, Any]]] = []
    for number, raw in records:
        if progress:
            progress(1)
        try:
            if isinstance(raw, Exception):
                raise ValueError(str(raw))
            if not isinstance(raw, dict):
                raise ValueError("a line must be a JSON object")
            data = fast_load(raw)
            if data is None:
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
    if report.created >= ANALYZE_AFTER_CREATED and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics for the planner: before them, each worker's once-a-second index
        # sync read the changed firms with a plan for empty tables (22 ms instead of 1.6 ms
        # at 100k firms). SQLite's planner does not need them for these indexed reads.
        session.execute(text("ANALYZE organizations, organization_stats, organization_skills, "
                             "offices"))
        session.commit()
    return report


# ------------------------------------------------------------------------------ validation
#
# fast_load returns exactly what OrganizationCreateSchema().load(raw) returns, or None when it
# is not sure: then the schema decides. It accepts only exact JSON types (str, int, float, bool,
# None, list, dict; never a number given as text, a bool given as 0/1, an office `id`...) and
# values inside the bounds below, which are the schema's (tests/services/test_importing.py
# checks them against the schema's validators and compares both on generated lines).

_ORGANIZATION_KEYS = frozenset({"name", "kind", "group", "skills", "description", "offices",
                                "capacity", "active", "external_ref"})
_OFFICE_KEYS = frozenset({"label", "address", "city", "country", "latitude", "longitude",
                          "service_radius_km"})
# field: (min length, max length) of a text, or (min, max) of a number, all inclusive
FAST_BOUNDS: dict[str, tuple[float, float]] = {
    "name": (1, 200), "group": (0, 100), "description": (0, 5000), "external_ref": (1, 100),
    "skills": (0, 200), "skills.item": (1, 100), "offices": (1, 50),
    "capacity": (0, 1_000_000),
    "offices.label": (0, 100), "offices.address": (0, 300), "offices.city": (1, 100),
    "offices.latitude": (-90, 90), "offices.longitude": (-180, 180),
    "offices.service_radius_km": (0.1, 20_000),
}
_B = FAST_BOUNDS


def _text(value: Any, bounds: tuple[float, float]) -> bool:
    """A str of a length within bounds that a database can store."""
    return (type(value) is str and bounds[0] <= len(value) <= bounds[1]
            and text_problem(value) is None)


def _number(value: Any, bounds: tuple[float, float]) -> bool:
    """An int or finite float (not a bool) within bounds."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value) and bounds[0] <= value <= bounds[1]
    return kind is int and bounds[0] <= value <= bounds[1]


def fast_load(raw: dict[str, Any]) -> dict[str, Any] | None:
    """Return OrganizationCreateSchema().load(raw) for a line of the usual shape, else None."""
    if not _ORGANIZATION_KEYS.issuperset(raw):
        return None
    name, kind, offices = raw.get("name"), raw.get("kind"), raw.get("offices")
    if not (_text(name, _B["name"]) and type(kind) is str and kind in ORGANIZATION_KINDS
            and type(offices) is list and _B["offices"][0] <= len(offices) <= _B["offices"][1]):
        return None
    data: dict[str, Any] = {"name": name, "kind": kind}
    for key in ("group", "external_ref"):
        if key in raw:
            value = raw[key]
            if value is not None and not _text(value, _B[key]):
                return None
            data[key] = value
    skills = raw.get("skills", [])
    if type(skills) is not list or len(skills) > _B["skills"][1]:
        return None
    item = _B["skills.item"]
    for skill in skills:
        if not _text(skill, item):
            return None
    data["skills"] = list(skills)
    description = raw.get("description", "")
    if not _text(description, _B["description"]):
        return None
    data["description"] = description
    loaded = []
    for office in offices:
        loaded_office = _fast_office(office)
        if loaded_office is None:
            return None
        loaded.append(loaded_office)
    data["offices"] = loaded
    if "capacity" in raw:
        capacity = raw["capacity"]
        if capacity is not None and not (type(capacity) is int
                                         and _number(capacity, _B["capacity"])):
            return None
        data["capacity"] = capacity
    active = raw.get("active", True)
    if type(active) is not bool:
        return None
    data["active"] = active
    return data


def _fast_office(raw: Any) -> dict[str, Any] | None:
    """OfficeSchema().load(raw) for an office of the usual shape, else None."""
    if type(raw) is not dict or not _OFFICE_KEYS.issuperset(raw):
        return None
    office: dict[str, Any] = {}
    for key in ("label", "address", "city"):
        if key in raw:
            value = raw[key]
            if value is not None and not _text(value, _B["offices." + key]):
                return None
            office[key] = value
    if "country" in raw:
        country = raw["country"]
        if country is not None and not (type(country) is str and len(country) == 2
                                        and country.isascii() and country.isalpha()):
            return None
        office["country"] = country.upper() if country else country
    for key in ("latitude", "longitude"):
        if key in raw:
            value = raw[key]
            if value is not None and not _number(value, _B["offices." + key]):
                return None
            office[key] = None if value is None else float(value)
    radius = raw.get("service_radius_km", 100.0)
    if not _number(radius, _B["offices.service_radius_km"]):
        return None
    office["service_radius_km"] = float(radius)
    has_coordinates = office.get("latitude") is not None
    if has_coordinates != (office.get("longitude") is not None):
        return None
    if not has_coordinates and not office.get("city") and not office.get("address"):
        return None
    return office


class MemoGeocoder:
    """A geocoder that answers each (city, country, address) once per import.

    Places and "unknown place" errors are remembered; an unavailable online service is not.
    """

    def __init__(self, geocoder: Geocoder) -> None:
        self.geocoder = geocoder
        self._answers: dict[tuple[Any, Any, Any], Place | tuple[str, str]] = {}

    def geocode(
        self, *, city: str | None = None, country: str | None = None, address: str | None = None
    ) -> Place:
        """Resolve like the wrapped geocoder (the same Place, or the same GeocodingError)."""
        key = (city, country, address)
        answer = self._answers.get(key)
        if answer is None:
            try:
                answer = self.geocoder.geocode(city=city, country=country, address=address)
            except GeocodingUnavailable:
                raise
            except GeocodingError as error:
                answer = (str(error), error.field)
            self._answers[key] = answer
        if isinstance(answer, tuple):
            raise GeocodingError(answer[0], field=answer[1])
        return answer


# --------------------------------------------------------------------------------- writing


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
    updates: list[tuple[int, int, dict[str, Any]]] = []
    refused: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, data in batch:
        ref = data.get("external_ref")
        if ref and ref in seen:
            refused.append((number, f"external_ref {ref!r} repeats an earlier line"))
            continue
        if ref:
            seen.add(ref)
        if ref in existing:
            updates.append((number, existing[ref], data))
        else:
            new.append((number, data))
    connection = session.connection()
    if updates:
        refused_updates = _update_existing(connection, updates, geocoder, actor)
        report.updated += len(updates) - len(refused_updates)
        refused += refused_updates
    # In line order, as when each line was written on its own.
    report.rejected += sorted(refused)
    if new:
        _insert_new(connection, [data for _, data in new], actor)
        report.created += len(new)
    session.commit()


# Updates of existing firms: what organizations.update writes, one firm at a time, written
# set-based for a whole batch. The rules (organizations.planned_profile and profile_changes)
# are the update's own; only the writing differs:
#  - a firm whose profile changes: its row with every profile column, `updated_at` now and
#    `version` + 1; its skills rewritten when they changed; one organization.update audit
#    entry with the same {"from", "to"} changes;
#  - every updated firm, changed or not: offices given without id are new rows (new ids, taken
#    in line order as the ORM's flush takes them), offices kept by id are updated in place,
#    the others deleted (organizations.update does the same for an unchanged line, without
#    moving the version);
#  - organization_stats untouched.
# A line the update refuses (an office id of another firm...) is rejected with the service's
# reason; the other lines of the batch are written.

# profile field -> organizations column ("group" is group_name)
_PROFILE_COLUMNS = {field: getattr(Organization, field).expression.name
                    for field in organizations.PROFILE_FIELDS}


def _update_existing(
    connection: Connection, lines: list[tuple[int, int, dict[str, Any]]], geocoder: Geocoder,
    actor: Principal,
) -> list[tuple[int, str]]:
    """Apply (line number, organization id, data) lines to existing firms, as update would.

    Return the lines the update refuses, with its reason; the others are written.
    """
    current = _load_profiles(connection, [org_id for _, org_id, _ in lines])
    now = utcnow()
    changed_rows: list[dict[str, Any]] = []
    skills_of: dict[int, list[str]] = {}
    offices = _OfficeWrites(connection)
    audit_rows: list[dict[str, Any]] = []
    refused: list[tuple[int, str]] = []
    for number, org_id, data in lines:
        before = current[org_id]
        try:
            after = organizations.planned_profile(before, data, geocoder)
        except ServiceError as error:
            refused.append((number, error.detail))
            continue
        offices.plan(org_id, before["offices"], after["offices"])
        changes = organizations.profile_changes(before, after)
        if not changes:
            continue
        changed_rows.append({
            "b_id": org_id, "b_version": before["version"] + 1, "b_updated_at": now,
            **{"b_" + column: after[field] for field, column in _PROFILE_COLUMNS.items()}})
        if "skills" in changes:
            skills_of[org_id] = after["skills"]
        audit_rows.append(audit.entry(actor=actor, action="organization.update",
                                      object_type="organization", object_id=org_id,
                                      changes=changes, at=now)[1])
    table = Organization.__table__
    if changed_rows:
        connection.execute(
            table.update().where(table.c.id == bindparam("b_id")).values(
                version=bindparam("b_version"), updated_at=bindparam("b_updated_at"),
                **{column: bindparam("b_" + column) for column in _PROFILE_COLUMNS.values()}),
            changed_rows)
    if skills_of:
        skills = OrganizationSkill.__table__
        connection.execute(skills.delete().where(skills.c.organization_id.in_(list(skills_of))))
        bulk_insert(connection, skills, [
            {"organization_id": org_id, "slug": slug, "position": position}
            for org_id, slugs in skills_of.items() for position, slug in enumerate(slugs)])
    offices.write()
    bulk_insert(connection, AuditEntry.__table__, audit_rows)
    return refused


def _load_profiles(connection: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Return organizations.profile() of these firms, with their `version`, read set-based.

    On PostgreSQL the rows stay locked until the batch commits, so that no PATCH slips in
    between this read and the batch's writes (the ORM's version check would have caught it).
    """
    table, skills, offices = (Organization.__table__, OrganizationSkill.__table__,
                              Office.__table__)
    query = select(table.c.id, table.c.version,
                   *(table.c[column] for column in _PROFILE_COLUMNS.values())
                   ).where(table.c.id.in_(ids))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    profiles: dict[int, dict[str, Any]] = {}
    for row in connection.execute(query):
        profiles[row.id] = {
            **{field: row._mapping[column] for field, column in _PROFILE_COLUMNS.items()},
            "skills": [], "offices": [], "version": row.version}
    for org_id, slug in connection.execute(
            select(skills.c.organization_id, skills.c.slug)
            .where(skills.c.organization_id.in_(ids))
            .order_by(skills.c.organization_id, skills.c.position)):
        profiles[org_id]["skills"].append(slug)
    office_fields = organizations.OFFICE_FIELDS
    for row in connection.execute(
            select(offices.c.organization_id, offices.c.id,
                   *(offices.c[name] for name in office_fields))
            .where(offices.c.organization_id.in_(ids)).order_by(offices.c.id)):
        profiles[row.organization_id]["offices"].append(
            {"id": row.id, **{name: row._mapping[name] for name in office_fields}})
    return profiles


class _OfficeWrites:
    """The office rows a batch of updates adds, changes and deletes, with the new rows' ids.

    The ORM flushes each firm's new offices before deleting its old ones, so on SQLite (where
    a new row takes max(id) + 1) a new office never reuses the id of one its own update
    deletes; ids are handed out here the same way, in line order.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.new: list[dict[str, Any]] = []  # rows to insert, "id" filled in by write()
        self.changed: list[dict[str, Any]] = []
        self.deleted: list[int] = []
        self.deleted_before_new = 0  # how many of `deleted` precede the first new row

    def plan(self, org_id: int, before: list[dict[str, Any]],
             after: list[dict[str, Any]]) -> None:
        """Record one firm's office changes."""
        old = {office["id"]: office for office in before}
        kept: set[int] = set()
        for office in after:
            if office["id"] is None:
                if not self.new:
                    self.deleted_before_new = len(self.deleted)
                self.new.append({**office, "organization_id": org_id})
            elif office["id"] not in kept:
                kept.add(office["id"])
                if office != old[office["id"]]:
                    self.changed.append({"b_" + key: value for key, value in office.items()})
        self.deleted.extend(office_id for office_id in old if office_id not in kept)

    def write(self) -> None:
        """Delete the offices gone, insert the new ones, update the kept ones."""
        table = Office.__table__
        for row, office_id in zip(self.new, self._new_ids(), strict=True):
            row["id"] = office_id
        # Deletes first: a new row may take an id freed by a delete (see _new_ids).
        for start in range(0, len(self.deleted), BATCH_SIZE):  # bounded bind parameters
            self.connection.execute(table.delete().where(
                table.c.id.in_(self.deleted[start:start + BATCH_SIZE])))
        bulk_insert(self.connection, table, self.new)
        if self.changed:
            self.connection.execute(
                table.update().where(table.c.id == bindparam("b_id")).values(
                    **{field: bindparam("b_" + field)
                       for field in organizations.OFFICE_FIELDS}),
                self.changed)

    def _new_ids(self) -> list[int]:
        """The ids the new rows take, in order."""
        table = Office.__table__
        count = len(self.new)
        if not count:
            return []
        if self.connection.dialect.name == "postgresql":
            # The sequence's next values, as the ORM's inserts would have taken them.
            return reserve_ids(self.connection, table, count)
        # SQLite: max(id) + 1 of the table as it is when the first new office is written,
        # after the deletes of the firms before it (which may have held the highest ids);
        # the rest follow it.
        # One of the len(deleted) + 1 highest ids is not deleted: the first of them is the max.
        deleted = set(self.deleted[:self.deleted_before_new])
        highest = self.connection.execute(
            select(table.c.id).order_by(table.c.id.desc()).limit(len(deleted) + 1)).scalars()
        start = next((office_id for office_id in highest if office_id not in deleted), 0)
        return list(range(start + 1, start + 1 + count))


def _insert_new(connection: Connection, rows: list[dict[str, Any]], actor: Principal) -> None:
    """Insert new firms with their stats, skills, offices and audit rows (one transaction)."""
    now = utcnow()
    ids = _insert_organizations(connection, [
        {"name": d["name"], "kind": d["kind"], "group_name": d.get("group"),
         "description": d.get("description", ""), "capacity": d.get("capacity"),
         "active": d.get("active", True), "external_ref": d.get("external_ref"),
         "created_at": now, "updated_at": now, "version": 1} for d in rows])
    bulk_insert(connection, OrganizationStats.__table__, [
        {"organization_id": org_id, "open_referrals": 0, "won": 0, "failed": 0, "updated_at": now}
        for org_id in ids])
    bulk_insert(connection, OrganizationSkill.__table__, [
        {"organization_id": org_id, "slug": slug, "position": position}
        for org_id, d in zip(ids, rows, strict=True)
        for position, slug in enumerate(d["skills"])])
    bulk_insert(connection, Office.__table__, [
        {"organization_id": org_id, "label": o.get("label"), "address": o.get("address"),
         "city": o.get("city"), "country": o.get("country"), "latitude": o["latitude"],
         "longitude": o["longitude"], "service_radius_km": o.get("service_radius_km", 100.0)}
        for org_id, d in zip(ids, rows, strict=True) for o in d["offices"]])
    bulk_insert(connection, AuditEntry.__table__, [
        audit.entry(actor=actor, action="organization.import", object_type="organization",
                    object_id=org_id, at=now,
                    changes={"name": d["name"], "external_ref": d.get("external_ref")})[1]
        for org_id, d in zip(ids, rows, strict=True)])


def _insert_organizations(connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert organization rows in order; return their ids, ascending in the same order."""
    table = Organization.__table__
    if connection.dialect.name == "postgresql":
        # The ids the table's sequence would give them, taken in one round trip.
        ids = reserve_ids(connection, table, len(rows))
    elif connection.dialect.name == "sqlite":
        # SQLAlchemy would RETURN the ids one row at a time here. The ids SQLite would give
        # are max(id) + 1, + 2, ... (an INTEGER PRIMARY KEY without AUTOINCREMENT), and the
        # import's transaction holds the write lock (BEGIN IMMEDIATE) from its first
        # statement, so no one else can insert in between: give them explicitly. (Without
        # the lock, WAL refuses the write of a transaction whose snapshot is stale: an
        # error, never a duplicate.)
        start = connection.execute(select(func.max(table.c.id))).scalar() or 0
        ids = list(range(start + 1, start + 1 + len(rows)))
    else:
        return list(connection.execute(
            table.insert().returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    bulk_insert(connection, table, [{"id": org_id, **row}
                                     for org_id, row in zip(ids, rows, strict=True)])
    return ids


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
