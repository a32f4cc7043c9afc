"""The Flask application: the only package that knows HTTP and HTML."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config` (tests), then extensions."""
    from referral_service import (
        api,
        bodies,
        cli,
        db,
        errors,
        extensions,
        headers,
        health,
        limits,
        observability,
        portal,
    )
    from referral_service.config import DEFAULTS, from_environment
    from referral_service.json import OrjsonProvider

    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    app.json = OrjsonProvider(app)
    app.config.update(DEFAULTS)
    app.config.update(from_environment())
    app.config.update(config or {})
    _ensure_secret_key(app)

    observability.init_app(app)
    bodies.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    limits.init_app(app)
    extensions.init_app(app)
    health.init_app(app)
    api.init_app(app)
    portal.init_app(app)
    cli.init_app(app)
    return app


def _ensure_secret_key(app: Flask) -> None:
    """Use SECRET_KEY if set; otherwise one kept in the instance folder, shared by all workers."""
    if app.config.get("SECRET_KEY"):
        return
    os.makedirs(app.instance_path, exist_ok=True)
    path = os.path.join(app.instance_path, "secret_key")
    try:
        # O_EXCL: of several workers starting at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(50):
        with open(path) as handle:
            key = handle.read().strip()
        if key:
            break
        time.sleep(0.01)
    app.config["SECRET_KEY"] = key
