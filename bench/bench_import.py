"""Benchmark `flask --app wsgi import-organizations FILE` alone (issue: >= 4,000 firms/s on
SQLite at 100k firms, >= 3,000 on PostgreSQL).

    python bench/bench_import.py --n 10000                      # SQLite
    python bench/bench_import.py --n 10000 100000 --geocode-share 0.1
    python bench/bench_import.py --n 10000 --backend postgresql

For each N: a fresh database and `flask --app wsgi db upgrade`; N synthetic firms
(bench/common.py, the same records bench_match.py imports) written as JSON lines (or --firms
FILE: the same, written once beforehand); the CLI's start-up timed by importing an empty file;
then the import itself and, with --updates, the same firms imported again (every line an update
by external_ref), a share of them changed (--changed-share, default 0.5: a new name, skills in
another order, an office's radius, the capacity or `active`; the others given again as they
are). Each prints wall seconds, the CPU time of the CLI process (user + system, from the
kernel's accounting of waited-for children), and firms/s with and without the start-up, then a
PASS/FAIL verdict against the backend's target (wall firms/s, start-up included); the update
run checks the audit log holds one organization.update entry per changed firm. On a shared
machine compare the CPU seconds too (the load average is printed around each run).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py; puts the project root on sys.path)
from common import Cli, load_average  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

# The targets: wall firms/s, start-up included (SQLite measured at 100k firms).
TARGET_PER_S = {"sqlite": 4000, "postgresql": 3000}


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--geocode-share", type=float, default=0.0,
                        help="share of offices given by city only (geocoded on import)")
    parser.add_argument("--updates", action="store_true",
                        help="also import the firms again (every line an update)")
    parser.add_argument("--changed-share", type=float, default=0.5,
                        help="share of the firms the update run changes")
    parser.add_argument("--firms", type=Path, default=None,
                        help="import this file instead of writing one (the N firms written "
                             "beforehand, e.g. a million: 850 MB, minutes to write)")
    parser.add_argument("--keep", action="store_true", help="keep the folder and database")
    args = parser.parse_args()
    for n in args.n:
        run(n, args)


def child_cpu() -> float:
    """CPU seconds (user + system) of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cli: Cli, *args: str) -> tuple[float, float, str]:
    """Run the CLI; return wall seconds, CPU seconds and its stdout."""
    before = child_cpu()
    wall, out = cli.run(*args)
    return wall, child_cpu() - before, out


def run(n: int, args: argparse.Namespace) -> None:
    """Import n firms into a fresh database and print the figures."""
    print(f"== bench_import: N = {n:,} firms, backend {args.backend}, seed {args.seed}, "
          f"geocode share {args.geocode_share} ==")
    with common.work_folder("bench-import-", keep=args.keep) as folder, \
            common.fresh_database(args.backend, folder, keep=args.keep) as url:
        cli, _ = Cli.migrated(url, folder)
        data = args.firms or folder / "firms.jsonl"
        started = time.perf_counter()
        if args.firms is None:
            common.write_jsonl(data, common.World(args.seed).firms(
                n, geocode_share=args.geocode_share))
        again = folder / "firms-again.jsonl"
        changed = write_changed(data, again, args.changed_share, args.seed)
        print(f"generate                {time.perf_counter() - started:8.2f} s "
              f"({data.stat().st_size / 2**20:.1f} MiB)")
        empty = folder / "empty.jsonl"
        empty.write_text("")
        print(f"   [{load_average()}]")
        startup, startup_cpu, _ = timed(cli, "import-organizations", str(empty))
        print(f"CLI start-up            {startup:8.2f} s wall {startup_cpu:8.2f} s CPU")
        runs = [("import (create)", data, f"created {n}, updated 0, rejected 0")]
        if args.updates:
            runs.append(("import again (update)", again, f"created 0, updated {n}, rejected 0"))
        for title, path, expected in runs:
            print(f"   [{load_average()}]")
            wall, cpu, out = timed(cli, "import-organizations", str(path))
            last = out.strip().splitlines()[-1]
            if last != expected:
                print(f"   !! expected {expected!r}, got:\n{out[-2000:]}")
            net = max(wall - startup, 1e-9)
            print(f"{title:<23} {wall:8.2f} s wall {cpu:8.2f} s CPU: {n / wall:8,.0f} firms/s "
                  f"({n / net:,.0f}/s without start-up; by CPU {n / cpu:,.0f}/s, "
                  f"{n / max(cpu - startup_cpu, 1e-9):,.0f}/s without start-up)")
            target = TARGET_PER_S[args.backend]
            print(f"target >= {target:,} firms/s on {args.backend} (wall, start-up included): "
                  f"{verdict(n / wall >= target)}")
        if args.updates:
            audited = audit_count(url, "organization.update")
            print(f"changed {changed:,} of {n:,} firms; organization.update audit entries "
                  f"{audited:,}: {verdict(audited == changed)}")
        print(f"   [{load_average()}]")


def write_changed(source: Path, target: Path, share: float, seed: int) -> int:
    """Write the firms of source to target, a share of them changed; return how many changed.

    Each change is a real one (the service's audit log then holds one entry per changed firm).
    """
    rng = random.Random(seed)
    changed = 0
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="utf-8") as out:
        for line in lines:
            firm = json.loads(line)
            if rng.random() < share:
                changed += 1
                change = rng.randrange(5)
                if change == 0:
                    firm["name"] += " (renamed)"
                elif change == 1:  # 5-15 skills: reversed is another order
                    firm["skills"].reverse()
                elif change == 2:
                    firm["offices"][0]["service_radius_km"] = 321.0
                elif change == 3:
                    firm["capacity"] = 1 + (firm["capacity"] or 0)
                else:
                    firm["active"] = not firm["active"]
            out.write(json.dumps(firm, ensure_ascii=False) + "\n")
    return changed


def audit_count(url: str, action: str) -> int:
    """How many audit entries of this action the database holds."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM audit_log WHERE action = :a"),
                                      {"a": action}).scalar_one()
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
