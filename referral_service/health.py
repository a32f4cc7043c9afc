"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
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
    """The database answers; 503 problem otherwise (recovers by itself when it returns)."""
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError:
        return problem(503, "Service unavailable", "The database is not reachable.")
    return jsonify(status="ready", database="ok")


def init_app(app: Flask) -> None:
    """Register the probes."""
    app.register_blueprint(blp)
