"""Rate limiting (placeholder until the hardening work lands)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Set up rate limits."""
