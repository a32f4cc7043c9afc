"""Matching: POST /api/v1/match ranks organizations for a client's need."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from referral_service.api.common import current_principal, geocoder
from referral_service.db import get_session
from referral_service.services.schemas import MatchRequestSchema

blp = Blueprint("matching", __name__, description="Rank firms for a client's need.")


class BreakdownSchema(Schema):
    """Each score component, in [0, 1]."""

    skill = fields.Float()
    location = fields.Float()
    performance = fields.Float()
    capacity = fields.Float()


class CandidateSchema(Schema):
    """One ranked firm with why it ranks there."""

    rank = fields.Integer()
    organization_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    score = fields.Float()
    breakdown = fields.Nested(BreakdownSchema)
    distance_km = fields.Float()
    office_id = fields.Integer()
    matched_skills = fields.List(fields.String())
    missing_skills = fields.List(fields.String())


class PointSchema(Schema):
    """A resolved place."""

    latitude = fields.Float()
    longitude = fields.Float()


class MatchResponseSchema(Schema):
    """The ranking, with the weights it used."""

    location = fields.Nested(PointSchema)
    weights = fields.Nested(BreakdownSchema)
    candidates = fields.List(fields.Nested(CandidateSchema))


@blp.route("")
class Match(MethodView):
    """The matcher."""

    @blp.arguments(MatchRequestSchema())
    @blp.response(200, MatchResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, need):
        """Rank organizations by skill fit, distance, track record and free capacity."""
        return current_app.extensions["matching"].match(
            session=get_session(), request=need, actor=current_principal(), geocoder=geocoder()
        )
