"""Matching: POST /api/v1/match ranks organizations for a client's need."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal, geocoder
from referral_service.db import read_session
from referral_service.schemas.matching import MatchRequestSchema, MatchResponseSchema

blp = Blueprint("matching", __name__, description="Rank firms for a client's need.")


@blp.route("")
class Match(MethodView):
    """The matcher."""

    @blp.arguments(MatchRequestSchema())
    @blp.response(200, MatchResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, need):
        """Rank organizations by skill fit, distance, track record and free capacity."""
        return current_app.extensions["matching"].match(
            session=read_session(), request=need, actor=current_principal(), geocoder=geocoder()
        )
