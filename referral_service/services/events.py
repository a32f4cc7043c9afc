"""Webhook events, written to the outbox in the transaction that caused them."""

from __future__ import annotations

import os
import uuid
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
    """Return one outbox event row of `type_` per payload, each with its own random id."""
    now = utcnow()
    # One read of the system's randomness for every id: uuid4() reads it once per id, which
    # cost about 21 us an id here under load (a 100k-firm import announces 100k firms).
    randomness = os.urandom(16 * len(payloads))
    return [(OutboxEvent, {
        "event_id": str(uuid.UUID(bytes=randomness[16 * index:16 * index + 16], version=4)),
        "type": type_, "payload": payload, "created_at": now, "next_attempt_at": now,
        "state": "pending", "attempts": 0}) for index, payload in enumerate(payloads)]
