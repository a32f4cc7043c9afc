"""Matching: turn database rows into scoring's inputs and keep each worker's index in step.

Every worker holds one in-memory MatchIndex. It is built on the first match, then kept in
step incrementally: at most every `refresh_seconds`, a match first reads the organizations
and referral counts whose `updated_at` moved since the last look (with an overlap, since
transactions commit out of order) and upserts only those that really changed. A change made
through any worker so shows in every worker's matches within refresh_seconds plus one request.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from models import Office, Organization, OrganizationSkill, OrganizationStats, utcnow
from referral_service.services.auth import Principal
from referral_service.services.errors import Unavailable, ValidationFailed
from referral_service.services.geocoding import Geocoder, GeocodingError, GeocodingUnavailable
from referral_service.services.organizations import normalize_skills
from scoring import Candidate, Firm, MatchIndex, Need, Weights
from scoring import Office as ScoringOffice

# Commits can land out of order; re-read this much before the last look to catch them.
SYNC_OVERLAP = timedelta(seconds=5)
WEIGHT_NAMES = ("skill", "location", "performance", "capacity")


class MatchService:
    """One worker's match index over the database, refreshed incrementally."""

    def __init__(
        self, session_factory: Callable[[], Session], *, default_weights: Weights,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.session_factory = session_factory
        self.default_weights = default_weights
        self.refresh_seconds = refresh_seconds
        self._index: MatchIndex | None = None
        self._state: dict[int, int] = {}
        self._watermark: datetime | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def match(
        self, *, session: Session, request: dict[str, Any], actor: Principal, geocoder: Geocoder
    ) -> dict[str, Any]:
        """Rank organizations for a need; return the SPEC's response body."""
        latitude, longitude = _resolve_location(request["location"], geocoder)
        weights = self._weights(request.get("weights"))
        excluded = set(request.get("exclude_organization_ids") or ())
        for own in (request.get("referrer_organization_id"), actor.organization_id):
            if own is not None:
                excluded.add(own)
        skills = normalize_skills(request.get("skills") or ())
        need = Need(
            latitude=latitude, longitude=longitude, skills=tuple(skills),
            description=request.get("description") or "", limit=request.get("limit", 5),
            max_distance_km=request.get("max_distance_km"),
            kinds=frozenset(request["kinds"]) if request.get("kinds") else None,
            exclude_ids=frozenset(excluded),
        )
        candidates = self.index().query(need, weights)
        normalized = weights.normalized()
        return {
            "location": {"latitude": latitude, "longitude": longitude},
            "weights": {name: getattr(normalized, name) for name in WEIGHT_NAMES},
            "candidates": [_candidate_body(c) for c in candidates],
        }

    def index(self) -> MatchIndex:
        """Return the index, built or refreshed as needed."""
        now = time.monotonic()
        if self._index is not None and now - self._checked_at < self.refresh_seconds:
            return self._index
        with self._lock:
            if self._index is None:
                self._build()
            elif time.monotonic() - self._checked_at >= self.refresh_seconds:
                self._sync()
            self._checked_at = time.monotonic()
        return self._index

    def invalidate(self) -> None:
        """Drop the index; the next match rebuilds it (used after bulk imports)."""
        with self._lock:
            self._index = None
            self._state = {}

    def _weights(self, override: dict[str, float] | None) -> Weights:
        if not override:
            return self.default_weights
        merged = {name: override.get(name, getattr(self.default_weights, name))
                  for name in WEIGHT_NAMES}
        try:
            return Weights(**merged)
        except ValueError as error:
            raise ValidationFailed(str(error), {"weights": [str(error)]}) from None

    def _build(self) -> None:
        started = utcnow()
        with self.session_factory() as session:
            firms = load_firms(session)
        self._index = MatchIndex().fit(firms)
        self._state = {firm.id: hash(firm) for firm in firms}
        self._watermark = started
        del firms
        # The index holds about a million long-lived objects; keep the collector from
        # walking them on every cycle (long pauses otherwise).
        gc.collect()
        gc.freeze()

    def _sync(self) -> None:
        started = utcnow()
        since = self._watermark - SYNC_OVERLAP
        with self.session_factory() as session:
            # A UNION of two indexed range reads; one OR over a join scans every firm.
            changed_ids = session.scalars(union(
                select(Organization.id).where(Organization.updated_at > since),
                select(OrganizationStats.organization_id)
                .where(OrganizationStats.updated_at > since),
            )).all()
            firms = load_firms(session, ids=list(changed_ids)) if changed_ids else []
        for firm in firms:
            fingerprint = hash(firm)  # a frozen dataclass hashes all its fields
            if self._state.get(firm.id) != fingerprint:
                self._index.upsert(firm)
                self._state[firm.id] = fingerprint
        self._watermark = started


def load_firms(session: Session, ids: list[int] | None = None) -> list[Firm]:
    """Read organizations (all, or `ids`) as scoring Firms, in three set-based queries."""
    def restrict(query, column):
        return query.where(column.in_(ids)) if ids is not None else query

    offices: dict[int, list[ScoringOffice]] = defaultdict(list)
    for row in session.execute(restrict(
        select(Office.organization_id, Office.id, Office.latitude, Office.longitude,
               Office.service_radius_km).order_by(Office.id), Office.organization_id,
    )):
        offices[row[0]].append(ScoringOffice(id=row[1], latitude=row[2], longitude=row[3],
                                             service_radius_km=row[4]))
    skills: dict[int, list[str]] = defaultdict(list)
    for org_id, slug in session.execute(restrict(
        select(OrganizationSkill.organization_id, OrganizationSkill.slug)
        .order_by(OrganizationSkill.organization_id, OrganizationSkill.position),
        OrganizationSkill.organization_id,
    )):
        skills[org_id].append(slug)
    firms = []
    for row in session.execute(restrict(
        select(Organization.id, Organization.name, Organization.kind, Organization.description,
               Organization.active, Organization.capacity, OrganizationStats.open_referrals,
               OrganizationStats.won, OrganizationStats.failed)
        .outerjoin(OrganizationStats).order_by(Organization.id), Organization.id,
    )):
        firms.append(Firm(
            id=row.id, name=row.name, kind=row.kind, skills=tuple(skills.get(row.id, ())),
            description=row.description or "", offices=tuple(offices.get(row.id, ())),
            active=bool(row.active), capacity=row.capacity,
            open_referrals=row.open_referrals or 0, won=row.won or 0, failed=row.failed or 0,
        ))
    return firms


def _resolve_location(location: dict[str, Any], geocoder: Geocoder) -> tuple[float, float]:
    if location.get("latitude") is not None:
        return float(location["latitude"]), float(location["longitude"])
    try:
        place = geocoder.geocode(city=location.get("city"), country=location.get("country"),
                                 address=location.get("address"))
    except GeocodingUnavailable as error:
        raise Unavailable(str(error)) from None
    except GeocodingError as error:
        raise ValidationFailed("The client's place could not be resolved.",
                               {"location": {error.field: [str(error)]}}) from None
    return place.latitude, place.longitude


def _candidate_body(candidate: Candidate) -> dict[str, Any]:
    return {
        "rank": candidate.rank,
        "organization_id": candidate.organization_id,
        "name": candidate.name,
        "kind": candidate.kind,
        "score": candidate.score,
        "breakdown": dict(candidate.breakdown),
        "distance_km": candidate.distance_km,
        "office_id": candidate.office_id,
        "matched_skills": list(candidate.matched_skills),
        "missing_skills": list(candidate.missing_skills),
    }
