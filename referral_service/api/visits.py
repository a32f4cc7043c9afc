"""Client visits and their leads: /api/v1/visits, /api/v1/leads."""

from __future__ import annotations

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
    location_header,
    page_body,
)
from referral_service.db import read_session, write_session
from referral_service.extensions import geocoder, match_index, match_weights
from referral_service.schemas import referrals as referral_schemas
from referral_service.schemas import visits as schemas
from referral_service.services import visits

blp = Blueprint("visits", __name__, description="Client visits: what each salesperson brought "
                                                "back (an order commitment or leads).")
leads_blp = Blueprint("leads", __name__, description="Potential clients brought back from "
                                                     "visits, and their lifecycle.")


@blp.route("")
class Visits(MethodView):
    """The collection of visit reports."""

    @blp.arguments(schemas.VisitListArgsSchema(), location="query")
    @blp.response(200, schemas.VisitPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """List the visits the caller may see: empty-handed ones first, then the latest."""
        filters = {key: args[key] for key in ("person_id", "organization_id", "empty_handed",
                                              "visited_from", "visited_to") if key in args}
        items, total = visits.list_visits(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **filters)
        return page_body(items, total, args)

    @blp.arguments(schemas.VisitCreateSchema())
    @blp.arguments(referral_schemas.IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, schemas.VisitSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(409, response="CONFLICT",
                      description="A lead's client is held by another firm "
                                  "(existing_referral_id).")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(responses={201: {"headers": location_header("visit")}})
    def post(self, data, headers):
        """Record a visit report; honours Idempotency-Key (a phone may send it twice)."""
        recorded = visits.record_visit(
            session=write_session(), data=data, actor=current_principal(), geocoder=geocoder(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"],
            idempotency_key=headers.get("idempotency_key"))
        return created(recorded.body, "visits.VisitById", visit_id=recorded.body["id"])


@blp.route("/<id:visit_id>")
class VisitById(MethodView):
    """One visit report."""

    @blp.response(200, schemas.VisitSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, visit_id):
        """Get one visit report with its leads."""
        return visits.get_visit(session=read_session(), visit_id=visit_id,
                                actor=current_principal())


@leads_blp.route("")
class Leads(MethodView):
    """The collection of leads."""

    @leads_blp.arguments(schemas.LeadListArgsSchema(), location="query")
    @leads_blp.response(200, schemas.LeadPageSchema)
    @leads_blp.alt_response(401, response="UNAUTHORIZED")
    @leads_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """List the leads the caller may see, newest first."""
        filters = {key: args[key] for key in ("person_id", "organization_id", "visit_id",
                                              "status") if key in args}
        items, total = visits.list_leads(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **filters)
        return page_body(items, total, args)


@leads_blp.route("/<id:lead_id>")
class LeadById(MethodView):
    """One lead."""

    @leads_blp.response(200, schemas.LeadSchema)
    @leads_blp.alt_response(401, response="UNAUTHORIZED")
    @leads_blp.alt_response(404, response="NOT_FOUND")
    @leads_blp.doc(responses={200: {"headers": ETAG_HEADER}})
    def get(self, lead_id):
        """Get one lead, and its ETag."""
        lead = visits.get_lead(session=read_session(), lead_id=lead_id,
                               actor=current_principal())
        return lead, {"ETag": etag("lead", lead.id, lead.version)}

    @leads_blp.arguments(schemas.LeadMoveSchema())
    @leads_blp.response(200, schemas.LeadSchema)
    @leads_blp.alt_response(401, response="UNAUTHORIZED")
    @leads_blp.alt_response(404, response="NOT_FOUND")
    @leads_blp.alt_response(409, response="CONFLICT", description="The lead is not open.")
    @leads_blp.alt_response(412, response="PRECONDITION_FAILED")
    @leads_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @leads_blp.doc(parameters=[IF_MATCH_PARAMETER], responses={200: {"headers": ETAG_HEADER}})
    def patch(self, data, lead_id):
        """Mark an open lead won (the firm's own client now) or lost."""
        lead = visits.move_lead(
            session=write_session(), lead_id=lead_id, status=data["status"],
            reason=data.get("reason"), actor=current_principal(),
            expected_version=expected_version("lead", lead_id))
        return lead, {"ETag": etag("lead", lead.id, lead.version)}


@leads_blp.route("/<id:lead_id>/refer")
class LeadReferral(MethodView):
    """Hand a lead on to another firm."""

    @leads_blp.arguments(schemas.LeadReferSchema())
    @leads_blp.arguments(referral_schemas.IdempotencyHeaderSchema(), location="headers")
    @leads_blp.response(201, referral_schemas.ReferralSchema)
    @leads_blp.alt_response(401, response="UNAUTHORIZED")
    @leads_blp.alt_response(403, response="FORBIDDEN")
    @leads_blp.alt_response(404, response="NOT_FOUND")
    @leads_blp.alt_response(409, response="CONFLICT",
                            description="The lead is not open, its client is held by another "
                                        "referral, no firm fits, or the receiver is full.")
    @leads_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @leads_blp.doc(responses={201: {"headers": {**ETAG_HEADER, **location_header("referral")}}})
    def post(self, data, headers, lead_id):
        """Refer a lead to the best-matching firm (or the one named): a referral whose source
        is the visit and the lead."""
        recorded = visits.refer_lead(
            session=write_session(), lead_id=lead_id, data=data, actor=current_principal(),
            index=match_index(), geocoder=geocoder(), default_weights=match_weights(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"],
            idempotency_key=headers.get("idempotency_key"),
            auto_reoffer_default=current_app.config["AUTO_REOFFER"],
            require_consent=current_app.config["REQUIRE_CLIENT_CONSENT"])
        return created(recorded.body, "referrals.ReferralById", etag_kind="referral",
                       referral_id=recorded.body["id"])
