"""Side rows of one change (history, audit entry, outbox event) written in one round trip.

A change writes a few rows that nothing reads back in the same request. PostgreSQL runs
data-modifying WITH clauses as part of one statement, so three inserts cost one round trip
instead of three (about a tenth of a referral's creation); SQLite has no such clauses and
runs them one by one. Either way they are in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert
from sqlalchemy.orm import Session

Row = tuple[Table, dict[str, Any]]

# One statement per shape (tables and columns), built once: values travel as parameters.
_COMBINED: dict[tuple[tuple[str, tuple[str, ...]], ...], Insert] = {}


def insert_rows(session: Session, rows: Sequence[Row]) -> None:
    """Insert each (table, values) row in the session's transaction.

    On PostgreSQL the WITH clauses run together, in no set order: two rows of one table may
    get their ids in either order, so give a table one row where that order matters.
    """
    if len(rows) == 1 or session.get_bind().dialect.name != "postgresql":
        for table, values in rows:
            session.execute(insert(table), values)
        return
    shape = tuple((table.name, tuple(sorted(values))) for table, values in rows)
    statement = _COMBINED.get(shape)
    if statement is None:
        statement = _COMBINED[shape] = _combined(rows)
    session.execute(statement, {f"r{number}_{column}": value
                                for number, (_table, values) in enumerate(rows)
                                for column, value in values.items()})


def _combined(rows: Sequence[Row]) -> Insert:
    """WITH r0 AS (INSERT ...), r1 AS (INSERT ...) INSERT ...: one statement for every row."""
    def parameterized(number: int, table: Table, values: dict[str, Any]) -> Insert:
        return insert(table).values({
            column: bindparam(f"r{number}_{column}", type_=table.c[column].type)
            for column in values})

    *first, (last_table, last_values) = rows
    statement = parameterized(len(first), last_table, last_values)
    for number, (table, values) in enumerate(first):
        statement = statement.add_cte(parameterized(number, table, values).cte(f"r{number}"))
    return statement
