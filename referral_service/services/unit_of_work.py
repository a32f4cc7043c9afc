"""The one unit of work: every write use case runs inside `run` (or `@writes`), which owns
commit and rollback.

A use case never commits or rolls back by itself, and no caller (view, CLI) cleans up after
one: on success the whole change is committed once; on any exception it is rolled back, so
nothing is half written and the session is clean for the next use. A PostgreSQL
serialization failure or deadlock (SQLSTATE 40001, 40P01) reruns the whole work, which must
therefore read everything it decides on inside `work`. A use case called from inside another
joins the outer unit instead of committing early.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# PostgreSQL serialization failure and deadlock: the whole transaction is safe to run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
MAX_ATTEMPTS = 5
_ACTIVE = "unit_of_work_active"

T = TypeVar("T")
P = ParamSpec("P")


def run(session: Session, work: Callable[[], T]) -> T:
    """Run `work` and commit; roll back on any error; rerun after a retryable conflict."""
    if session.info.get(_ACTIVE):
        return work()  # inside an outer unit: it commits
    session.info[_ACTIVE] = True
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                result = work()
                session.commit()
                return result
            except DBAPIError as error:
                session.rollback()
                if attempt == MAX_ATTEMPTS or not retryable(error):
                    raise
            except BaseException:
                session.rollback()
                raise
        raise AssertionError("unreachable")
    finally:
        session.info.pop(_ACTIVE, None)


def writes(function: Callable[P, T]) -> Callable[P, T]:
    """Make a use case taking `session=` one unit of work (see `run`)."""
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        session = kwargs["session"]
        assert isinstance(session, Session), "a use case takes its session by keyword"
        return run(session, lambda: function(*args, **kwargs))
    return wrapper


def retryable(error: DBAPIError) -> bool:
    """Whether rerunning the whole transaction may succeed."""
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
