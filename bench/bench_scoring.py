"""Benchmark MatchIndex against rank_naive on synthetic firms; prints timings, ratio and RSS.

    python bench/bench_scoring.py --n 1000 10000 100000

Each size runs in its own process, so the RSS printed is that size's alone. Firms and needs
are generated from a seed: 1-3 offices around 200 cities, 5-15 skills out of ~300, about 20
words of description mixing British and American spellings.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring import Firm, MatchIndex, Need, Office, rank_naive  # noqa: E402

_PROCESSES_TEXT = (
    "cnc-machining anodizing powder-coating laser-cutting welding injection-molding sheet-metal "
    "die-casting 3d-printing electroplating galvanizing heat-treatment grinding polishing forging "
    "stamping bending assembly pcb-assembly wire-harness painting sandblasting turning milling edm "
    "waterjet-cutting extrusion vacuum-forming blow-molding tool-making"
)
PROCESSES = _PROCESSES_TEXT.split()
_QUALIFIERS_TEXT = (
    "aluminum steel stainless titanium plastic prototype high-volume precision medical"
)
QUALIFIERS = _QUALIFIERS_TEXT.split()
SKILLS = PROCESSES + [f"{q}-{p}" for p in PROCESSES for q in QUALIFIERS]
_DOMAIN_WORDS_TEXT = (
    "aluminium aluminum anodising anodizing anodised colour color centre center moulding molding "
    "machining machined parts components surface finishing coating coatings precision quality "
    "certified iso 9001 prototypes series production batch small large customers automotive "
    "aerospace medical industrial equipment tooling design engineering fast delivery steel "
    "stainless titanium brass copper plastics polymers laser welding welded cutting bending "
    "assembly electronics cables harness painting powder blasting grinding polished polishing "
    "heat treatment hardening galvanised galvanized plating chrome nickel zinc family owned "
    "since workshop factory team experienced modern machines cnc five axis turning milling"
)
DOMAIN_WORDS = _DOMAIN_WORDS_TEXT.split()
_STOP_TEXT = "and of the for with we our in to a on at"
STOP = _STOP_TEXT.split()


def pseudo_words(rng: random.Random, count: int) -> list[str]:
    """Return deterministic made-up words standing for the long tail of a profile's vocabulary."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_world(n: int, n_needs: int, seed: int) -> tuple[list[Firm], list[Need]]:
    """Return n synthetic firms and n_needs synthetic needs."""
    rng = random.Random(seed)
    cities = [(rng.uniform(36, 60), rng.uniform(-10, 30)) for _ in range(200)]
    tail = pseudo_words(rng, 3000)
    # Zipf-like weights over the description vocabulary
    vocabulary = DOMAIN_WORDS + tail
    word_weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(vocabulary))]

    def place() -> tuple[float, float]:
        lat, lon = rng.choice(cities)
        return (
            max(-89.0, min(89.0, rng.gauss(lat, 0.3))),
            max(-179.0, min(179.0, rng.gauss(lon, 0.4))),
        )

    def words(k: int) -> str:
        chosen = rng.choices(vocabulary, weights=word_weights, k=k)
        return " ".join(w if rng.random() > 0.25 else f"{rng.choice(STOP)} {w}" for w in chosen)

    firms = []
    office_id = 0
    for firm_id in range(1, n + 1):
        offices = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            office_id += 1
            lat, lon = place()
            radius = rng.choice((25.0, 50.0, 100.0, 100.0, 200.0, 500.0))
            offices.append(Office(office_id, lat, lon, radius))
        capacity = None if rng.random() < 0.5 else rng.randint(5, 50)
        firms.append(
            Firm(
                id=firm_id,
                name=f"Firm {firm_id}",
                kind="partner" if rng.random() < 0.8 else "affiliate",
                skills=tuple(rng.sample(SKILLS, rng.randint(5, 15))),
                description=words(rng.randint(15, 22)),
                offices=tuple(offices),
                active=rng.random() < 0.95,
                capacity=capacity,
                open_referrals=0 if capacity is None else rng.randint(0, capacity),
                won=rng.randint(0, 30),
                failed=rng.randint(0, 30),
            )
        )
    needs = []
    for _ in range(n_needs):
        lat, lon = place()
        with_skills = rng.random() < 0.7
        needs.append(
            Need(
                latitude=lat,
                longitude=lon,
                skills=tuple(rng.sample(SKILLS, rng.randint(1, 3))) if with_skills else (),
                description=words(rng.randint(3, 8)),
                limit=rng.choice((5, 5, 5, 10)),
                max_distance_km=100.0 if rng.random() < 0.2 else None,
                kinds=frozenset({"partner"}) if rng.random() < 0.5 else None,
            )
        )
    return firms, needs


def rss_mb() -> tuple[float, float]:
    """Return the process's current and peak resident set size in MB (Linux)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def index_array_bytes(index: MatchIndex) -> int:
    """Return the bytes of the distinct numpy buffers an index holds."""
    state = index.state_
    store = state.store
    arrays = [state.live, state.proposable, *vars(store).values()]
    for postings in (value for value in vars(store).values() if isinstance(value, dict)):
        if not all(isinstance(entry, tuple) for entry in postings.values()):
            continue  # codes, not postings
        for slots, values, _ in postings.values():
            arrays += [slots, values]
    seen: dict[int, int] = {}
    for array in arrays:
        if hasattr(array, "nbytes"):
            base = array if array.base is None else array.base
            seen[id(base)] = base.nbytes
    return sum(seen.values())


def percentile(samples: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(n: int, n_needs: int, seed: int, naive_sample: int) -> None:
    """Benchmark one size and print its figures."""
    start_rss, _ = rss_mb()
    firms, needs = make_world(n, n_needs, seed)
    data_rss, _ = rss_mb()

    gc.collect()
    started, cpu_started = time.perf_counter(), time.thread_time()
    index = MatchIndex().fit(firms)
    fit_s, fit_cpu_s = time.perf_counter() - started, time.thread_time() - cpu_started
    gc.collect()
    index_rss, _ = rss_mb()

    for need in needs[:10]:  # warm the scratch buffers and the term cache
        index.query(need)
    query_ms, query_cpu_ms = [], []
    for need in needs:
        started, cpu_started = time.perf_counter(), time.thread_time()
        index.query(need)
        query_ms.append((time.perf_counter() - started) * 1000)
        query_cpu_ms.append((time.thread_time() - cpu_started) * 1000)

    sample = firms[: min(n, naive_sample)]
    naive_needs = needs[:5]
    started = time.perf_counter()
    for need in naive_needs:
        rank_naive(sample, need)
    naive_sample_s = (time.perf_counter() - started) / len(naive_needs)
    naive_scaled_ms = naive_sample_s * (n / len(sample)) * 1000

    # same answers as the reference on a sample index
    check = MatchIndex().fit(sample)
    agree = sum(check.query(need) == rank_naive(sample, need) for need in naive_needs)

    rng = random.Random(seed + 1)
    upsert_ms = []
    spare = make_world(200, 0, seed + 2)[0]
    for i, template in enumerate(spare):
        firm_id = rng.randint(1, n) if i % 2 == 0 else n + 1 + i  # replace, then add
        firm = Firm(
            id=firm_id,
            name=template.name,
            kind=template.kind,
            skills=template.skills,
            description=template.description,
            offices=template.offices,
            capacity=template.capacity,
            open_referrals=template.open_referrals,
            won=template.won,
            failed=template.failed,
        )
        started = time.perf_counter()
        index.upsert(firm)
        upsert_ms.append((time.perf_counter() - started) * 1000)
    remove_ms = []
    for firm_id in rng.sample(range(1, n + 1), min(100, n)):
        started = time.perf_counter()
        index.remove(firm_id)
        remove_ms.append((time.perf_counter() - started) * 1000)
    index.query(needs[0])  # the first query of a new snapshot recomputes a cached part
    after_updates = []
    for need in needs[:50]:
        cpu_started = time.thread_time()
        index.query(need)
        after_updates.append((time.thread_time() - cpu_started) * 1000)

    rss, peak = rss_mb()
    arrays_mb = index_array_bytes(index) / 2**20
    p50 = statistics.median(query_ms)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"== N = {n:,} firms, {sum(len(f.offices) for f in firms):,} offices (load {load}) ==")
    print(f"fit                      {fit_s:8.2f} s wall   {fit_cpu_s:8.2f} s cpu")
    print(
        f"query wall               p50 {p50:6.2f} ms   p95 {percentile(query_ms, 95):6.2f} ms"
        f"   max {max(query_ms):6.2f} ms   ({len(needs)} needs)"
    )
    print(
        f"query cpu                p50 {statistics.median(query_cpu_ms):6.2f} ms   "
        f"p95 {percentile(query_cpu_ms, 95):6.2f} ms"
    )
    print(
        f"query cpu after updates  p50 {statistics.median(after_updates):6.2f} ms   "
        f"p95 {percentile(after_updates, 95):6.2f} ms"
    )
    print(
        f"rank_naive               {naive_sample_s * 1000:8.1f} ms on {len(sample):,} firms"
        f" -> {naive_scaled_ms / 1000:8.2f} s scaled to {n:,}"
    )
    print(f"ratio naive / index p50  {naive_scaled_ms / p50:8.0f} x")
    print(
        f"index == rank_naive      {agree}/{len(naive_needs)} needs on the {len(sample):,} sample"
    )
    print(
        f"upsert                   p50 {statistics.median(upsert_ms):6.3f} ms   "
        f"p95 {percentile(upsert_ms, 95):6.3f} ms   max {max(upsert_ms):6.3f} ms"
    )
    print(
        f"remove                   p50 {statistics.median(remove_ms):6.3f} ms   "
        f"max {max(remove_ms):6.3f} ms"
    )
    print(
        f"RSS                      start {start_rss:.0f} MB, + firms {data_rss - start_rss:.0f} MB,"
        f" + index {index_rss - data_rss:.0f} MB, end {rss:.0f} MB, peak {peak:.0f} MB"
    )
    print(f"index numpy arrays       {arrays_mb:.0f} MB (postings, slots, offices, masks)")
    sys.stdout.flush()


def main() -> None:
    """Parse arguments and run each size in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--needs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=1000)
    args = parser.parse_args()
    if len(args.n) == 1:
        run(args.n[0], args.needs, args.seed, args.naive_sample)
        return
    for n in args.n:
        command = [sys.executable, __file__, "--n", str(n), "--needs", str(args.needs)]
        command += ["--seed", str(args.seed), "--naive-sample", str(args.naive_sample)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
