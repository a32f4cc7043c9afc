"""Targets agreed between two sides (SPEC section 10): a person sees their targets per month
and proposes one; a manager (a department head's manager, head office) sees the proposals
waiting for them and agrees, counters or declines; head office sees every open proposal."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from models import TARGET_SCOPES
from referral_service.db import read_session, write_session
from referral_service.portal.auth import login_required
from referral_service.portal.common import blp, principal, rendered
from referral_service.portal.forms import attach_errors, field_resolver, has_errors
from referral_service.schemas.base import MAX_ID, MONTH_PATTERN
from referral_service.schemas.targets import (
    MAX_TARGET,
    NOTE_LENGTH,
    TargetCounterSchema,
    TargetDecisionSchema,
    TargetProposalCreateSchema,
)
from referral_service.services import targets
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed

MONTH_FIELD = {"pattern": MONTH_PATTERN.strip("^$"), "placeholder": "2026-03",
               "title": _l("A month as YYYY-MM"), "inputmode": "numeric"}
# A target's scope as head office picks it.
SCOPE_LABELS = {"organization": _l("Organization"), "department": _l("Department"),
                "person": _l("Person")}
# How each decision reads on its button and in the message after it.
DECISIONS = {"agree": (_l("Agree"), _l("Proposal agreed.")),
             "counter": (_l("Counter with this value"), _l("Proposal countered.")),
             "decline": (_l("Decline"), _l("Proposal declined.")),
             "withdraw": (_l("Withdraw"), _l("Proposal withdrawn."))}


class ProposeForm(FlaskForm):
    """A target proposed for a scope and month."""

    scope = SelectField(_l("For"))
    scope_id = IntegerField(_l("Id"), [Optional(), NumberRange(1, MAX_ID)],
                            description=_l("Head office: the firm's, department's or person's id."))
    month = StringField(_l("Month"), [InputRequired(), Regexp(MONTH_PATTERN, message=_l(
        "Use YYYY-MM, for example 2026-03."))], render_kw=MONTH_FIELD)
    new_clients = IntegerField(_l("New clients"), [InputRequired(), NumberRange(0, MAX_TARGET)])
    note = TextAreaField(_l("Note"), [Optional(), Length(max=NOTE_LENGTH)], render_kw={"rows": 2})
    propose = SubmitField("Propose")


class DecisionForm(FlaskForm):
    """Agree, counter (with a value), decline or withdraw an open proposal."""

    new_clients = IntegerField(_l("Your value"), [Optional(), NumberRange(0, MAX_TARGET)],
                               description=_l("Only to counter."))
    note = TextAreaField(_l("Note"), [Optional(), Length(max=NOTE_LENGTH)], render_kw={"rows": 2})
    decision = SubmitField()  # the button pressed: its value names the decision


@blp.route("/targets", methods=["GET", "POST"])
@login_required
def target_list():
    """The user's targets and proposals, what waits for them, and a proposal form."""
    actor = principal()
    session = read_session()
    form = ProposeForm()
    scopes = ([] if actor.is_staff
              else targets.proposable_scopes(session=session, actor=actor))
    form.scope.choices = ([(scope, SCOPE_LABELS[scope]) for scope in TARGET_SCOPES]
                          if actor.is_staff else
                          [(f"{scope}:{scope_id}", label) for scope, scope_id, label in scopes])
    general: list[str] = []
    if form.validate_on_submit():
        scope, _, scope_id = form.scope.data.partition(":")
        body = {"scope": scope, "scope_id": int(scope_id) if scope_id else form.scope_id.data,
                "month": form.month.data, "new_clients": form.new_clients.data,
                "note": form.note.data or ""}
        try:
            data = TargetProposalCreateSchema().load(body)
            view = targets.propose(session=write_session(), data=data, actor=actor)
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = _show_errors(form, error, {} if actor.is_staff else {"scope_id": "scope"})
        else:
            flash(ngettext("Proposed %(num)s new client for %(month)s.",
                           "Proposed %(num)s new clients for %(month)s.",
                           view.proposal.new_clients, month=view.proposal.month), "success")
            return redirect(url_for(".target_detail", proposal_id=view.proposal.id))
    failed = bool(general) or has_errors(form)
    session = read_session()
    if actor.is_staff:
        waiting, _ = targets.list_(session=session, actor=actor, page=1, page_size=200,
                                   status="proposed")
    else:
        waiting = targets.open_for_counterpart(session=session, actor=actor)
    mine = [] if actor.person_id is None else targets.agreed_targets(
        session=session, actor=actor, scope="person", scope_id=actor.person_id)
    proposals, _ = targets.list_(session=session, actor=actor, page=1, page_size=50)
    return rendered("targets.html", form=form, general=general,
                    can_propose=actor.is_staff or bool(scopes), waiting=waiting,
                    targets=mine, proposals=proposals, status=422 if failed else 200)


@blp.route(f"/targets/<int(max={MAX_ID}):proposal_id>", methods=["GET", "POST"])
@login_required
def target_detail(proposal_id: int):
    """One proposal with its history and, when it is the user's to decide, the decisions."""
    actor = principal()
    view = targets.get(session=read_session(), proposal_id=proposal_id, actor=actor)
    form = DecisionForm()
    general: list[str] = []
    decision = _pressed(form)
    if decision and form.validate_on_submit():
        note = form.note.data or ""
        try:
            if decision == "counter":
                if form.new_clients.data is None:
                    raise ValidationFailed(gettext("Give the value you propose instead."), {
                        "new_clients": [gettext("Required to counter.")]})
                data = TargetCounterSchema().load({"new_clients": form.new_clients.data,
                                                   "note": note})
                done = targets.counter(session=write_session(), proposal_id=proposal_id,
                                       actor=actor, **data)
            else:
                data = TargetDecisionSchema().load({"note": note})
                done = targets.decide(session=write_session(), proposal_id=proposal_id,
                                      decision=decision, actor=actor, **data)
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = _show_errors(form, error, {})
        else:
            flash(str(DECISIONS[decision][1]), "success")
            return redirect(url_for(".target_detail", proposal_id=done.proposal.id))
        view = targets.get(session=read_session(), proposal_id=proposal_id, actor=actor)
    failed = bool(general) or has_errors(form)
    return rendered("target.html", view=view, form=form, general=general,
                    allowed=_allowed(view, actor),
                    decisions=DECISIONS, status=422 if failed else 200)


def _pressed(form: DecisionForm) -> str | None:
    """Return the decision whose button was pressed, if any."""
    value = form.decision.raw_data[0] if form.decision.raw_data else None
    return value if value in DECISIONS else None


def _allowed(view: targets.ProposalView, actor: Any) -> list[str]:
    """Return the decisions the user may take on the proposal now."""
    proposal = view.proposal
    if proposal.status != "proposed":
        return []
    try:
        sides = targets.scope_sides(session=read_session(), scope=proposal.scope,
                                    scope_id=proposal.scope_id, actor=actor).sides_of(actor)
    except (ValidationFailed, NotFound):
        return []
    allowed = ["agree", "counter", "decline"] if targets.other(proposal.side) in sides else []
    return allowed + (["withdraw"] if proposal.side in sides else [])


def _show_errors(form: Any, error: Exception, aliases: dict[str, str]) -> list[str]:
    """Put a schema's or a use case's errors beside the fields; return the rest."""
    resolve = field_resolver(form, aliases)
    if isinstance(error, ValidationError):
        return attach_errors(error.messages, resolve)
    if isinstance(error, ValidationFailed):
        return attach_errors(error.errors, resolve)
    return [getattr(error, "detail", str(error))]
