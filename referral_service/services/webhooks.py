"""Webhook delivery: the outbox use cases (claim, deliver, record, retry, inspect, requeue).

An event is written to `outbox_events` in the transaction that caused it (services/events.py).
A deliverer claims one due event at a time in a short write transaction: it counts the attempt
and pushes `next_attempt_at` forward by a lease, so no other deliverer sees the event as due
while the HTTP requests run outside any transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED` lets
two deliverers claim different rows at once; SQLite: the write transaction serializes claims).
The outcome is recorded in a second short transaction; the attempt number is the fencing token,
so a deliverer whose lease ran out cannot overwrite a newer claim. Every HTTP delivery is logged
in `webhook_attempts`, per target URL, and a URL that has acknowledged the event is never sent
it again. Failures are retried with capped exponential backoff and jitter; after
`max_attempts` the event is dead (kept for an admin to inspect and requeue).

The request itself (Standard Webhooks signature, target checks, the HTTP client) is in
adapters/webhook_http.py.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import OutboxEvent, WebhookAttempt, utcnow
from referral_service.adapters import webhook_http
from referral_service.adapters.webhook_http import Outcome, Resolver, WebhookConfigError
from referral_service.services import audit, unit_of_work
from referral_service.services.auth import SYSTEM, Principal

log = logging.getLogger(__name__)

STATES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Settings:
    """What a deliverer needs: the targets, the secret, and the retry policy."""

    urls: tuple[str, ...]
    secret: str
    max_attempts: int = 8
    allow_private_targets: bool = False
    timeout_seconds: float = 10.0
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Build the settings from the app's WEBHOOK_* configuration keys."""
        urls = tuple(url.strip() for url in str(config.get("WEBHOOK_URLS") or "").split(",")
                     if url.strip())
        return cls(
            urls=urls,
            secret=str(config.get("WEBHOOK_SECRET") or ""),
            max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", 8)),
            allow_private_targets=bool(config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)),
            timeout_seconds=float(config.get("WEBHOOK_TIMEOUT_SECONDS", 10.0)),
            backoff_base_seconds=float(config.get("WEBHOOK_BACKOFF_BASE_SECONDS", 30.0)),
            backoff_max_seconds=float(config.get("WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0)),
        )

    @property
    def lease_seconds(self) -> float:
        """How long a claimed event stays invisible to other deliverers."""
        # Each target costs at most a connect and a response, each bounded by the timeout;
        # the margin keeps the lease well clear of a slow but finished delivery.
        return len(self.urls) * 3 * self.timeout_seconds + 60


@dataclass
class Report:
    """What one pass of the deliverer did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lease_lost: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        """Return how many events this pass claimed."""
        return self.delivered + self.retrying + self.dead + self.lease_lost


@dataclass(frozen=True)
class _Claim:
    id: int
    event_id: str
    type: str
    created_at: datetime
    payload: Any
    attempt: int
    acknowledged_by: frozenset[str]


# --- configuration and retry policy ----------------------------------------------------------


def check_settings(settings: Settings, *, resolve: Resolver = socket.getaddrinfo) -> None:
    """Refuse settings a deliverer cannot use safely; the message names every problem."""
    problems: list[str] = []
    if not settings.urls:
        problems.append("WEBHOOK_URLS is empty: set one or more comma-separated URLs.")
    try:
        webhook_http.signer(settings.secret)
    except WebhookConfigError as error:
        problems.append(str(error))
    if settings.max_attempts < 1:
        problems.append("WEBHOOK_MAX_ATTEMPTS must be at least 1.")
    if settings.timeout_seconds <= 0:
        problems.append("WEBHOOK_TIMEOUT_SECONDS must be positive.")
    if not 0 < settings.backoff_base_seconds <= settings.backoff_max_seconds:
        problems.append("Backoff needs 0 < WEBHOOK_BACKOFF_BASE_SECONDS <= "
                        "WEBHOOK_BACKOFF_MAX_SECONDS.")
    for url in settings.urls:
        try:
            webhook_http.check_target(url, allow_private=settings.allow_private_targets,
                                      resolve=resolve)
        except WebhookConfigError as error:
            problems.append(str(error))
    if problems:
        raise WebhookConfigError(" ".join(problems))


def backoff_seconds(attempt: int, *, base: float, cap: float,
                    rng: random.Random | None = None) -> float:
    """Return the wait after failed attempt number `attempt` (1-based), jittered and capped."""
    # Exponential: base * 2^(attempt-1), capped; "equal jitter" keeps at least half of it so
    # retries stay spread out yet never come back immediately.
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


# --- delivery ------------------------------------------------------------------------------


def deliver_due(
    *, session: Session, settings: Settings, limit: int = 100,
    stop: threading.Event | None = None, now: Callable[[], datetime] = utcnow,
    resolve: Resolver = socket.getaddrinfo,
) -> Report:
    """Deliver up to `limit` due events, one claim at a time; commit after each step."""
    if not settings.urls:
        raise WebhookConfigError("WEBHOOK_URLS is empty: set one or more comma-separated URLs.")
    webhook_http.signer(settings.secret)  # refuse an unusable secret before claiming anything
    report = Report()
    while report.claimed < limit and not (stop and stop.is_set()):
        claim = _claim(session, settings, now())
        if claim is None:
            break
        message = webhook_http.Message(
            event_id=claim.event_id, type=claim.type, attempt=claim.attempt,
            body=webhook_http.body_of(event_id=claim.event_id, type_=claim.type,
                                      created_at=claim.created_at, payload=claim.payload))
        outcomes = [
            webhook_http.send(url, message, secret=settings.secret,
                              timeout_seconds=settings.timeout_seconds,
                              allow_private=settings.allow_private_targets, resolve=resolve)
            for url in settings.urls if url not in claim.acknowledged_by
        ]
        report.outcomes.extend(outcomes)
        state = _record(session, settings, claim, outcomes, now())
        setattr(report, state, getattr(report, state) + 1)
    return report


def run(
    *, session: Session, settings: Settings, interval: float, stop: threading.Event,
    on_report: Callable[[Report], None] | None = None, limit: int = 100,
) -> None:
    """Deliver until `stop` is set, waiting `interval` seconds whenever nothing is due."""
    while not stop.is_set():
        try:
            report = deliver_due(session=session, settings=settings, limit=limit, stop=stop)
        except OperationalError as error:
            # The database is away (restart, failover): keep the loop alive and retry (the
            # unit of work has rolled the step back).
            log.warning("webhook delivery paused: database unavailable: %s", error.orig)
            stop.wait(interval)
            continue
        if on_report is not None and report.claimed:
            on_report(report)
        if report.claimed < limit:
            stop.wait(interval)


def _claim(session: Session, settings: Settings, now: datetime) -> _Claim | None:
    """Take the oldest due event: count the attempt and hide it behind a lease (one unit)."""
    return unit_of_work.run(session, lambda: _take_due(session, settings, now))


def _take_due(session: Session, settings: Settings, now: datetime) -> _Claim | None:
    event = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.state == "pending", OutboxEvent.next_attempt_at <= now)
        .order_by(OutboxEvent.next_attempt_at, OutboxEvent.id)
        .limit(1)
        # PostgreSQL: a row another deliverer is claiming is skipped, not waited for.
        # SQLite ignores the clause; its BEGIN IMMEDIATE write transaction serializes claims.
        .with_for_update(skip_locked=True)
    ).first()
    if event is None:
        return None
    event.attempts += 1
    event.next_attempt_at = now + timedelta(seconds=settings.lease_seconds)
    acknowledged = frozenset(session.scalars(
        select(WebhookAttempt.url).where(WebhookAttempt.outbox_event_id == event.id,
                                         WebhookAttempt.succeeded.is_(True))
    ).all())
    claim = _Claim(id=event.id, event_id=event.event_id, type=event.type,
                   created_at=event.created_at, payload=event.payload, attempt=event.attempts,
                   acknowledged_by=acknowledged)
    return claim


def _record(session: Session, settings: Settings, claim: _Claim, outcomes: list[Outcome],
            now: datetime) -> str:
    """Log the attempts and move the event on; return delivered, retrying, dead or lease_lost."""
    state, values, moved = unit_of_work.run(
        session, lambda: _write_outcomes(session, settings, claim, outcomes, now))
    if not moved:
        log.warning("webhook event %s: lease lost during attempt %s", claim.event_id,
                    claim.attempt)
        return "lease_lost"
    log_method = log.info if state == "delivered" else log.warning
    log_method("webhook event %s (%s) attempt %s: %s%s", claim.event_id, claim.type,
               claim.attempt, state, f": {values['last_error']}" if state != "delivered" else "")
    return state


def _write_outcomes(session: Session, settings: Settings, claim: _Claim,
                    outcomes: list[Outcome], now: datetime) -> tuple[str, dict, bool]:
    failures = [outcome for outcome in outcomes if not outcome.succeeded]
    retry_in = None
    if not failures:
        state, values = "delivered", {"state": "delivered", "delivered_at": now,
                                      "last_error": None}
    elif claim.attempt >= settings.max_attempts:
        state, values = "dead", {"state": "dead", "last_error": _summary(failures)}
    else:
        retry_in = backoff_seconds(claim.attempt, base=settings.backoff_base_seconds,
                                   cap=settings.backoff_max_seconds)
        state, values = "retrying", {"next_attempt_at": now + timedelta(seconds=retry_in),
                                     "last_error": _summary(failures)}
    for outcome in outcomes:
        session.add(WebhookAttempt(
            outbox_event_id=claim.id, url=outcome.url, attempt=claim.attempt, at=now,
            succeeded=outcome.succeeded, status_code=outcome.status_code, error=outcome.error,
            duration_ms=outcome.duration_ms,
            retry_in_seconds=None if outcome.succeeded else retry_in,
        ))
    # The attempt number fences the update: if the lease ran out and another deliverer
    # claimed the event again, its claim wins; the HTTP outcomes above are still logged.
    moved = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == claim.id, OutboxEvent.state == "pending",
               OutboxEvent.attempts == claim.attempt)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return state, values, bool(moved)


def _summary(failures: Iterable[Outcome]) -> str:
    return "; ".join(f"{outcome.url}: {outcome.error}" for outcome in failures)


# --- administration ------------------------------------------------------------------------


def counts(*, session: Session) -> dict[str, int]:
    """Return how many events are in each state."""
    found = dict(session.execute(
        select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state)).all())
    return {state: int(found.get(state, 0)) for state in STATES}


def oldest_pending(*, session: Session) -> datetime | None:
    """Return when the oldest undelivered event was created (how far behind delivery is)."""
    return session.scalar(select(func.min(OutboxEvent.created_at))
                          .where(OutboxEvent.state == "pending"))


def dead_events(*, session: Session, limit: int = 20) -> list[OutboxEvent]:
    """Return the most recent dead-lettered events."""
    return list(session.scalars(
        select(OutboxEvent).where(OutboxEvent.state == "dead")
        .order_by(OutboxEvent.id.desc()).limit(limit)).all())


def attempts_of(*, session: Session, event_id: str) -> list[WebhookAttempt]:
    """Return the delivery attempts of one event, oldest first."""
    return list(session.scalars(
        select(WebhookAttempt).join(OutboxEvent, OutboxEvent.id == WebhookAttempt.outbox_event_id)
        .where(OutboxEvent.event_id == event_id)
        .order_by(WebhookAttempt.attempt, WebhookAttempt.id)).all())


@unit_of_work.writes
def requeue_dead(
    *, session: Session, event_ids: Iterable[str] | None = None, actor: Principal = SYSTEM,
) -> int:
    """Put dead events (all, or the given event ids) back in the queue with fresh attempts."""
    query = select(OutboxEvent).where(OutboxEvent.state == "dead")
    if event_ids is not None:
        query = query.where(OutboxEvent.event_id.in_(list(event_ids)))
    events = session.scalars(query.with_for_update()).all()
    now = utcnow()
    for event in events:
        event.state, event.attempts, event.next_attempt_at = "pending", 0, now
        audit.record(session=session, actor=actor, action="webhook.requeue",
                     object_type="outbox_event", object_id=event.event_id)
    return len(events)
