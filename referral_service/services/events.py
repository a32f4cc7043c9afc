"""Webhook events, written to the outbox in the transaction that caused them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models import OutboxEvent, utcnow

_INSERT = insert(OutboxEvent.__table__)


def emit(*, session: Session, type_: str, payload: dict[str, Any]) -> str:
    """Write an event to the outbox in the caller's transaction; return its event id."""
    now = utcnow()
    event_id = str(uuid.uuid4())
    # A Core insert on the table: no unit-of-work flush for an object nobody reads back.
    session.execute(_INSERT, {"event_id": event_id, "type": type_, "payload": payload,
                              "created_at": now, "next_attempt_at": now, "state": "pending",
                              "attempts": 0})
    return event_id
