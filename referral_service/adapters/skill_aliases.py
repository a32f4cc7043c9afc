"""Head office's skill aliases as each worker holds them, kept in step with the database.

A need's skill named by an alias asks for its skill (SPEC section 8); the match use case reads
the map from the worker's index keeper (`MatchIndexKeeper.skill_aliases`), which holds one of
these. At most every `refresh_seconds` it looks at the table's row count and latest
`updated_at` (one aggregate over a small table): an alias added or re-pointed by a
merge moves the latter, one removed the former; only then is the whole map read again. A
change made through any worker so shows in every worker's matches within refresh_seconds plus
one request, as profile changes do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import SkillAlias
from scoring.aliases import NO_ALIASES, SkillAliases


class AliasKeeper:
    """One worker's aliases (alias slug -> skill slug), read again when they change."""

    def __init__(self, session_factory: Callable[[], Session], *,
                 refresh_seconds: float = 1.0) -> None:
        self.session_factory = session_factory
        self.refresh_seconds = refresh_seconds
        self._aliases = NO_ALIASES
        self._seen: tuple[int, datetime | None] | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> SkillAliases:
        """Return the aliases, read again first if the table changed since the last look."""
        checked = self._checked_at
        if checked is not None and time.monotonic() - checked < self.refresh_seconds:
            return self._aliases
        with self._lock:
            if (self._checked_at is None
                    or time.monotonic() - self._checked_at >= self.refresh_seconds):
                self._refresh()
                self._checked_at = time.monotonic()
        return self._aliases

    def _refresh(self) -> None:
        with self.session_factory() as session:
            count, latest = session.execute(
                select(func.count(), func.max(SkillAlias.updated_at))).one()
            if (count, latest) != self._seen:
                # a new object, never one changed in place: readers hold the old one meanwhile
                self._aliases = SkillAliases.of(dict(
                    session.execute(select(SkillAlias.alias, SkillAlias.skill)).all()))
                self._seen = (count, latest)
