"""Concurrent requests through a real gunicorn server with 4 workers: exactly one wins.

Attribution, lifecycle moves and idempotent repeats are decided by the database (row locks,
unique indexes, BEGIN IMMEDIATE), so these hold across processes on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter

import pytest

from models import Client, IdempotencyRecord, OrganizationStats, Referral, ReferralEvent
from tests.conftest import LiveServer
from tests.live.races import count, storm

pytestmark = pytest.mark.slow

THREADS = 40


@pytest.fixture(scope="module")
def server(database_url):
    live = LiveServer(database_url, workers=4)
    yield live
    live.stop()




@pytest.fixture
def firms(make_org):
    return [make_org(name=name, capacity=None)["id"] for name in ("Alpha", "Beta", "Gamma",
                                                                  "Delta")]


@pytest.mark.parametrize("client_of", [
    lambda i: {"name": ("Acme Ltd", "ACME", "acme, inc.", "Acme Co., Ltd.")[i % 4]},
    lambda i: {"name": f"Zenith {i}", "external_ref": "CRM-77"},
], ids=["by-name", "by-external-ref"])
def test_forty_concurrent_referrals_of_one_client_create_exactly_one(
    server, admin_headers, session, firms, client_of
):
    receiver = firms[0]

    def send(http, index):
        return http.post(server.url + "/api/v1/referrals", headers=admin_headers, json={
            "referrer_organization_id": firms[1 + index % 3],
            "receiver_organization_id": receiver, "client": client_of(index)})

    results = storm(THREADS, send)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: THREADS - 1}, results
    winner = next(body for status, body in results if status == 201)
    assert {body["existing_referral_id"] for status, body in results if status == 409} == {
        winner["id"]}
    assert count(session, Referral) == 1
    assert count(session, Client) == 1
    assert session.get(OrganizationStats, receiver).open_referrals == 1


def test_concurrent_moves_of_one_referral_let_exactly_one_win(
    server, admin_headers, session, firms, client
):
    made = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": firms[1], "receiver_organization_id": firms[0],
        "client": {"name": "Contested Ltd"}}).get_json()

    def send(http, index):
        return http.patch(f"{server.url}/api/v1/referrals/{made['id']}", headers=admin_headers,
                          json={"status": ("accepted", "declined")[index % 2]})

    results = storm(THREADS, send)
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 409: THREADS - 1}, results
    winner = next(body for status, body in results if status == 200)
    assert [step["status"] for step in winner["history"]] == ["pending", winner["status"]]
    assert count(session, ReferralEvent) == 2
    stats = session.get(OrganizationStats, firms[0])
    assert (stats.open_referrals, stats.failed) == ((1, 0) if winner["status"] == "accepted"
                                                    else (0, 1))


def test_concurrent_idempotent_repeats_all_get_the_first_response(
    server, admin_headers, session, firms
):
    payload = {"referrer_organization_id": firms[1], "receiver_organization_id": firms[0],
               "client": {"name": "Repeat Customer GmbH"}, "note": "sent by a flaky CRM"}
    headers = {**admin_headers, "Idempotency-Key": "crm-retry-0001"}

    results = storm(THREADS, lambda http, _i: http.post(server.url + "/api/v1/referrals",
                                               headers=headers, json=payload))
    assert {status for status, _ in results} == {201}, results
    bodies = [body for _, body in results]
    assert all(body == bodies[0] for body in bodies)
    assert count(session, Referral) == 1
    assert count(session, IdempotencyRecord) == 1
