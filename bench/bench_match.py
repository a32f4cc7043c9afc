"""Benchmark matching end to end: CLI import, index build, match latency in process and over
HTTP, the naive loop it replaces, incremental profile updates, and the worker's memory.

    python bench/bench_match.py --n 1000                 # quick, SQLite
    python bench/bench_match.py --n 10000 100000         # each size in its own process
    python bench/bench_match.py --n 100000 --backend postgresql

For one size N, in one run:

1. a fresh database (SQLite file, or a new PostgreSQL database dropped at the end) and
   `flask --app wsgi db upgrade`;
2. N synthetic firms (bench/common.py) written as JSON lines and loaded with
   `flask --app wsgi import-organizations FILE`: firms/s, with and without the CLI's start-up;
3. in process: the app's match index keeper and match use case over the same database; the
   first match builds the index (read from the database + MatchIndex.fit, each timed), then
   --needs different needs;
4. over HTTP: gunicorn with ONE sync worker (`python -m gunicorn -w 1 ...`, which reads the
   hooks of ./gunicorn.conf.py), an admin key made with `flask create-api-key`; the worker's
   index warm-up (start until /readyz says the index is ok, wall and worker CPU) and the first match
   after it; the same needs POSTed to /api/v1/match after a warm-up, one at a time; the first
   few answers are compared with the in-process ones;
5. the naive loop (scoring.rank_naive: every firm scored in Python, a geopy geodesic per
   office) timed on --naive-sample firms and scaled to N; the ratio naive / indexed;
6. incremental updates: PATCH /organizations/{id} (after a GET for the ETag), wait for the
   index refresh period, then time the next match, which includes the sync, and check the
   change shows; the same after idle periods with no change; MatchIndex.upsert directly;
7. the worker's resident memory (VmRSS from /proc) after the matches;

then a table of each figure against its target at N = 100k, PASS or MISS. Wall times are
noisy on a shared machine: the load average is printed with each phase, and CPU times
(thread CPU in process, the worker's CPU over HTTP) are printed beside the wall times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (bench/common.py; puts the project root on sys.path)
from common import Cli, Gunicorn, load_average, memory_mb, percentile, verdict  # noqa: E402

TARGET_HTTP_P50_MS = 30.0
TARGET_RATIO = 400.0
TARGET_RSS_MB = 600.0
TARGET_IMPORT_PER_S = 2000.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--needs", type=int, default=200, help="distinct needs timed")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=1000, help="firms the naive loop "
                        "is timed on (then scaled to N)")
    parser.add_argument("--naive-needs", type=int, default=8)
    parser.add_argument("--updates", type=int, default=15, help="PATCH-then-match rounds")
    parser.add_argument("--idle-rounds", type=int, default=8,
                        help="match-after-idle rounds (a sync that finds no change)")
    parser.add_argument("--compare", type=int, default=10,
                        help="needs whose HTTP answer is compared with the in-process one")
    parser.add_argument("--geocode-share", type=float, default=0.0,
                        help="share of offices imported by city only (geocoded on import)")
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    parser.add_argument("--reuse", metavar="FOLDER", help="reuse the SQLite folder a --keep "
                        "run left (same N and seed), skipping generation and import")
    args = parser.parse_args()
    if len(args.n) > 1:
        for n in args.n:  # one process per size: its memory figures are its own
            command = [sys.executable, __file__, *_forward(args), "--n", str(n)]
            subprocess.run(command, check=True)
        return
    run(args.n[0], args)


def _forward(args: argparse.Namespace) -> list[str]:
    forwarded = []
    for key, value in vars(args).items():
        if key == "n" or value is False or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        forwarded += [flag] if value is True else [flag, str(value)]
    return forwarded


def phase(title: str) -> None:
    """Print a phase heading with the load average."""
    print(f"\n-- {title}   [{load_average()}]", flush=True)


def run(n: int, args: argparse.Namespace) -> None:
    """Run every measurement for one size and print the figures and the verdict table."""
    print(f"== bench_match: N = {n:,} firms, backend {args.backend}, seed {args.seed} ==")
    print(f"   {load_average()}")
    results: dict[str, Any] = {"n": n}
    with contextlib.ExitStack() as stack:
        world = common.World(args.seed)
        if args.reuse:
            # a folder kept by an earlier run of the same N and seed (SQLite): no import
            folder = Path(args.reuse)
            url = f"sqlite:///{folder / 'bench.db'}"
            instance = folder / "instance"
            cli = Cli(url, instance)
            print(f"reusing {folder}: import not measured")
        else:
            folder = stack.enter_context(common.work_folder("bench-match-", keep=args.keep))
            url = stack.enter_context(common.fresh_database(args.backend, folder,
                                                           keep=args.keep))
            phase("schema and import")
            cli, seconds = Cli.migrated(url, folder)
            instance = folder / "instance"
            print(f"db upgrade                    {seconds:8.2f} s")
            started = time.perf_counter()
            data = folder / "firms.jsonl"
            common.write_jsonl(data, world.firms(n, geocode_share=args.geocode_share))
            print(f"generate {n:,} firms           {time.perf_counter() - started:8.2f} s "
                  f"({data.stat().st_size / 2**20:.1f} MiB of JSON lines)")
            import_figures(cli, folder, data, n, results)
        admin_key = cli.create_api_key("admin")
        needs = world.needs(args.needs + args.warmup, n_firms=n)

        app, service = in_process_app(url, instance)
        try:
            phase("in process (services.matching.match)")
            in_process_figures(app, service, needs, args, results)
            phase("over HTTP (gunicorn, 1 sync worker)")
            server = start_http(cli, folder, admin_key, needs[0], results)
            try:
                http_figures(server, admin_key, app, service, needs, args, results)
                phase("incremental profile updates")
                update_figures(server, admin_key, app, service, needs, args, results)
                rss, peak = memory_mb(results["worker_pid"])
                results["rss_end"], results["rss_peak"] = rss, peak
                print(f"worker RSS after updates      {rss:8.0f} MB (peak {peak:.0f} MB)")
            finally:
                server.stop()
            phase("naive loop (scoring.rank_naive)")
            naive_figures(app, service, needs, n, args, results)
            phase("MatchIndex.upsert directly")
            upsert_figures(service, args, results)
        finally:
            app.extensions["db_engine"].dispose()
    summary(results, args)


# ----------------------------------------------------------------------------- import


def import_figures(cli: Cli, folder: Path, data: Path, n: int, results: dict) -> None:
    """Time the CLI import of the firms, and of an empty file (the CLI's start-up alone)."""
    empty = folder / "empty.jsonl"
    empty.write_text("")
    startup, _ = cli.run("import-organizations", str(empty))
    seconds, out = cli.run("import-organizations", str(data))
    last = out.strip().splitlines()[-1]
    print(f"import-organizations          {seconds:8.2f} s wall: {last!r}")
    if last != f"created {n}, updated 0, rejected 0":
        print("   !! the import did not create every firm:\n" + out[-2000:])
    per_s = n / seconds
    per_s_net = n / max(seconds - startup, 1e-9)
    print(f"import throughput             {per_s:8,.0f} firms/s "
          f"({per_s_net:,.0f} firms/s without the CLI's {startup:.2f} s start-up)")
    results.update(import_per_s=per_s, import_per_s_net=per_s_net, import_s=seconds,
                   cli_startup_s=startup, import_line=last)


# ------------------------------------------------------------------------- in process


def in_process_app(url: str, instance: Path):
    """Build the app in this process over the benchmark database; time the index build."""
    os.environ["INSTANCE_PATH"] = str(instance)
    from referral_service import create_app
    from referral_service.adapters import match_index

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING",
                      "LOG_FORMAT": "text", "METRICS_ENABLED": False,
                      "RATELIMIT_ENABLED": False})
    service = app.extensions["match_index"]
    # Measuring hooks: time the two halves of the keeper's build (database read, fit).
    timings: dict[str, float] = {}
    import scoring

    load_firms, index_class = match_index.load_firms, scoring.MatchIndex

    def timed_load(session, ids=None):
        started = time.perf_counter()
        firms = load_firms(session, ids)
        if ids is None:
            timings["load_s"] = time.perf_counter() - started
        return firms

    class TimedIndex(index_class):
        def fit(self, firms):
            started = time.perf_counter()
            fitted = super().fit(firms)
            timings.setdefault("fit_s", time.perf_counter() - started)  # the first: the build
            return fitted

    # The keeper reads scoring.MatchIndex when it builds (scoring loads it lazily).
    match_index.load_firms, scoring.MatchIndex = timed_load, TimedIndex
    service.bench_timings = timings
    return app, service


def match_request(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a POST /match body as the API does."""
    from referral_service.schemas.matching import MatchRequestSchema

    return MatchRequestSchema().load(body)


def call_in_process(app, service, body: dict[str, Any]) -> dict[str, Any]:
    """Answer one need the way the view does, minus HTTP."""
    from referral_service.schemas.matching import MatchResponseSchema
    from referral_service.services import matching
    from referral_service.services.auth import SYSTEM

    ranking = matching.match(index=service, request=match_request(body), actor=SYSTEM,
                             geocoder=app.extensions["geocoder"],
                             default_weights=app.extensions["match_weights"])
    return MatchResponseSchema().dump(ranking)


def in_process_figures(app, service, needs: list[dict], args, results: dict) -> None:
    """Time the first match (index build) and the needs, in this process."""
    rss_before, _ = memory_mb()
    started = time.perf_counter()
    call_in_process(app, service, needs[0])
    build = time.perf_counter() - started
    timings = service.bench_timings
    rss_after, _ = memory_mb()
    print(f"index build (first match)     {build:8.2f} s = read firms from the database "
          f"{timings['load_s']:.2f} s + MatchIndex.fit {timings['fit_s']:.2f} s + the match; "
          f"RSS +{rss_after - rss_before:.0f} MB")
    for body in needs[1:args.warmup]:
        call_in_process(app, service, body)
    wall, cpu = [], []
    answers = []
    for body in needs[args.warmup:]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        answers.append(call_in_process(app, service, body))
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    found = statistics.mean(len(a["candidates"]) for a in answers)
    print(f"match in process              p50 {statistics.median(wall):7.2f} ms   p95 "
          f"{percentile(wall, 95):7.2f} ms   max {max(wall):7.2f} ms   (cpu p50 "
          f"{statistics.median(cpu):.2f} ms, p95 {percentile(cpu, 95):.2f} ms; "
          f"{len(wall)} needs, {found:.1f} candidates each)")
    results.update(build_s=build, load_s=timings["load_s"], fit_s=timings["fit_s"],
                   inproc_p50=statistics.median(wall), inproc_p95=percentile(wall, 95),
                   inproc_cpu_p50=statistics.median(cpu))


# ------------------------------------------------------------------------------- HTTP


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def post_match(http, server: Gunicorn, body: dict) -> tuple[float, dict]:
    """POST one need; return the wall milliseconds and the answer."""
    started = time.perf_counter()
    response = http.post(server.url + "/api/v1/match", json=body, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"POST /match answered {response.status_code}: {response.text[:500]}")
    return elapsed, response.json()


def start_http(cli: Cli, folder: Path, key: str, first_need: dict, results: dict) -> Gunicorn:
    """Start gunicorn as documented; time its worker's index warm-up and the first match.

    The worker builds its index in a background thread as it starts (post_worker_init in
    gunicorn.conf.py, read from the working directory): /readyz says "match_index": "warming
    up" until then. The first match is sent once it says "ok", and must not build anything.
    """
    import requests

    log = folder / "gunicorn.log"
    started = time.perf_counter()
    server = Gunicorn(cli, workers=1, config_file=False, log_path=log)
    (worker,) = server.worker_pids()
    rss_idle, _ = memory_mb(worker)
    while True:
        ready = requests.get(server.url + "/readyz", timeout=60)
        status = ready.status_code
        if status == 200 and ready.json().get("match_index") == "ok":
            break
        if time.perf_counter() - started > 600:
            server.stop()
            raise RuntimeError(f"/readyz still answers {status} ({ready.text[:200]}) after 600 s")
        time.sleep(0.05)
    warmup = time.perf_counter() - started
    warmup_cpu = cpu_seconds(worker)
    rss_ready, peak_ready = memory_mb(worker)
    started = time.perf_counter()
    response = requests.post(server.url + "/api/v1/match", json=first_need, timeout=120,
                             headers={"Authorization": f"Bearer {key}"})
    first = time.perf_counter() - started
    timeouts = log.read_text(errors="replace").count("WORKER TIMEOUT")
    print(f"worker warm-up (start..ready) {warmup:8.2f} s wall, worker cpu {warmup_cpu:.2f} s "
          f"(start-up and index build, in a background thread); RSS {rss_idle:.0f} MB at "
          f"start, {rss_ready:.0f} MB ready (peak {peak_ready:.0f} MB); "
          f"{timeouts} WORKER TIMEOUT")
    print(f"first match over HTTP         {first * 1000:8.2f} ms (status "
          f"{response.status_code}; the index was built before it)")
    ok = response.status_code == 200 and timeouts == 0
    results.update(http_first_s=first, warmup_s=warmup, warmup_cpu_s=warmup_cpu,
                   worker_pid=worker, cold_start_ok=ok,
                   cold_start_failure=f"{response.status_code}, {timeouts} worker timeouts")
    if response.status_code != 200:
        server.stop()
        raise RuntimeError(f"the first match answered {response.status_code}")
    return server


def http_figures(server: Gunicorn, key: str, app, service, needs: list[dict], args,
                 results: dict) -> None:
    """Time the needs over HTTP after a warm-up; compare answers with the in-process ones."""
    import requests

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    worker = results["worker_pid"]
    for body in needs[1:args.warmup]:
        post_match(http, server, body)
    wall = []
    cpu_started = cpu_seconds(worker)
    for body in needs[args.warmup:]:
        elapsed, _ = post_match(http, server, body)
        wall.append(elapsed)
    worker_cpu_ms = (cpu_seconds(worker) - cpu_started) * 1000 / len(wall)
    print(f"match over HTTP               p50 {statistics.median(wall):7.2f} ms   p95 "
          f"{percentile(wall, 95):7.2f} ms   max {max(wall):7.2f} ms   (worker cpu "
          f"{worker_cpu_ms:.2f} ms a request on average; {len(wall)} needs, one at a time)")
    rss, peak = memory_mb(worker)
    print(f"worker RSS after the matches  {rss:8.0f} MB (peak {peak:.0f} MB)")
    results.update(http_p50=statistics.median(wall),
                   http_p95=percentile(wall, 95), worker_cpu_ms=worker_cpu_ms, rss=rss,
                   rss_peak_matches=peak)

    # Same answers both ways (the in-process index and the worker's were built from the same
    # rows; the JSON round trip keeps floats exact).
    same = 0
    compared = needs[args.warmup:args.warmup + args.compare]
    for body in compared:
        _, answer = post_match(http, server, body)
        local = json.loads(json.dumps(call_in_process(app, service, body)))
        if answer == local:
            same += 1
        else:
            print(f"   !! differs for {body}:\n   http  {answer}\n   local {local}")
    print(f"HTTP == in process            {same}/{len(compared)} needs (whole response bodies)")
    results["same"], results["compared"] = same, len(compared)
    http.close()


# -------------------------------------------------------------------------- updates


def update_figures(server: Gunicorn, key: str, app, service, needs: list[dict], args,
                   results: dict) -> None:
    """Time PATCH, then the next match (which syncs the index), over HTTP and in process."""
    import requests

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    wait = app.config["MATCH_INDEX_REFRESH_SECONDS"] + 0.15
    regular = needs[args.warmup:]

    idle_http, idle_local = [], []
    for k in range(args.idle_rounds):
        time.sleep(wait)  # nothing changed: the next match looks, and finds nothing
        idle_http.append(post_match(http, server, regular[k % len(regular)])[0])
        started = time.perf_counter()
        call_in_process(app, service, regular[k % len(regular)])
        idle_local.append((time.perf_counter() - started) * 1000)

    rng = random.Random(args.seed + 99)
    get_ms, patch_ms, after_http, after_local, shown = [], [], [], [], 0
    for k in range(args.updates):
        organization_id = rng.randint(1, results["n"])
        started = time.perf_counter()
        response = http.get(f"{server.url}/api/v1/organizations/{organization_id}", timeout=60)
        get_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        profile, tag = response.json(), response.headers["ETag"]
        probe = f"Bench probe {k} {rng.randrange(10**9)}"
        patch = {"description": profile["description"] + f" recalibrated {k}",
                 "skills": [*profile["skills"], probe], "active": True}
        started = time.perf_counter()
        response = http.patch(f"{server.url}/api/v1/organizations/{organization_id}",
                              json=patch, headers={"If-Match": tag}, timeout=60)
        patch_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"PATCH answered {response.status_code}: {response.text[:500]}")
        office = profile["offices"][0]
        body = {"skills": [probe], "limit": 5,
                "location": {"latitude": office["latitude"], "longitude": office["longitude"]}}
        time.sleep(wait)
        elapsed, answer = post_match(http, server, body)
        after_http.append(elapsed)
        started = time.perf_counter()
        local = call_in_process(app, service, body)
        after_local.append((time.perf_counter() - started) * 1000)
        ids = [c["organization_id"] for c in answer["candidates"]]
        local_ids = [c["organization_id"] for c in local["candidates"]]
        if ids[:1] == [organization_id] and local_ids[:1] == [organization_id]:
            shown += 1
        else:
            print(f"   !! organization {organization_id} not first after its PATCH: "
                  f"http {ids}, in process {local_ids}")
    print(f"GET /organizations/{{id}}       p50 {statistics.median(get_ms):7.2f} ms")
    print(f"PATCH /organizations/{{id}}     p50 {statistics.median(patch_ms):7.2f} ms   max "
          f"{max(patch_ms):7.2f} ms   ({args.updates} updates, with If-Match)")
    print(f"match after idle (sync, no change)   HTTP p50 {statistics.median(idle_http):7.2f} "
          f"ms   in process p50 {statistics.median(idle_local):7.2f} ms")
    print(f"match after a PATCH (sync + upsert)  HTTP p50 {statistics.median(after_http):7.2f} "
          f"ms   max {max(after_http):7.2f} ms   in process p50 "
          f"{statistics.median(after_local):7.2f} ms   max {max(after_local):7.2f} ms")
    print(f"   (a match without sync: HTTP p50 {results['http_p50']:.2f} ms, in process p50 "
          f"{results['inproc_p50']:.2f} ms; the difference is the per-request cost of the sync)")
    print(f"change visible after {wait:.2f} s   {shown}/{args.updates} (patched firm ranked "
          "first, over HTTP and in process)")
    results.update(patch_p50=statistics.median(patch_ms),
                   idle_http_p50=statistics.median(idle_http),
                   idle_local_p50=statistics.median(idle_local),
                   after_http_p50=statistics.median(after_http),
                   after_local_p50=statistics.median(after_local),
                   shown=shown, updates=args.updates)
    http.close()


# ----------------------------------------------------------------------------- naive


def to_need(body: dict[str, Any], geocoder):
    """Turn a POST /match body into scoring's Need, as services.matching.match does."""
    from referral_service.services.organizations import normalize_skills
    from scoring import Need

    location = body["location"]
    if "latitude" in location:
        latitude, longitude = location["latitude"], location["longitude"]
    else:
        place = geocoder.geocode(city=location["city"], country=location["country"],
                                 address=None)
        latitude, longitude = place.latitude, place.longitude
    return Need(latitude=latitude, longitude=longitude,
                skills=tuple(normalize_skills(body.get("skills") or ())),
                description=body.get("description") or "", limit=body.get("limit", 5),
                max_distance_km=body.get("max_distance_km"),
                kinds=frozenset(body["kinds"]) if body.get("kinds") else None,
                exclude_ids=frozenset(body.get("exclude_organization_ids") or ()))


def naive_figures(app, service, needs: list[dict], n: int, args, results: dict) -> None:
    """Time rank_naive on a sample of the real firms, scale it to N; check it agrees."""
    from referral_service.adapters.sql import load_firms
    from referral_service.db import new_session
    from scoring import MatchIndex, rank_naive

    sample_size = min(n, args.naive_sample)
    with new_session(app, write=False) as session:
        sample = load_firms(session, ids=list(range(1, sample_size + 1)))
    chosen = [to_need(body, app.extensions["geocoder"])
              for body in needs[args.warmup:args.warmup + args.naive_needs]]
    weights = app.extensions["match_weights"]
    wall, cpu, answers = [], [], []
    for need in chosen:
        started, cpu_started = time.perf_counter(), time.thread_time()
        answers.append(rank_naive(sample, need, weights))
        cpu.append(time.thread_time() - cpu_started)
        wall.append(time.perf_counter() - started)
    per_need = statistics.median(wall) * n / len(sample) * 1000
    per_need_cpu = statistics.median(cpu) * n / len(sample) * 1000
    index = MatchIndex().fit(sample)
    agree = sum(index.query(need, weights) == answer
                for need, answer in zip(chosen, answers, strict=True))
    print(f"rank_naive on {len(sample):,} firms        p50 {statistics.median(wall) * 1000:8.1f}"
          f" ms (cpu {statistics.median(cpu) * 1000:.1f} ms) -> {per_need / 1000:8.2f} s "
          f"scaled to {n:,} (cpu {per_need_cpu / 1000:.2f} s); {len(chosen)} needs")
    ratio, ratio_cpu = per_need / results["inproc_p50"], per_need_cpu / results["inproc_cpu_p50"]
    ratio_http = per_need / results["http_p50"]
    print(f"naive / indexed               {ratio:8.0f}x in process (wall p50), "
          f"{ratio_cpu:.0f}x on cpu time, {ratio_http:.0f}x against the HTTP p50")
    print(f"MatchIndex == rank_naive      {agree}/{len(chosen)} needs on the "
          f"{len(sample):,}-firm sample")
    results.update(naive_s=per_need / 1000, ratio=ratio, ratio_cpu=ratio_cpu,
                   ratio_http=ratio_http, agree=agree, naive_needs=len(chosen))


def upsert_figures(service, args, results: dict) -> None:
    """Time MatchIndex.upsert of changed firms on the in-process index (done last: it makes
    that index differ from the database)."""
    index = service.current()
    rng = random.Random(args.seed + 5)
    firms = index.state_.store.firms  # the indexed firms, to change a few
    timings = []
    for k in range(200):
        firm = firms[rng.randrange(len(firms))]
        changed = replace(firm, description=firm.description + f" upsert probe {k}",
                          skills=(*firm.skills, f"upsert-probe-{k}"))
        started = time.perf_counter()
        index.upsert(changed)
        timings.append((time.perf_counter() - started) * 1000)
    print(f"MatchIndex.upsert             p50 {statistics.median(timings):7.3f} ms   p95 "
          f"{percentile(timings, 95):7.3f} ms   max {max(timings):7.3f} ms   (200 changed firms)")
    results["upsert_p50"] = statistics.median(timings)


# --------------------------------------------------------------------------- summary


def summary(results: dict, args) -> None:
    """Print each figure against its target."""
    n = results["n"]
    print(f"\n== summary, N = {n:,} ({args.backend}); targets are for N = 100,000 ==")
    print(f"   {load_average()}")
    rows = [
        ("import throughput (CLI, wall)", f"{results['import_per_s']:,.0f} firms/s",
         f">= {TARGET_IMPORT_PER_S:,.0f} firms/s",
         verdict(results["import_per_s"] >= TARGET_IMPORT_PER_S))
        if "import_per_s" in results else ("import throughput", "not measured", "", ""),
        ("  without CLI start-up", f"{results.get('import_per_s_net', 0):,.0f} firms/s", "",
         ""),
        ("index build (first match)", f"{results['build_s']:.2f} s",
         f"read {results['load_s']:.2f} s + fit {results['fit_s']:.2f} s", ""),
        ("first HTTP match (after warm-up)", f"{results['http_first_s'] * 1000:.0f} ms "
         f"(warm-up {results['warmup_s']:.1f} s)", "no build in it, no worker timeout",
         verdict(results["cold_start_ok"])
         + ("" if results["cold_start_ok"] else f" ({results['cold_start_failure']})")),
        ("match p50 in process", f"{results['inproc_p50']:.2f} ms",
         f"p95 {results['inproc_p95']:.2f} ms", ""),
        ("match p50 over HTTP", f"{results['http_p50']:.2f} ms",
         f"<= {TARGET_HTTP_P50_MS:.0f} ms", verdict(results["http_p50"] <= TARGET_HTTP_P50_MS)),
        ("match p95 over HTTP", f"{results['http_p95']:.2f} ms", "", ""),
        ("naive / indexed (in process p50)", f"{results['ratio']:,.0f}x",
         f">= {TARGET_RATIO:.0f}x", verdict(results["ratio"] >= TARGET_RATIO)),
        ("  naive / HTTP p50", f"{results['ratio_http']:,.0f}x", "", ""),
        ("worker RSS after matches", f"{results['rss']:.0f} MB", f"<= {TARGET_RSS_MB:.0f} MB",
         verdict(results["rss"] <= TARGET_RSS_MB)),
        ("worker RSS after updates", f"{results['rss_end']:.0f} MB",
         f"<= {TARGET_RSS_MB:.0f} MB", verdict(results["rss_end"] <= TARGET_RSS_MB)),
        ("  worker peak RSS (VmHWM)", f"{results['rss_peak']:.0f} MB", "during the build", ""),
        ("match after PATCH (HTTP p50)", f"{results['after_http_p50']:.2f} ms",
         f"idle sync {results['idle_http_p50']:.2f} ms", ""),
        ("change visible in next match", f"{results['shown']}/{results['updates']}",
         "all", verdict(results["shown"] == results["updates"])),
        ("MatchIndex.upsert p50", f"{results['upsert_p50']:.3f} ms", "", ""),
        ("HTTP == in process", f"{results['same']}/{results['compared']}", "all",
         verdict(results["same"] == results["compared"])),
        ("MatchIndex == rank_naive", f"{results['agree']}/{results['naive_needs']}", "all",
         verdict(results["agree"] == results["naive_needs"])),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target, mark in rows:
        print(f"{name:<{width}}  {value:>14}  {target:<28} {mark}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
