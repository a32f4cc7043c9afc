"""Webhook events, written to the outbox in the transaction that caused them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from models import OutboxEvent, utcnow


def emit(*, session: Session, type_: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an event to the outbox; the caller's commit makes it durable with the change."""
    event = OutboxEvent(event_id=str(uuid.uuid4()), type=type_, payload=payload,
                        created_at=utcnow(), next_attempt_at=utcnow(), state="pending",
                        attempts=0)
    session.add(event)
    return event
