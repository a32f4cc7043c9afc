"""Structured logs, request ids and metrics (placeholder until the hardening work lands)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Set up logging, request ids and metrics."""
