"""Matching: turn database rows into scoring's inputs and keep each worker's index in step.

Every worker holds one in-memory MatchIndex. Under gunicorn it is built when the worker starts,
in a background thread (`start_warmup`, from the post_worker_init hook in gunicorn.conf.py):
a match that arrives meanwhile waits for it at most `warmup_wait_seconds` (well under the
worker timeout), then gets a 503 with Retry-After; /readyz says "warming up" until it is built.
Without a warm-up (tests, the CLI, `flask run`) the first match builds it, as small databases
allow. It is then kept in step incrementally: at most every `refresh_seconds`, a match first
reads the organizations and referral counts whose `updated_at` moved since the last look (with
an overlap, since transactions commit out of order) and upserts only those that really
changed. A change made through any worker so shows in every worker's matches within
refresh_seconds plus one request.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

import scoring
from models import Office, Organization, OrganizationSkill, OrganizationStats, utcnow
from referral_service.adapters.geocoding import Geocoder
from referral_service.services import places
from referral_service.services.auth import Principal
from referral_service.services.errors import Unavailable, ValidationFailed
from referral_service.services.organizations import normalize_skills
from scoring import Candidate, Firm, Need, Weights
from scoring import Office as ScoringOffice

if TYPE_CHECKING:
    from scoring import MatchIndex

# Commits can land out of order; re-read this much before the last look to catch them.
SYNC_OVERLAP = timedelta(seconds=5)
WEIGHT_NAMES = ("skill", "location", "performance", "capacity")
# Ids per IN (...) when a sync reads many changed firms (SQLite allows 32766 parameters).
ID_CHUNK = 10_000
FETCH_BATCH = 10_000
# A failed warm-up (database down at start) is retried after this, doubling up to the maximum.
WARMUP_RETRY_SECONDS = 1.0
WARMUP_RETRY_MAX_SECONDS = 30.0

log = logging.getLogger(__name__)


class MatchService:
    """One worker's match index over the database, refreshed incrementally."""

    def __init__(
        self, session_factory: Callable[[], Session], *, default_weights: Weights,
        refresh_seconds: float = 1.0, warmup_wait_seconds: float = 5.0,
    ) -> None:
        self.session_factory = session_factory
        self.default_weights = default_weights
        self.refresh_seconds = refresh_seconds
        self.warmup_wait_seconds = warmup_wait_seconds
        self._index: MatchIndex | None = None
        self._state: dict[int, int] = {}
        self._watermark: datetime | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._warmup: threading.Thread | None = None
        self._built = threading.Event()

    @property
    def warming_up(self) -> bool:
        """Whether a background build was started and has not finished yet."""
        return self._warmup is not None and not self._built.is_set()

    def start_warmup(self, wait_seconds: float = 0.0) -> bool:
        """Build the index in a background thread, so that no request pays for it.

        Wait for the build at most `wait_seconds` (a small database is then ready before the
        worker takes its first request); return whether the index is built.
        """
        with self._lock:
            if self._warmup is None and self._index is None:
                self._warmup = threading.Thread(target=self._warm_up,
                                                name="match-index-warmup", daemon=True)
                self._warmup.start()
        return self._index is not None or self._built.wait(wait_seconds)

    def _warm_up(self) -> None:
        delay = WARMUP_RETRY_SECONDS
        while True:
            started, cpu_started = time.monotonic(), time.thread_time()
            try:
                built = self._read_and_fit()
            except Exception:  # noqa: BLE001 -- e.g. the database is down: try again later
                log.exception("match index warm-up failed; retrying in %.0f s", delay)
                time.sleep(delay)
                delay = min(2 * delay, WARMUP_RETRY_MAX_SECONDS)
                continue
            log.info("match index built in %.1f s (%.1f s CPU): %d firms",
                     time.monotonic() - started, time.thread_time() - cpu_started,
                     len(built[0]))
            with self._lock:
                self._publish(*built)
            return

    def match(
        self, *, session: Session, request: dict[str, Any], actor: Principal, geocoder: Geocoder
    ) -> dict[str, Any]:
        """Rank organizations for a need; return the SPEC's response body."""
        place = places.resolve(request["location"], geocoder, field="location")
        latitude, longitude = place.latitude, place.longitude
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
        # Never build in a request once a warm-up runs: wait for it, briefly.
        if (self._index is None and self._warmup is not None
                and not self._built.wait(self.warmup_wait_seconds)):
            raise Unavailable("The match index is still being built (the worker is "
                              "warming up); retry in a few seconds.")
        with self._lock:
            if self._index is None:
                self._publish(*self._read_and_fit())
            elif time.monotonic() - self._checked_at >= self.refresh_seconds:
                self._sync()
                self._checked_at = time.monotonic()
        return self._index

    def invalidate(self) -> None:
        """Drop the index; the next match rebuilds it, or the warm-up does if one ran."""
        with self._lock:
            self._index = None
            self._state = {}
            if self._warmup is not None and not self._warmup.is_alive():
                self._built.clear()
                self._warmup = threading.Thread(target=self._warm_up,
                                                name="match-index-warmup", daemon=True)
                self._warmup.start()

    def _weights(self, override: dict[str, float] | None) -> Weights:
        if not override:
            return self.default_weights
        merged = {name: override.get(name, getattr(self.default_weights, name))
                  for name in WEIGHT_NAMES}
        try:
            return Weights(**merged)
        except ValueError as error:
            raise ValidationFailed(str(error), {"weights": [str(error)]}) from None

    def _read_and_fit(self) -> tuple[MatchIndex, dict[int, int], datetime]:
        """Read every firm and fit an index (seconds at 100k; the warm-up holds no lock)."""
        started = utcnow()
        with self.session_factory() as session:
            firms = load_firms(session)
        # scoring loads the index (numpy, scikit-learn) on first use: the CLI never pays for it.
        index = scoring.MatchIndex().fit(firms)
        state = {firm.id: hash(firm) for firm in firms}
        return index, state, started

    def _publish(self, index: MatchIndex, state: dict[int, int], watermark: datetime) -> None:
        """Install a freshly built index; the caller holds the lock."""
        self._index, self._state, self._watermark = index, state, watermark
        self._checked_at = time.monotonic()
        self._built.set()
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
    """Read organizations (all, or `ids`) as scoring Firms, in three set-based queries.

    Core statements on the session's connection, rows consumed as plain tuples: the ORM's
    per-row machinery roughly doubled the read at 100k firms. Repeated strings (skill slugs,
    kinds) are shared, one object per distinct value: a million slugs are a few thousand.
    """
    if ids is not None and len(ids) > ID_CHUNK:
        return [firm for start in range(0, len(ids), ID_CHUNK)
                for firm in load_firms(session, ids[start:start + ID_CHUNK])]
    connection = session.connection()

    def rows(statement, column):
        # Plain DBAPI tuples, fetched in batches: a SQLAlchemy Row per row costs more than
        # the read itself at a million rows. Ids are integers, rendered into the statement.
        if ids is not None:
            statement = statement.where(column.in_([int(i) for i in ids]))
        sql = str(statement.compile(dialect=connection.dialect,
                                    compile_kwargs={"literal_binds": True}))
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(FETCH_BATCH):
                yield from batch
        finally:
            cursor.close()

    shared: dict[str, str] = {}
    share = shared.setdefault
    offices: dict[int, list[ScoringOffice]] = defaultdict(list)
    for org_id, office_id, latitude, longitude, radius in rows(
        select(Office.organization_id, Office.id, Office.latitude, Office.longitude,
               Office.service_radius_km).order_by(Office.id), Office.organization_id,
    ):
        offices[org_id].append(ScoringOffice(id=office_id, latitude=latitude,
                                             longitude=longitude, service_radius_km=radius))
    skills: dict[int, list[str]] = defaultdict(list)
    for org_id, slug in rows(
        select(OrganizationSkill.organization_id, OrganizationSkill.slug)
        .order_by(OrganizationSkill.organization_id, OrganizationSkill.position),
        OrganizationSkill.organization_id,
    ):
        skills[org_id].append(share(slug, slug))
    firms = []
    no_offices: tuple[ScoringOffice, ...] = ()
    for org_id, name, kind, description, active, capacity, open_, won, failed in rows(
        select(Organization.id, Organization.name, Organization.kind, Organization.description,
               Organization.active, Organization.capacity, OrganizationStats.open_referrals,
               OrganizationStats.won, OrganizationStats.failed)
        .outerjoin(OrganizationStats).order_by(Organization.id), Organization.id,
    ):
        firm_offices = offices.pop(org_id, None)
        firm_skills = skills.pop(org_id, None)
        firms.append(Firm(
            id=org_id, name=name, kind=share(kind, kind),
            skills=tuple(firm_skills) if firm_skills else (), description=description or "",
            offices=tuple(firm_offices) if firm_offices else no_offices,
            active=bool(active), capacity=capacity,
            open_referrals=open_ or 0, won=won or 0, failed=failed or 0,
        ))
    return firms


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
