"""The match index keeper: reading firms for the index, and the warm-up that no request pays for."""

from __future__ import annotations

import threading

import pytest

from referral_service.adapters import match_index, sql
from referral_service.adapters.match_index import IndexNotReady
from tests.conftest import office

MATCH = "/api/v1/match"
NEED = {"skills": ["welding"], "location": {"latitude": 22.6273, "longitude": 120.3014}}


def test_load_firms_reads_profiles_offices_skills_and_stats(app, session, make_org, client,
                                                             admin_headers):
    first = make_org(name="First", kind="affiliate", skills=["Welding", "CNC machining"],
                     offices=[office("Kaohsiung", "TW"),
                              {"latitude": 25.03, "longitude": 121.56, "service_radius_km": 40}],
                     capacity=3, description="Steel work.")
    second = make_org(name="Second", skills=[], capacity=None)
    client.delete(f"/api/v1/organizations/{second['id']}", headers=admin_headers)

    firms = {firm.id: firm for firm in sql.load_firms(session)}

    assert set(firms) == {first["id"], second["id"]}
    firm = firms[first["id"]]
    assert (firm.name, firm.kind, firm.description) == ("First", "affiliate", "Steel work.")
    assert firm.skills == ("welding", "cnc-machining")  # in the profile's order
    assert [o.id for o in firm.offices] == [o["id"] for o in first["offices"]]
    assert firm.offices[1].service_radius_km == 40
    assert (firm.active, firm.capacity, firm.open_referrals, firm.won, firm.failed) == (
        True, 3, 0, 0, 0)
    other = firms[second["id"]]
    assert (other.skills, other.active, other.capacity) == ((), False, None)
    assert len(other.offices) == 1


def test_load_firms_by_ids_in_chunks_equals_the_full_read(session, make_org, monkeypatch):
    ids = [make_org(name=f"Firm {k}", skills=["welding", f"skill {k}"])["id"] for k in range(5)]
    everything = {firm.id: firm for firm in sql.load_firms(session)}
    monkeypatch.setattr(sql, "ID_CHUNK", 2)
    some = sql.load_firms(session, ids=ids[1:])
    assert some == [everything[i] for i in ids[1:]]
    assert sql.load_firms(session, ids=[10**6]) == []


class SlowDatabase:
    """A session factory whose first read waits until released (a long index build)."""

    def __init__(self, factory, *, failures: int = 0) -> None:
        self.factory = factory
        self.release = threading.Event()
        self.failures = failures

    def __call__(self):
        self.release.wait(30)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database down")
        return self.factory()


@pytest.fixture
def slow_service(app):
    """The app's match service, its database read held back until released."""
    service = app.extensions["match_index"]
    slow = SlowDatabase(service.session_factory)
    service.session_factory = slow
    service.warmup_wait_seconds = 0.05
    yield service, slow
    slow.release.set()
    if service._warmup is not None:
        service._warmup.join(30)


def test_a_match_during_warm_up_waits_briefly_then_gets_503(client, admin_headers, make_org,
                                                            slow_service):
    service, slow = slow_service
    make_org(name="Welder", skills=["welding"])
    service.start_warmup()
    assert service.warming_up

    ready = client.get("/readyz")  # ready (the database answers), and says why matches wait
    assert ready.status_code == 200
    assert ready.get_json()["match_index"] == "warming up"
    busy = client.post(MATCH, json=NEED, headers=admin_headers)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"]
    assert "warming up" in busy.get_json()["detail"]

    slow.release.set()
    service._warmup.join(30)
    assert not service.warming_up
    assert client.get("/readyz").get_json()["match_index"] == "ok"
    body = client.post(MATCH, json=NEED, headers=admin_headers).get_json()
    assert [c["name"] for c in body["candidates"]] == ["Welder"]


def test_a_match_that_comes_just_before_the_build_ends_waits_for_it(
    app, client, admin_headers, make_org, slow_service
):
    service, slow = slow_service
    make_org(name="Welder", skills=["welding"])
    service.warmup_wait_seconds = 30
    service.start_warmup()
    threading.Timer(0.2, slow.release.set).start()
    response = client.post(MATCH, json=NEED, headers=admin_headers)
    assert response.status_code == 200
    assert [c["name"] for c in response.get_json()["candidates"]] == ["Welder"]


def test_a_failed_warm_up_is_retried(app, make_org, slow_service, monkeypatch):
    service, slow = slow_service
    make_org(name="Welder", skills=["welding"])
    monkeypatch.setattr(match_index, "WARMUP_RETRY_SECONDS", 0.01)
    slow.failures = 2
    slow.release.set()
    service.start_warmup()
    service._warmup.join(30)
    assert slow.failures == 0
    assert not service.warming_up
    assert len(service.current()) == 1


def test_without_warm_up_the_first_match_builds_the_index(app, client, admin_headers,
                                                          make_org):
    service = app.extensions["match_index"]
    make_org(name="Welder", skills=["welding"])
    assert not service.warming_up  # tests, the CLI and `flask run` start no warm-up
    assert client.get("/readyz").status_code == 200
    assert client.post(MATCH, json=NEED, headers=admin_headers).status_code == 200
    assert len(service.current()) == 1


def test_the_keeper_says_not_ready_while_warming_up(app, slow_service):
    service, _ = slow_service
    service.start_warmup()
    with pytest.raises(IndexNotReady):
        service.current()


def test_start_warmup_can_wait_for_a_quick_build(app, make_org):
    service = app.extensions["match_index"]
    make_org(name="Welder", skills=["welding"])
    assert service.start_warmup(wait_seconds=30)
    assert not service.warming_up
    assert len(service.current()) == 1
    assert service.start_warmup(wait_seconds=0)  # once is enough


def _gunicorn_conf(monkeypatch, tmp_path):
    """Load gunicorn.conf.py as gunicorn does: a plain module from the project root."""
    import importlib.util
    from pathlib import Path

    # Loading it sets up a Prometheus folder unless one is set: keep this process's own.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.delenv("MATCH_INDEX_WARMUP", raising=False)

    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Worker:
    """What post_worker_init reads of a gunicorn worker."""

    def __init__(self, age: int, workers: int, service) -> None:
        self.age = age
        self.cfg = type("Cfg", (), {"workers": workers})()
        self.wsgi = type("App", (), {"extensions": {"match_index": service}})()
        self.beats = 0

    def notify(self) -> None:
        self.beats += 1


class _SlowBuild:
    """A match service whose build finishes on the n-th look."""

    def __init__(self, looks_until_built: int) -> None:
        self.looks_until_built = looks_until_built
        self.waits: list[float] = []

    def start_warmup(self, wait_seconds: float = 0.0) -> bool:
        self.waits.append(wait_seconds)
        return len(self.waits) >= self.looks_until_built


def test_first_workers_build_in_the_background_and_replacements_wait_for_their_index(
    monkeypatch, tmp_path
):
    conf = _gunicorn_conf(monkeypatch, tmp_path)

    first = _SlowBuild(looks_until_built=5)
    conf.post_worker_init(_Worker(age=2, workers=4, service=first))
    assert first.waits == [2.0]  # then it takes requests; matches wait for the build

    replacement = _SlowBuild(looks_until_built=5)
    worker = _Worker(age=5, workers=4, service=replacement)
    conf.post_worker_init(worker)
    assert replacement.waits == [1.0] * 5  # no request before its index is built
    assert worker.beats == 4  # heartbeats meanwhile, so gunicorn's timeout does not kill it


def test_a_replacement_gives_up_waiting_after_its_deadline(monkeypatch, tmp_path):
    conf = _gunicorn_conf(monkeypatch, tmp_path)
    monkeypatch.setattr(conf, "REPLACEMENT_WAIT_SECONDS", 0.0)
    never = _SlowBuild(looks_until_built=10**9)
    conf.post_worker_init(_Worker(age=9, workers=2, service=never))
    assert never.waits == [1.0]
