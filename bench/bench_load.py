"""Drive a mixed workload against gunicorn + PostgreSQL from many concurrent clients, then
check in the database that nothing was lost, duplicated or miscounted.

    python bench/bench_load.py --seconds 15                    # quick
    python bench/bench_load.py --seconds 60 --threads 32 --workers 4 --firms 2000

Set-up: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end), `flask db
upgrade`, --firms synthetic firms imported with `flask import-organizations` (a share of
them with a small capacity, so that "receiver full" happens), a CRM key from `flask
create-api-key`, and gunicorn with gunicorn.conf.py and GUNICORN_WORKERS=--workers on the
loopback interface.

Workload: --threads client threads, each with its own requests.Session, loop until the time
is up, each step one of (weights in OPERATION_WEIGHTS):

- match         POST /match for one of 500 needs (200)
- create        POST /referrals for a client never seen before (201; 409 only when the
                receiver is at capacity, counted apart as expected)
- create_idem   the same with an Idempotency-Key, then replay  the identical request, which
                must answer 201 with the same referral
- duplicate     POST /referrals for a client the thread already referred (open or converted)
                through other firms: a deliberate duplicate, which must answer 409 naming the
                existing referral
- move          PATCH /referrals/{id} on one of the thread's own referrals: pending -> accepted
                or declined, accepted -> converted or lost; half of them with If-Match (200)
- kpi           GET /kpi/monthly for this month (200)
- org_get       GET /organizations/{id} (200)

Only the thread that created a referral moves it, so no 409 on a move is expected. Every other
non-2xx answer, and every transport error, is an error.

Afterwards, with the server stopped, it checks in the database: every referral answered 201
exists exactly once and no referral exists that was not acknowledged; each referral has the
status and version its client last saw and one history event per move; no client has two
open referrals; organization_stats.open_referrals, won and failed equal the real counts per
receiver, and open_referrals never exceeds capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (bench/common.py; puts the project root on sys.path)
from common import Cli, Gunicorn, load_average, percentile, verdict  # noqa: E402

OPERATION_WEIGHTS = {"match": 30, "create": 20, "create_idem": 4, "duplicate": 4, "move": 24,
                     "kpi": 6, "org_get": 12}
OPERATIONS = (*OPERATION_WEIGHTS, "replay")
MOVES = {"pending": (("accepted", 0.7), ("declined", 0.3)),
         "accepted": (("converted", 0.6), ("lost", 0.4))}
OPEN = ("pending", "accepted")
# A referral of these statuses keeps its client's credit: a new referral must be refused.
HOLDS_CREDIT = ("pending", "accepted", "converted")


@dataclass
class Owned:
    """A referral one thread created: what its client last saw of it."""

    id: int
    client_name: str
    client_ref: str
    referrer: int
    receiver: int
    status: str
    version: int
    moves: int = 0


@dataclass
class Tally:
    """One thread's measurements, merged at the end (no lock in the hot loop)."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    expected_409: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    owned: list[Owned] = field(default_factory=list)

    def error(self, operation: str, status: Any, detail: str) -> None:
        self.errors[(operation, status)] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{operation} -> {status}: {detail[:300]}")


class Client:
    """One simulated CRM connection running the workload."""

    def __init__(self, number: int, url: str, key: str, run_tag: str, firms: list[int],
                 needs: list[dict], deadline: float, seed: int) -> None:
        import random

        import requests

        self.number, self.url, self.run_tag = number, url, run_tag
        self.firms, self.needs, self.deadline = firms, needs, deadline
        self.rng = random.Random(seed * 1000 + number)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.tally = Tally()
        self.sequence = 0
        self.month = datetime.now(UTC).strftime("%Y-%m")
        self.operations, self.weights = zip(*OPERATION_WEIGHTS.items(), strict=True)

    def run(self) -> Tally:
        """Run operations until the deadline; return the measurements."""
        try:
            while time.monotonic() < self.deadline:
                operation = self.rng.choices(self.operations, self.weights)[0]
                try:
                    getattr(self, operation)()
                except Exception as error:  # e.g. an answer whose body is not JSON
                    self.tally.error(operation, "client exception", repr(error))
        finally:
            self.http.close()
        return self.tally

    # ------------------------------------------------------------------ the requests

    def call(self, operation: str, method: str, path: str, **kwargs):
        """Send one request and time it; None (an error counted) on a transport failure."""
        import requests

        started = time.perf_counter()
        try:
            response = self.http.request(method, self.url + path, timeout=60, **kwargs)
        except requests.RequestException as error:
            self.tally.latency[operation].append((time.perf_counter() - started) * 1000)
            self.tally.statuses[operation][type(error).__name__] += 1
            self.tally.error(operation, type(error).__name__, str(error))
            return None
        self.tally.latency[operation].append((time.perf_counter() - started) * 1000)
        self.tally.statuses[operation][response.status_code] += 1
        return response

    def expect(self, operation: str, response, status: int) -> bool:
        """Count an unexpected status as an error; return whether it was the expected one."""
        if response is None:
            return False
        if response.status_code != status:
            self.tally.error(operation, response.status_code, response.text)
            return False
        return True

    def pair(self) -> tuple[int, int]:
        referrer, receiver = self.rng.sample(self.firms, 2)
        return referrer, receiver

    def referral_body(self, name: str, ref: str, referrer: int, receiver: int) -> dict:
        return {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
                "client": {"name": name, "external_ref": ref},
                "skills": self.rng.sample(common.SKILLS, 2),
                "description": "load test referral", "match_score": round(self.rng.random(), 3)}

    def new_client(self) -> tuple[str, str]:
        self.sequence += 1
        tag = f"{self.run_tag}-{self.number}-{self.sequence}"
        return f"Load Client {tag} Co., Ltd.", f"LC-{tag}"

    def created(self, operation: str, response, name: str, ref: str, referrer: int,
                receiver: int) -> dict | None:
        """Handle a creation answer: 201 (kept), 409 receiver full (expected), else error."""
        if response is None:
            return None
        if response.status_code == 201:
            body = response.json()
            self.tally.created_ids.append(body["id"])
            self.tally.owned.append(Owned(body["id"], name, ref, referrer, receiver,
                                          body["status"], body["version"]))
            return body
        if response.status_code == 409 and "existing_referral_id" not in response.json():
            self.tally.expected_409["receiver at capacity"] += 1
            return None
        self.tally.error(operation, response.status_code, response.text)
        return None

    # ------------------------------------------------------------------ the operations

    def match(self) -> None:
        body = dict(self.rng.choice(self.needs))
        body["referrer_organization_id"] = self.rng.choice(self.firms)
        self.expect("match", self.call("match", "POST", "/api/v1/match", json=body), 200)

    def create(self) -> None:
        name, ref = self.new_client()
        referrer, receiver = self.pair()
        response = self.call("create", "POST", "/api/v1/referrals",
                             json=self.referral_body(name, ref, referrer, receiver))
        self.created("create", response, name, ref, referrer, receiver)

    def create_idem(self) -> None:
        name, ref = self.new_client()
        referrer, receiver = self.pair()
        body = self.referral_body(name, ref, referrer, receiver)
        headers = {"Idempotency-Key": f"idem-{ref}"}
        response = self.call("create_idem", "POST", "/api/v1/referrals", json=body,
                             headers=headers)
        first = self.created("create_idem", response, name, ref, referrer, receiver)
        if first is None:
            return
        again = self.call("replay", "POST", "/api/v1/referrals", json=body, headers=headers)
        if self.expect("replay", again, 201) and again.json() != first:
            self.tally.error("replay", "different body",
                             f"first id {first['id']}, replay id {again.json().get('id')}")

    def duplicate(self) -> None:
        holders = [o for o in self.tally.owned if o.status in HOLDS_CREDIT]
        if not holders:
            return self.create()
        owned = self.rng.choice(holders)
        referrer, receiver = self.pair()
        response = self.call("duplicate", "POST", "/api/v1/referrals", json=self.referral_body(
            owned.client_name, owned.client_ref, referrer, receiver))
        if response is None:
            return None
        if response.status_code == 409:
            existing = response.json().get("existing_referral_id")
            if existing == owned.id:
                self.tally.expected_409["deliberate duplicate"] += 1
            elif existing is None:
                self.tally.expected_409["receiver at capacity"] += 1
            else:
                self.tally.error("duplicate", "409 wrong referral",
                                 f"expected existing_referral_id {owned.id}: {response.text}")
            return None
        self.tally.error("duplicate", response.status_code, response.text)
        return None

    def move(self) -> None:
        movable = [o for o in self.tally.owned if o.status in MOVES]
        if not movable:
            return self.create()
        owned = self.rng.choice(movable)
        choices, weights = zip(*MOVES[owned.status], strict=True)
        status = self.rng.choices(choices, weights)[0]
        headers = {}
        if self.rng.random() < 0.5:  # our last view is the current one: never 412
            headers["If-Match"] = f'"referral-{owned.id}-v{owned.version}"'
        response = self.call("move", "PATCH", f"/api/v1/referrals/{owned.id}",
                             json={"status": status, "reason": "load test"}, headers=headers)
        if self.expect("move", response, 200):
            body = response.json()
            owned.status, owned.version = body["status"], body["version"]
            owned.moves += 1
        return None

    def kpi(self) -> None:
        response = self.call("kpi", "GET", "/api/v1/kpi/monthly", params={"month": self.month})
        self.expect("kpi", response, 200)

    def org_get(self) -> None:
        organization_id = self.rng.choice(self.firms)
        response = self.call("org_get", "GET", f"/api/v1/organizations/{organization_id}")
        self.expect("org_get", response, 200)


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--firms", type=int, default=2000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parser.parse_args()

    print(f"== bench_load: {args.seconds:.0f} s, {args.threads} client threads, gunicorn "
          f"{args.workers} workers, {args.firms:,} firms, {args.backend} ==")
    print(f"   {load_average()}")
    with common.work_folder("bench-load-", keep=args.keep) as folder, \
            common.fresh_database(args.backend, folder, keep=args.keep) as url:
        cli, _ = Cli.migrated(url, folder)
        world = common.World(args.seed)
        data = folder / "firms.jsonl"
        # a fifth of the firms take 3-10 open referrals at most, so "receiver full" happens
        common.write_jsonl(data, world.firms(args.firms, capacity_share=0.2,
                                             capacity_range=(3, 10)))
        seconds, out = cli.run("import-organizations", str(data))
        print(f"seeded: {out.strip().splitlines()[-1]} in {seconds:.1f} s")
        firms = active_firms(url)
        key = cli.create_api_key("crm", name="load")
        needs = world.needs(500, n_firms=args.firms)
        server = Gunicorn(cli, workers=args.workers, config_file=True,
                          log_path=folder / "gunicorn.log")
        try:
            pids_before = sorted(server.worker_pids())
            warm_up(server.url, key, needs, args.workers)
            log_start = server.log_path.stat().st_size
            database = url.rsplit("/", 1)[1] if args.backend == "postgresql" else None
            cpu_before = server_cpu(server, database)
            print(f"-- running   [{load_average()}]", flush=True)
            tally, elapsed, cpu = drive(server.url, key, firms, needs, args)
            print(f"-- done      [{load_average()}]")
            cpu_after = server_cpu(server, database)
            pids_after = sorted(server.worker_pids())
        finally:
            server.stop()
        log_errors = server_log_errors(server.log_path)
        report(tally, elapsed, cpu, args)
        requests_done = sum(len(v) for v in tally.latency.values())
        for part in ("workers", "postgres"):
            used = sum(cpu_after[part].get(pid, 0.0) - cpu_before[part].get(pid, 0.0)
                       for pid in cpu_after[part])
            if cpu_after[part]:
                print(f"{part:<9} used {used:6.1f} s CPU = {used / elapsed:.2f} cores, "
                      f"{used * 1000 / max(requests_done, 1):.1f} ms a request")
        server_side(server.log_path, log_start)
        restarts = len(set(pids_after) - set(pids_before))
        print(f"gunicorn workers replaced during the run (max_requests recycling): {restarts}")
        print(f"server log lines at ERROR or CRITICAL: {log_errors}")
        problems = verify(url, tally)
    errors = sum(tally.errors.values())
    print("\n== verdict ==")
    print(f"   {load_average()}")
    print(f"errors (unexpected status or transport)   {errors:>6}   target 0   "
          f"{verdict(errors == 0)}")
    print(f"lost or duplicated referrals              {problems['lost_or_duplicated']:>6}   "
          f"target 0   {verdict(problems['lost_or_duplicated'] == 0)}")
    print(f"lost counter updates / wrong counts       {problems['counts']:>6}   target 0   "
          f"{verdict(problems['counts'] == 0)}")
    print(f"state checks (status, version, history)   {problems['state']:>6}   target 0   "
          f"{verdict(problems['state'] == 0)}")


def active_firms(url: str) -> list[int]:
    """Return the ids of the active organizations."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text(
                "SELECT id FROM organizations WHERE active ORDER BY id")))
    finally:
        engine.dispose()


def warm_up(url: str, key: str, needs: list[dict], workers: int) -> None:
    """Send concurrent matches so that each worker builds its index before the clock starts."""
    import requests

    def one(body: dict) -> None:
        with requests.Session() as http:
            http.post(url + "/api/v1/match", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {key}"}).raise_for_status()

    with ThreadPoolExecutor(workers * 2) as pool:
        list(pool.map(one, needs[: workers * 6]))


def drive(url: str, key: str, firms: list[int], needs: list[dict], args
          ) -> tuple[Tally, float, float]:
    """Run the clients for --seconds; return the merged tally, the elapsed and client CPU s."""
    run_tag = secrets.token_hex(3)
    cpu_started = _cpu()
    started = time.monotonic()
    deadline = started + args.seconds
    clients = [Client(i, url, key, run_tag, firms, needs, deadline, args.seed)
               for i in range(args.threads)]
    with ThreadPoolExecutor(args.threads) as pool:
        tallies = list(pool.map(Client.run, clients))
    elapsed = time.monotonic() - started
    merged = Tally()
    for tally in tallies:
        for operation, values in tally.latency.items():
            merged.latency[operation] += values
        for operation, counts in tally.statuses.items():
            merged.statuses[operation].update(counts)
        merged.expected_409.update(tally.expected_409)
        merged.errors.update(tally.errors)
        merged.samples += tally.samples
        merged.created_ids += tally.created_ids
        merged.owned += tally.owned
    return merged, elapsed, _cpu() - cpu_started


def server_cpu(server: Gunicorn, database: str | None) -> dict[str, dict[int, float]]:
    """Return the CPU seconds so far of each gunicorn worker and each PostgreSQL backend
    serving the benchmark database."""
    found: dict[str, dict[int, float]] = {"workers": {}, "postgres": {}}
    for pid in server.worker_pids():
        found["workers"][pid] = _process_cpu(pid)
    if database:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
                if command.startswith("postgres:") and f" {database} " in command:
                    found["postgres"][int(entry.name)] = _process_cpu(int(entry.name))
            except OSError:
                continue
    return found


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_side(log_path: Path, start: int) -> None:
    """Print the handling time the app logged per route (no queueing in it), from the log."""
    durations: dict[str, list[float]] = defaultdict(list)
    with open(log_path, "rb") as handle:
        handle.seek(start)
        for raw in handle:
            if b"referral_service.request" not in raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            route = re.sub(r"/\d+", "/{id}", f"{entry.get('method')} {entry.get('path')}")
            if entry.get("duration_ms") is not None:
                durations[route].append(float(entry["duration_ms"]))
    if not durations:
        print("(no request log lines: LOG_LEVEL above INFO?)")
        return
    print("handling time logged by the app (excludes waiting for a free worker):")
    for route, values in sorted(durations.items(), key=lambda kv: -len(kv[1])):
        print(f"   {route:<36} {len(values):>7,}   p50 {statistics.median(values):7.1f} ms   "
              f"p95 {percentile(values, 95):7.1f} ms   p99 {percentile(values, 99):7.1f} ms")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_log_errors(path: Path) -> int:
    """Return how many lines of the server's log are at ERROR or CRITICAL."""
    text = path.read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line
               or "Traceback" in line)


# ---------------------------------------------------------------------------- report


def report(tally: Tally, elapsed: float, cpu: float, args) -> None:
    """Print throughput and latency per operation, the expected 409s and the errors."""
    total = sum(len(v) for v in tally.latency.values())
    print(f"\n== {total:,} requests in {elapsed:.1f} s = {total / elapsed:,.1f} req/s overall "
          f"(client process used {cpu:.1f} s CPU = {cpu / elapsed:.2f} cores) ==")
    print(f"{'operation':<12} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}  statuses")
    everything: list[float] = []
    for operation in OPERATIONS:
        values = tally.latency.get(operation, [])
        if not values:
            continue
        everything += values
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses[operation].items(),
                                                            key=lambda kv: str(kv[0])))
        print(f"{operation:<12} {len(values):>7,} {len(values) / elapsed:>7.1f} "
              f"{statistics.median(values):>8.1f} {percentile(values, 95):>8.1f} "
              f"{percentile(values, 99):>8.1f} {max(values):>8.1f}  {statuses}")
    print(f"{'all':<12} {len(everything):>7,} {len(everything) / elapsed:>7.1f} "
          f"{statistics.median(everything):>8.1f} {percentile(everything, 95):>8.1f} "
          f"{percentile(everything, 99):>8.1f} {max(everything):>8.1f}")
    print(f"expected 409s: {dict(tally.expected_409) or 'none'}")
    if tally.errors:
        print("ERRORS by (operation, status): "
              + ", ".join(f"{k}: {v}" for k, v in tally.errors.most_common()))
        for sample in tally.samples[:10]:
            print(f"   {sample}")
    else:
        print("errors: none")


# ---------------------------------------------------------------------------- verify


def verify(url: str, tally: Tally) -> dict[str, int]:
    """Check the database against what the clients were told; print and count problems."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    problems = {"lost_or_duplicated": 0, "counts": 0, "state": 0}
    print("\n== database checks ==")
    try:
        with engine.connect() as db:
            rows = {row.id: row for row in db.execute(text(
                "SELECT r.id, r.status, r.version, r.receiver_organization_id, "
                "c.external_ref FROM referrals r JOIN clients c ON c.id = r.client_id"))}
            events = dict(db.execute(text(
                "SELECT referral_id, count(*) FROM referral_events GROUP BY referral_id")).all())
            stats = {row.organization_id: row for row in db.execute(text(
                "SELECT s.organization_id, s.open_referrals, s.won, s.failed, o.capacity "
                "FROM organization_stats s JOIN organizations o ON o.id = s.organization_id"))}
            double_open = db.execute(text(
                "SELECT client_id, count(*) FROM referrals WHERE status IN ('pending', "
                "'accepted') GROUP BY client_id HAVING count(*) > 1")).all()
            per_client = db.execute(text(
                "SELECT client_id, count(*) FROM referrals GROUP BY client_id "
                "HAVING count(*) > 1")).all()
            deadlocks = None
            if engine.dialect.name == "postgresql":
                deadlocks = db.scalar(text("SELECT deadlocks FROM pg_stat_database "
                                           "WHERE datname = current_database()"))
    finally:
        engine.dispose()

    acknowledged = Counter(tally.created_ids)
    twice = [i for i, count in acknowledged.items() if count > 1]
    missing = sorted(set(acknowledged) - set(rows))
    unacknowledged = sorted(set(rows) - set(acknowledged))
    problems["lost_or_duplicated"] = len(twice) + len(missing) + len(per_client) + len(
        unacknowledged)
    print(f"201 answers {len(tally.created_ids):,}; referral rows {len(rows):,}; "
          f"acknowledged but missing {len(missing)}; rows nobody was told of "
          f"{len(unacknowledged)}; id returned by two creations {len(twice)}; "
          f"clients with more than one referral {len(per_client)}")
    print(f"clients with two open referrals: {len(double_open)}")
    problems["lost_or_duplicated"] += len(double_open)

    wrong_status = [o.id for o in tally.owned if o.id in rows and (
        rows[o.id].status != o.status or rows[o.id].version != o.version)]
    wrong_history = [o.id for o in tally.owned if events.get(o.id, 0) != o.moves + 1]
    problems["state"] = len(wrong_status) + len(wrong_history)
    print(f"referrals whose status/version differs from the last answer: {len(wrong_status)}; "
          f"whose history is not one event per move plus the first: {len(wrong_history)}")

    real_open: Counter = Counter()
    real_won: Counter = Counter()
    real_failed: Counter = Counter()
    for row in rows.values():
        if row.status in OPEN:
            real_open[row.receiver_organization_id] += 1
        elif row.status == "converted":
            real_won[row.receiver_organization_id] += 1
        elif row.status in ("declined", "lost", "expired"):
            real_failed[row.receiver_organization_id] += 1
    wrong_open = [i for i, s in stats.items() if s.open_referrals != real_open[i]]
    wrong_won = [i for i, s in stats.items() if s.won != real_won[i]]
    wrong_failed = [i for i, s in stats.items() if s.failed != real_failed[i]]
    over = [i for i, s in stats.items() if s.capacity is not None
            and s.open_referrals > s.capacity]
    problems["counts"] = len(wrong_open) + len(wrong_won) + len(wrong_failed) + len(over)
    print(f"organization_stats rows {len(stats):,}: open_referrals wrong {len(wrong_open)}, won "
          f"wrong {len(wrong_won)}, failed wrong {len(wrong_failed)}; over capacity {len(over)}")
    for label, ids in (("open", wrong_open), ("won", wrong_won), ("failed", wrong_failed)):
        for i in ids[:3]:
            print(f"   {label} of {i}: stats {stats[i]} vs real open {real_open[i]}, won "
                  f"{real_won[i]}, failed {real_failed[i]}")
    statuses = Counter(row.status for row in rows.values())
    print(f"referrals by status: {dict(sorted(statuses.items()))}")
    if deadlocks is not None:
        print(f"PostgreSQL deadlocks detected in the benchmark database: {deadlocks}")
    return problems


if __name__ == "__main__":
    main()
