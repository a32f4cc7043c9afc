"""Wire the framework-free services that live for the whole process: geocoder, match index."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from models import GeocodeCacheEntry
from referral_service.adapters.geocoding import build_geocoder
from referral_service.db import new_session, session_scope
from referral_service.services.matching import MatchService
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
            session.merge(GeocodeCacheEntry(key=key, latitude=latitude, longitude=longitude))
            session.commit()


def init_app(app: Flask) -> None:
    """Build the geocoder named by GEOCODER and this worker's match index."""
    app.extensions["geocoder"] = build_geocoder(
        app.config["GEOCODER"], user_agent=app.config["GEOCODER_USER_AGENT"],
        cache=DatabaseGeocodeCache(app),
    )
    weights = Weights(
        skill=app.config["MATCH_WEIGHT_SKILL"], location=app.config["MATCH_WEIGHT_LOCATION"],
        performance=app.config["MATCH_WEIGHT_PERFORMANCE"],
        capacity=app.config["MATCH_WEIGHT_CAPACITY"],
    )
    app.extensions["matching"] = MatchService(
        lambda: new_session(app, write=False), default_weights=weights,
        refresh_seconds=app.config["MATCH_INDEX_REFRESH_SECONDS"],
    )
