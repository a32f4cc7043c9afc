"""Wire the framework-free services that live for the whole process: geocoder, match index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from models import GeocodeCacheEntry
from referral_service.adapters.geocoding import Geocoder, build_geocoder
from referral_service.adapters.match_index import MatchIndexKeeper, build_for_workers
from referral_service.db import database_url, make_engine, new_session, session_scope
from referral_service.services import unit_of_work
from referral_service.services.referrals import Reoffers
from scoring import Weights


class DatabaseGeocodeCache:
    """Online geocoding results kept in the geocode_cache table, in their own transaction."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def get(self, key: str) -> tuple[float, float] | None:
        """Return cached coordinates for `key`, or None."""
        with session_scope(self.app, write=False) as session:
            row = session.execute(
                select(GeocodeCacheEntry.latitude, GeocodeCacheEntry.longitude)
                .where(GeocodeCacheEntry.key == key)
            ).first()
        return None if row is None else (row[0], row[1])

    def put(self, key: str, latitude: float, longitude: float) -> None:
        """Store coordinates for `key`."""
        with session_scope(self.app) as session:
            unit_of_work.run(session, lambda: session.merge(
                GeocodeCacheEntry(key=key, latitude=latitude, longitude=longitude)))


def init_app(app: Flask) -> None:
    """Build the geocoder named by GEOCODER and this worker's match index."""
    app.extensions["geocoder"] = build_geocoder(
        app.config["GEOCODER"], user_agent=app.config["GEOCODER_USER_AGENT"],
        cache=DatabaseGeocodeCache(app),
    )
    weights = Weights(
        skill=app.config["MATCH_WEIGHT_SKILL"], location=app.config["MATCH_WEIGHT_LOCATION"],
        performance=app.config["MATCH_WEIGHT_PERFORMANCE"],
        capacity=app.config["MATCH_WEIGHT_CAPACITY"], group=app.config["MATCH_WEIGHT_GROUP"],
    )
    app.extensions["match_weights"] = weights
    app.extensions["match_index"] = MatchIndexKeeper(
        lambda: new_session(app, write=False),
        refresh_seconds=app.config["MATCH_INDEX_REFRESH_SECONDS"],
        min_skill_fit=app.config["MATCH_MIN_SKILL_FIT"],
        shared_key=database_url(app),
    )


def geocoder(app: Flask | None = None) -> Geocoder:
    """Return the app's geocoder."""
    return (app or current_app).extensions["geocoder"]


def match_index(app: Flask | None = None) -> MatchIndexKeeper:
    """Return this worker's match index keeper."""
    return (app or current_app).extensions["match_index"]


def match_weights(app: Flask | None = None) -> Weights:
    """Return the deployment's default match weights."""
    return (app or current_app).extensions["match_weights"]


# Tests only: a worker started with this set to "exit-before-reoffer" dies (os._exit) after
# writing a decline or expiry and before its re-offer and commit (tests/live/test_reoffer_live).
FAULT_VARIABLE = "REFERRAL_SERVICE_TEST_FAULT"


def reoffers(app: Flask | None = None) -> Reoffers:
    """Return how declines and expiries re-offer here (REOFFER_MAX_HOPS, the match index)."""
    app = app or current_app
    fault = os.environ.get(FAULT_VARIABLE) == "exit-before-reoffer"
    return Reoffers(index=match_index(app), weights=match_weights(app), geocoder=geocoder(app),
                    max_hops=app.config["REOFFER_MAX_HOPS"],
                    attribution_window_days=app.config["ATTRIBUTION_WINDOW_DAYS"],
                    after_move=_exit_now if fault else None)


def _exit_now() -> None:
    os._exit(1)  # a worker killed mid-transaction: nothing of it may be committed


def warm_up_match_index(app: Any, *, wait_seconds: float) -> bool:
    """Start building the worker's index in the background (gunicorn's post_worker_init).

    Return whether it is built after waiting at most `wait_seconds`; True when `app` is not
    this service's app (nothing to build).
    """
    keeper = getattr(app, "extensions", {}).get("match_index")
    return True if keeper is None else keeper.start_warmup(wait_seconds=wait_seconds)


def build_match_index_for_workers() -> str:
    """Make the match index in gunicorn's master, before it forks (its when_ready hook).

    The workers' apps, made after the fork, start from it (see adapters/match_index.py); only
    the settings are read here, not a whole app. Return what was made and how, for the log.
    """
    from referral_service.config import DEFAULTS, from_environment

    settings = Flask("referral_service", instance_path=os.environ.get("INSTANCE_PATH") or None)
    settings.config.update(DEFAULTS)
    settings.config.update(from_environment())
    url = database_url(settings)
    snapshot = settings.config["MATCH_INDEX_SNAPSHOT"]
    engine = make_engine(url)
    try:
        return build_for_workers(sessionmaker(bind=engine), key=url,
                                 snapshot=Path(snapshot) if snapshot else None)
    finally:
        engine.dispose()  # no connection of the master's may be shared with a worker
