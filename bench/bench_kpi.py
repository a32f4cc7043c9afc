"""Benchmark the monthly KPI export against its bare SQL aggregate, and referral creation.

Every level (organization, department, person) is timed against its own statement.

    python bench/bench_kpi.py --backend both --firms 10000 --referrals 1000000
    python bench/bench_kpi.py --backend postgresql --firms 1000 --referrals 50000  # quick
    python bench/bench_kpi.py --keep ...; python bench/bench_kpi.py --reuse URL  # re-time

For each backend it builds a fresh database with the Alembic migrations, bulk-loads the firms,
one client per referral and the referrals spread over 24 months (Core executemany on SQLite,
COPY on PostgreSQL), the sales force (per firm two departments, one under the other, and
PEOPLE_PER_FIRM people; a referral's referred_by and, once accepted, owner person) and one
visit per VISITS_PER_REFERRALS referrals (200k with 1M referrals) with about as many leads,
then times, for one month in the middle and each level, in the same run:

- the bare aggregate: the KPI's SQL sent straight to the driver, rows fetched, nothing else;
- the JSON, CSV and XLSX exports as the service builds them (kpi.monthly_kpi + kpi.export);
- the JSON export through the HTTP API (Flask test client: auth, routing, response);
- then the month before it closed: each level and format recomputed, written from the
  snapshot rows, and served from the bytes stored at close;

and prints each time (median of --repeat rounds) with its ratio to the bare aggregate run just
before it in the same round (median of the rounds' ratios), and this process's CPU time.
Then, unless --no-http, it starts gunicorn with --workers over the same database, waits until
the workers are idle (each builds its match index as it starts), POSTs --http-requests
referrals of distinct clients from a thread pool (a new connection each, as sync workers
close them), and prints requests/second and the CPU per request of the workers and of
PostgreSQL. The Python client runs on the same cores: its own CPU lowers the figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, create_engine, event, insert, text  # noqa: E402

from models import (  # noqa: E402
    Client,
    Department,
    KpiTarget,
    Lead,
    Office,
    Organization,
    OrganizationStats,
    Person,
    Referral,
    Visit,
)
from referral_service import create_app, migrate  # noqa: E402
from referral_service.adapters.sql import plain_rows  # noqa: E402
from referral_service.db import new_session  # noqa: E402
from referral_service.services import auth, kpi, months  # noqa: E402
from referral_service.services.auth import SYSTEM  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MONTHS = 24
BATCH = 20_000
PEOPLE_PER_FIRM = 5
VISITS_PER_REFERRALS = 5  # one visit per five referrals: 200k visits with 1M referrals
LEAD_STATUSES = (("open", 0.5), ("won", 0.2), ("lost", 0.2), ("referred", 0.1))
# Status mix of the generated referrals (older ones are closed; see _referral_rows).
CLOSED_MIX = (("converted", 0.35), ("lost", 0.15), ("declined", 0.25), ("withdrawn", 0.10),
              ("expired", 0.15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--firms", type=int, default=10_000)
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP creation run")
    parser.add_argument("--http-requests", type=int, default=3000)
    parser.add_argument("--http-threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--http-backends", default="postgresql",
                        help="comma-separated backends for the HTTP run")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--reuse", metavar="URL",
                        help="time a database loaded by an earlier --keep run; no loading")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"# {args.firms:,} firms, {args.referrals:,} referrals over {MONTHS} months; "
          f"median of {args.repeat} rounds; {os.cpu_count()} CPUs")
    if args.reuse:
        run_backend("sqlite" if args.reuse.startswith("sqlite") else "postgresql", args.reuse,
                    args, load_data=False)
        return
    for backend in backends:
        with bench_database(backend, args.pg_url, keep=args.keep) as url:
            run_backend(backend, url, args)


def run_backend(backend: str, url: str, args: argparse.Namespace, *, load_data: bool = True
                ) -> None:
    """Load, then time the KPI figures and (optionally) HTTP referral creation."""
    app = create_app({"DATABASE_URL": url, "TESTING": True, "RATELIMIT_ENABLED": False,
                      "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text",
                      "METRICS_ENABLED": False})
    migrate.upgrade(app)
    if load_data:
        started = time.perf_counter()
        firms = load(app, backend, args.firms, args.referrals)
        print(f"\n[{backend}] loaded in {time.perf_counter() - started:.1f} s")
    else:
        with app.extensions["db_engine"].connect() as connection:
            firms = list(connection.execute(text("SELECT id FROM organizations")).scalars())
        print(f"\n[{backend}] reusing {url} ({len(firms):,} firms)")
    month = (datetime.now(UTC).replace(day=1) - timedelta(days=MONTHS // 2 * 30)).strftime(
        "%Y-%m")
    for level in kpi.LEVELS:
        time_kpi(app, backend, month, args.repeat, level)
    time_closed(app, backend, month, args.repeat)
    app.extensions["db_engine"].dispose()
    if not args.no_http and backend in args.http_backends.split(","):
        time_http(url, firms, args)


# ------------------------------------------------------------------------------- loading


def load(app, backend: str, n_firms: int, n_referrals: int) -> list[int]:
    """Bulk-load firms, clients, referrals and targets; return the firm ids."""
    rng = random.Random(2026)
    now = datetime.now(UTC)
    engine = app.extensions["db_engine"]
    with engine.begin() as connection:
        ids = connection.execute(
            insert(Organization).returning(Organization.id, sort_by_parameter_order=True),
            [{"name": f"Bench Firm {i:05d}", "kind": ("affiliate", "partner")[i % 2],
              "description": "", "capacity": None, "active": True,
              "external_ref": f"BF-{i}", "created_at": now, "updated_at": now, "version": 1}
             for i in range(n_firms)],
        ).scalars().all()
        connection.execute(insert(OrganizationStats), [
            {"organization_id": i, "open_referrals": 0, "won": 0, "failed": 0,
             "updated_at": now} for i in ids])
        connection.execute(insert(Office), [
            {"organization_id": i, "label": "HQ", "latitude": rng.uniform(21.9, 25.3),
             "longitude": rng.uniform(120.0, 121.9), "service_radius_km": 100.0}
            for i in ids])
        months = sorted({(now - timedelta(days=30 * k)).strftime("%Y-%m") for k in range(4,
                                                                                       20)})
        connection.execute(insert(KpiTarget), [
            {"scope": "organization", "scope_id": i, "organization_id": i, "month": m,
             "new_clients": rng.randint(1, 12), "agreed_by": "head office",
             "updated_at": now} for i in ids[::2] for m in months])
        staff = _load_people(connection, rng, ids, now, months)
    # external_ref_key: the CRM id as services/clients.ref_key compares it (case-folded).
    clients = ((n, f"Bench Client {n}", f"benchclient{n}", f"BC-{n}", f"bc-{n}", None, None,
                now) for n in range(1, n_referrals + 1))
    referrals = _referral_rows(rng, ids, n_referrals, now, staff)
    client_cols = ("id", "name", "normalized_name", "external_ref", "external_ref_key",
                   "latitude", "longitude", "created_at")
    referral_cols = ("referrer_organization_id", "receiver_organization_id", "client_id",
                     "skills", "description", "note", "match_score", "status", "created_at",
                     "updated_at", "accepted_at", "declined_at", "withdrawn_at", "expired_at",
                     "converted_at", "lost_at", "version", "referred_by_person_id",
                     "owner_person_id")
    n_visits = max(1, n_referrals // VISITS_PER_REFERRALS)
    visits = _visit_rows(rng, staff, n_visits, now)
    leads = _lead_rows(rng, staff, n_visits, n_referrals, now)
    visit_cols = ("id", "organization_id", "person_id", "client_id", "visited_at",
                  "commitment_description", "notes", "empty_handed", "empty_handed_reason",
                  "created_by", "created_at")
    lead_cols = ("id", "organization_id", "visit_id", "person_id", "client_id", "name",
                 "contact", "skills", "description", "relationship", "status", "referral_id",
                 "created_at", "updated_at", "version")
    if backend == "postgresql":
        _copy(engine, "clients", client_cols, clients)
        _copy(engine, "referrals", referral_cols, referrals)
        _copy(engine, "visits", visit_cols, visits)
        _copy(engine, "leads", lead_cols, leads)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("clients", "visits", "leads"):
                connection.execute(text(f"SELECT setval('{table}_id_seq', "
                                        f"(SELECT max(id) FROM {table}))"))
            connection.execute(text("VACUUM ANALYZE"))
    else:
        _executemany(engine, Client, client_cols, clients)
        _executemany(engine, Referral, referral_cols, referrals)
        _executemany(engine, Visit, visit_cols, visits)
        _executemany(engine, Lead, lead_cols, leads)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return list(ids)


def _load_people(connection, rng: random.Random, firms: list[int], now: datetime,
                 months: list[str]) -> dict[int, list[int]]:
    """Per firm: a department and one under it, PEOPLE_PER_FIRM people (the first heads the
    top, the second the sub-department, where the rest work); some targets of each scope.
    Return each firm's people ids."""
    top = connection.execute(
        insert(Department).returning(Department.id, sort_by_parameter_order=True),
        [{"organization_id": f, "name": "Sales", "created_at": now, "updated_at": now,
          "version": 1} for f in firms]).scalars().all()
    sub = connection.execute(
        insert(Department).returning(Department.id, sort_by_parameter_order=True),
        [{"organization_id": f, "name": "Sales North", "parent_id": d, "created_at": now,
          "updated_at": now, "version": 1} for f, d in zip(firms, top, strict=True)]
    ).scalars().all()
    rows = [{"organization_id": f, "name": f"Person {f}-{n}",
             "department_id": d if n == 0 else s, "active": True, "created_at": now,
             "updated_at": now, "version": 1}
            for f, d, s in zip(firms, top, sub, strict=True) for n in range(PEOPLE_PER_FIRM)]
    ids = connection.execute(insert(Person).returning(Person.id, sort_by_parameter_order=True),
                             rows).scalars().all()
    staff = {f: list(ids[i * PEOPLE_PER_FIRM:(i + 1) * PEOPLE_PER_FIRM])
             for i, f in enumerate(firms)}
    heads = [{"department": d, "head": staff[f][0]} for f, d in zip(firms, top, strict=True)]
    heads += [{"department": d, "head": staff[f][1]} for f, d in zip(firms, sub, strict=True)]
    connection.execute(
        Department.__table__.update().where(Department.id == bindparam("department"))
        .values(head_person_id=bindparam("head")), heads)
    connection.execute(insert(KpiTarget), [
        {"scope": scope, "scope_id": scope_id, "organization_id": f, "month": m,
         "new_clients": rng.randint(1, 12), "agreed_by": "bench", "updated_at": now}
        for f, d, s in zip(firms[::3], top[::3], sub[::3], strict=True)
        for scope, scope_id in (("department", d), ("department", s),
                                ("person", staff[f][2]))
        for m in months])
    return staff


def _visit_rows(rng: random.Random, staff: dict[int, list[int]], count: int, now: datetime
                ) -> Iterator[tuple]:
    """Visits spread over MONTHS months, oldest first; ids 1..count."""
    firms = list(staff)
    span = MONTHS * 30 * 86400
    ages = sorted((rng.random() * span for _ in range(count)), reverse=True)
    for n, age in enumerate(ages, start=1):
        firm = firms[n % len(firms)]
        at = now - timedelta(seconds=age)
        kind = rng.random()
        yield (n, firm, rng.choice(staff[firm]), 1, at, "An order" if kind < 0.3 else None, "",
               kind > 0.9, "Nobody in" if kind > 0.9 else None, "bench", at)


def _lead_rows(rng: random.Random, staff: dict[int, list[int]], n_visits: int,
               n_referrals: int, now: datetime) -> Iterator[tuple]:
    """About one lead per visit, of the visit's firm; a referred one names a referral."""
    firms = list(staff)
    span = MONTHS * 30 * 86400
    statuses = [s for s, _ in LEAD_STATUSES]
    weights = [w for _, w in LEAD_STATUSES]
    referrals = iter(rng.sample(range(1, n_referrals + 1), min(n_referrals, n_visits)))
    for n in range(1, n_visits + 1):
        visit = rng.randint(1, n_visits)
        firm = firms[visit % len(firms)]
        created = now - timedelta(seconds=rng.random() * span)
        status = rng.choices(statuses, weights)[0]
        referral = next(referrals, None) if status == "referred" else None
        if status == "referred" and referral is None:
            status = "open"
        moved = created if status == "open" else min(
            now, created + timedelta(days=rng.uniform(0, 40)))
        yield (n, firm, visit, rng.choice(staff[firm]), 1, f"Lead {n}", "", "[]", "", "",
               status, referral, created, moved, 1)


def _referral_rows(rng: random.Random, firms: list[int], count: int, now: datetime,
                   staff: dict[int, list[int]]) -> Iterator[tuple]:
    """Yield referral rows spread evenly over the last MONTHS months, distinct clients.

    Oldest first, as a live system appends them (so a month's rows sit together on disk).
    """
    span = MONTHS * 30 * 86400
    statuses = [s for s, _ in CLOSED_MIX]
    weights = [w for _, w in CLOSED_MIX]
    ages = sorted((rng.random() * span for _ in range(count)), reverse=True)
    for n, age in enumerate(ages, start=1):
        created = now - timedelta(seconds=age)
        referrer, receiver = rng.sample(firms, 2)
        age_days = (now - created).days
        if age_days < 14:
            status = rng.choice(("pending", "accepted", "declined", "converted"))
        else:
            status = rng.choices(statuses, weights)[0]
        stamps = dict.fromkeys(("accepted", "declined", "withdrawn", "expired", "converted",
                                "lost"))
        if status in ("accepted", "converted", "lost"):
            stamps["accepted"] = created + timedelta(hours=rng.uniform(1, 240))
        if status in ("converted", "lost"):
            stamps[status] = stamps["accepted"] + timedelta(days=rng.uniform(1, 60))
        elif status in ("declined", "withdrawn", "expired"):
            stamps[status] = created + timedelta(days=rng.uniform(0.1, 14))
        stamps = {k: (min(v, now) if v else None) for k, v in stamps.items()}
        updated = max([created] + [v for v in stamps.values() if v])
        by = rng.choice(staff[referrer]) if rng.random() < 0.7 else None
        owner = rng.choice(staff[receiver]) if stamps["accepted"] else None
        yield (referrer, receiver, n, "[]", "", "", round(rng.random(), 3), status, created,
               updated, stamps["accepted"], stamps["declined"], stamps["withdrawn"],
               stamps["expired"], stamps["converted"], stamps["lost"], 2, by, owner)


def _copy(engine, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _executemany(engine, model, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    statement = insert(model)
    names = [model.__table__.c[c].key for c in columns]
    with engine.begin() as connection:
        batch: list[dict] = []
        for row in rows:
            batch.append(dict(zip(names, row, strict=True)))
            if len(batch) >= BATCH:
                connection.execute(statement, batch)
                batch = []
        if batch:
            connection.execute(statement, batch)


# --------------------------------------------------------------------------------- timing


def time_kpi(app, backend: str, month: str, repeat: int, level: str) -> None:
    """Print the bare aggregate's time and each export's, with ratios, for one month and
    one level (the bare aggregate: that level's statement sent straight to the driver)."""
    engine = app.extensions["db_engine"]
    sql, params = _driver_statement(engine, *kpi.level_query(level, month))

    def bare():
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            cursor.close()
            return rows
        finally:
            raw.close()

    def service(fmt: str):
        def run():
            session = new_session(app, write=False)
            try:
                rows = kpi.monthly_kpi(session=session, month=month, actor=SYSTEM,
                                       level=level)
            finally:
                session.close()
            return kpi.export(rows, fmt, month, level)
        return run

    session = new_session(app)
    _, raw_key = auth.create_api_key(session=session, name="bench", role="admin")
    session.close()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw_key}"}

    def api_json():
        response = client.get(f"/api/v1/kpi/monthly?month={month}&level={level}",
                              headers=headers)
        assert response.status_code == 200, response.data[:300]
        return response.data

    rows = bare()
    print(f"[{backend}] month {month}, level {level}: {len(rows):,} KPI rows")
    # Bare and export run back to back in each round, so that a busy machine slows both
    # alike; the ratio printed is the median of the rounds' ratios.
    exports = (("JSON export (service)", service("json")),
               ("JSON export (HTTP API)", api_json),
               ("CSV export (service)", service("csv")),
               ("XLSX export (service)", service("xlsx")))
    for _, run in exports:
        run()  # warm-up
    bare_times: list[tuple[float, float]] = []
    results: dict[str, list[tuple[float, float, float, int]]] = {
        label: [] for label, _ in exports}
    for _ in range(repeat):
        for label, run in exports:
            base, base_cpu, _ = timed_cpu(bare)
            elapsed, cpu, data = timed_cpu(run)
            bare_times.append((base, base_cpu))
            results[label].append((elapsed, elapsed / base, cpu, len(data)))
    # This process's CPU (median), the steadier figure on a busy machine: with PostgreSQL
    # the bare aggregate's is only fetching the rows, the query runs in the server.
    print(f"[{backend}] {level:<12} {'bare SQL aggregate':<28} "
          f"{statistics.median(b[0] for b in bare_times) * 1000:9.1f} ms   1.00x   "
          f"CPU here {statistics.median(b[1] for b in bare_times) * 1000:.0f} ms")
    for label, runs in results.items():
        elapsed = statistics.median(r[0] for r in runs)
        ratio = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"[{backend}] {level:<12} {label:<28} {elapsed * 1000:9.1f} ms   {ratio:.2f}x   "
              f"CPU here {cpu * 1000:.0f} ms   ({runs[0][3] / 1024:,.0f} KiB)")


def time_closed(app, backend: str, month: str, repeat: int) -> None:
    """Print, per level and format, a closed month's export (every organization, as head
    office gets it) served from the bytes stored at close (kpi.monthly_export) next to
    recomputing it (the level's statement, then the file written) and to writing it from
    the snapshot rows; the month before `month`, closed here if it is not yet (SPEC section
    10, issue 14 asks for at least 10x)."""
    closed = (datetime.strptime(month, "%Y-%m") - timedelta(days=1)).strftime("%Y-%m")
    session = new_session(app)
    try:
        if months.frozen_rows(session=session, month=closed, level="organization") is None:
            started = time.perf_counter()
            months.close(session=session, month=closed, actor=SYSTEM)
            print(f"[{backend}] closing {closed} (every level's rows and exports stored): "
                  f"{time.perf_counter() - started:.2f} s")
    finally:
        session.close()

    def reading(work: Callable[[object], bytes]) -> Callable[[], bytes]:
        def run() -> bytes:
            session = new_session(app, write=False)
            try:
                return work(session)
            finally:
                session.close()
        return run

    for level in kpi.LEVELS:
        for fmt in kpi.FORMATS:
            def recomputed(session, level=level, fmt=fmt) -> bytes:
                statement, params = kpi.level_query(level, closed)
                rows = [dict(zip(kpi.LEVEL_COLUMNS[level], row, strict=True))
                        for row in plain_rows(session, statement, params)]
                booked = months.corrections_in(session=session, month=closed, level=level)
                return kpi.export(rows, fmt, closed, level, corrections=booked)

            def from_snapshot(session, level=level, fmt=fmt) -> bytes:
                rows = months.frozen_rows(session=session, month=closed, level=level)
                booked = months.corrections_in(session=session, month=closed, level=level)
                return kpi.export(rows, fmt, closed, level, corrections=booked)

            def stored(session, level=level, fmt=fmt) -> bytes:
                return kpi.monthly_export(session=session, month=closed, actor=SYSTEM,
                                          fmt=fmt, level=level)

            fresh, snapshot, served = ([timed(reading(work)) for _ in range(repeat)]
                                       for work in (recomputed, from_snapshot, stored))
            body = served[0][1]
            assert body == snapshot[0][1], (level, fmt)  # the same bytes, however served
            fresh_s, snapshot_s, served_s = (statistics.median(t for t, _ in runs)
                                             for runs in (fresh, snapshot, served))
            print(f"[{backend}] closed {closed} {level:<12} {fmt:<4}: recomputed "
                  f"{fresh_s * 1000:8.1f} ms, from its snapshot rows {snapshot_s * 1000:8.1f} "
                  f"ms ({fresh_s / snapshot_s:4.1f}x), from its stored bytes "
                  f"{served_s * 1000:6.2f} ms ({fresh_s / served_s:6.1f}x faster; "
                  f"{len(body) / 1024:,.0f} KiB)")


def timed(run: Callable[[], object]) -> tuple[float, object]:
    """Return the wall time of one call of `run`, and its result."""
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def timed_cpu(run: Callable[[], object]) -> tuple[float, float, object]:
    """Return the wall time and this process's CPU time of one call of `run`, and its
    result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - started, time.process_time() - cpu, result


def _driver_statement(engine, statement, parameters) -> tuple[str, object]:
    """Return the SQL and driver parameters SQLAlchemy sends for `statement`."""
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, sql, params, _context, _many):
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as connection:
            connection.execute(statement, parameters).all()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen[-1]


# ----------------------------------------------------------------------------------- HTTP


def time_http(url: str, firms: list[int], args: argparse.Namespace) -> None:
    """Print referral creations per second through gunicorn with --workers workers."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
                      "METRICS_ENABLED": False})
    session = new_session(app)
    _, raw_key = auth.create_api_key(session=session, name="bench http", role="crm")
    session.close()
    app.extensions["db_engine"].dispose()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": "false",
           "LOG_LEVEL": "WARNING", "SESSION_COOKIE_SECURE": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind",
         f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port)
        settled = _wait_idle(_children(server.pid))
        print(f"[http] workers idle {settled:.1f} s after start-up (each builds its match index "
              f"as it starts; the creations are timed after that)")
        rng = random.Random(7)
        pairs = [rng.sample(firms, 2) for _ in range(args.http_requests)]
        tag = secrets.token_hex(3)
        headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def post(index: int) -> None:
            referrer, receiver = pairs[index]
            body = json.dumps({"referrer_organization_id": referrer,
                               "receiver_organization_id": receiver,
                               "client": {"name": f"HTTP Client {tag} {index}",
                                          "external_ref": f"H-{tag}-{index}"},
                               "skills": ["cnc machining"], "match_score": 0.7})
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request("POST", "/api/v1/referrals", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1

        warmup = min(200, args.http_requests // 10)
        with ThreadPoolExecutor(args.http_threads) as pool:
            list(pool.map(post, range(warmup)))
            workers = _children(server.pid)
            cpu_before = _cpu_seconds(workers), _cpu_seconds(_postgres_pids())
            started = time.perf_counter()
            list(pool.map(post, range(warmup, args.http_requests)))
            elapsed = time.perf_counter() - started
            cpu_after = _cpu_seconds(workers), _cpu_seconds(_postgres_pids())
        done = args.http_requests - warmup
        print(f"[http] POST /referrals: {done:,} in {elapsed:.2f} s = {done / elapsed:,.0f} "
              f"req/s ({args.workers} gunicorn workers, {args.http_threads} client threads; "
              f"statuses {dict(sorted(statuses.items()))})")
        # CPU per request, to compare with the cores available: a busy machine lowers req/s,
        # not these (PostgreSQL's figure counts every backend, other clients' too).
        app_ms = (cpu_after[0] - cpu_before[0]) / done * 1000
        pg_ms = (cpu_after[1] - cpu_before[1]) / done * 1000
        print(f"[http] CPU per request: gunicorn workers {app_ms:.1f} ms, PostgreSQL "
              f"{pg_ms:.1f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _children(pid: int) -> list[int]:
    """Return the child process ids of `pid` (gunicorn's workers)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _postgres_pids() -> list[int]:
    """Return the ids of local PostgreSQL server processes (Linux /proc; empty elsewhere)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """Return the user + system CPU seconds used so far by `pids` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _wait_idle(pids: list[int], limit: float = 300.0) -> float:
    """Wait until the workers use almost no CPU for a second; return how long it took."""
    started = time.monotonic()
    before = _cpu_seconds(pids)
    while time.monotonic() - started < limit:
        time.sleep(1.0)
        now = _cpu_seconds(pids)
        if now - before < 0.05:
            break
        before = now
    return time.monotonic() - started


# ------------------------------------------------------------------------------ databases


class bench_database:  # noqa: N801 -- used as a context manager, reads like one
    """A fresh database for one backend, dropped afterwards unless kept."""

    def __init__(self, backend: str, pg_url: str, *, keep: bool) -> None:
        self.backend, self.pg_url, self.keep = backend, pg_url, keep

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            self.folder = tempfile.mkdtemp(prefix="bench-kpi-")
            return f"sqlite:///{self.folder}/bench.db"
        self.name = f"rs_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin = create_engine(self.pg_url.replace("postgresql://", "postgresql+psycopg://"),
                                   isolation_level="AUTOCOMMIT")
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self.pg_url.rsplit("/", 1)[0] + "/" + self.name

    def __exit__(self, *_exc) -> None:
        if self.keep:
            print(f"kept database: {self.name if self.backend != 'sqlite' else self.folder}")
            return
        if self.backend == "sqlite":
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)
            return
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


if __name__ == "__main__":
    main()
