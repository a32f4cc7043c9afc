"""A merge of two skills made through one gunicorn worker shows in every worker's matches in 2 s.

Both halves must reach every worker: the firms' re-pointed tags (through the index's sync)
and the alias the merge leaves (through the workers' alias maps). A need naming the old slug
is covered by both firms only once a worker has both.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import LiveServer, org_payload
from tests.live.test_match_sync import (
    SYNC_SECONDS,
    answers_after,
    wait_until_every_index_is_built,
)

pytestmark = pytest.mark.slow

NEED = {"skills": ["anodising old"], "location": {"latitude": 22.6273, "longitude": 120.3014},
        "limit": 10, "min_skill_fit": 0}


def covered(server: LiveServer, headers: dict) -> set[str]:
    """Return the firms a fresh connection's match says cover the need's skill."""
    with requests.post(server.url + "/api/v1/match", json=NEED, headers=headers) as response:
        assert response.status_code == 200, response.text
        return {c["name"] for c in response.json()["candidates"]
                if c["matched_skills"] == ["anodising-old"]}


def test_a_merge_through_one_worker_reaches_every_workers_matches_within_two_seconds(
    app, database_url, make_key
):
    headers = make_key("admin")
    server = LiveServer(database_url, workers=2, LOG_LEVEL="INFO")
    try:
        with requests.Session() as http:
            http.headers.update(headers)
            for name, skill in (("Old Tag Works", "Anodising old"), ("New Tag Works",
                                                                     "Anodizing")):
                created = http.post(server.url + "/api/v1/organizations",
                                    json=org_payload(name=name, skills=[skill]))
                assert created.status_code == 201, created.text
            wait_until_every_index_is_built(server, workers=2)
            before = time.monotonic() + SYNC_SECONDS + 60
            # every worker has both firms (some answers of each, on fresh connections)
            answers = 0
            while answers < 10:
                assert time.monotonic() < before, server.log_text()[-3000:]
                if covered(server, headers) == {"Old Tag Works"}:
                    answers += 1

            merged = http.post(server.url + "/api/v1/skills/merge",
                               json={"from": "anodising-old", "into": "anodizing"})
            assert merged.status_code == 200, server.log_text()[-3000:]
            merged_at = time.monotonic()

        late = answers_after(merged_at, lambda: covered(server, headers))
        assert late == [{"Old Tag Works", "New Tag Works"}] * len(late), late
    finally:
        server.stop()
