"""The index gunicorn's master builds once: a worker starts from it and catches it up first."""

from __future__ import annotations

import gc

import pytest

from referral_service.adapters.match_index import build_for_workers

MATCH = "/api/v1/match"
NEED = {"skills": ["welding"], "location": {"latitude": 22.6273, "longitude": 120.3014}}


@pytest.fixture
def unfreeze():
    """build_for_workers freezes the collector's view of every object: undo it afterwards."""
    yield
    gc.unfreeze()


def test_a_worker_starts_from_the_masters_index_caught_up_before_its_first_match(
    app, client, admin_headers, make_org, unfreeze
):
    make_org(name="Welder", skills=["welding"])
    painter = make_org(name="Painter", skills=["painting"])
    service = app.extensions["match_index"]
    assert build_for_workers(service.session_factory, key=service.shared_key) == 2
    # The master's index is now stale: a change made after it was built.
    changed = client.patch(f"/api/v1/organizations/{painter['id']}",
                           json={"skills": ["welding"]}, headers=admin_headers)
    assert changed.status_code == 200

    assert service.start_warmup(wait_seconds=30)
    assert service.origin == "inherited from the master, 1 changed firms caught up"
    body = client.post(MATCH, json=NEED, headers=admin_headers).get_json()
    assert sorted(c["name"] for c in body["candidates"]) == ["Painter", "Welder"]


def test_an_index_built_for_another_database_is_not_taken(app, client, admin_headers,
                                                         make_org, unfreeze):
    make_org(name="Welder", skills=["welding"])
    service = app.extensions["match_index"]
    build_for_workers(service.session_factory, key="sqlite:///another.db")
    assert service.start_warmup(wait_seconds=30)
    assert service.origin == "built"
    assert len(service.current()) == 1
