"""Target proposals (SPEC section 10): what POST /kpi/target-proposals and the decisions on a
proposal take, and how the API shows a proposal and its history."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from models import PROPOSAL_STATUSES, TARGET_SCOPES
from referral_service.schemas.base import (
    MONTH,
    Id,
    PageArgsSchema,
    StrictSchema,
    WholeNumber,
    page_schema,
)

# The largest target a proposal may name (the same bound as PUT /kpi/targets).
MAX_TARGET = 1_000_000
NOTE_LENGTH = 2000
SIDES = ("holder", "counterpart")


def _new_clients(**kwargs: Any) -> fields.Integer:
    return WholeNumber(validate=validate.Range(min=0, max=MAX_TARGET), metadata={
        "description": "New-client credits for the month; 0 or more."}, **kwargs)


def _note(**kwargs: Any) -> fields.String:
    return fields.String(load_default="", validate=validate.Length(max=NOTE_LENGTH), **kwargs)


class TargetProposalCreateSchema(StrictSchema):
    """The body of POST /kpi/target-proposals."""

    scope = fields.String(required=True, validate=validate.OneOf(TARGET_SCOPES))
    scope_id = WholeNumber(required=True, validate=Id, metadata={
        "description": "The organization, department or person the target is for."})
    month = fields.String(required=True, validate=MONTH)
    new_clients = _new_clients(required=True)
    note = _note()


class TargetCounterSchema(StrictSchema):
    """The body of POST /kpi/target-proposals/{id}/counter: the other side's own value."""

    new_clients = _new_clients(required=True)
    note = _note()


class TargetDecisionSchema(StrictSchema):
    """The body of agree, decline and withdraw: an optional note kept with the decision."""

    note = _note()


class TargetProposalListArgsSchema(PageArgsSchema):
    """Filters of GET /kpi/target-proposals."""

    scope = fields.String(validate=validate.OneOf(TARGET_SCOPES))
    scope_id = fields.Integer(validate=Id)
    month = fields.String(validate=MONTH)
    status = fields.String(validate=validate.OneOf(PROPOSAL_STATUSES))
    organization_id = fields.Integer(validate=Id)


class TargetProposalSchema(Schema):
    """A proposal as the API lists it."""

    id = fields.Integer()
    scope = fields.String(validate=validate.OneOf(TARGET_SCOPES))
    scope_id = fields.Integer()
    month = fields.String()
    organization_id = fields.Integer(metadata={"description": "The scope's organization."})
    new_clients = fields.Integer()
    note = fields.String()
    status = fields.String(validate=validate.OneOf(PROPOSAL_STATUSES))
    side = fields.String(validate=validate.OneOf(SIDES), metadata={
        "description": "Who proposed: the holder (the person, the department's head, the "
                       "firm) or the counterpart (their manager, the head's manager, head "
                       "office)."})
    proposed_by = fields.String()
    proposed_by_person_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    counter_of_id = fields.Integer(allow_none=True, metadata={
        "description": "The proposal this one counters."})
    version = fields.Integer()


class TargetProposalDetailSchema(TargetProposalSchema):
    """One proposal with its history: every proposal of its chain of counters, oldest first.

    Dumps a services.targets.ProposalView (the proposal and its chain).
    """

    history = fields.List(fields.Nested(TargetProposalSchema), metadata={
        "description": "The chain of proposals and counters this one belongs to, oldest "
                       "first, each with who proposed it, when, and the decision on it."})

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Read the history from the view, every other field from its proposal."""
        if attr == "history":
            return obj.history
        return super().get_attribute(obj.proposal, attr, default)


TargetProposalPageSchema = page_schema(TargetProposalSchema, "TargetProposalPageSchema")
