"""Under gunicorn with two workers, /metrics reports the requests of both, whoever answers."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

ROUTE = "/readyz"  # not the route LiveServer polls while it waits for the workers


def readyz_count(metrics_text: str) -> float:
    """Return how many GET /readyz answered 200 according to a metrics page."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (sample.name == "flask_http_request_duration_seconds_count"
                    and sample.labels.get("url_rule") == ROUTE
                    and sample.labels.get("status") == "200"):
                return sample.value
    return 0.0


def per_worker_counts(metrics_dir: Path, scratch: Path) -> dict[str, float]:
    """Return each worker's own /readyz count, read from that worker's files alone."""
    counts = {}
    for path in metrics_dir.glob("histogram_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        alone = scratch / pid
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[pid] = readyz_count(generate_latest(registry).decode())
    return counts


def test_counts_of_both_workers_add_up_at_metrics(app, database_url, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = LiveServer(database_url, workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    try:
        def ready(_):
            with requests.get(server.url + ROUTE, timeout=10) as response:
                return response.status_code

        sent = 0
        # Concurrent requests on fresh connections spread over both workers; go on (a
        # bounded number of rounds) until each worker has served some. On a busy machine one
        # worker can take every request of a round while the other is still starting, so a
        # round that reaches one worker only is followed by a short pause.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(25):
                assert set(pool.map(ready, range(40))) == {200}
                sent += 40
                counts = per_worker_counts(metrics_dir, tmp_path)
                if len([c for c in counts.values() if c > 0]) == 2:
                    break
                time.sleep(0.2)
        assert len([c for c in counts.values() if c > 0]) == 2, counts
        assert sum(counts.values()) == sent

        # Each scrape is answered by one worker or the other; every one reports the total.
        for _ in range(6):
            with requests.get(server.url + "/metrics", timeout=10) as scrape:
                assert scrape.status_code == 200
                assert readyz_count(scrape.text) == sent
    finally:
        server.stop()
