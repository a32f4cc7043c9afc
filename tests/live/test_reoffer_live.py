"""Re-offer through a real gunicorn server (SPEC section 11, issue 15): concurrent declines each
re-offer exactly once, and a worker that dies between a decline and its re-offer leaves
neither (they are one transaction)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from models import OrganizationStats, Referral
from referral_service.extensions import FAULT_VARIABLE
from tests.api.test_reoffer import _firm
from tests.conftest import LiveServer
from tests.live.races import count, storm

pytestmark = pytest.mark.slow

REFERRALS = 20


def _world(client, admin_headers, make_org, clients: int) -> tuple[dict[str, int], list[int]]:
    """A referrer, the receiver that declines (nearest) and the next best welder; `clients`
    referrals to the nearest, each of its own client."""
    world = {"referrer": _firm(make_org, "Referrer Trading", 5, skills=("logistics",)),
             "first": _firm(make_org, "Alpha Welding", 0),
             "next": _firm(make_org, "Bravo Welding", 30)}
    made = []
    for number in range(clients):
        response = client.post("/api/v1/referrals", headers=admin_headers, json={
            "referrer_organization_id": world["referrer"],
            "receiver_organization_id": world["first"],
            "client": {"name": f"Shipyard {number}",
                       "location": {"latitude": 22.6273, "longitude": 120.3014}},
            "skills": ["welding"]})
        assert response.status_code == 201, response.get_json()
        made.append(response.get_json()["id"])
    return world, made


def _warm(server: LiveServer, answers: int = 30) -> LiveServer:
    """Wait until every worker has built its match index (a decline's re-offer needs it; one
    that comes during the warm-up is a 503 to retry, nothing moved)."""
    deadline, in_a_row = time.monotonic() + 90, 0
    while in_a_row < answers:
        assert time.monotonic() < deadline, server.log_text()
        ready = requests.get(server.url + "/readyz", timeout=10).json()
        in_a_row = in_a_row + 1 if ready.get("match_index") == "ok" else 0
        if not in_a_row:
            time.sleep(0.2)
    return server


def _declines_without_reoffer(session) -> int:
    session.rollback()
    reoffered = select(Referral.previous_referral_id).where(
        Referral.previous_referral_id.is_not(None))
    return count(session, Referral, Referral.status == "declined",
                 Referral.id.not_in(reoffered))


def test_twenty_concurrent_declines_give_twenty_re_offers_and_no_duplicate(
    app, database_url, client, admin_headers, make_org, session
):
    world, made = _world(client, admin_headers, make_org, REFERRALS)
    server = _warm(LiveServer(database_url, workers=3))
    try:
        # Each referral declined twice at once: one decline wins, the other finds it declined.
        results = storm(2 * REFERRALS, lambda http, i: http.patch(
            f"{server.url}/api/v1/referrals/{made[i % REFERRALS]}", headers=admin_headers,
            json={"status": "declined", "reason": "Fully booked."}, timeout=60))
    finally:
        server.stop()
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: REFERRALS, 409: REFERRALS}, (results, server.log_text())
    session.rollback()
    reoffers = session.scalars(select(Referral).where(
        Referral.previous_referral_id.is_not(None))).all()
    assert sorted(r.previous_referral_id for r in reoffers) == sorted(made)
    assert {r.receiver_organization_id for r in reoffers} == {world["next"]}
    assert {r.status for r in reoffers} == {"pending"}
    assert count(session, Referral) == 2 * REFERRALS
    assert session.scalar(select(func.count(func.distinct(Referral.client_id))).where(
        Referral.status == "pending")) == REFERRALS
    assert session.get(OrganizationStats, world["next"]).open_referrals == REFERRALS
    assert session.get(OrganizationStats, world["first"]).open_referrals == 0
    assert _declines_without_reoffer(session) == 0


def test_a_worker_killed_between_decline_and_re_offer_leaves_the_referral_pending(
    app, database_url, client, admin_headers, make_org, session
):
    world, made = _world(client, admin_headers, make_org, 3)
    dying = _warm(LiveServer(database_url, workers=2,
                             **{FAULT_VARIABLE: "exit-before-reoffer"}))
    try:
        for referral_id in made:
            with pytest.raises(requests.ConnectionError) as died:  # the worker is gone
                requests.patch(f"{dying.url}/api/v1/referrals/{referral_id}",
                               headers=admin_headers, json={"status": "declined"}, timeout=30)
            assert not isinstance(died.value, requests.Timeout)
    finally:
        dying.stop()
    assert dying.log_text().count("exited with code 1") == len(made), dying.log_text()
    session.rollback()
    assert _declines_without_reoffer(session) == 0
    assert set(session.scalars(select(Referral.status))) == {"pending"}
    assert count(session, Referral) == 3
    assert session.get(OrganizationStats, world["first"]).open_referrals == 3

    healthy = _warm(LiveServer(database_url, workers=2))
    try:  # the caller retries: now the decline and its re-offer commit together
        for referral_id in made:
            response = requests.patch(f"{healthy.url}/api/v1/referrals/{referral_id}",
                                      headers=admin_headers, json={"status": "declined"},
                                      timeout=30)
            assert response.status_code == 200, response.text
            assert len(response.json()["chain"]) == 2
    finally:
        healthy.stop()
    assert _declines_without_reoffer(session) == 0
    assert count(session, Referral, Referral.receiver_organization_id == world["next"]) == 3
