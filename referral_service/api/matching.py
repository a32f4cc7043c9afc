"""Matching: POST /api/v1/match ranks organizations for a client's need."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal
from referral_service.db import read_session
from referral_service.extensions import geocoder, match_index, match_weights
from referral_service.schemas.matching import MatchRequestSchema, MatchResponseSchema
from referral_service.services import matching

blp = Blueprint("matching", __name__, description="Rank firms for a client's need.")


@blp.route("")
class Match(MethodView):
    """The matcher."""

    @blp.arguments(MatchRequestSchema())
    @blp.response(200, MatchResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, need):
        """Rank organizations by skill fit, distance, track record and free capacity."""
        return matching.match(index=match_index(), request=need, actor=current_principal(),
                              geocoder=geocoder(), default_weights=match_weights(),
                              session=read_session())
