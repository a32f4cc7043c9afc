"""POST /visits with 5 leads each against gunicorn + PostgreSQL, with a baseline in the same run.

    python bench/bench_visits.py --seconds 20                   # quick
    python bench/bench_visits.py --seconds 60 --threads 16 --workers 4 --leads 5

Set-up: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end), `flask db
upgrade`, --firms synthetic firms imported with `flask import-organizations` (no capacity, so
no referral is refused), a `crm` key from `flask create-api-key`, gunicorn with
gunicorn.conf.py and GUNICORN_WORKERS=--workers on the loopback interface, and one salesperson
per client thread made with POST /people (spread over the firms). Before the clock starts,
every worker's match index must be built (/readyz says so: each worker builds it in a thread
as it starts, which would otherwise share the CPU with the first phase), and 3 s of
visits warm the workers up (those visits are checked with the others).

Three phases of --seconds each, --threads client threads, each with its own requests.Session:

- visits     POST /visits: a client never seen before and --leads leads, each a potential
             client never seen before (name, external_ref, contact, skills, description, a
             place with coordinates, relationship); every answer must be 201
- referrals  POST /referrals for a client never seen before (the baseline: one client, one
             row plus its history, audit entry and event; 201)
- healthz    GET /healthz (the baseline of the stack: routing, request log, metrics; 200)

Each phase prints requests/s, p50/p95/p99 latency, errors (any other status or a transport
failure), the CPU used by the client, the gunicorn workers and the PostgreSQL backends (per
request), and the handling time the app logged. Then, with the server stopped, the database
is checked: the visits and leads stored are exactly the ones answered 201 (same ids, --leads
leads each), no visited or potential client is stored twice, and no visit or lead exists that
nobody was told of. Target: >= 200 visits/s, 0 errors, 0 duplicates.
"""

from __future__ import annotations

import argparse
import random
import resource
import secrets
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (bench/common.py; puts the project root on sys.path)
from bench_load import (  # noqa: E402  (what bench_load measures the same way)
    active_firms,
    server_cpu,
    server_log_errors,
    server_side,
)
from common import SKILLS, Cli, Gunicorn, load_average, percentile, verdict  # noqa: E402

TARGET_VISITS_PER_SECOND = 200
RELATIONSHIPS = ("their frame supplier", "a customer of theirs", "met at the trade show",
                 "the owner's brother-in-law", "their former plant manager")


@dataclass
class Phase:
    """What one phase's client threads saw."""

    name: str
    latency: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    # visits: (visit id, visited client name, lead names) of every 201
    acknowledged: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: dict[str, float] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--leads", type=int, default=5)
    parser.add_argument("--firms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parser.parse_args()

    print(f"== bench_visits: {args.seconds:.0f} s a phase, {args.threads} client threads, "
          f"gunicorn {args.workers} workers, {args.leads} leads a visit, PostgreSQL ==")
    print(f"   {load_average()}")
    with common.work_folder("bench-visits-", keep=args.keep) as folder, \
            common.fresh_database("postgresql", folder, keep=args.keep) as url:
        cli, _ = Cli.migrated(url, folder)
        world = common.World(args.seed)
        data = folder / "firms.jsonl"
        common.write_jsonl(data, world.firms(args.firms, capacity_share=0.0))
        seconds, out = cli.run("import-organizations", str(data))
        print(f"seeded: {out.strip().splitlines()[-1]} in {seconds:.1f} s")
        firms = active_firms(url)
        key = cli.create_api_key("crm", name="visits")
        database = url.rsplit("/", 1)[1]
        server = Gunicorn(cli, workers=args.workers, config_file=True,
                          log_path=folder / "gunicorn.log")
        run_tag = secrets.token_hex(3)
        phases: list[Phase] = []
        try:
            # Each worker builds its match index (sklearn and scipy imports, the fit) in a
            # thread as it starts: done before the clock starts, or the first phase pays it.
            seconds = wait_for_indexes(server.url, args.workers)
            print(f"match indexes built in every worker after {seconds:.1f} s more")
            people = make_people(server.url, key, firms, args.threads, run_tag)
            # Warm-up (not timed, but acknowledged and checked like the rest).
            warm = Phase("warm-up")
            drive(warm, server, database, args.threads, time.monotonic() + 3,
                  lambda thread, n, http: post_visit(http, server.url, key, people[thread],
                                                     f"{run_tag}-w{thread:03d}", n, args.leads,
                                                     world, warm))
            for name in ("visits", "referrals", "healthz"):
                phase = Phase(name)
                log_start = server.log_path.stat().st_size
                print(f"-- {name:<10} running [{load_average()}]", flush=True)
                drive(phase, server, database, args.threads, time.monotonic() + args.seconds,
                      sender(name, server.url, key, people, firms, run_tag, args, world, phase))
                report(phase)
                server_side(server.log_path, log_start)
                phases.append(phase)
        finally:
            server.stop()
        log_errors = server_log_errors(server.log_path)
        visits = phases[0]
        problems = check_rows(url, [warm, visits], args.leads)
    rate = len(visits.latency) / visits.elapsed
    referral_rate = len(phases[1].latency) / phases[1].elapsed
    errors = sum(sum(phase.errors.values()) for phase in (warm, *phases))
    print("\n== verdict ==")
    print(f"   {load_average()}")
    print(f"visits/s ({args.leads} leads each)                {rate:8.1f}   target >= "
          f"{TARGET_VISITS_PER_SECOND}   {verdict(rate >= TARGET_VISITS_PER_SECOND)}")
    print(f"visits/s against POST /referrals/s           {rate / referral_rate:8.2f}   "
          f"({rate:.1f} / {referral_rate:.1f})")
    print(f"leads written/s                              {rate * args.leads:8.1f}")
    print(f"errors (unexpected status or transport)      {errors:>8}   target 0   "
          f"{verdict(errors == 0)}")
    print(f"server log lines at ERROR or CRITICAL        {log_errors:>8}")
    for check, found in problems.items():
        print(f"{check:<44} {found:>8}   target 0   {verdict(found == 0)}")


def wait_for_indexes(url: str, workers: int, timeout: float = 600.0) -> float:
    """Wait until /readyz has said "match_index": "ok" many times in a row (each answer comes
    from whichever worker is free); return the seconds waited."""
    import requests

    started = time.monotonic()
    in_a_row = 0
    with requests.Session() as http:
        while in_a_row < workers * 10:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the match index still warming up after {timeout:.0f} s")
            if http.get(url + "/readyz", timeout=60).json().get("match_index") == "ok":
                in_a_row += 1
            else:
                in_a_row = 0
                time.sleep(0.5)
    return time.monotonic() - started


def make_people(url: str, key: str, firms: list[int], count: int, run_tag: str) -> list[int]:
    """Create one salesperson a client thread, spread over the firms; return their ids."""
    import requests

    made = []
    with requests.Session() as http:
        for index in range(count):
            response = http.post(url + "/api/v1/people", headers=_auth(key), timeout=60, json={
                "organization_id": firms[index % len(firms)],
                "name": f"Seller {run_tag} {index}", "external_ref": f"P-{run_tag}-{index}"})
            response.raise_for_status()
            made.append(response.json()["id"])
    return made


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def sender(name: str, url: str, key: str, people: list[int], firms: list[int], run_tag: str,
           args: argparse.Namespace, world: common.World, phase: Phase):
    """Return the function one client thread calls for its n-th request of this phase."""
    if name == "visits":
        return lambda thread, n, http: post_visit(http, url, key, people[thread],
                                                  f"{run_tag}-t{thread:03d}", n, args.leads, world,
                                                  phase)
    if name == "referrals":
        def post_referral(thread: int, n: int, http: Any) -> tuple[int, float]:
            rng = random.Random(f"{run_tag}-{thread}-{n}")
            referrer, receiver = rng.sample(firms, 2)
            _, lat, lon = world.place(rng)
            body = {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
                    "client": {"name": f"Referred {run_tag}-t{thread:03d}-n{n:07d}",
                               "external_ref": f"R-{run_tag}-t{thread:03d}-n{n:07d}",
                               "location": {"latitude": lat, "longitude": lon}},
                    "skills": rng.sample(SKILLS, 2), "description": "anodising of housings"}
            started = time.perf_counter()
            response = http.post(url + "/api/v1/referrals", json=body, headers=_auth(key),
                                 timeout=60)
            return response.status_code, time.perf_counter() - started
        return post_referral

    def get_healthz(_thread: int, _n: int, http: Any) -> tuple[int, float]:
        started = time.perf_counter()
        response = http.get(url + "/healthz", timeout=60)
        return response.status_code, time.perf_counter() - started
    return get_healthz


def post_visit(http: Any, url: str, key: str, person_id: int, tag: str, n: int, leads: int,
               world: common.World, phase: Phase) -> tuple[int, float]:
    """POST one visit to a new client with `leads` new potential clients; note a 201."""
    rng = random.Random(f"{tag}-{n}")
    # Fixed widths: a client's name compares with its punctuation and spaces left out.
    client_name = f"Visited {tag}-n{n:07d}"
    lead_names = tuple(f"Lead {tag}-n{n:07d}-k{k:03d}" for k in range(leads))
    body = {
        "person_id": person_id,
        "client": {"name": client_name, "external_ref": f"V-{tag}-n{n:07d}"},
        "visited_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "notes": "Met the purchasing manager.",
        "leads": [{"name": name, "external_ref": f"L-{tag}-n{n:07d}-k{k:03d}",
                   "contact": f"Mr Wu, 07-555-{k:04d}", "skills": rng.sample(SKILLS, 2),
                   "description": "anodising of bicycle frames, 2,000 a month",
                   "location": dict(zip(("latitude", "longitude"), world.place(rng)[1:],
                                        strict=True)),
                   "relationship": rng.choice(RELATIONSHIPS)}
                  for k, name in enumerate(lead_names)],
    }
    started = time.perf_counter()
    response = http.post(url + "/api/v1/visits", json=body, headers=_auth(key), timeout=60)
    elapsed = time.perf_counter() - started
    if response.status_code == 201:
        answer = response.json()
        phase.acknowledged.append((answer["id"], client_name, lead_names))
    return response.status_code, elapsed


def drive(phase: Phase, server: Gunicorn, database: str, threads: int, deadline: float,
          send) -> None:
    """Run `threads` client threads calling send(thread, n, http) until the deadline."""
    import requests

    expected = {"visits": 201, "warm-up": 201, "referrals": 201, "healthz": 200}[phase.name]
    cpu_before = server_cpu(server, database)
    client_before = _cpu()
    started = time.monotonic()

    def one(thread: int) -> None:
        n = 0
        with requests.Session() as http:
            while time.monotonic() < deadline:
                try:
                    status, seconds = send(thread, n, http)
                except requests.RequestException as error:
                    phase.errors[type(error).__name__] += 1
                    continue
                finally:
                    n += 1
                phase.latency.append(seconds)
                phase.statuses[status] += 1
                if status != expected:
                    phase.errors[f"HTTP {status}"] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(threads)))
    phase.elapsed = time.monotonic() - started
    phase.client_cpu = _cpu() - client_before
    cpu_after = server_cpu(server, database)
    for part in ("workers", "postgres"):
        phase.server_cpu[part] = sum(cpu_after[part].get(pid, 0.0) - cpu_before[part].get(pid, 0.0)
                                     for pid in cpu_after[part])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(phase: Phase) -> None:
    """Print the phase's throughput, latency, statuses and CPU."""
    done = len(phase.latency)
    ms = [s * 1000 for s in phase.latency]
    print(f"   {phase.name:<10} {done:>7,} requests in {phase.elapsed:5.1f} s = "
          f"{done / phase.elapsed:7.1f} req/s   p50 {statistics.median(ms):6.1f} ms   "
          f"p95 {percentile(ms, 95):6.1f} ms   p99 {percentile(ms, 99):6.1f} ms   "
          f"errors {sum(phase.errors.values())}")
    print(f"   {'':<10} statuses {dict(sorted(phase.statuses.items()))}"
          + (f"   errors {dict(phase.errors)}" if phase.errors else ""))
    parts = [("client", phase.client_cpu), *phase.server_cpu.items()]
    print("   " + " " * 10 + "   ".join(
        f"{part} {used:5.1f} s CPU = {used / phase.elapsed:4.2f} cores, "
        f"{used * 1000 / max(done, 1):5.2f} ms a request" for part, used in parts))


def check_rows(url: str, phases: list[Phase], leads: int) -> dict[str, int]:
    """Compare the visits and leads stored with those answered 201; count duplicates."""
    from sqlalchemy import create_engine, text

    acknowledged = {visit_id: (client, names) for phase in phases
                    for visit_id, client, names in phase.acknowledged}
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            stored = dict(connection.execute(text(
                "SELECT v.id, c.name FROM visits v JOIN clients c ON c.id = v.client_id")).all())
            lead_rows = connection.execute(text(
                "SELECT visit_id, name, client_id FROM leads")).all()
            # Every client the benchmark sends has its own CRM id and its own name.
            duplicate_refs, duplicate_names = connection.execute(text(
                "SELECT count(*) - count(DISTINCT external_ref_key), "
                "count(*) - count(DISTINCT normalized_name) FROM clients")).one()
    finally:
        engine.dispose()
    leads_of: dict[int, list[str]] = {}
    for visit_id, name, _ in lead_rows:
        leads_of.setdefault(visit_id, []).append(name)
    sent_leads = sum(len(names) for _, names in acknowledged.values())
    print(f"\nrows: {len(acknowledged):,} visits answered 201 (warm-up included), "
          f"{len(stored):,} stored; {sent_leads:,} leads sent, {len(lead_rows):,} stored")
    return {
        "visits answered 201 but not stored": len(set(acknowledged) - set(stored)),
        "visits stored that nobody was told of": len(set(stored) - set(acknowledged)),
        "visits with the wrong client or leads": sum(
            1 for visit_id, (client, names) in acknowledged.items()
            if stored.get(visit_id) != client
            or sorted(leads_of.get(visit_id, ())) != sorted(names)
            or len(names) != leads),
        "leads stored - leads sent": abs(len(lead_rows) - sent_leads),
        "duplicate clients (same CRM id)": duplicate_refs,
        "duplicate clients (same name)": duplicate_names,
        "leads sharing a client": len(lead_rows) - len({row[2] for row in lead_rows}),
    }


if __name__ == "__main__":
    main()
