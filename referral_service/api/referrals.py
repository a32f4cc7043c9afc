"""Placeholder: filled in by the referrals work."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("referrals", __name__, description="referrals")
