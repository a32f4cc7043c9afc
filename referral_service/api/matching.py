"""Placeholder: filled in by the matching work."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("matching", __name__, description="matching")
