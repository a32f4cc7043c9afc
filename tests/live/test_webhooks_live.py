"""Webhooks end to end (SPEC section 12, issue 15): every event type made through a running
gunicorn server's API, sent by `flask deliver-webhooks --loop` to a CRM receiver on 127.0.0.1
written with the `standardwebhooks` library, which verifies each one; a tampered body and an
old timestamp are refused by that library."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from referral_service.adapters import webhook_http
from tests.api.test_reoffer import HERE, KM
from tests.conftest import ROOT, LiveServer, org_payload
from tests.live.test_reoffer_live import _warm
from tests.services.test_webhooks import legacy_signature_is_valid

pytestmark = pytest.mark.slow

SECRET = "live-webhook-secret"  # a plain WEBHOOK_SECRET, as older installations have
CRM_SECRET = "whsec_" + base64.b64encode(SECRET.encode()).decode()  # what the CRM is given
EVERY_TYPE = {"referral.created", "referral.status_changed", "referral.reoffered",
              "visit.recorded", "visit.empty_handed", "target.proposed", "target.agreed",
              "month.closed", "organization.changed"}


class Crm:
    """A CRM's webhook endpoint: it verifies each request with the Standard Webhooks library
    (204) or refuses it (400, the library's reason), and keeps what it was sent."""

    def __init__(self) -> None:
        self.verifier = Webhook(CRM_SECRET)
        self.accepted: list[dict] = []  # {"headers", "body", "event"}
        self.refused: list[str] = []
        self.lock = threading.Lock()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers)
                try:
                    event = crm.verifier.verify(body, headers)
                except WebhookVerificationError as error:
                    with crm.lock:
                        crm.refused.append(str(error))
                    self.send_response(400)
                else:
                    with crm.lock:
                        crm.accepted.append({"headers": headers, "body": body, "event": event})
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        with self.lock:
            return [request["event"] for request in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Deliverer:
    """`flask --app wsgi deliver-webhooks --loop` in its own process, as it runs in production."""

    def __init__(self, database_url: str, url: str) -> None:
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "live-secret",
               "WEBHOOK_URLS": url, "WEBHOOK_SECRET": SECRET,
               "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOK_BACKOFF_BASE_SECONDS": "1",
               "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "deliver-webhooks", "--loop",
             "--interval", "0.2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)

    def stop(self) -> str:
        """Stop it as systemd would (SIGTERM) and return what it printed."""
        self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate(timeout=30)
        return output


def last_month() -> str:
    """The month before this one (UTC): over, so head office may close it."""
    return (datetime.now(UTC).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def ranked(http, base: str, need: dict, firms: set[int], answers: int = 10) -> None:
    """Wait until `answers` matches in a row (any worker) rank every one of `firms`: each
    worker's index has caught up with firms made a moment ago."""
    deadline, in_a_row = time.monotonic() + 60, 0
    while in_a_row < answers:
        assert time.monotonic() < deadline, "the match index did not catch up"
        response = http.post(f"{base}/match", json=need, timeout=30)
        found = {c["organization_id"] for c in response.json().get("candidates", [])}
        in_a_row = in_a_row + 1 if response.status_code == 200 and firms <= found else 0
        if not in_a_row:
            time.sleep(0.2)


def make_every_event(http, base: str, partner_key) -> dict[str, int]:
    """Do, through the API, one change of each kind SPEC section 12 announces."""

    def created(response) -> dict:
        assert response.status_code == 201, response.text
        return response.json()

    def firm(name: str, km: float, skills: list[str]) -> int:
        return created(http.post(f"{base}/organizations", json=org_payload(
            name=name, skills=skills, description=f"{name}: steel work.",
            offices=[{"label": "HQ", "latitude": HERE["latitude"] + km * KM,
                      "longitude": HERE["longitude"]}])))["id"]

    made = {"referrer": firm("Referrer Trading", 5, ["logistics"]),  # organization.changed
            "alpha": firm("Alpha Welding", 0, ["welding"]),
            "bravo": firm("Bravo Welding", 30, ["welding"]),
            "closing": firm("Closing Down Ltd", 90, ["floristry"])}
    assert http.patch(f"{base}/organizations/{made['alpha']}",
                      json={"capacity": 9}).status_code == 200
    assert http.delete(f"{base}/organizations/{made['closing']}").status_code == 204
    need = {"skills": ["Welding"], "location": HERE,
            "referrer_organization_id": made["referrer"]}
    ranked(http, base, need, {made["alpha"], made["bravo"]})

    referral = created(http.post(f"{base}/referrals", json={  # referral.created
        "referrer_organization_id": made["referrer"], "receiver_organization_id": made["alpha"],
        "client": {"name": "Kaohsiung Shipyards Ltd", "external_ref": "CRM-7",
                   "location": {**HERE, "city": "Kaohsiung", "country": "TW"}},
        "skills": ["Welding"], "description": "Welding of steel hull sections."}))
    made["referral"] = referral["id"]
    declined = http.patch(f"{base}/referrals/{referral['id']}",  # status_changed, reoffered
                          json={"status": "declined", "reason": "Fully booked."})
    assert declined.status_code == 200, declined.text

    person = created(http.post(f"{base}/people", json={
        "organization_id": made["referrer"], "name": "Kenji Sato"}))["id"]
    visited = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    made["visit"] = created(http.post(f"{base}/visits", json={  # visit.recorded
        "person_id": person, "client": {"name": "Acme Bicycles"}, "visited_at": visited,
        "leads": [], "commitment": {"description": "A trial order of 50 frames."}}))["id"]
    made["empty_visit"] = created(http.post(f"{base}/visits", json={  # and visit.empty_handed
        "person_id": person, "client": {"name": "Acme Bicycles"}, "visited_at": visited,
        "leads": [], "empty_handed_reason": "The buyer was out."}))["id"]

    proposal = created(http.post(f"{base}/kpi/target-proposals", headers=partner_key(
        made["referrer"]), json={"scope": "organization", "scope_id": made["referrer"],
                                 "month": "2027-01", "new_clients": 10}))  # target.proposed
    made["proposal"] = proposal["id"]
    agreed = http.post(f"{base}/kpi/target-proposals/{proposal['id']}/agree", json={})
    assert agreed.status_code == 200, agreed.text  # target.agreed
    closed = http.post(f"{base}/kpi/months/{last_month()}/close", json={})
    assert closed.status_code == 200, closed.text  # month.closed
    return made


def test_a_crm_verifies_every_event_type_with_the_standard_webhooks_library(
        app, database_url, make_key):
    crm = Crm()
    server = _warm(LiveServer(database_url))
    deliverer = Deliverer(database_url, crm.url)
    try:
        with requests.Session() as http:
            http.headers.update(make_key("admin"))
            made = make_every_event(http, server.url + "/api/v1",
                                    lambda firm: make_key("partner", firm))
        deadline = time.monotonic() + 90
        while {event["type"] for event in crm.events()} != EVERY_TYPE:
            assert time.monotonic() < deadline, (crm.events(), crm.refused)
            time.sleep(0.2)
        time.sleep(1)  # any event still on its way (there should be none left)
    finally:
        output = deliverer.stop()
        server.stop()
        crm.close()

    assert crm.refused == [], output
    events = crm.events()
    by_type = {type_: [e for e in events if e["type"] == type_] for type_ in EVERY_TYPE}
    assert {type_: len(found) for type_, found in by_type.items()} == {
        "organization.changed": 6,  # 4 created, 1 updated, 1 deactivated
        "referral.created": 2,  # the referral and its re-offer
        "referral.status_changed": 1, "referral.reoffered": 1,
        "visit.recorded": 2, "visit.empty_handed": 1,
        "target.proposed": 1, "target.agreed": 1, "month.closed": 1}, events
    assert len({e["id"] for e in events}) == len(events) == 16  # each sent once
    for request in crm.accepted:
        headers, event = request["headers"], request["event"]
        # The Standard Webhooks payload, and the id the headers carry.
        assert set(event) == {"id", "type", "timestamp", "created_at", "data"}
        assert headers["webhook-id"] == event["id"] == headers["X-Webhook-Id"]
        assert headers["X-Webhook-Type"] == event["type"]
        # The deprecated signature is still there for this release, and still verifies.
        assert headers["X-Webhook-Timestamp"] == headers["webhook-timestamp"]
        assert legacy_signature_is_valid(SECRET, headers, request["body"])

    reoffered = by_type["referral.reoffered"][0]["data"]
    assert reoffered["previous_referral_id"] == made["referral"]
    assert reoffered["receiver_organization_id"] == made["bravo"]
    assert reoffered["chain"] == [made["referral"], reoffered["id"]]
    assert by_type["referral.status_changed"][0]["data"]["status"] == "declined"
    # Head office's CRM is the only receiver of webhooks: it knows the client (need to know
    # narrows what a receiving firm reads, not what head office is told).
    assert by_type["referral.created"][0]["data"]["client"]["name"] == "Kaohsiung Shipyards Ltd"
    assert by_type["visit.empty_handed"][0]["data"]["id"] == made["empty_visit"]
    assert by_type["target.agreed"][0]["data"]["id"] == made["proposal"]
    assert by_type["month.closed"][0]["data"]["month"] == last_month()
    assert [(e["data"]["id"], e["data"]["change"]) for e in by_type["organization.changed"]
            if e["data"]["change"] != "created"] == [
        (made["alpha"], "updated"), (made["closing"], "deactivated")]

    # What the library refuses: the same request with its body changed, and one signed an
    # hour ago (a replay); both answered 400 by the CRM, as an attacker would see it.
    sent = crm.accepted[0]
    with pytest.raises(WebhookVerificationError):
        crm.verifier.verify(sent["body"].replace(b"}", b' }', 1), sent["headers"])
    old = webhook_http.headers_for(
        webhook_http.Message(event_id=sent["event"]["id"], type=sent["event"]["type"],
                             attempt=1, body=sent["body"]),
        secret=SECRET, sent_at=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError, match="too old"):
        crm.verifier.verify(sent["body"], old)
    replayed = Crm()
    try:
        tampered = json.loads(sent["body"])
        tampered["data"]["id"] = 999
        signed = {name: sent["headers"][name]
                  for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        for body, headers in ((json.dumps(tampered).encode(), signed), (sent["body"], old)):
            answer = requests.post(replayed.url, data=body, headers=headers, timeout=10)
            assert answer.status_code == 400
    finally:
        replayed.close()
    assert len(replayed.refused) == 2 and replayed.accepted == []
