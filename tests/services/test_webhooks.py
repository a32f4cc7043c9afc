"""Webhooks to the CRM: signed delivery from the outbox, retries, dead letters, target checks.

Every delivery goes over real HTTP to a small receiver on 127.0.0.1 running in a thread, and
signatures are checked the way a CRM would: with the `standardwebhooks` library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from models import OutboxEvent, WebhookAttempt, utcnow
from referral_service.adapters import webhook_http
from referral_service.db import new_session
from referral_service.services import events, webhooks

SECRET = "test-webhook-secret"
# What the CRM gives its Standard Webhooks library for that WEBHOOK_SECRET (docs/OPERATIONS.md).
CRM_SECRET = "whsec_" + base64.b64encode(SECRET.encode()).decode()
ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """An HTTP server that records every POST and answers with scripted status codes.

    With `together=n`, the first n requests are answered only once all n are in (so n
    deliveries are provably in flight at once), or after `together_timeout` seconds.
    """

    def __init__(self, statuses: list[int] | None = None, default: int = 200,
                 delay: float = 0.0, together: int = 0, together_timeout: float = 60.0) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.delay = delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.together = threading.Barrier(together) if together else None
        self.together_timeout = together_timeout
        self.together_broken = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body,
                                              "path": self.path})
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    first_ones = receiver.together and len(receiver.requests) <= \
                        receiver.together.parties
                    gate = receiver.together if first_ones else None
                if gate is not None:
                    try:
                        gate.wait(receiver.together_timeout)
                    except threading.BrokenBarrierError:
                        receiver.together_broken = True
                if receiver.delay:
                    time.sleep(receiver.delay)
                reply = b"ok" if status < 300 else b"receiver is down"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/crm"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        """Return the webhook-id of every request received, in order."""
        with self.lock:
            return [request["headers"]["webhook-id"] for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    servers: list[Receiver] = []

    def factory(*args, **kwargs) -> Receiver:
        servers.append(Receiver(*args, **kwargs))
        return servers[-1]

    yield factory
    for server in servers:
        server.close()


def settings_for(*urls: str, **overrides) -> webhooks.Settings:
    """Settings for receivers on 127.0.0.1 (allowed here, as WEBHOOK_ALLOW_PRIVATE_TARGETS)."""
    values = {"urls": urls, "secret": SECRET, "allow_private_targets": True,
              "timeout_seconds": 5.0, "max_attempts": 8}
    values.update(overrides)
    return webhooks.Settings(**values)


def emit(session, type_: str = "referral.created", referral_id: int = 1) -> OutboxEvent:
    """Write an outbox event the way the referral service does, and commit it."""
    event_id = events.emit(session=session, type_=type_,
                           payload={"id": referral_id, "status": "pending", "note": "Zoë's lead"})
    session.commit()
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.event_id == event_id)).one()
    session.commit()  # end the read, so that later reads see what other sessions wrote
    return event


def cli(app, *args: str, input: str | None = None):  # noqa: A002 -- click's keyword
    """Run a flask command as `flask --app wsgi ...` does: inside an app context."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args), input=input)


class Clock:
    """A settable `now` for the deliverer, so backoff can be crossed without sleeping."""

    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self):
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def state_of(session, event: OutboxEvent) -> OutboxEvent:
    session.expire_all()
    return session.scalars(select(OutboxEvent).where(OutboxEvent.id == event.id)).one()


def attempts_of(session, event: OutboxEvent) -> list[WebhookAttempt]:
    session.expire_all()
    return webhooks.attempts_of(session=session, event_id=event.event_id)


def legacy_signature_is_valid(secret: str, headers: dict, body: bytes) -> bool:
    """Check the deprecated X-Webhook-Signature as the old CRM code in the docs does."""
    timestamp = headers["X-Webhook-Timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Webhook-Signature"])


# --- delivery -------------------------------------------------------------------------------


def test_event_is_delivered_once_with_a_signature_the_crm_can_verify(session, receiver):
    crm = receiver()
    event = emit(session)

    report = webhooks.deliver_due(session=session, settings=settings_for(crm.url))

    assert report.delivered == 1
    [request] = crm.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/crm"
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == event.event_id
    assert headers["webhook-signature"].startswith("v1,")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["X-Webhook-Type"] == "referral.created"
    # The CRM's Standard Webhooks library accepts it (and returns the parsed body).
    assert Webhook(CRM_SECRET).verify(body, headers) == json.loads(body)
    envelope = json.loads(body)
    assert envelope["id"] == event.event_id
    assert envelope["type"] == "referral.created"
    # The Standard Webhooks payload: type, timestamp (when the event happened) and data; the
    # id and created_at that CRMs read before it stay.
    assert envelope["timestamp"] == envelope["created_at"]
    assert envelope["created_at"].endswith("Z")
    assert set(envelope) == {"id", "type", "timestamp", "created_at", "data"}
    assert envelope["data"] == {"id": 1, "status": "pending", "note": "Zoë's lead"}
    stored = state_of(session, event)
    assert stored.state == "delivered"
    assert stored.delivered_at is not None
    assert stored.attempts == 1

    again = webhooks.deliver_due(session=session, settings=settings_for(crm.url))
    assert again.claimed == 0
    assert len(crm.requests) == 1


def test_old_signature_headers_are_still_sent_for_one_release(session, receiver):
    crm = receiver()
    event = emit(session)

    webhooks.deliver_due(session=session, settings=settings_for(crm.url))

    [request] = crm.requests
    headers = request["headers"]
    # Deprecated (docs/OPERATIONS.md): same id and time as the standard headers.
    assert headers["X-Webhook-Id"] == headers["webhook-id"] == event.event_id
    assert headers["X-Webhook-Timestamp"] == headers["webhook-timestamp"]
    assert headers["X-Webhook-Signature"].startswith("sha256=")
    assert legacy_signature_is_valid(SECRET, headers, request["body"])


def message() -> webhook_http.Message:
    """An attempt whose body is not plain ASCII (the signature covers the UTF-8 bytes)."""
    return webhook_http.Message(event_id="evt-1", type="referral.created", attempt=1,
                                body='{"id":"x","note":"Zoë"}'.encode())


def test_event_ids_are_uuids_that_sort_by_the_time_they_were_made():
    first = events.event_ids(500)
    time.sleep(0.002)
    later = events.event_ids(3)
    ids = first + later
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # so each new one goes to the end of the unique index
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert (str(parsed), parsed.version, parsed.variant) == (event_id, 7, uuid.RFC_4122)
    made_ms = uuid.UUID(later[0]).int >> 80  # RFC 9562: the first 48 bits, Unix time in ms
    assert abs(made_ms - time.time() * 1000) < 60_000


def test_standard_signature_refuses_a_tampered_body_a_wrong_secret_and_a_stale_timestamp():
    sent = message()
    headers = webhook_http.headers_for(sent, secret=SECRET, sent_at=datetime.now(UTC))
    crm = Webhook(CRM_SECRET)
    assert crm.verify(sent.body, headers) == {"id": "x", "note": "Zoë"}
    with pytest.raises(WebhookVerificationError):
        crm.verify(sent.body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        crm.verify(sent.body, {**headers, "webhook-id": "evt-2"})  # the id is signed too
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another-secret").decode()).verify(sent.body,
                                                                                  headers)
    stale = webhook_http.headers_for(sent, secret=SECRET,
                                     sent_at=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError, match="too old"):
        crm.verify(sent.body, stale)


def test_a_secret_in_the_standard_form_is_used_as_the_crm_library_takes_it():
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    sent = message()
    headers = webhook_http.headers_for(sent, secret=secret, sent_at=datetime.now(UTC))
    assert Webhook(secret).verify(sent.body, headers, json_parse=False) is None
    assert webhook_http.standard_secret(secret) == secret
    assert webhook_http.standard_secret(SECRET) == CRM_SECRET


def test_legacy_signature_refuses_a_tampered_body_a_wrong_secret_and_a_stale_timestamp():
    sent = message()
    headers = webhook_http.headers_for(sent, secret=SECRET, sent_at=datetime.now(UTC))
    assert legacy_signature_is_valid(SECRET, headers, sent.body)
    assert not legacy_signature_is_valid(SECRET, headers, sent.body + b" ")
    assert not legacy_signature_is_valid("another-secret", headers, sent.body)
    stale = webhook_http.headers_for(sent, secret=SECRET,
                                     sent_at=datetime.now(UTC) - timedelta(hours=1))
    assert not legacy_signature_is_valid(SECRET, stale, sent.body)


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt_after_backoff(
        session, receiver):
    crm = receiver(statuses=[500, 500, 200])
    event = emit(session)
    clock = Clock()
    settings = settings_for(crm.url)  # default backoff: 30 s, then 60 s (with jitter)

    first = webhooks.deliver_due(session=session, settings=settings, now=clock)
    assert (first.retrying, len(crm.requests)) == (1, 1)
    clock.advance(1)
    assert webhooks.deliver_due(session=session, settings=settings, now=clock).claimed == 0
    clock.advance(60)
    assert webhooks.deliver_due(session=session, settings=settings, now=clock).retrying == 1
    clock.advance(120)
    assert webhooks.deliver_due(session=session, settings=settings, now=clock).delivered == 1

    assert crm.ids() == [event.event_id] * 3
    assert [r["headers"]["X-Webhook-Attempt"] for r in crm.requests] == ["1", "2", "3"]
    assert len({r["body"] for r in crm.requests}) == 1  # the same bytes on every attempt
    for request in crm.requests:  # each attempt signed afresh
        Webhook(CRM_SECRET).verify(request["body"], request["headers"])
    attempts = attempts_of(session, event)
    assert [(a.attempt, a.status_code, a.succeeded) for a in attempts] == [
        (1, 500, False), (2, 500, False), (3, 200, True)]
    assert 15 <= attempts[0].retry_in_seconds <= 30
    assert 30 <= attempts[1].retry_in_seconds <= 60
    assert attempts[2].retry_in_seconds is None
    assert "HTTP 500: receiver is down" in attempts[0].error
    assert state_of(session, event).state == "delivered"


def test_backoff_grows_exponentially_with_jitter_and_stays_under_the_cap():
    waits = [webhooks.backoff_seconds(attempt, base=30, cap=3600) for attempt in range(1, 12)]
    for attempt, wait in enumerate(waits, start=1):
        ceiling = min(3600, 30 * 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert max(waits) <= 3600
    assert len({round(webhooks.backoff_seconds(3, base=30, cap=3600), 6)
                for _ in range(20)}) > 1  # jittered


def test_receiver_that_always_fails_ends_dead_after_max_attempts(session, receiver):
    crm = receiver(default=503)
    event = emit(session)
    clock = Clock()
    settings = settings_for(crm.url, max_attempts=3)

    states = []
    for _ in range(5):
        report = webhooks.deliver_due(session=session, settings=settings, now=clock)
        states.append((report.retrying, report.dead))
        clock.advance(3600)

    assert states == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert len(crm.requests) == 3
    stored = state_of(session, event)
    assert stored.state == "dead"
    assert stored.attempts == 3
    assert "HTTP 503" in stored.last_error
    assert webhooks.counts(session=session) == {"pending": 0, "delivered": 0, "dead": 1}


def test_requeued_dead_event_is_delivered_when_the_receiver_is_back(session, receiver):
    crm = receiver(statuses=[503], default=200)
    event = emit(session)
    webhooks.deliver_due(session=session, settings=settings_for(crm.url, max_attempts=1))
    assert state_of(session, event).state == "dead"

    assert webhooks.requeue_dead(session=session, event_ids=[event.event_id]) == 1
    report = webhooks.deliver_due(session=session, settings=settings_for(crm.url))

    assert report.delivered == 1
    assert crm.ids() == [event.event_id, event.event_id]
    assert state_of(session, event).state == "delivered"


def test_each_target_gets_the_event_once_even_when_another_target_needs_retries(
        session, receiver):
    steady, flaky = receiver(), receiver(statuses=[502, 502])
    event = emit(session)
    clock = Clock()
    settings = settings_for(steady.url, flaky.url)

    for _ in range(3):
        webhooks.deliver_due(session=session, settings=settings, now=clock)
        clock.advance(3600)

    assert steady.ids() == [event.event_id]
    assert flaky.ids() == [event.event_id] * 3
    assert state_of(session, event).state == "delivered"


def test_two_deliverers_at_once_deliver_every_event_exactly_once(app, session, receiver):
    # The first two requests wait for each other: both deliverers hold a claim at once
    # however the threads are scheduled (no reliance on one being slower than the other).
    crm = receiver(delay=0.005, together=2)
    created = [emit(session, referral_id=number).event_id for number in range(40)]
    settings = settings_for(crm.url, timeout_seconds=90.0)
    reports: list[webhooks.Report] = []
    errors: list[BaseException] = []

    def deliverer() -> None:
        own = new_session(app)
        try:
            reports.append(webhooks.deliver_due(session=own, settings=settings))
        except BaseException as error:
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert not crm.together_broken  # two deliveries were in flight at the same time
    assert sorted(crm.ids()) == sorted(created)  # each one once, none twice
    assert sum(report.delivered for report in reports) == 40
    assert all(report.delivered > 0 for report in reports)  # both took a share
    assert webhooks.counts(session=session)["delivered"] == 40


def test_loop_delivers_events_emitted_while_it_runs(app, session, receiver):
    crm = receiver()
    stop = threading.Event()
    loop_session = new_session(app)
    loop = threading.Thread(target=webhooks.run, kwargs={
        "session": loop_session, "settings": settings_for(crm.url), "interval": 0.02,
        "stop": stop})
    loop.start()
    try:
        event = emit(session)
        deadline = time.monotonic() + 10
        while not crm.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(10)
        loop_session.close()
    assert crm.ids() == [event.event_id]
    assert not loop.is_alive()


# --- target checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://240.0.0.1/hook",
])
def test_private_loopback_link_local_and_reserved_targets_are_refused(url):
    with pytest.raises(webhook_http.WebhookConfigError, match="private, loopback"):
        webhook_http.check_target(url, allow_private=False)
    webhook_http.check_target(url, allow_private=True)


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://crm.example.com/hook", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("https:///no-host", "no host"),
    ("https://user:pw@crm.example.com/hook", "credentials"),
])
def test_malformed_targets_are_refused(url, message):
    with pytest.raises(webhook_http.WebhookConfigError, match=message):
        webhook_http.check_target(url, allow_private=False)


def fake_dns(*answers: str):
    def resolve(host, port, type=0):  # noqa: A002 -- getaddrinfo's keyword
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers]
    return resolve


def test_every_resolved_address_of_a_host_must_be_public():
    public = webhook_http.check_target("https://crm.example.com/hook", allow_private=False,
                                       resolve=fake_dns("93.184.216.34"))
    assert public.addresses == ("93.184.216.34",)
    assert public.port == 443
    with pytest.raises(webhook_http.WebhookConfigError, match="10.0.0.7"):
        webhook_http.check_target("https://crm.example.com/hook", allow_private=False,
                                  resolve=fake_dns("93.184.216.34", "10.0.0.7"))


def test_private_target_is_refused_at_delivery_without_the_allow_flag(session, receiver):
    crm = receiver()
    event = emit(session)

    report = webhooks.deliver_due(session=session,
                                  settings=settings_for(crm.url, allow_private_targets=False))

    assert report.retrying == 1
    assert crm.requests == []
    [attempt] = attempts_of(session, event)
    assert attempt.error.startswith("refused:")
    assert attempt.status_code is None


def test_delivery_connects_to_the_vetted_address_not_a_second_lookup(session, receiver):
    crm = receiver()
    emit(session)
    url = f"http://crm.example.test:{crm.port}/hooks/crm"
    # The name exists only in this resolver; the connection must use the address it returned.
    report = webhooks.deliver_due(session=session, settings=settings_for(url),
                                  resolve=fake_dns("127.0.0.1"))
    assert report.delivered == 1
    assert crm.requests[0]["headers"]["Host"] == f"crm.example.test:{crm.port}"


def test_settings_without_secret_or_urls_are_refused():
    with pytest.raises(webhooks.WebhookConfigError, match="WEBHOOK_URLS is empty"):
        webhooks.check_settings(webhooks.Settings(urls=(), secret=SECRET))
    with pytest.raises(webhooks.WebhookConfigError, match="WEBHOOK_SECRET is empty"):
        webhooks.check_settings(webhooks.Settings(urls=("https://93.184.216.34/",), secret=""))
    with pytest.raises(webhooks.WebhookConfigError, match="not a base64 key"):
        webhooks.check_settings(webhooks.Settings(urls=("https://93.184.216.34/",),
                                                  secret="whsec_"))


def test_deliverer_refuses_an_unusable_secret_before_claiming_anything(session):
    event = emit(session)
    with pytest.raises(webhooks.WebhookConfigError, match="WEBHOOK_SECRET is empty"):
        webhooks.deliver_due(session=session, settings=settings_for("http://127.0.0.1:9/h",
                                                                    secret=""))
    assert state_of(session, event).attempts == 0


def test_settings_are_read_from_the_configuration():
    settings = webhooks.Settings.from_config({
        "WEBHOOK_URLS": " https://a.example/h , https://b.example/h ,", "WEBHOOK_SECRET": "s",
        "WEBHOOK_MAX_ATTEMPTS": 3, "WEBHOOK_ALLOW_PRIVATE_TARGETS": True})
    assert settings.urls == ("https://a.example/h", "https://b.example/h")
    assert (settings.max_attempts, settings.allow_private_targets) == (3, True)


# --- command line ----------------------------------------------------------------------------


def test_deliver_webhooks_command_delivers_and_status_lists_dead_events(app, session, receiver):
    crm = receiver(statuses=[500])
    dying, delivered = emit(session, referral_id=1), emit(session, referral_id=2)  # FIFO
    app.config.update(WEBHOOK_URLS=crm.url, WEBHOOK_SECRET=SECRET, WEBHOOK_MAX_ATTEMPTS=1,
                      WEBHOOK_ALLOW_PRIVATE_TARGETS=True)

    result = cli(app, "deliver-webhooks")
    assert result.exit_code == 0, result.output
    assert "delivered 1, retrying 0, dead 1" in result.output
    assert sorted(crm.ids()) == sorted([delivered.event_id, dying.event_id])

    status = cli(app, "webhooks-status")
    assert status.exit_code == 0, status.output
    assert "pending: 0" in status.output
    assert "delivered: 1" in status.output
    assert "dead: 1" in status.output
    assert f"dead {dying.event_id} referral.created" in status.output
    assert "HTTP 500" in status.output

    requeue = cli(app, "webhooks-requeue", "--all")
    assert "Requeued 1 dead event(s)." in requeue.output
    assert "pending: 1" in cli(app, "webhooks-status").output


def test_deliver_webhooks_command_refuses_a_private_target_without_the_flag(app, session):
    emit(session)
    app.config.update(WEBHOOK_URLS="http://127.0.0.1:9/hook", WEBHOOK_SECRET=SECRET,
                      WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
    result = cli(app, "deliver-webhooks")
    assert result.exit_code != 0
    assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in result.output
    assert webhooks.counts(session=session)["pending"] == 1


# --- end to end ------------------------------------------------------------------------------


def test_referral_created_and_moved_through_the_api_reach_the_crm_in_order(
        app, client, admin_headers, make_org, session, receiver):
    crm = receiver()
    referrer, receiver_org = make_org(name="Referrer Ltd"), make_org(name="Receiver Co")
    response = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": referrer["id"],
        "receiver_organization_id": receiver_org["id"],
        "client": {"name": "Acme Widgets", "external_ref": "crm-42"},
        "skills": ["cnc machining"],
    })
    assert response.status_code == 201, response.get_json()
    referral = response.get_json()
    moved = client.patch(f"/api/v1/referrals/{referral['id']}", headers=admin_headers,
                         json={"status": "accepted", "reason": "We can take it."})
    assert moved.status_code == 200, moved.get_json()

    report = webhooks.deliver_due(session=session, settings=settings_for(crm.url))

    assert report.delivered == 4
    envelopes = [json.loads(request["body"]) for request in crm.requests]
    assert [(e["type"], e["data"]["id"], e["data"]["change"]) for e in envelopes[:2]] == [
        ("organization.changed", referrer["id"], "created"),
        ("organization.changed", receiver_org["id"], "created")]
    assert [(e["type"], e["data"]["id"], e["data"]["status"]) for e in envelopes[2:]] == [
        ("referral.created", referral["id"], "pending"),
        ("referral.status_changed", referral["id"], "accepted")]
    assert len({e["id"] for e in envelopes}) == 4
    for request in crm.requests:
        Webhook(CRM_SECRET).verify(request["body"], request["headers"])
        assert legacy_signature_is_valid(SECRET, request["headers"], request["body"])
