"""Targets agreed between two sides (SPEC section 10): /api/v1/kpi/target-proposals."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal, location_header, page_body
from referral_service.db import read_session, write_session
from referral_service.schemas import targets as schemas
from referral_service.services import targets

blp = Blueprint("target_proposals", __name__,
                description="KPI targets proposed by one side and agreed, countered or "
                            "declined by the other.")

LOCATION = location_header("proposal")
FILTERS = ("scope", "scope_id", "month", "status", "organization_id")


def _created(view: targets.ProposalView):
    return view, 201, {"Location": url_for("target_proposals.TargetProposalById",
                                           proposal_id=view.proposal.id)}


@blp.route("")
class TargetProposals(MethodView):
    """The collection of target proposals."""

    @blp.arguments(schemas.TargetProposalListArgsSchema(), location="query")
    @blp.response(200, schemas.TargetProposalPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self, args):
        """List target proposals, newest first (a partner: its own organization's)."""
        items, total = targets.list_(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **{key: args[key] for key in FILTERS if key in args})
        return page_body(items, total, args)

    @blp.arguments(schemas.TargetProposalCreateSchema())
    @blp.response(201, schemas.TargetProposalDetailSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(responses={201: {"headers": LOCATION}})
    def post(self, data):
        """Propose a target from the caller's side; a scope with an open proposal for the
        month is a 409 with `open_proposal_id`."""
        return _created(targets.propose(session=write_session(), data=data,
                                        actor=current_principal()))


@blp.route("/<id:proposal_id>")
class TargetProposalById(MethodView):
    """One target proposal."""

    @blp.response(200, schemas.TargetProposalDetailSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, proposal_id):
        """Get one proposal with its history (the chain of counters)."""
        return targets.get(session=read_session(), proposal_id=proposal_id,
                           actor=current_principal())


def _decision(name: str, summary: str) -> type[MethodView]:
    """A resource taking one decision on an open proposal."""

    @blp.arguments(schemas.TargetDecisionSchema())
    @blp.response(200, schemas.TargetProposalDetailSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, proposal_id):
        return targets.decide(session=write_session(), proposal_id=proposal_id,
                              decision=name, note=data["note"], actor=current_principal())

    post.__doc__ = summary
    resource = type(f"TargetProposal{name.capitalize()}", (MethodView,), {
        "post": post, "__doc__": f"The {name} decision on one proposal."})
    return blp.route(f"/<id:proposal_id>/{name}")(resource)


TargetProposalAgree = _decision(
    "agree", "Agree to the other side's open proposal: it becomes the scope's target.")
TargetProposalDecline = _decision("decline", "Decline the other side's open proposal.")
TargetProposalWithdraw = _decision("withdraw", "Withdraw one's own side's open proposal.")


@blp.route("/<id:proposal_id>/counter")
class TargetProposalCounter(MethodView):
    """A counter-proposal to one proposal."""

    @blp.arguments(schemas.TargetCounterSchema())
    @blp.response(201, schemas.TargetProposalDetailSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(responses={201: {"headers": LOCATION}})
    def post(self, data, proposal_id):
        """Counter the other side's open proposal: it becomes `countered` and the answer is
        the new open proposal from the caller's side (`counter_of_id`)."""
        return _created(targets.counter(
            session=write_session(), proposal_id=proposal_id, new_clients=data["new_clients"],
            note=data["note"], actor=current_principal()))
