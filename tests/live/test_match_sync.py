"""A profile change made through one gunicorn worker shows in every worker's matches in 2 s."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import LiveServer, org_payload

pytestmark = pytest.mark.slow


def test_change_through_one_worker_reaches_all_workers_within_two_seconds(
    app, database_url, make_key
):
    headers = make_key("admin")
    server = LiveServer(database_url, workers=2)
    try:
        with requests.Session() as http:
            http.headers.update(headers)
            created = http.post(server.url + "/api/v1/organizations",
                                json=org_payload(name="Quiet Firm", skills=["bookkeeping"]))
            assert created.status_code == 201
            need = {"skills": ["underwater welding"], "location": {"latitude": 22.6273,
                                                                   "longitude": 120.3014}}
            # Warm every worker's index (new connections spread over both workers).
            for _ in range(10):
                with requests.post(server.url + "/api/v1/match", json=need, headers=headers) as r:
                    assert r.status_code == 200

            changed = http.patch(server.url + f"/api/v1/organizations/{created.json()['id']}",
                                 json={"skills": ["underwater welding"]})
            assert changed.status_code == 200
            changed_at = time.monotonic()

            seen = []
            deadline = changed_at + 2.0
            while time.monotonic() < deadline:
                # A fresh connection each time, so both workers answer some of them.
                with requests.post(server.url + "/api/v1/match", json=need,
                                   headers=headers) as r:
                    seen.append(r.json()["candidates"][0]["matched_skills"])
                time.sleep(0.05)
            # Every answer in the last 0.5 s before the deadline comes after refresh_seconds
            # (1 s) plus a request: all of them must show the change.
            tail = seen[-5:]
            assert tail == [["underwater-welding"]] * len(tail), seen
    finally:
        server.stop()
