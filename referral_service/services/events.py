"""Webhook events, written to the outbox in the transaction that caused them."""

from __future__ import annotations

import uuid
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
    now = utcnow()
    return OutboxEvent, {
        "event_id": str(uuid.uuid4()), "type": type_, "payload": payload, "created_at": now,
        "next_attempt_at": now, "state": "pending", "attempts": 0}
