"""A client's work sites: /api/v1/clients/{client_id}/sites."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal
from referral_service.db import read_session, write_session
from referral_service.extensions import geocoder
from referral_service.schemas import client_sites as schemas
from referral_service.services import client_sites

blp = Blueprint("client_sites", __name__,
                description="A client's work sites, named by matches and referrals.")


@blp.route("/<id:client_id>/sites")
class ClientSites(MethodView):
    """The sites of one client."""

    @blp.response(200, schemas.ClientSiteListSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, client_id):
        """List the client's sites: a partner key sees its own firm's."""
        return {"items": client_sites.list_(session=read_session(), client_id=client_id,
                                            actor=current_principal())}

    @blp.arguments(schemas.ClientSiteInSchema())
    @blp.response(201, schemas.ClientSiteSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, client_id):
        """Record a work site of the client, for one firm.

        `POST /match` and `POST /referrals` then name it by `client_site_id` (the firm's own
        referrals only): its place is the match's place, and the referral's client place.
        A partner records sites of a client it referred, accepted or visited (else 404).
        """
        return client_sites.add(session=write_session(), client_id=client_id, data=data,
                                actor=current_principal(), geocoder=geocoder())
