"""The monthly KPI: its query, its rows, and targets."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from referral_service.schemas.base import MONTH, Id, StrictSchema, WholeNumber

# The KPI's levels (SPEC section 10); organization is the default.
LEVELS = ("organization", "department", "person")
TARGET_STATUSES = ("none", "proposed", "agreed")


class KpiArgsSchema(StrictSchema):
    """Query parameters of GET /kpi/monthly."""

    month = fields.String(required=True, validate=MONTH)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "xlsx")))
    organization_id = fields.Integer(validate=Id)
    level = fields.String(
        load_default="organization", validate=validate.OneOf(LEVELS),
        metadata={"description": "organization (one row per firm), department (a department "
                                 "sums its people and sub-departments) or person (a "
                                 "department head's row shows their department's figures)."})


class KpiRowSchema(Schema):
    """One organization's, department's or person's KPI for a month.

    Organization rows: organization_id ... attainment, then the sales-force figures and
    target_status. Department rows: department_id, department_name, organization_id, month,
    the sales-force figures, new_client_credits, target, target_status, attainment. Person
    rows: person_id, person_name, organization_id, department_id, month, then as departments.
    """

    person_id = fields.Integer(metadata={"description": "Person rows."})
    person_name = fields.String(metadata={"description": "Person rows."})
    department_id = fields.Integer(
        allow_none=True, metadata={"description": "Department rows; person rows (nullable)."})
    department_name = fields.String(metadata={"description": "Department rows."})
    organization_id = fields.Integer()
    organization_name = fields.String()
    kind = fields.String()
    month = fields.String()
    referrals_made = fields.Integer(metadata={"description": "Created that month, as referrer."})
    referrals_received = fields.Integer(
        metadata={"description": "Created that month, as receiver."})
    accepted_received = fields.Integer(
        metadata={"description": "Moved to accepted that month, as receiver."})
    converted_made = fields.Integer(
        metadata={"description": "Moved to converted that month, as referrer."})
    converted_received = fields.Integer(
        metadata={"description": "Moved to converted that month, as receiver."})
    new_client_credits = fields.Integer(
        metadata={"description": "Own leads won + referral credits: for a firm "
                                 "converted_made + converted_received + leads_won; for a "
                                 "person each referral converted that month where they are "
                                 "its referred_by_person_id or owner_person_id, + leads won."})
    target = fields.Integer(allow_none=True,
                            metadata={"description": "The agreed target of the row's scope."})
    attainment = fields.Float(allow_none=True,
                              metadata={"description": "Credits / target; null without one."})
    visits = fields.Integer(metadata={"description": "Client visits that month."})
    empty_handed_visits = fields.Integer(
        metadata={"description": "Visits that month that brought back nothing."})
    commitments = fields.Integer(
        metadata={"description": "Visits that month with an order commitment."})
    leads = fields.Integer(metadata={"description": "Leads created that month."})
    leads_won = fields.Integer(metadata={"description": "Leads won that month."})
    leads_referred = fields.Integer(
        metadata={"description": "Leads whose referral was created that month."})
    target_status = fields.String(
        validate=validate.OneOf(TARGET_STATUSES),
        metadata={"description": "agreed (a target is agreed), proposed (one is proposed), "
                                 "or none."})


class KpiCorrectionSchema(Schema):
    """A later change to one row of a closed month, booked in the first open month after it
    (SPEC section 10)."""

    correction_of = fields.String(metadata={"description": "The closed month corrected."})
    organization_id = fields.Integer()
    department_id = fields.Integer(metadata={"description": "Department level."})
    person_id = fields.Integer(metadata={"description": "Person level."})
    referral_ids = fields.List(fields.Integer(),
                               metadata={"description": "The referrals whose change it is."})
    reason = fields.String(metadata={"description": "Head office's reason for a reversal; "
                                                    "'Expired after the month closed.' for "
                                                    "a late expiry."})
    deltas = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "What the row's figures changed by, by column name (only those that "
                       "changed): the closed month's row + its corrections = the row "
                       "recomputed now."})
    created_at = fields.DateTime()
    actor = fields.String()


class KpiMonthSchema(Schema):
    """The KPI of one month."""

    month = fields.String()
    rows = fields.List(fields.Nested(KpiRowSchema))
    corrections = fields.List(fields.Nested(KpiCorrectionSchema), metadata={
        "description": "Corrections of closed months booked in this month (a partner: its "
                       "own firm's), oldest first; part of this month's export once it "
                       "closes."})


class KpiTargetInSchema(StrictSchema):
    """The body of PUT /kpi/targets/{organization_id}/{month}."""

    new_clients = WholeNumber(required=True, validate=validate.Range(min=0, max=1_000_000))


class KpiTargetSchema(Schema):
    """A month's new-client target of one organization."""

    organization_id = fields.Integer()
    month = fields.String()
    new_clients = fields.Integer()
    updated_at = fields.DateTime()


class KpiMonthCloseInSchema(StrictSchema):
    """The body of POST /kpi/months/{month}/close: an empty object."""


class KpiMonthStatusSchema(Schema):
    """A month of the KPI, open or closed (SPEC section 10)."""

    month = fields.String()
    status = fields.String(validate=validate.OneOf(("open", "closed")),
                           metadata={"description": "closed: its KPI is frozen as at closing."})
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)


class KpiMonthListSchema(Schema):
    """The months with activity (the caller's own, for a partner) or closed, latest first."""

    items = fields.List(fields.Nested(KpiMonthStatusSchema))
