"""Referrals: record one, move it through its lifecycle, read, list and expire them.

Double credit and over-capacity are refused by the database, not by a read-then-write in
Python. Recording a referral, in one transaction:

1. one conditional UPDATE raises the receiver's open count only if it has room (which also
   locks that count until commit);
2. the client's row is found or created and locked (SELECT ... FOR UPDATE; INSERT ... ON
   CONFLICT DO NOTHING), so that referrals of one client run one after the other;
3. the attribution check then sees every committed referral of the client, and the partial
   unique index uq_referrals_open_client backs it up if anything slips past.

On SQLite, BEGIN IMMEDIATE serializes write transactions anyway. Locks are always taken in
that order (receiver count, then client; a move takes its referral, then the count), and a
deadlock or serialization failure on PostgreSQL reruns the whole transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    IdempotencyRecord,
    Organization,
    OrganizationStats,
    Referral,
    ReferralEvent,
    UTCDateTime,
    utcnow,
)
from referral_service.adapters.geocoding import Geocoder
from referral_service.adapters.sql import insert_rows
from referral_service.services import audit, clients, events, places, unit_of_work
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.kpi import month_range
from referral_service.services.organizations import normalize_skills

# The lifecycle: every allowed move; the statuses not listed here are final.
MOVES: dict[str, tuple[str, ...]] = {
    "pending": ("accepted", "declined", "withdrawn", "expired"),
    "accepted": ("converted", "lost"),
}
RECEIVER_MOVES = frozenset({"accepted", "declined", "converted", "lost"})
REFERRER_MOVES = frozenset({"withdrawn"})
STAFF_MOVES = frozenset({"accepted", "declined", "withdrawn", "expired", "converted", "lost"})
TRANSITION_STATUSES = ("accepted", "declined", "withdrawn", "expired", "converted", "lost")
# Closed referrals the performance score counts as failures (withdrawn counts for neither side).
FAILED_STATUSES = frozenset({"declined", "lost", "expired"})

EXPIRY_BATCH = 500


# ---------------------------------------------------------------------------------- create


def record_referral(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder,
    attribution_window_days: int,
) -> Referral:
    """Record a referral; 409 if the client is already attributed or the receiver is full."""
    location = _client_location(data, geocoder)
    body = unit_of_work.run(session, lambda: _create(session, data, actor, location,
                                         attribution_window_days))
    return session.get(Referral, body["id"])


def record_referral_once(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder,
    attribution_window_days: int, idempotency_key: str | None,
) -> tuple[int, dict[str, Any]]:
    """Record a referral at most once per (API key, Idempotency-Key); return status and body.

    A repeat with the same body gets the first response and creates nothing; the same key
    with another body is a 422. Only a successful response is kept: a refused request
    (409, 422) may be sent again with its key.
    """
    location = _client_location(data, geocoder)
    if idempotency_key is None or actor.api_key_id is None:
        return 201, unit_of_work.run(session, lambda: _create(session, data, actor, location,
                                                  attribution_window_days))
    request_hash = _request_hash(data)

    def work() -> tuple[int, dict[str, Any]]:
        # Claim the key first: a concurrent repeat waits on the unique (api_key_id, key)
        # until this transaction ends, then finds the response it stored.
        record = _claim_key(session, actor.api_key_id, idempotency_key, request_hash)
        if record is None:
            stored = _stored_response(session, actor.api_key_id, idempotency_key, request_hash)
            if stored is None:
                raise Conflict("A request with this Idempotency-Key was being processed; "
                               "retry.")
            return stored
        body = _create(session, data, actor, location, attribution_window_days)
        record.response_status, record.response_body = 201, body
        return 201, body

    return unit_of_work.run(session, work)


def _create(
    session: Session, data: dict[str, Any], actor: Principal,
    location: tuple[float, float] | None, window_days: int,
) -> dict[str, Any]:
    """Write the referral, its first history entry, audit entry and event; return its body."""
    referrer_id = data["referrer_organization_id"]
    receiver_id = data["receiver_organization_id"]
    if actor.is_partner and referrer_id != actor.organization_id:
        raise Forbidden("A partner may record referrals only with itself as the referrer.")
    if referrer_id == receiver_id:
        raise ValidationFailed("A firm cannot refer a client to itself.", {
            "receiver_organization_id": ["Must differ from referrer_organization_id."]})
    skills = _skills(data.get("skills") or [])
    now = utcnow()
    _take_capacity(session, referrer_id, receiver_id, now)
    client_data = data["client"]
    client, created = clients.find_or_create(session=session, name=client_data["name"],
                                             external_ref=client_data.get("external_ref"),
                                             location=location)
    # A client created in this transaction has no referral anyone could see yet.
    holder = None if created else _attributed_referral_id(session, client.id, now, window_days)
    if holder is not None:
        raise _attribution_conflict(client.name, holder)
    values = {
        "referrer_organization_id": referrer_id, "receiver_organization_id": receiver_id,
        "client_id": client.id, "skills": skills, "description": data.get("description") or "",
        "note": data.get("note") or "", "match_score": data.get("match_score"),
        "status": "pending", "created_at": now, "updated_at": now, "version": 1,
    }
    if created:
        referral = _insert_referral(session, values)
    else:
        try:
            with session.begin_nested():
                referral = _insert_referral(session, values)
        except IntegrityError:
            # The partial unique index caught a second open referral for this client.
            holder = _attributed_referral_id(session, client.id, now, window_days)
            if holder is None:
                raise
            raise _attribution_conflict(client.name, holder) from None
    body = _body(referral, clients.as_json(client))
    # The history starts with "pending"; it, the audit entry and the event go in together.
    insert_rows(session, [
        (ReferralEvent.__table__, {"referral_id": referral.id, "status": "pending", "at": now,
                                   "actor": actor.name, "reason": None}),
        audit.entry(actor=actor, action="referral.create", object_type="referral",
                    object_id=referral.id,
                    changes={"referrer_organization_id": referrer_id,
                             "receiver_organization_id": receiver_id, "client_id": client.id,
                             "status": "pending"}),
        events.outbox_row(type_="referral.created", payload=body),
    ])
    return body


# Core statements on the tables: the hot path of the API skips the ORM's per-row bookkeeping.
_INSERT_REFERRAL = insert(Referral.__table__).returning(Referral.__table__.c.id)
_NOT_YET = {f"{status}_at": None for status in TRANSITION_STATUSES}


def _insert_referral(session: Session, values: dict[str, Any]) -> SimpleNamespace:
    """Insert one referral; return it with the attributes of a row (only the id is new)."""
    referral_id = session.execute(_INSERT_REFERRAL, values).scalar_one()
    return SimpleNamespace(id=referral_id, **_NOT_YET, **values)


def _check_parties(session: Session, referrer_id: int, receiver_id: int) -> None:
    """Refuse a referral naming an unknown firm or an inactive receiver (422)."""
    active = dict(session.execute(
        select(Organization.id, Organization.active)
        .where(Organization.id.in_((referrer_id, receiver_id)))
    ).all())
    errors: dict[str, list[str]] = {}
    if referrer_id not in active:
        errors["referrer_organization_id"] = [f"No organization {referrer_id}."]
    if receiver_id not in active:
        errors["receiver_organization_id"] = [f"No organization {receiver_id}."]
    elif not active[receiver_id]:
        errors["receiver_organization_id"] = ["The receiver is inactive."]
    if errors:
        raise ValidationFailed("The referral names an organization it cannot use.", errors)


def _skills(names: list[str]) -> list[str]:
    try:
        return normalize_skills(names)
    except ValueError:
        raise ValidationFailed("A skill has no letters or digits.",
                               {"skills": ["Every skill needs letters or digits."]}) from None


def _client_location(data: dict[str, Any], geocoder: Geocoder) -> tuple[float, float] | None:
    """Return the client's (lat, lon) from coordinates or a place name (services/places)."""
    place = (data.get("client") or {}).get("location")
    if not place:
        return None
    resolved = places.resolve(place, geocoder, field="client.location")
    return resolved.latitude, resolved.longitude


def _attributed_referral_id(
    session: Session, client_id: int, now: datetime, window_days: int
) -> int | None:
    """Return the referral holding the client's credit: open, or converted within the window."""
    cutoff = now - timedelta(days=window_days)
    return session.scalar(
        select(Referral.id)
        .where(Referral.client_id == client_id,
               or_(Referral.status.in_(OPEN_STATUSES),
                   and_(Referral.status == "converted", Referral.converted_at >= cutoff)))
        .order_by(Referral.status.in_(OPEN_STATUSES).desc(), Referral.id.desc())
        .limit(1)
    )


def _attribution_conflict(client_name: str, referral_id: int) -> Conflict:
    return Conflict(
        f"Client {client_name!r} is already attributed to referral {referral_id}; "
        "the first firm to register the client keeps the credit.",
        existing_referral_id=referral_id,
    )


def _take_capacity(session: Session, referrer_id: int, receiver_id: int, now: datetime) -> None:
    """Count one more open referral for the receiver, refusing it at capacity (409).

    One conditional UPDATE does the work and the checks at once: the receiver is active and
    has room, the referrer exists. Only when it changes no row do we look for the reason:
    an unknown or inactive firm (422), or a full receiver (409).
    """
    result = session.execute(
        _TAKE_CAPACITY, {"referrer": referrer_id, "receiver": receiver_id, "now": now}
    )
    if result.rowcount == 1:
        return
    _check_parties(session, referrer_id, receiver_id)
    if session.get(OrganizationStats, receiver_id) is None:
        # A firm written without its stats row (older data): start its counts now.
        session.add(OrganizationStats(organization_id=receiver_id, open_referrals=0, won=0,
                                      failed=0, updated_at=now))
        session.flush()
        _take_capacity(session, referrer_id, receiver_id, now)
        return
    raise Conflict("The receiver is at capacity: it has as many open referrals as it "
                   "accepts; choose another firm.", receiver_organization_id=receiver_id)


def _take_capacity_statement():
    # On the tables, not the mapped classes: a Core UPDATE skips the ORM's bulk-update path.
    stats, organizations = OrganizationStats.__table__, Organization.__table__
    receiver, referrer = bindparam("receiver", type_=Integer()), bindparam("referrer",
                                                                            type_=Integer())
    has_room = (
        select(organizations.c.id)
        .where(organizations.c.id == receiver, organizations.c.active.is_(True),
               or_(organizations.c.capacity.is_(None),
                   stats.c.open_referrals < organizations.c.capacity))
        .correlate(stats)
        .exists()
    )
    referrer_exists = select(organizations.c.id).where(organizations.c.id == referrer).exists()
    return (
        update(stats)
        .where(stats.c.organization_id == receiver, has_room, referrer_exists)
        .values(open_referrals=stats.c.open_referrals + 1,
                updated_at=bindparam("now", type_=UTCDateTime()))
    )


_TAKE_CAPACITY = _take_capacity_statement()


# --------------------------------------------------------------------------- idempotency


def _request_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str,
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_key(
    session: Session, api_key_id: int, key: str, request_hash: str
) -> IdempotencyRecord | None:
    """Insert the key's record; None, writing nothing, if the key is already recorded."""
    values = {"api_key_id": api_key_id, "key": key, "request_hash": request_hash,
              "response_status": 0, "response_body": {}, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        return session.scalars(insert(IdempotencyRecord).values(**values)
                               .on_conflict_do_nothing().returning(IdempotencyRecord)).first()
    record = IdempotencyRecord(**values)
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return None
    return record


def _stored_response(
    session: Session, api_key_id: int, key: str, request_hash: str
) -> tuple[int, dict[str, Any]] | None:
    record = session.scalar(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    )
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise ValidationFailed(
            "This Idempotency-Key was already used with a different request body.",
            {"Idempotency-Key": ["Use a new key for a different request."]},
        )
    return record.response_status, record.response_body


# ------------------------------------------------------------------------------ lifecycle


def allowed_moves(referral: Referral, actor: Principal) -> list[str]:
    """Return the statuses this actor may move the referral to now."""
    mine = _role_moves(referral, actor)
    return [status for status in MOVES.get(referral.status, ()) if status in mine]


def _role_moves(referral: Referral, actor: Principal) -> frozenset[str]:
    if actor.is_staff:
        return STAFF_MOVES
    if actor.organization_id == referral.receiver_organization_id:
        return RECEIVER_MOVES
    if actor.organization_id == referral.referrer_organization_id:
        return REFERRER_MOVES
    return frozenset()


def move_referral(
    *, session: Session, referral_id: int, status: str, reason: str | None, actor: Principal,
    expected_version: int | None = None,
) -> Referral:
    """Move a referral to `status`; 409 if the lifecycle forbids it, 403 if the role does."""

    def work() -> Referral:
        referral = _locked(session, referral_id, actor)
        if expected_version is not None and referral.version != expected_version:
            raise PreconditionFailed("The referral changed since it was read (stale If-Match).")
        if status in STAFF_MOVES and status not in _role_moves(referral, actor):
            raise Forbidden(f"As {_role_name(referral, actor)} you may not move a referral "
                            f"to {status!r}.")
        if status not in MOVES.get(referral.status, ()):
            raise InvalidTransition(
                f"A {referral.status} referral cannot become {status}; allowed: "
                f"{', '.join(MOVES.get(referral.status, ())) or 'none (final)'}.",
                current_status=referral.status,
            )
        _apply_move(session, referral, status, reason, actor, utcnow())
        return referral

    return unit_of_work.run(session, work)


def _role_name(referral: Referral, actor: Principal) -> str:
    if actor.organization_id == referral.receiver_organization_id:
        return "the receiver"
    return "the referrer"


def _apply_move(
    session: Session, referral: Referral, status: str, reason: str | None, actor: Principal,
    now: datetime,
) -> None:
    previous = referral.status
    referral.status = status
    setattr(referral, f"{status}_at", now)
    referral.updated_at = now
    referral.history.append(ReferralEvent(status=status, at=now, actor=actor.name,
                                          reason=reason))
    _count_move(session, referral.receiver_organization_id, previous, status, now)
    session.flush()
    audit.record(session=session, actor=actor, action="referral.move", object_type="referral",
                 object_id=referral.id,
                 changes={"status": {"from": previous, "to": status}, "reason": reason})
    events.emit(session=session, type_="referral.status_changed",
                payload=to_json(referral, history=True))


def _count_move(
    session: Session, receiver_id: int, previous: str, status: str, now: datetime
) -> None:
    """Keep the receiver's running counts (read by matching) in step with one move."""
    values: dict[str, Any] = {"updated_at": now}
    if previous in OPEN_STATUSES and status not in OPEN_STATUSES:
        values["open_referrals"] = case(
            (OrganizationStats.open_referrals > 0, OrganizationStats.open_referrals - 1),
            else_=0,
        )
    if status == "converted":
        values["won"] = OrganizationStats.won + 1
    elif status in FAILED_STATUSES:
        values["failed"] = OrganizationStats.failed + 1
    session.execute(
        update(OrganizationStats).where(OrganizationStats.organization_id == receiver_id)
        .values(**values).execution_options(synchronize_session=False)
    )


def expire_pending(*, session: Session, older_than_days: int, now: datetime | None = None) -> int:
    """Expire pending referrals created more than `older_than_days` ago; return how many."""
    now = now or utcnow()
    cutoff = now - timedelta(days=older_than_days)
    reason = f"No answer within {older_than_days} days."

    def batch() -> int:
        rows = session.scalars(
            select(Referral)
            .where(Referral.status == "pending", Referral.created_at < cutoff)
            .order_by(Referral.id).limit(EXPIRY_BATCH)
            .with_for_update(of=Referral, skip_locked=True)
            .execution_options(populate_existing=True)
        ).unique().all()
        # By receiver: two runs at once then lock the receivers' counts in the same order.
        for referral in sorted(rows, key=lambda r: (r.receiver_organization_id, r.id)):
            _apply_move(session, referral, "expired", reason, SYSTEM, now)
        return len(rows)

    total = 0
    while True:
        done = unit_of_work.run(session, batch)
        total += done
        if done < EXPIRY_BATCH:
            return total


# ---------------------------------------------------------------------------------- reads


def get(*, session: Session, referral_id: int, actor: Principal) -> Referral:
    """Return one referral the caller is a party to (staff: any)."""
    referral = session.get(Referral, referral_id)
    if referral is None or not _visible(referral, actor):
        raise NotFound(f"Referral {referral_id} does not exist.")
    return referral


def _locked(session: Session, referral_id: int, actor: Principal) -> Referral:
    referral = session.scalars(
        select(Referral).where(Referral.id == referral_id)
        .with_for_update(of=Referral).execution_options(populate_existing=True)
    ).unique().one_or_none()
    if referral is None or not _visible(referral, actor):
        raise NotFound(f"Referral {referral_id} does not exist.")
    return referral


def _visible(referral: Referral, actor: Principal) -> bool:
    return actor.is_staff or actor.organization_id in (
        referral.referrer_organization_id, referral.receiver_organization_id)


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int,
    organization_id: int | None = None, role: str | None = None, status: str | None = None,
    month: str | None = None,
) -> tuple[list[Referral], int]:
    """Return one page of the referrals the caller may see, newest first, and the total."""
    query = select(Referral)
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            return [], 0
        organization_id = actor.organization_id
    if role is not None and organization_id is None:
        raise ValidationFailed("A role filter needs organization_id.",
                               {"role": ["Give organization_id with role."]})
    if organization_id is not None:
        as_referrer = Referral.referrer_organization_id == organization_id
        as_receiver = Referral.receiver_organization_id == organization_id
        query = query.where({"referrer": as_referrer, "receiver": as_receiver}.get(
            role or "", or_(as_referrer, as_receiver)))
    if status is not None:
        query = query.where(Referral.status == status)
    if month is not None:
        start, end = month_range(month)
        query = query.where(Referral.created_at >= start, Referral.created_at < end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Referral.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).unique().all()
    return list(rows), total


def to_json(referral: Referral, *, history: bool = False) -> dict[str, Any]:
    """Return the referral as the API shows it (also the webhook payload)."""
    body = _body(referral, clients.as_json(referral.client))
    if history:
        body["history"] = [{"status": event.status, "at": _iso(event.at), "actor": event.actor,
                            "reason": event.reason} for event in referral.history]
    return body


def _body(referral: Any, client: dict[str, Any]) -> dict[str, Any]:
    """Return the body of a referral given as an object or a row with the same attributes."""
    return {
        "id": referral.id,
        "referrer_organization_id": referral.referrer_organization_id,
        "receiver_organization_id": referral.receiver_organization_id,
        "client": client,
        "skills": list(referral.skills or []),
        "description": referral.description,
        "note": referral.note,
        "match_score": referral.match_score,
        "status": referral.status,
        "created_at": _iso(referral.created_at),
        "updated_at": _iso(referral.updated_at),
        **{f"{s}_at": _iso(getattr(referral, f"{s}_at")) for s in TRANSITION_STATUSES},
        "version": referral.version,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
