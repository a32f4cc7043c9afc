"""Matching at scale under real gunicorn (issue 17): start, memory and rate with N workers.

    python bench/bench_scale.py --n 100000 --workers 5 --keep      # import, measure, keep
    python bench/bench_scale.py --reuse FOLDER --workers 5 --code /work/baseline-scale .

The database is made once (a fresh SQLite file or PostgreSQL database, `flask db upgrade`,
N synthetic firms from bench/common.py loaded with `flask import-organizations`), or reused
from a folder an earlier --keep run left. Then, for each --code folder in turn (a checkout of
this repository, e.g. a `git worktree` of the baseline; default: this one), over the same
database:

1. gunicorn is started from that folder as documented (its gunicorn.conf.py, with
   GUNICORN_WORKERS=--workers, logging, metrics and rate limits on, the limit out of reach),
   with an access log naming the worker pid and request id of every answer;
2. from the moment it is started, --threads client threads POST /match (a new connection
   each, as sync workers close theirs) until every worker has answered one with 200: the
   seconds from start to each worker's first match;
3. each worker's RSS and PSS (/proc/PID/smaps_rollup), the master's, and the workers' total
   PSS against one worker's RSS (issue 17: at most 1.5x at 1M with 5 workers);
4. match rate: --threads threads POST /match (3 skills and 8 description words each) for
   --seconds; then /healthz's rate on the same server the same way.

Then a table with each figure per code folder side by side. Rates are noisy on a shared
machine: the load average is printed with each phase; start times and PSS are less so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (bench/common.py; puts the project root on sys.path)
from common import ROOT, Cli, free_port, load_average  # noqa: E402

ACCESS_FORMAT = "%(p)s %({x-request-id}o)s %(s)s %(U)s"
# gunicorn.conf.py logs access lines as JSON on stderr when GUNICORN_ACCESSLOG is set
_ACCESS_LINE = re.compile(r"<(\d+)> (\S+) (\d{3}) ([^\s\"]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="firms to import")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--seconds", type=float, default=15.0, help="each rate's duration")
    parser.add_argument("--code", nargs="+", default=[str(ROOT)],
                        help="checkouts to run the server from, in turn (baseline first)")
    parser.add_argument("--snapshot", action="store_true",
                        help="set MATCH_INDEX_SNAPSHOT (one path for every run: name a "
                             "checkout twice to see a start that builds, then one that loads)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-deadline", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the database and folder")
    parser.add_argument("--reuse", metavar="FOLDER", help="a SQLite folder a --keep run left")
    args = parser.parse_args()

    print(f"== bench_scale: {args.workers} workers, {args.threads} client threads ==")
    print(f"   {load_average()}")
    with contextlib.ExitStack() as stack:
        if args.reuse:
            folder = Path(args.reuse)
            url = f"sqlite:///{folder / 'bench.db'}"
            cli = Cli(url, folder / "instance")
            print(f"reusing {folder}")
        else:
            folder = stack.enter_context(common.work_folder("bench-scale-", keep=args.keep))
            url = stack.enter_context(common.fresh_database(args.backend, folder,
                                                           keep=args.keep))
            cli, _ = Cli.migrated(url, folder)
            data = folder / "firms.jsonl"
            common.write_jsonl(data, common.World(args.seed).firms(args.n))
            seconds, out = cli.run("import-organizations", str(data))
            print(f"imported {args.n:,} firms in {seconds:.1f} s ({args.n / seconds:,.0f}/s): "
                  f"{out.strip().splitlines()[-1]!r}")
        key = cli.create_api_key("admin", name="bench-scale")
        needs = rate_needs(args.seed, 500)
        results = []
        for code in args.code:
            print(f"\n== server from {code} "
                  f"({git_describe(code)})   [{load_average()}]", flush=True)
            snapshot = str(folder / "match-index") if args.snapshot else ""
            results.append(measure(Path(code), cli, folder, key, needs, args, snapshot))
        table(args.code, results)


def git_describe(code: str) -> str:
    """Return the checkout's commit, marked + when its working tree has changes."""
    head = subprocess.run(["git", "-C", code, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", code, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head + ("+" if dirty else "")


def rate_needs(seed: int, count: int) -> list[dict[str, Any]]:
    """Return POST /match bodies of 3 skills and 8 description words around the world's cities."""
    world = common.World(seed)
    rng = random.Random(seed * 31 + 5)
    needs = []
    for _ in range(count):
        _, lat, lon = world.place(rng, spread_deg=0.15)
        needs.append({"skills": rng.sample(common.SKILLS, 3),
                      "description": " ".join(rng.choices(world.vocabulary[:400], k=8)),
                      "location": {"latitude": lat, "longitude": lon}, "limit": 5})
    return needs


class Server:
    """gunicorn from one checkout, as gunicorn.conf.py configures it, with a pid access log."""

    def __init__(self, code: Path, cli: Cli, folder: Path, workers: int,
                 snapshot: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"gunicorn-{self.port}.log"
        env = {**cli.env, "GUNICORN_WORKERS": str(workers), "GUNICORN_ACCESSLOG": "-",
               "GUNICORN_BIND": f"127.0.0.1:{self.port}", "LOG_LEVEL": "INFO",
               # rate limits on as in production, at a limit the benchmark never reaches
               "RATELIMIT_ENABLED": "true", "RATELIMIT_DEFAULT": "10000000 per minute",
               "MATCH_INDEX_SNAPSHOT": snapshot}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 -- lives as long as the server
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
             "--access-logformat", ACCESS_FORMAT, "wsgi:app"],
            cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=self._log)

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live workers (not its other children: a snapshot
        writer), from the log."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            children = {int(p) for p in path.read_text().split()}
        except OSError:
            return []
        booted = [int(m[1]) for m in re.finditer(r"Booting worker with pid: (\d+)",
                                                  self.log_path.read_text(errors="replace"))]
        return [pid for pid in booted if pid in children]

    def served(self) -> dict[str, int]:
        """Return request id -> worker pid of every 200 match logged so far."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return {}
        return {m[2]: int(m[1]) for m in _ACCESS_LINE.finditer(text)
                if m[3] == "200" and m[4] == "/api/v1/match"}

    def stop(self) -> None:
        """Stop the master (it stops its workers) and wait for it, and for its other children
        (a snapshot writer, which the next start would otherwise not find done)."""
        others = self.other_children()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        wait_for(others)
        self._log.close()

    def other_children(self) -> set[int]:
        """Return the master's children that are not workers (a snapshot writer)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return {int(p) for p in path.read_text().split()} - set(self.worker_pids())
        except OSError:
            return set()


def wait_for(pids: set[int]) -> None:
    """Wait (up to 15 minutes) until these processes have exited."""
    deadline = time.monotonic() + 900
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            print(f"   !! processes {sorted(pids)} still running")
            return
        time.sleep(0.5)


def measure(code: Path, cli: Cli, folder: Path, key: str, needs: list[dict], args,
            snapshot: str) -> dict:
    """Start a server from `code`; return its start, memory and rate figures."""
    server = Server(code, cli, folder, args.workers, snapshot)
    try:
        first = first_matches(server, key, needs, args)
        for line in server.log_path.read_text(errors="replace").splitlines():
            if "match index built in the master" in line or "match index ready" in line:
                print("   log: " + line[line.find('"message"'):][:160])
        memory = memory_figures(server)
        writers = server.other_children()
        if writers:
            started = time.monotonic()
            wait_for(writers)  # not to share the CPU with the rates
            print(f"   (a snapshot writer ran {time.monotonic() - started:.0f} s more)")
        print(f"-- rates   [{load_average()}]", flush=True)
        match_rate = rate(server.url + "/api/v1/match", key, needs, args)
        health_rate = rate(server.url + "/healthz", None, None, args)
        print(f"match rate   {match_rate:8.1f} /s   /healthz {health_rate:8.1f} /s "
              f"({args.threads} threads, {args.seconds:.0f} s each)")
        return {**first, **memory, "match_rate": match_rate, "health_rate": health_rate}
    finally:
        server.stop()


def first_matches(server: Server, key: str, needs: list[dict], args) -> dict:
    """POST matches from start until every worker answered one; return when each did."""
    import requests

    arrived: dict[str, float] = {}  # request id -> seconds after start of its 200 answer
    done = threading.Event()
    counter = iter(range(10**9))
    lock = threading.Lock()

    def client(thread: int) -> None:
        while not done.is_set():
            with lock:
                i = next(counter)
            request_id = f"scale-{i}"
            try:
                response = requests.post(
                    server.url + "/api/v1/match", json=needs[i % len(needs)], timeout=120,
                    headers={"Authorization": f"Bearer {key}", "X-Request-ID": request_id})
            except requests.RequestException:
                time.sleep(0.05)  # not listening yet
                continue
            if response.status_code == 200:
                arrived[request_id] = time.monotonic() - server.started
            else:
                time.sleep(0.05)  # 503 while the index warms up

    threads = [threading.Thread(target=client, args=(t,), daemon=True)
               for t in range(args.threads)]
    for thread in threads:
        thread.start()
    firsts: dict[int, float] = {}
    pids: list[int] = []  # the first set of workers (max_requests replaces some later)
    deadline = time.monotonic() + args.start_deadline
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + server.log_path.read_text()[-3000:])
            if len(pids) < args.workers:
                pids += [p for p in server.worker_pids() if p not in pids][
                    :args.workers - len(pids)]
            for request_id, pid in server.served().items():
                if request_id in arrived and pid in pids:
                    firsts[pid] = min(firsts.get(pid, float("inf")), arrived[request_id])
            if len(pids) >= args.workers and all(pid in firsts for pid in pids):
                break
            time.sleep(0.2)
    finally:
        done.set()
        for thread in threads:
            thread.join(150)
    times = sorted(firsts.values())
    print("first match served by each worker, s after start: "
          + ", ".join(f"{t:.1f}" for t in times)
          + ("" if len(times) >= args.workers else f"  (only {len(times)} of {args.workers})"))
    return {"first_s": times}


def _kb(path: str, field: str) -> float:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_figures(server: Server) -> dict:
    """Return each worker's RSS and PSS in MB, the master's, and the workers' PSS sum / RSS."""
    workers = [(pid, _kb(f"/proc/{pid}/status", "VmRSS"),
                _kb(f"/proc/{pid}/smaps_rollup", "Pss")) for pid in server.worker_pids()]
    master = server.process.pid
    master_rss, master_pss = (_kb(f"/proc/{master}/status", "VmRSS"),
                              _kb(f"/proc/{master}/smaps_rollup", "Pss"))
    for pid, rss, pss in workers:
        print(f"worker {pid:>7}   RSS {rss:7.0f} MB   PSS {pss:7.0f} MB")
    print(f"master {master:>7}   RSS {master_rss:7.0f} MB   PSS {master_pss:7.0f} MB")
    pss_sum = sum(pss for _, _, pss in workers)
    one_rss = max(rss for _, rss, _ in workers)
    print(f"workers' PSS sum {pss_sum:7.0f} MB = {pss_sum / one_rss:.2f} x one worker's RSS "
          f"({one_rss:.0f} MB); with the master {pss_sum + master_pss:.0f} MB")
    return {"pss_sum": pss_sum, "one_rss": one_rss, "master_pss": master_pss}


def rate(url: str, key: str | None, needs: list[dict] | None, args) -> float:
    """Return answers (200) a second from --threads threads over --seconds."""
    import requests

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    counts = [0] * args.threads
    errors = [0] * args.threads
    stop_at = time.monotonic() + args.seconds

    def client(thread: int) -> None:
        i = thread
        with requests.Session() as http:
            http.headers.update(headers)
            while time.monotonic() < stop_at:
                if needs is None:
                    response = http.get(url, timeout=60)
                else:
                    response = http.post(url, json=needs[i % len(needs)], timeout=60)
                i += args.threads
                if response.status_code == 200:
                    counts[thread] += 1
                else:
                    errors[thread] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(t,)) for t in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if sum(errors):
        print(f"   !! {sum(errors)} answers other than 200 from {url}")
    return sum(counts) / (time.monotonic() - started)


def table(codes: list[str], results: list[dict]) -> None:
    """Print each figure per code folder, side by side."""
    print("\n== summary (" + os.uname().nodename + f", {load_average()})")
    width = 22
    print(f"{'':34}" + "".join(f"{git_describe(c):>{width}}" for c in codes))
    rows = [
        ("first match, first worker (s)", lambda r: f"{r['first_s'][0]:.1f}"
         if r["first_s"] else "-"),
        ("first match, last worker (s)", lambda r: f"{r['first_s'][-1]:.1f}"
         if r["first_s"] else "-"),
        ("workers' PSS sum (MB)", lambda r: f"{r['pss_sum']:.0f}"),
        ("one worker's RSS (MB)", lambda r: f"{r['one_rss']:.0f}"),
        ("PSS sum / one RSS", lambda r: f"{r['pss_sum'] / r['one_rss']:.2f}"),
        ("master PSS (MB)", lambda r: f"{r['master_pss']:.0f}"),
        ("match rate (/s)", lambda r: f"{r['match_rate']:.1f}"),
        ("/healthz rate (/s)", lambda r: f"{r['health_rate']:.1f}"),
    ]
    for label, cell in rows:
        print(f"{label:34}" + "".join(f"{cell(r):>{width}}" for r in results))


if __name__ == "__main__":
    main()
