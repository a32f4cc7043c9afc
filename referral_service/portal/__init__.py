"""The partner portal: server-rendered pages (placeholder until the portal work lands)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the portal's pages."""
