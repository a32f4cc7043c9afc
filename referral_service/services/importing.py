"""Bulk import of organization profiles, created or updated by external_ref.

Each line is loaded by the API's schema (OrganizationCreateSchema, compiled for the lines that
plainly pass it: schemas/compiled.py; any other line goes through the schema itself, which
alone words the reasons), planned by the rules of POST and PATCH
(organizations.planned_profile) and written by their writer (organizations.write_profiles),
a batch at a time (sql.import_batch: 5,000 firms on SQLite, 1,000 on PostgreSQL): one unit of
work per batch. A bad line is reported and skipped, never
aborting the good ones. The file formats are adapters/import_files.py's.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Organization
from referral_service.adapters import sql
from referral_service.adapters.geocoding import (
    Geocoder,
    GeocodingError,
    GeocodingUnavailable,
    Place,
)
from referral_service.schemas.compiled import compile_load
from referral_service.schemas.organizations import OrganizationCreateSchema
from referral_service.services import organizations, unit_of_work
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import ValidationFailed
from referral_service.services.organizations import Plan

# A bulk import of at least this many new firms refreshes the planner's table statistics.
ANALYZE_AFTER_CREATED = 1000


@dataclass
class ImportReport:
    """What an import did: counts and the reason for every rejected line."""

    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def import_organizations(
    *, session: Session, records: Iterable[tuple[int, Any]], geocoder: Geocoder,
    actor: Principal = SYSTEM, progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update organizations from (line number, record) pairs; a unit per batch."""
    # The objects already there (the app's modules, mappers, compiled statements: some 100k)
    # sit out the garbage collector's full passes until the import ends: each of those passes
    # walked them all, 0.6 s of a 20k-firm import's CPU (a few ms a pass once they are frozen).
    gc.freeze()
    try:
        with sql.bulk_page_cache(session):
            return _import(session, records, geocoder, actor, progress)
    finally:
        gc.unfreeze()


def _import(
    session: Session, records: Iterable[tuple[int, Any]], geocoder: Geocoder,
    actor: Principal, progress: Callable[[int], None] | None,
) -> ImportReport:
    report = ImportReport()
    batch_size = sql.import_batch(session)
    schema = OrganizationCreateSchema()
    quick_load = compile_load(schema)
    geocoder = MemoGeocoder(geocoder)
    batch: list[tuple[int, dict[str, Any]]] = []
    refused: list[tuple[int, str]] = []
    for number, raw in records:
        if progress:
            progress(1)
        try:
            if isinstance(raw, Exception):
                raise ValueError(str(raw))
            if not isinstance(raw, dict):
                raise ValueError("a line must be a JSON object")
            data = quick_load(raw)
            batch.append((number, data if data is not None else schema.load(raw)))
        except ValidationError as error:
            refused.append((number, _describe(error.messages)))
        except ValueError as error:
            refused.append((number, str(error)))
        if len(batch) >= batch_size:
            _import_batch(session, batch, refused, geocoder, actor, report)
            batch, refused = [], []
    if batch or refused:
        _import_batch(session, batch, refused, geocoder, actor, report)
    if report.created >= ANALYZE_AFTER_CREATED:
        unit_of_work.run(session, lambda: sql.refresh_statistics(session))
    return report


def _import_batch(
    session: Session, batch: list[tuple[int, dict[str, Any]]], refused: list[tuple[int, str]],
    geocoder: Geocoder, actor: Principal, report: ImportReport,
) -> None:
    """Plan and write one batch in one unit of work; report its rejected lines in order."""
    def work() -> tuple[int, int, list[tuple[int, str]]]:
        rejected = list(refused)
        plans = _plans(session, batch, geocoder, rejected)
        organizations.write_profiles(session=session, plans=plans, actor=actor,
                                     created_action="organization.import", names_checked=True)
        created = sum(1 for plan in plans if plan.organization_id is None)
        return created, len(plans) - created, rejected

    created, updated, rejected = unit_of_work.run(session, work)
    report.created += created
    report.updated += updated
    report.rejected += sorted(rejected)


def _plans(
    session: Session, batch: list[tuple[int, dict[str, Any]]], geocoder: Geocoder,
    rejected: list[tuple[int, str]],
) -> list[Plan]:
    """Plan each line: an update of the firm with its external_ref, else a new firm."""
    refs = [data["external_ref"] for _, data in batch if data.get("external_ref")]
    existing = dict(session.execute(
        select(Organization.external_ref, Organization.id)
        .where(Organization.external_ref.in_(refs))).all()) if refs else {}
    current = sql.load_profiles(session, list(existing.values()), organizations.PROFILE_FIELDS,
                                organizations.OFFICE_FIELDS) if existing else {}
    plans: list[Plan] = []
    numbers: list[int] = []  # each plan's line
    seen: set[str] = set()
    for number, data in batch:
        ref = data.get("external_ref")
        if ref and ref in seen:
            rejected.append((number, f"external_ref {ref!r} repeats an earlier line"))
            continue
        if ref:
            seen.add(ref)
        org_id = existing.get(ref)
        before = current[org_id] if org_id is not None else None
        try:
            after = organizations.planned_profile(
                before if before is not None else organizations.new_profile(), data, geocoder)
        except ValidationFailed as error:  # a geocoder that is down (503) ends the import
            rejected.append((number, _describe(error.errors)))
            continue
        plans.append(Plan(org_id, before, after))
        numbers.append(number)
    # A firm may not take another active firm's name (the writer would refuse the batch).
    clashes = organizations.name_clashes(session=session, plans=plans)
    rejected += [(numbers[index], reason) for index, reason in clashes.items()]
    return [plan for index, plan in enumerate(plans) if index not in clashes]


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
                answer = (error.args[0] if error.args else str(error), error.field)
            self._answers[key] = answer
        if isinstance(answer, tuple):
            raise GeocodingError(answer[0], field=answer[1])
        return answer


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
