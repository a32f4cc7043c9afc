"""Webhook events, written to the outbox in the transaction that caused them."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from models import OutboxEvent, utcnow
from referral_service.adapters.sql import Row, insert_rows


def emit(*, session: Session, type_: str, payload: dict[str, Any]) -> str:
    """Write an event to the outbox in the caller's transaction; return its event id."""
    row = outbox_row(type_=type_, payload=payload)
    # A Core insert on the table: no unit-of-work flush for an object nobody reads back.
    insert_rows(session, [row])
    return row[1]["event_id"]


def outbox_row(*, type_: str, payload: dict[str, Any]) -> Row:
    """Return an outbox event as a row to write with the change's other rows (insert_rows)."""
    return outbox_rows(type_=type_, payloads=[payload])[0]


def outbox_rows(*, type_: str, payloads: Sequence[dict[str, Any]]) -> list[Row]:
    """Return one outbox event row of `type_` per payload, each with its own new event id."""
    now = utcnow()
    return [(OutboxEvent, {
        "event_id": event_id, "type": type_, "payload": payload, "created_at": now,
        "next_attempt_at": now, "state": "pending", "attempts": 0})
        for event_id, payload in zip(event_ids(len(payloads)), payloads, strict=True)]


# UUIDv7 (RFC 9562): the Unix time in milliseconds (48 bits), version 7, the variant bits and
# 74 random bits, so that ids sort by the time they were made and each new one goes to the end
# of the unique index on event_id. Random (version 4) ids went anywhere in it: importing a
# million firms, each batch's thousand events dirtied some 950 scattered pages of that index
# at every commit (bench/bench_import.py, SQLite).
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_RANDOM_A = 0xFFF << 62  # the 12 random bits after the version (rand_a)
_RANDOM_B = (1 << 62) - 1  # the 62 after the variant (rand_b)


def event_ids(count: int) -> list[str]:
    """Return `count` new event ids: UUIDv7 strings, ascending, all of this millisecond."""
    prefix = time.time_ns() // 1_000_000 << 80 | _VERSION_7 | _VARIANT
    # One read of the system's randomness for every id (reading it once per id cost about
    # 21 us an id under load); sorted, the batch's ids follow the order of its rows.
    randomness = os.urandom(10 * count)
    ids = []
    for random in sorted(int.from_bytes(randomness[start:start + 10]) >> 6
                         for start in range(0, 10 * count, 10)):
        digits = (prefix | (random & _RANDOM_A) << 2 | random & _RANDOM_B).to_bytes(16).hex()
        ids.append(f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}")
    return ids
