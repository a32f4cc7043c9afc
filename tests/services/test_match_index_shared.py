"""The index gunicorn's master makes once (built, or loaded from a snapshot): a worker starts
from it, and nothing older than the database is served."""

from __future__ import annotations

import gc
import json

import pytest

from referral_service.adapters import match_index, match_snapshot
from referral_service.adapters.match_index import build_for_workers

MATCH = "/api/v1/match"
NEED = {"skills": ["welding"], "location": {"latitude": 22.6273, "longitude": 120.3014}}


@pytest.fixture
def unfreeze():
    """build_for_workers freezes the collector's view of every object: undo it afterwards."""
    yield
    gc.unfreeze()
    match_index._built_for_workers.clear()


def _matched(client, headers) -> list[str]:
    body = client.post(MATCH, json=NEED, headers=headers).get_json()
    return sorted(c["name"] for c in body["candidates"])


def test_a_worker_starts_from_the_masters_index_caught_up_before_its_first_match(
    app, client, admin_headers, make_org, unfreeze
):
    make_org(name="Welder", skills=["welding"])
    painter = make_org(name="Painter", skills=["painting"])
    service = app.extensions["match_index"]
    assert build_for_workers(service.session_factory, key=service.shared_key) == "2 firms, built"
    # The master's index is now stale: a change made after it was built.
    changed = client.patch(f"/api/v1/organizations/{painter['id']}",
                           json={"skills": ["welding"]}, headers=admin_headers)
    assert changed.status_code == 200

    assert service.start_warmup(wait_seconds=30)
    assert service.origin == "inherited from the master, 1 changed firms caught up"
    assert _matched(client, admin_headers) == ["Painter", "Welder"]


def test_an_index_built_for_another_database_is_not_taken(app, client, admin_headers,
                                                         make_org, unfreeze):
    make_org(name="Welder", skills=["welding"])
    service = app.extensions["match_index"]
    build_for_workers(service.session_factory, key="sqlite:///another.db")
    assert service.start_warmup(wait_seconds=30)
    assert service.origin == "built"
    assert len(service.current()) == 1


def test_a_stale_snapshot_is_caught_up_before_the_first_match(
    app, client, admin_headers, make_org, unfreeze, tmp_path
):
    make_org(name="Welder", skills=["welding"])
    painter = make_org(name="Painter", skills=["painting"])
    service = app.extensions["match_index"]
    snapshot = tmp_path / "match-index"
    made = build_for_workers(service.session_factory, key=service.shared_key,
                             snapshot=snapshot, write_in_background=False)
    assert made == "2 firms, built" and (snapshot / "meta.json").exists()
    match_index._built_for_workers.clear()  # a new start of the server
    changed = client.patch(f"/api/v1/organizations/{painter['id']}",
                           json={"skills": ["welding"]}, headers=admin_headers)
    assert changed.status_code == 200

    made = build_for_workers(service.session_factory, key=service.shared_key,
                             snapshot=snapshot, write_in_background=False)
    assert made == "2 firms, loaded from the snapshot, 1 changed firms caught up"
    assert service.start_warmup(wait_seconds=30)
    assert service.origin.startswith("inherited from the master")
    assert _matched(client, admin_headers) == ["Painter", "Welder"]


def test_a_snapshot_is_only_used_by_its_database_and_scoring_code(app, make_org, unfreeze,
                                                                  tmp_path, monkeypatch):
    make_org(name="Welder", skills=["welding"])
    service = app.extensions["match_index"]
    snapshot = tmp_path / "match-index"
    build_for_workers(service.session_factory, key=service.shared_key, snapshot=snapshot,
                      write_in_background=False)
    assert match_snapshot.read(snapshot, database_key=service.shared_key) is not None
    assert match_snapshot.read(snapshot, database_key="sqlite:///another.db") is None
    monkeypatch.setattr(match_snapshot, "code_fingerprint", lambda: "other scoring code")
    assert match_snapshot.read(snapshot, database_key=service.shared_key) is None


def test_a_snapshot_newer_than_the_database_is_not_used(app, make_org, unfreeze, tmp_path):
    # e.g. an older backup restored since: its rows would not count as changes
    make_org(name="Welder", skills=["welding"])
    service = app.extensions["match_index"]
    snapshot = tmp_path / "match-index"
    build_for_workers(service.session_factory, key=service.shared_key, snapshot=snapshot,
                      write_in_background=False)
    meta_path = snapshot / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["marks"]["latest"] = "9999-01-01T00:00:00"
    meta_path.write_text(json.dumps(meta))
    made = build_for_workers(service.session_factory, key=service.shared_key,
                             snapshot=snapshot, write_in_background=False)
    assert made == "1 firms, built"
    assert json.loads(meta_path.read_text())["marks"]["latest"] < "9999"  # written again


def test_a_worker_builds_its_own_when_most_firms_changed_since_the_master(
    app, client, admin_headers, make_org, unfreeze, monkeypatch
):
    # a replacement worker forked long after the start: a fresh build costs less
    monkeypatch.setattr(match_index, "REBUILD_SHARE", 0.4)
    monkeypatch.setattr(match_index, "REBUILD_MIN", 0)
    make_org(name="Welder", skills=["welding"])
    painter = make_org(name="Painter", skills=["painting"])
    service = app.extensions["match_index"]
    build_for_workers(service.session_factory, key=service.shared_key)
    client.patch(f"/api/v1/organizations/{painter['id']}", json={"skills": ["welding"]},
                 headers=admin_headers)
    assert service.start_warmup(wait_seconds=30)
    assert service.origin == "built (too many changes since the master's index)"
    assert _matched(client, admin_headers) == ["Painter", "Welder"]
