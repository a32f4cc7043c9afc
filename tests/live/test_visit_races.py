"""Visits and leads under concurrent requests through a real gunicorn server with 4 workers.

Referring a lead, resending a visit with its Idempotency-Key and two reports naming the same
new potential client are decided by the database (row locks, unique indexes, BEGIN
IMMEDIATE), so these hold across processes on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from models import Client, IdempotencyRecord, Lead, Referral, Visit
from tests.conftest import LiveServer
from tests.live.races import count, storm

pytestmark = pytest.mark.slow

THREADS = 8


@pytest.fixture(scope="module")
def server(database_url):
    live = LiveServer(database_url, workers=4)
    yield live
    live.stop()




@pytest.fixture
def firms(make_org):
    """Our firm (its salespeople visit clients) and two that take referrals."""
    return [make_org(name=name, capacity=None)["id"] for name in ("Harbor", "Blue", "Far")]


@pytest.fixture
def sellers(client, admin_headers, firms):
    """A salesperson of each of the first two firms."""
    made = []
    for organization_id, name in ((firms[0], "Kenji Sato"), (firms[1], "Mei Lin")):
        response = client.post("/api/v1/people", headers=admin_headers,
                               json={"organization_id": organization_id, "name": name})
        assert response.status_code == 201, response.get_json()
        made.append(response.get_json()["id"])
    return made


def report(person_id: int, client_name: str, leads: list[dict]) -> dict:
    return {"person_id": person_id, "client": {"name": client_name},
            "visited_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "leads": leads}


def test_one_lead_referred_at_once_from_eight_threads_gives_one_referral(
    server, client, admin_headers, session, firms, sellers
):
    visit = client.post("/api/v1/visits", headers=admin_headers, json=report(
        sellers[0], "Acme Bicycles", [{"name": "Delta Frames", "skills": ["Anodizing"]}]))
    assert visit.status_code == 201, visit.get_json()
    lead_id = visit.get_json()["leads"][0]["id"]

    def send(http, index):
        return http.post(f"{server.url}/api/v1/leads/{lead_id}/refer", headers=admin_headers,
                         json={"receiver_organization_id": firms[1 + index % 2]})

    results = storm(THREADS, send)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: THREADS - 1}, results
    winner = next(body for status, body in results if status == 201)
    assert winner["source"] == {"kind": "visit", "visit_id": visit.get_json()["id"],
                                "lead_id": lead_id}
    assert {body["existing_referral_id"] for status, body in results if status == 409} == {
        winner["id"]}
    assert count(session, Referral) == 1
    lead = session.get(Lead, lead_id)
    assert (lead.status, lead.referral_id) == ("referred", winner["id"])


def test_one_visit_resent_eight_times_at_once_is_stored_once(
    server, admin_headers, session, sellers
):
    body = report(sellers[0], "Acme Bicycles", [
        {"name": f"Lead {n}", "contact": f"07-555-010{n}"} for n in range(3)])
    headers = {**admin_headers, "Idempotency-Key": "phone-retry-0001"}

    results = storm(THREADS, lambda http, _i: http.post(
        server.url + "/api/v1/visits", headers=headers, json=body))
    assert {status for status, _ in results} == {201}, results
    bodies = [answer for _, answer in results]
    assert all(answer == bodies[0] for answer in bodies)
    assert count(session, Visit) == 1
    assert count(session, Lead) == 3
    assert count(session, Lead, Lead.visit_id == bodies[0]["id"]) == 3
    assert count(session, IdempotencyRecord) == 1


def test_visits_at_once_naming_the_same_new_lead_store_each_and_one_client(
    server, admin_headers, session, sellers
):
    spellings = ("Zenith Optics Ltd", "ZENITH OPTICS", "zenith optics, ltd.",
                 "Zenith Optics Co., Ltd.")

    def send(http, index):
        return http.post(server.url + "/api/v1/visits", headers=admin_headers, json=report(
            sellers[index % 2], f"Visited Client {index}",
            [{"name": spellings[index % len(spellings)]}]))

    results = storm(THREADS, send)
    assert Counter(status for status, _ in results) == {201: THREADS}, results
    assert count(session, Visit) == THREADS
    lead_clients = {body["leads"][0]["client_id"] for _, body in results}
    assert len(lead_clients) == 1
    assert count(session, Lead) == THREADS
    # The eight visited clients and the one potential client they all named.
    assert count(session, Client) == THREADS + 1
