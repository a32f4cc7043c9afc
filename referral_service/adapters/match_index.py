"""Index upkeep: each worker's in-memory MatchIndex, built once and kept in step with the database.

Under gunicorn the master builds it once, before forking (`build_for_workers`, called from the
when_ready hook in gunicorn.conf.py through `referral_service.extensions.
build_match_index_for_workers`): every worker inherits it, sharing its numpy pages and its
objects copy-on-write (gc.freeze() keeps the collector from touching them), and only catches up
from the master's watermark as it starts. If the master could not build it (the database was
down), each worker builds its own when it starts, in a background thread (`start_warmup`,
called from the post_worker_init hook through
`referral_service.extensions.warm_up_match_index`): a match that arrives meanwhile waits for it
at most `warmup_wait_seconds` (well under the worker timeout), then `current()` raises
IndexNotReady (the match use case answers 503 with Retry-After); /readyz says "warming up"
until it is built. Without a warm-up (tests, the CLI, `flask run`) the first match builds it, as
small databases allow. It is then kept in step incrementally: at most every `refresh_seconds`,
`current()` first reads the organizations and referral counts whose `updated_at` moved since
the last look (with an overlap, since transactions commit out of order) and upserts only those
that really changed. A change made through any worker so shows in every worker's matches
within refresh_seconds plus one request.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, union
from sqlalchemy.orm import Session

import scoring
from models import Organization, OrganizationStats, utcnow
from referral_service.adapters.skill_aliases import AliasKeeper
from referral_service.adapters.sql import load_firms

if TYPE_CHECKING:
    from scoring import MatchIndex, SkillAliases

# Commits can land out of order; re-read this much before the last look to catch them.
SYNC_OVERLAP = timedelta(seconds=5)
# A failed warm-up (database down at start) is retried after this, doubling up to the maximum.
WARMUP_RETRY_SECONDS = 1.0
WARMUP_RETRY_MAX_SECONDS = 30.0

log = logging.getLogger(__name__)

# What the gunicorn master built before forking, by database URL: (index, state, watermark).
# A worker's keeper takes it (once) instead of building its own.
_built_for_workers: dict[str, tuple[MatchIndex, dict[int, int], datetime]] = {}


def build_for_workers(session_factory: Callable[[], Session], key: str) -> int:
    """Build the index here (gunicorn's master), for the workers forked next; return its size.

    Each worker's keeper whose `shared_key` is `key` starts from it and catches up from its
    watermark. gc.freeze() then moves every object alive into the permanent generation, so
    that no worker's collector writes to them (which would copy their pages).
    """
    index, state, watermark = _read_and_fit(session_factory)
    _built_for_workers[key] = (index, state, watermark)
    gc.collect()
    gc.freeze()
    return len(index)


class IndexNotReady(Exception):
    """The index is still being built by the warm-up; the caller may retry in a few seconds."""


class MatchIndexKeeper:
    """One worker's match index over the database, refreshed incrementally."""

    def __init__(
        self, session_factory: Callable[[], Session], *, refresh_seconds: float = 1.0,
        warmup_wait_seconds: float = 5.0, min_skill_fit: float = scoring.DEFAULT_MIN_SKILL_FIT,
        shared_key: str | None = None,
    ) -> None:
        if not 0.0 <= min_skill_fit <= scoring.MAX_MIN_SKILL_FIT:
            raise ValueError(f"MATCH_MIN_SKILL_FIT must be from 0 to {scoring.MAX_MIN_SKILL_FIT}, "
                             f"got {min_skill_fit!r}.")
        self.session_factory = session_factory
        # the deployment's relevance floor, for needs that do not set their own
        self.min_skill_fit = min_skill_fit
        self.refresh_seconds = refresh_seconds
        self.warmup_wait_seconds = warmup_wait_seconds
        # which index built by the master (build_for_workers) this keeper may start from
        self.shared_key = shared_key
        # how this keeper got its index: "built" here, or "inherited" from the master
        self.origin: str | None = None
        self._index: MatchIndex | None = None
        self._state: dict[int, int] = {}
        self._aliases = AliasKeeper(session_factory, refresh_seconds=refresh_seconds)
        self._watermark: datetime | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._warmup: threading.Thread | None = None
        self._built = threading.Event()

    @property
    def skill_aliases(self) -> SkillAliases:
        """Return head office's aliases (alias slug -> skill slug), as fresh as the index."""
        return self._aliases.current()

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

    def current(self) -> MatchIndex:
        """Return the index, built or refreshed as needed; IndexNotReady during a warm-up."""
        now = time.monotonic()
        if self._index is not None and now - self._checked_at < self.refresh_seconds:
            return self._index
        # Never build in a request once a warm-up runs: wait for it, briefly.
        if (self._index is None and self._warmup is not None
                and not self._built.wait(self.warmup_wait_seconds)):
            raise IndexNotReady("The match index is still being built (the worker is "
                                "warming up); retry in a few seconds.")
        with self._lock:
            if self._index is None:
                self._publish(*self._inherit_or_build())
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

    def _warm_up(self) -> None:
        delay = WARMUP_RETRY_SECONDS
        while True:
            started, cpu_started = time.monotonic(), time.thread_time()
            try:
                built = self._inherit_or_build()
            except Exception:  # noqa: BLE001 -- e.g. the database is down: try again later
                log.exception("match index warm-up failed; retrying in %.0f s", delay)
                time.sleep(delay)
                delay = min(2 * delay, WARMUP_RETRY_MAX_SECONDS)
                continue
            log.info("match index ready in %.1f s (%.1f s CPU): %d firms, %s",
                     time.monotonic() - started, time.thread_time() - cpu_started,
                     len(built[0]), self.origin)
            with self._lock:
                self._publish(*built)
            return

    def _inherit_or_build(self) -> tuple[MatchIndex, dict[int, int], datetime]:
        """Take the index the master built and catch it up, or build one here."""
        inherited = _built_for_workers.pop(self.shared_key, None) if self.shared_key else None
        if inherited is None:
            self.origin = "built"
            return _read_and_fit(self.session_factory)
        index, state, watermark = inherited
        # seconds of changes or days of them (a replacement worker): only those are read
        watermark, changed = _catch_up(self.session_factory, index, state, watermark)
        self.origin = f"inherited from the master, {changed} changed firms caught up"
        return index, state, watermark

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
        self._watermark = _catch_up(self.session_factory, self._index, self._state,
                                    self._watermark)[0]


def _read_and_fit(
    session_factory: Callable[[], Session],
) -> tuple[MatchIndex, dict[int, int], datetime]:
    """Read every firm and fit an index (seconds at 100k; the warm-up holds no lock)."""
    started = utcnow()
    with session_factory() as session:
        firms = load_firms(session)
    # scoring loads the index (numpy, scikit-learn) on first use: the CLI never pays for it.
    index = scoring.MatchIndex().fit(firms)
    state = {firm.id: hash(firm) for firm in firms}
    return index, state, started


def _catch_up(
    session_factory: Callable[[], Session], index: MatchIndex, state: dict[int, int],
    watermark: datetime,
) -> tuple[datetime, int]:
    """Upsert the firms changed since `watermark`; return the new watermark and their number."""
    started = utcnow()
    since = watermark - SYNC_OVERLAP
    with session_factory() as session:
        # A UNION of two indexed range reads; one OR over a join scans every firm.
        changed_ids = session.scalars(union(
            select(Organization.id).where(Organization.updated_at > since),
            select(OrganizationStats.organization_id)
            .where(OrganizationStats.updated_at > since),
        )).all()
        firms = load_firms(session, ids=list(changed_ids)) if changed_ids else []
    changed = 0
    for firm in firms:
        fingerprint = hash(firm)  # a frozen dataclass hashes all its fields
        if state.get(firm.id) != fingerprint:
            index.upsert(firm)
            state[firm.id] = fingerprint
            changed += 1
    return started, changed
