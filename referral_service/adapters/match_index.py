"""Index upkeep: each worker's in-memory MatchIndex, built once and kept in step with the database.

Under gunicorn the master makes it once, before forking (`build_for_workers`, called from the
when_ready hook in gunicorn.conf.py through `referral_service.extensions.
build_match_index_for_workers`): it builds it, or with MATCH_INDEX_SNAPSHOT maps the last
snapshot (adapters/match_snapshot.py) and catches it up. Every worker inherits it, sharing its
numpy pages and its objects copy-on-write (gc.freeze() keeps the collector from touching them),
and only catches up from the master's watermark as it starts. If the master could not build
it (the database was down), each worker builds its own when it starts, in a background thread
(`start_warmup`, called from the post_worker_init hook through
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
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

import scoring
from models import Organization, OrganizationStats, utcnow
from referral_service.adapters import match_snapshot
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

# What the gunicorn master built before forking, by database URL: (index, watermark). A
# worker's keeper takes it (once) instead of building its own.
_built_for_workers: dict[str, tuple[MatchIndex, datetime]] = {}
# A snapshot is written again when catching it up changed more than this share of its firms.
SNAPSHOT_STALE_SHARE = 0.01
# A worker builds its own index when more than this share of the master's changed since (a
# replacement forked long after the start, with every firm's counts moved meanwhile).
REBUILD_SHARE = 0.25
REBUILD_MIN = 1000  # changes read one by one rather than rebuilding, whatever the share


def build_for_workers(session_factory: Callable[[], Session], key: str,
                      snapshot: Path | None = None, *, write_in_background: bool = True) -> str:
    """Make the index here (gunicorn's master), for the workers forked next; say how.

    With a snapshot path, the index is loaded from the snapshot there (memory-mapped) and
    caught up from its watermark, or built and then written there when there is none (or it
    is unusable, or far behind): in a forked child when `write_in_background`, so that the
    workers start meanwhile. Each worker's keeper whose `shared_key` is `key` starts from it
    and catches up again. gc.freeze() then moves every object alive into the permanent
    generation, so that no worker's collector writes to them (which would copy their pages).
    """
    index, watermark, marks, how, write = _load_or_build(session_factory, key, snapshot)
    _built_for_workers[key] = (index, watermark)
    if write and snapshot is not None:
        _write_snapshot(snapshot, index, key, watermark, marks, write_in_background)
    gc.collect()
    gc.freeze()
    return f"{len(index)} firms, {how}"


def _load_or_build(
    session_factory: Callable[[], Session], key: str, snapshot: Path | None,
) -> tuple[MatchIndex, datetime, dict[str, Any], str, bool]:
    """Return a caught-up index, its watermark, the database's marks before it was read, how
    it was made and whether a snapshot of it is worth writing."""
    if snapshot is not None:
        try:
            loaded = match_snapshot.read(snapshot, database_key=key)
        except Exception:  # noqa: BLE001 -- a damaged snapshot: build instead
            log.exception("match index snapshot %s unreadable; building instead", snapshot)
            loaded = None
        if loaded is not None:
            index, watermark, was = loaded
            with session_factory() as session:
                marks = _marks(session)
            caught_up = _catch_up(session_factory, index, watermark,
                                  at_most=int(REBUILD_SHARE * len(index)) + REBUILD_MIN)
            watermark, changed = caught_up or (watermark, -1)
            # As many firms as the database (none deleted since), and a database that did
            # not go back in time (a backup restored): otherwise the snapshot is not its own.
            if (caught_up is not None and marks["firms"] == len(index)
                    and marks["latest"] >= was["latest"]):
                return (index, watermark, marks,
                        f"loaded from the snapshot, {changed} changed firms caught up",
                        changed > SNAPSHOT_STALE_SHARE * max(len(index), 1))
            log.warning("match index snapshot %s is far behind or not of this database (%s, "
                        "then %s); "
                        "building instead", snapshot, was, marks)
    index, watermark, marks = _read_and_fit(session_factory)
    return index, watermark, marks, "built", snapshot is not None


def _write_snapshot(path: Path, index: MatchIndex, key: str, watermark: datetime,
                    marks: dict[str, Any], background: bool) -> None:
    if background and hasattr(os, "fork"):
        if os.fork():
            return  # gunicorn's master reaps the child like any unknown child
        code = 1
        try:
            match_snapshot.write(path, index, database_key=key, watermark=watermark,
                                 marks=marks)
            code = 0
        except BaseException:
            log.exception("match index snapshot %s not written", path)
        finally:
            os._exit(code)  # never run the parent's cleanup (atexit, gunicorn's) here
    try:
        match_snapshot.write(path, index, database_key=key, watermark=watermark, marks=marks)
    except Exception:  # noqa: BLE001 -- the index serves anyway; the next start builds
        log.exception("match index snapshot %s not written", path)


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

    def _inherit_or_build(self) -> tuple[MatchIndex, datetime]:
        """Take the index the master made and catch it up, or build one here."""
        inherited = _built_for_workers.pop(self.shared_key, None) if self.shared_key else None
        if inherited is None:
            self.origin = "built"
            index, watermark, _ = _read_and_fit(self.session_factory)
            return index, watermark
        index, watermark = inherited
        # seconds of changes or days of them (a replacement worker): only those are read,
        # unless so many changed that a fresh build costs less than upserting them
        caught_up = _catch_up(self.session_factory, index, watermark,
                              at_most=int(REBUILD_SHARE * len(index)) + REBUILD_MIN)
        if caught_up is None:
            self.origin = "built (too many changes since the master's index)"
            index, watermark, _ = _read_and_fit(self.session_factory)
            return index, watermark
        watermark, changed = caught_up
        self.origin = f"inherited from the master, {changed} changed firms caught up"
        return index, watermark

    def _publish(self, index: MatchIndex, watermark: datetime) -> None:
        """Install a freshly built index; the caller holds the lock."""
        self._index, self._watermark = index, watermark
        self._checked_at = time.monotonic()
        self._built.set()
        # The index holds about a million long-lived objects; keep the collector from
        # walking them on every cycle (long pauses otherwise).
        gc.collect()
        gc.freeze()

    def _sync(self) -> None:
        self._watermark = _catch_up(self.session_factory, self._index, self._watermark)[0]


def _marks(session: Session) -> dict[str, Any]:
    """Return how many firms the database holds and its latest change (ISO text)."""
    firms = session.scalar(select(func.count()).select_from(Organization))
    latest = max((value for value in (
        session.scalar(select(func.max(Organization.updated_at))),
        session.scalar(select(func.max(OrganizationStats.updated_at))),
    ) if value is not None), default=None)
    return {"firms": firms, "latest": "" if latest is None else latest.isoformat()}


def _read_and_fit(
    session_factory: Callable[[], Session],
) -> tuple[MatchIndex, datetime, dict[str, Any]]:
    """Read every firm and fit an index (seconds at 100k; the warm-up holds no lock); return it,
    its watermark and the database's marks."""
    started = utcnow()
    with session_factory() as session:
        marks = _marks(session)
        firms = load_firms(session)
    # scoring loads the index (numpy, scikit-learn) on first use: the CLI never pays for it.
    return scoring.MatchIndex().fit(firms), started, marks


def _catch_up(
    session_factory: Callable[[], Session], index: MatchIndex, watermark: datetime,
    at_most: int | None = None,
) -> tuple[datetime, int] | None:
    """Upsert the firms changed since `watermark`; return the new watermark and their number
    (None, with nothing upserted, if more than `at_most` changed)."""
    started = utcnow()
    since = watermark - SYNC_OVERLAP
    with session_factory() as session:
        # A UNION of two indexed range reads; one OR over a join scans every firm.
        changed_ids = session.scalars(union(
            select(Organization.id).where(Organization.updated_at > since),
            select(OrganizationStats.organization_id)
            .where(OrganizationStats.updated_at > since),
        )).all()
        if at_most is not None and len(changed_ids) > at_most:
            return None
        firms = load_firms(session, ids=list(changed_ids)) if changed_ids else []
    changed = 0
    for firm in firms:
        if index.get(firm.id) != firm:  # frozen dataclasses: every field compared
            index.upsert(firm)
            changed += 1
    return started, changed
