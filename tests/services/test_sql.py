"""insert_rows: a change's side rows, written together (one statement on PostgreSQL); dict_rows:
the KPI's rows as dicts."""

from __future__ import annotations

import pytest
from sqlalchemy import event, literal, null, select
from sqlalchemy.exc import IntegrityError

from models import AuditEntry, OutboxEvent, utcnow
from referral_service.adapters import sql
from referral_service.adapters.sql import insert_rows
from referral_service.db import new_session


def _rows(event_id: str = "e-1") -> list:
    now = utcnow()
    return [
        (AuditEntry.__table__, {"at": now, "actor": "key:crm", "action": "thing.create",
                                "object_type": "thing", "object_id": "7",
                                "changes": {"name": "Zoë", "tags": ["a", "b"]}}),
        (OutboxEvent.__table__, {"event_id": event_id, "type": "thing.created",
                                 "payload": {"id": 7}, "created_at": now,
                                 "next_attempt_at": now, "state": "pending", "attempts": 0}),
        (AuditEntry.__table__, {"at": now, "actor": "key:crm", "action": "thing.check",
                                "object_type": "thing", "object_id": "7", "changes": {}}),
    ]


def test_every_row_is_written_with_its_values_in_one_statement_on_postgresql(app):
    writer = new_session(app)
    statements: list[str] = []
    event.listen(writer.get_bind(), "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    try:
        insert_rows(writer, _rows())
        writer.commit()
    finally:
        writer.close()

    reader = new_session(app, write=False)
    audit = reader.execute(select(AuditEntry.action, AuditEntry.changes)
                           .order_by(AuditEntry.action)).all()  # ids in no set order
    outbox = reader.execute(select(OutboxEvent.event_id, OutboxEvent.payload)).all()
    reader.close()
    assert [tuple(row) for row in audit] == [
        ("thing.check", {}), ("thing.create", {"name": "Zoë", "tags": ["a", "b"]})]
    assert [tuple(row) for row in outbox] == [("e-1", {"id": 7})]
    inserts = [s for s in statements if "INSERT" in s]
    expected = 1 if app.extensions["db_engine"].dialect.name == "postgresql" else 3
    assert len(inserts) == expected


def test_a_refused_row_leaves_none_of_them_behind(app):
    writer = new_session(app)
    try:
        insert_rows(writer, _rows("same"))
        writer.commit()
        with pytest.raises(IntegrityError):  # event_id is unique
            insert_rows(writer, _rows("same"))
        writer.rollback()
    finally:
        writer.close()
    reader = new_session(app, write=False)
    assert reader.scalar(select(AuditEntry.id).where(AuditEntry.id > 2)) is None
    reader.close()



def test_dict_rows_names_every_value_in_order_across_batches(app):
    count = sql.SHAPE_BATCH * 2 + 3  # more than one batch, the last one short
    numbers = select(literal(0).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < count - 1))
    statement = select(numbers.c.n, literal("row").label("name"), null().label("blank")
                       ).order_by(numbers.c.n)
    session = new_session(app, write=False)
    try:
        rows = sql.dict_rows(session, statement, {}, ("number", "name", "blank"))
        with pytest.raises(ValueError, match="3 columns, not 2"):
            sql.dict_rows(session, statement, {}, ("number", "name"))
    finally:
        session.close()
    assert rows == [{"number": n, "name": "row", "blank": None} for n in range(count)]
