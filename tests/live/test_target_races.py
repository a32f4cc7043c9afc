"""Concurrent decisions on one target proposal through a real gunicorn server: one wins, the
others are 409s, and exactly one open or agreed value remains with its whole history (the row
lock and version column of the proposal, the partial unique index of open proposals)."""

from __future__ import annotations

from collections import Counter

import pytest

from models import KpiTarget, KpiTargetProposal
from tests.conftest import LiveServer
from tests.live.races import count, storm

pytestmark = pytest.mark.slow

API = "/api/v1/kpi/target-proposals"
THREADS = 12
ROUNDS = 6


@pytest.fixture(scope="module")
def server(database_url):
    live = LiveServer(database_url, workers=4)
    yield live
    live.stop()


@pytest.fixture
def firm(make_org):
    return make_org(name="Harbor Works")["id"]


def test_counters_and_agreements_at_once_leave_one_value_and_a_full_history(
        server, client, make_key, admin_headers, session, firm):
    partner = make_key("partner", firm)
    for round_ in range(ROUNDS):
        month = f"2027-{round_ + 1:02d}"
        first = client.post(API, headers=partner, json={
            "scope": "organization", "scope_id": firm, "month": month, "new_clients": 50})
        assert first.status_code == 201, first.get_json()
        proposal = first.get_json()["id"]

        def send(http, index, proposal=proposal):
            # Head office's users disagree: some counter (each with their own value), some agree.
            if index % 2:
                return http.post(f"{server.url}{API}/{proposal}/agree", headers=admin_headers,
                                 json={"note": f"agree {index}"})
            return http.post(f"{server.url}{API}/{proposal}/counter", headers=admin_headers,
                             json={"new_clients": index, "note": f"counter {index}"})

        results = storm(THREADS, send)
        statuses = Counter(status for status, _ in results)
        winners = [body for status, body in results if status in (200, 201)]
        assert len(winners) == 1 and statuses[409] == THREADS - 1, results
        final = winners[0]["status"] if statuses[200] else "countered"
        assert {body["current_status"] for status, body in results if status == 409} == {final}

        session.rollback()
        rows = session.query(KpiTargetProposal).filter_by(month=month).order_by(
            KpiTargetProposal.id).all()
        live = [row for row in rows if row.status in ("proposed", "agreed")]
        assert len(live) == 1, [(row.id, row.status) for row in rows]
        history = client.get(f"{API}/{proposal}", headers=admin_headers).get_json()["history"]
        assert [step["id"] for step in history] == [row.id for row in rows]
        if final == "agreed":
            assert len(rows) == 1
            assert session.get(KpiTarget, ("organization", firm, month)).proposal_id == proposal
        else:
            assert [row.status for row in rows] == ["countered", "proposed"]
            assert rows[1].counter_of_id == proposal and rows[1].side == "counterpart"
            assert session.get(KpiTarget, ("organization", firm, month)) is None


def test_concurrent_proposals_for_one_scope_and_month_open_exactly_one(
        server, make_key, admin_headers, session, firm):
    partner = make_key("partner", firm)

    def send(http, index):
        return http.post(server.url + API, headers=partner if index % 2 else admin_headers,
                         json={"scope": "organization", "scope_id": firm, "month": "2027-09",
                               "new_clients": index})

    results = storm(THREADS, send)
    assert Counter(status for status, _ in results) == {201: 1, 409: THREADS - 1}, results
    winner = next(body for status, body in results if status == 201)
    assert {body["open_proposal_id"] for status, body in results if status == 409} == {
        winner["id"]}
    session.rollback()
    assert count(session, KpiTargetProposal) == 1
