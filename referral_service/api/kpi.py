"""Placeholder: filled in by the kpi work."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("kpi", __name__, description="kpi")
