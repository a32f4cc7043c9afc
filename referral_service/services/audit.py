"""The audit log: every write records who changed what, in the writer's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, utcnow
from referral_service.adapters.sql import Row, insert_rows
from referral_service.services.errors import Forbidden
from referral_service.services.pages import page_of
from referral_service.texts import N_

if TYPE_CHECKING:
    from referral_service.services.auth import Principal


def record(
    *, session: Session, actor: Principal, action: str, object_type: str,
    object_id: int | str, changes: dict[str, Any] | None = None,
) -> None:
    """Write an audit entry in the caller's transaction; its commit keeps it with the change."""
    # A Core insert on the table: no unit-of-work flush for an object nobody reads back.
    insert_rows(session, [entry(actor=actor, action=action, object_type=object_type,
                                object_id=object_id, changes=changes)])


def entry(
    *, actor: Principal, action: str, object_type: str, object_id: int | str,
    changes: dict[str, Any] | None = None, at: datetime | None = None,
) -> Row:
    """Return an audit entry as a row to write with the change's other rows (insert_rows)."""
    return AuditEntry, {
        "at": at or utcnow(), "actor": actor.name, "action": action, "object_type": object_type,
        "object_id": str(object_id), "changes": _jsonable(changes or {})}


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int,
    object_type: str | None = None, object_id: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """Return one page of audit entries, newest first, and the total; admins only."""
    if actor.role != "admin":
        # The log names every key and user and what they did.
        raise Forbidden(N_("Only admin keys may read the audit log."))
    query = select(AuditEntry)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    return page_of(session, query, AuditEntry.id.desc(), page=page, page_size=page_size)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
