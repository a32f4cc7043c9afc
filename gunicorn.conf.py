"""gunicorn settings: `gunicorn --config gunicorn.conf.py wsgi:app`. Each can be set by env."""

import glob
import multiprocessing
import os
import shutil
import tempfile
import time

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Two per core plus one, the usual rule for sync workers doing database I/O.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
# Bodies are capped by the app (MAX_CONTENT_LENGTH); headers are capped here.
limit_request_field_size = 8190
# The app logs every request itself (with its request id); gunicorn's access log is extra.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"

# With LOG_FORMAT=json (the default) gunicorn's own lines are JSON objects too, so that every
# line on stderr parses. The app installs its own root handler in each worker.
if os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": []},
        "formatters": {"json": {"()": "referral_service.observability.JsonFormatter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(),
                               "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO" if accesslog else "WARNING",
                                "handlers": ["json"], "propagate": False},
        },
    }

# Prometheus multiprocess mode: each worker writes its metrics to files in this folder and
# /metrics adds them all up, whichever worker answers the scrape. It has to be in the
# environment before a worker imports prometheus_client, hence here. Give it a folder of its
# own: it is emptied at start, as files of an earlier run would be counted again.
METRICS_DIR_PREFIX = "referral-metrics-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphaned_metrics_dirs():
    """Delete folders made by earlier masters that were killed before they could."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), METRICS_DIR_PREFIX + "*-*")):
        pid = os.path.basename(path)[len(METRICS_DIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _remove_orphaned_metrics_dirs()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    # Ours to delete on exit (kept in the environment: a reload re-reads this file).
    os.environ["REFERRAL_SERVICE_OWNS_METRICS_DIR"] = "1"


def on_starting(server):
    """Empty the metrics folder before the first worker starts."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


# How long a replacement worker may wait for its match index before taking requests anyway.
REPLACEMENT_WAIT_SECONDS = 120


def _warm_up_enabled():
    return os.environ.get("MATCH_INDEX_WARMUP", "true").lower() not in ("0", "false", "no", "off")


def when_ready(server):
    """Make the match index once, in the master, before any worker is forked.

    With MATCH_INDEX_SNAPSHOT set, it is the last snapshot, memory-mapped and caught up from
    the database (adapters/match_snapshot.py); otherwise it is built from the database.
    Every worker (replacements too) inherits it and shares its memory copy-on-write, then
    catches up from the master's watermark: one build instead of one per worker, and one copy
    of its memory (bench/bench_scale.py, docs/SCALING.md). No worker
    answers until it is built (the socket queues connections meanwhile). If it fails (the
    database is down), each worker builds its own as it starts, as before.
    """
    # The app's modules are imported here too, so that the workers share their pages instead
    # of each importing its own copy after the fork (the app itself is made in each worker).
    import referral_service.api
    import referral_service.portal  # noqa: F401

    if not _warm_up_enabled():
        return
    from referral_service.extensions import build_match_index_for_workers

    started = time.monotonic()
    try:
        made = build_match_index_for_workers()
    except Exception:  # noqa: BLE001 -- the workers build their own instead
        server.log.exception("match index not built in the master; each worker builds its own")
        return
    server.log.info("match index built in the master in %.1f s: %s",
                    time.monotonic() - started, made)


def post_worker_init(worker):
    """Take this worker's match index (from the master) or build it, in a background thread.

    Seconds at 100k firms: no request pays for it (a match that comes meanwhile waits a few
    seconds at most, then gets a 503 with Retry-After; /readyz says "warming up"), and the
    worker keeps answering gunicorn's heartbeat, so its timeout never kills it for this.
    The hook itself waits up to 2 s, so that a small database is ready before any request;
    a replacement worker waits until its index is built (the others answer meanwhile).
    MATCH_INDEX_WARMUP=false leaves the build to the first match, as without gunicorn.
    """
    if not _warm_up_enabled():
        return
    from referral_service.extensions import warm_up_match_index

    if worker.age <= worker.cfg.workers:
        # A worker of the first set: a small database is built before the first request
        # (well inside the timeout); a large one goes on in the background, since no other
        # worker could answer meanwhile.
        warm_up_match_index(worker.wsgi, wait_seconds=2.0)
        return
    # A replacement (max_requests recycling, a crash, a reload): the other workers answer
    # while this one builds, so it takes no request before its index is ready. It keeps
    # beating gunicorn's heartbeat while it waits, and gives up after REPLACEMENT_WAIT_SECONDS.
    deadline = time.monotonic() + REPLACEMENT_WAIT_SECONDS
    while (not warm_up_match_index(worker.wsgi, wait_seconds=1.0)
           and time.monotonic() < deadline):
        worker.notify()


def child_exit(server, worker):
    """Drop a finished worker's live gauges; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder if this file made it."""
    if os.environ.get("REFERRAL_SERVICE_OWNS_METRICS_DIR"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
