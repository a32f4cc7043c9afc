"""A firm's group changed through one gunicorn worker shows in every worker's group matches
within 2 s (SPEC sections 4 and 8): the group rides the existing profile sync."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import LiveServer, org_payload
from tests.live.test_match_sync import answers_after, wait_until_every_index_is_built

pytestmark = pytest.mark.slow


def test_a_firm_joining_a_group_reaches_every_workers_same_group_match(
    app, database_url, make_key
):
    headers = make_key("admin")
    server = LiveServer(database_url, workers=2, LOG_LEVEL="INFO")
    try:
        wait_until_every_index_is_built(server, workers=2)
        with requests.Session() as http:
            http.headers.update(headers)
            referrer = http.post(server.url + "/api/v1/organizations", json=org_payload(
                name="Formosa Trading", skills=["freight forwarding"], group="Formosa Group"))
            joiner = http.post(server.url + "/api/v1/organizations", json=org_payload(
                name="Harbor Welding", skills=["underwater welding"]))
            assert referrer.status_code == joiner.status_code == 201
            need = {"skills": ["underwater welding"], "same_group_only": True,
                    "referrer_organization_id": referrer.json()["id"],
                    "location": {"latitude": 22.6273, "longitude": 120.3014}}

            changed = http.patch(server.url + f"/api/v1/organizations/{joiner.json()['id']}",
                                 json={"group": "formosa group"})
            assert changed.status_code == 200, server.log_text()[-3000:]
            changed_at = time.monotonic()

            def proposed() -> list[str] | None:
                """The firms proposed (None from a worker that has not seen the referrer yet:
                it says the referrer does not exist)."""
                with requests.post(server.url + "/api/v1/match", json=need,
                                   headers=headers) as r:
                    return ([c["name"] for c in r.json()["candidates"]]
                            if r.status_code == 200 else None)

            late = answers_after(changed_at, proposed)
            assert late == [["Harbor Welding"]] * len(late), late
    finally:
        server.stop()
