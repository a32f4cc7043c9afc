"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from referral_service.db import get_engine
from referral_service.errors import problem
from referral_service.extensions import match_index

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """The database answers (SPEC: 503 problem otherwise); the body says if the index is built.

    The match index does not decide readiness: a worker still building it answers every
    other request, and a match there waits a few seconds for it (see adapters/match_index.py).
    """
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError:
        return problem(503, "Service unavailable", "The database is not reachable.")
    index = "warming up" if match_index().warming_up else "ok"
    return jsonify(status="ready", database="ok", match_index=index)


def init_app(app: Flask) -> None:
    """Register the probes."""
    app.register_blueprint(blp)
