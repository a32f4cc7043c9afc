"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from referral_service.db import get_engine
from referral_service.errors import problem

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """The database answers and the match index is built; 503 problem otherwise.

    Both recover by themselves: the database when it returns, the index when this worker's
    warm-up (started by gunicorn's post_worker_init hook) has built it.
    """
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError:
        return problem(503, "Service unavailable", "The database is not reachable.")
    matching = current_app.extensions.get("matching")
    if matching is not None and matching.warming_up:
        return problem(503, "Service unavailable", "Warming up: the match index is being built.",
                       database="ok", match_index="warming up")
    return jsonify(status="ready", database="ok", match_index="ok")


def init_app(app: Flask) -> None:
    """Register the probes."""
    app.register_blueprint(blp)
