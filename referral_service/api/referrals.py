"""Referrals: /api/v1/referrals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    created,
    current_principal,
    etag,
    expected_version,
    links,
    location_header,
    page_body,
)
from referral_service.db import read_session, write_session
from referral_service.extensions import geocoder, reoffers
from referral_service.schemas import referrals as schemas
from referral_service.services import referrals

if TYPE_CHECKING:
    from models import Referral

blp = Blueprint("referrals", __name__,
                description="Referrals of clients between firms, and their lifecycle.")

# OpenAPI links: where the id of a referral in a response can be used next.
REFERRAL_TARGETS = {"GetReferral": "getReferral", "MoveReferral": "moveReferral"}
LOCATION_HEADER = location_header("referral")


def _etag(referral: Referral) -> dict[str, str]:
    return {"ETag": etag("referral", referral.id, referral.version)}


@blp.route("")
class Referrals(MethodView):
    """The collection of referrals."""

    @blp.arguments(schemas.ReferralListArgsSchema(), location="query")
    @blp.response(200, schemas.ReferralPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """List referrals; a partner sees those where it is referrer or receiver."""
        filters = {key: args[key] for key in ("organization_id", "role", "status", "month",
                                              "source_kind", "person_id", "client", "sort")
                   if key in args}
        items, total = referrals.list_(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **filters,
        )
        return page_body(items, total, args)

    @blp.arguments(schemas.ReferralCreateSchema())
    @blp.arguments(schemas.IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, schemas.ReferralSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT",
                      description="Attribution conflict (existing_referral_id) or the "
                                  "receiver is at capacity.")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(responses={201: {"links": links(REFERRAL_TARGETS, "referral_id"),
                              "headers": {**ETAG_HEADER, **LOCATION_HEADER}}})
    def post(self, data, headers):
        """Record a referral; honours Idempotency-Key."""
        recorded = referrals.record_referral(
            session=write_session(), data=data, actor=current_principal(), geocoder=geocoder(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"],
            idempotency_key=headers.get("idempotency_key"),
            auto_reoffer_default=current_app.config["AUTO_REOFFER"],
            require_consent=current_app.config["REQUIRE_CLIENT_CONSENT"],
        )
        # The referral as ReferralSchema shows it, dumped once by the use case for the
        # referral.created event (the same body); a repeat of an idempotent request gets the
        # first answer again, as it was sent.
        return created(recorded.body, "referrals.ReferralById", etag_kind="referral",
                       referral_id=recorded.body["id"])


@blp.route("/<id:referral_id>")
class ReferralById(MethodView):
    """One referral."""

    @blp.response(200, schemas.ReferralSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="getReferral", responses={200: {"links": links(
        REFERRAL_TARGETS, "referral_id", if_match="moveReferral"), "headers": ETAG_HEADER}})
    def get(self, referral_id):
        """Get one referral with its history, and its ETag."""
        referral = referrals.get(session=read_session(), referral_id=referral_id,
                                 actor=current_principal())
        return referral, _etag(referral)

    @blp.arguments(schemas.ReferralMoveSchema())
    @blp.response(200, schemas.ReferralSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN",
                      description="A move the caller's role may not make (a reversal of a "
                                  "conversion by anyone but head office).")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="A move the lifecycle forbids.")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(operationId="moveReferral", parameters=[IF_MATCH_PARAMETER],
             responses={200: {"links": links(REFERRAL_TARGETS, "referral_id"),
                              "headers": ETAG_HEADER}})
    def patch(self, data, referral_id):
        """Move a referral through its lifecycle; a stale If-Match is refused with 412.

        pending -> accepted | declined | withdrawn | expired; accepted -> converted | lost.
        Head office (admin) alone may reverse a conversion made by mistake, converted -> lost,
        and must give a `reason` (422 without one; 403 for crm and partner keys). A move that
        alters a closed month's figures is booked as a correction in the first open month
        (GET /kpi/monthly `corrections`). A decline or an expiry of a referral with
        `auto_reoffer` refers the client on to the next best firm not yet tried, in the same
        transaction (a new referral: `previous_referral_id`, `chain`; webhook events
        referral.created and referral.reoffered), up to REOFFER_MAX_HOPS a chain."""
        referral = referrals.move_referral(
            session=write_session(), referral_id=referral_id, status=data["status"],
            reason=data.get("reason"), actor=current_principal(),
            expected_version=expected_version("referral", referral_id),
            owner_person_id=data.get("owner_person_id"), reoffers=reoffers(),
        )
        return referral, _etag(referral)
