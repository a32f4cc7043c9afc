"""People and departments (SPEC section 9): what POST, PATCH and import-people take, what the
API returns."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from referral_service.schemas.base import (
    NAMED,
    Id,
    PageArgsSchema,
    Pattern,
    StrictSchema,
    WholeNumber,
    page_schema,
    strict_boolean,
)

NAME_LENGTH = 200  # people.name, departments.name
EMAIL_LENGTH = 254  # people.email
EXTERNAL_REF_LENGTH = 100  # people.external_ref, departments.external_ref
# An address: something, "@", a domain of dotted labels; no blanks (spelt out: the document's
# regex dialect and Python's disagree on what \s covers). A pattern rather than marshmallow's
# Email, whose stricter rules (a top-level domain of two letters or more) a document cannot state.
EMAIL_PATTERN = r"^[^@ \t\n\r\f\v\u0000]+@[^@ \t\n\r\f\v\u0000.]+(\.[^@ \t\n\r\f\v\u0000.]+)+$"
EMAIL = [validate.Length(max=EMAIL_LENGTH),
         Pattern(EMAIL_PATTERN, error="Not a valid email address.")]
TRIMMED = ("name", "external_ref", "department", "manager_external_ref",
           "organization_external_ref")


def _name(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=NAME_LENGTH), NAMED], **kwargs)


def _external_ref(**kwargs: Any) -> fields.String:
    # A letter or digit: trimming never leaves a CRM id empty.
    return fields.String(validate=[validate.Length(min=1, max=EXTERNAL_REF_LENGTH), NAMED],
                         **kwargs)


def _reference(description: str) -> fields.Integer:
    return WholeNumber(allow_none=True, validate=Id, metadata={"description": description})


class _Trimmed(StrictSchema):
    """Names and CRM ids are kept without their surrounding blanks."""

    @post_load
    def _trim(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {key: value.strip() if key in TRIMMED and isinstance(value, str) else value
                for key, value in data.items()}


class PersonCreateSchema(_Trimmed):
    """The body of POST /people."""

    organization_id = WholeNumber(validate=Id, metadata={
        "description": "Required for admin and crm keys; a partner's own organization if "
                       "left out."})
    name = _name(required=True)
    email = fields.String(allow_none=True, validate=EMAIL)
    external_ref = _external_ref(allow_none=True, metadata={
        "description": "The CRM's id: unique in the organization (trimmed, any case)."})
    department_id = _reference("A department of the same organization.")
    manager_id = _reference("A person of the same organization; never a cycle.")
    active = strict_boolean(load_default=True)


class PersonPatchSchema(_Trimmed):
    """The body of PATCH /people/{id}: any subset of the fields (not the organization)."""

    name = _name()
    email = fields.String(allow_none=True, validate=EMAIL)
    external_ref = _external_ref(allow_none=True)
    department_id = _reference("A department of the same organization.")
    manager_id = _reference("A person of the same organization; never a cycle.")
    active = strict_boolean()


class PersonSchema(Schema):
    """A person as the API returns it (from services.people.PersonView)."""

    id = fields.Integer(attribute="person.id")
    organization_id = fields.Integer(attribute="person.organization_id")
    name = fields.String(attribute="person.name")
    email = fields.String(attribute="person.email", allow_none=True)
    external_ref = fields.String(attribute="person.external_ref", allow_none=True)
    department_id = fields.Integer(attribute="person.department_id", allow_none=True)
    manager_id = fields.Integer(attribute="person.manager_id", allow_none=True)
    active = fields.Boolean(attribute="person.active")
    can_sign_in = fields.Boolean(metadata={"description": "A portal user is this person."})
    created_at = fields.DateTime(attribute="person.created_at")
    updated_at = fields.DateTime(attribute="person.updated_at")
    version = fields.Integer(attribute="person.version")


class PersonListArgsSchema(PageArgsSchema):
    """Filters of GET /people."""

    organization_id = fields.Integer(validate=Id)
    department_id = fields.Integer(validate=Id)
    manager_id = fields.Integer(validate=Id, metadata={"description": "Direct reports of."})
    active = fields.Boolean()
    external_ref = fields.String(validate=validate.Length(min=1, max=EXTERNAL_REF_LENGTH),
                                 metadata={"description": "Compared trimmed, in any case."})


PersonPageSchema = page_schema(PersonSchema, "PersonPageSchema")


class DepartmentCreateSchema(_Trimmed):
    """The body of POST /departments."""

    organization_id = WholeNumber(validate=Id, metadata={
        "description": "Required for admin and crm keys; a partner's own organization if "
                       "left out."})
    name = _name(required=True, metadata={"description": "Unique in the organization."})
    parent_id = _reference("A department of the same organization; never a cycle.")
    head_person_id = _reference("A person of the same organization.")
    external_ref = _external_ref(allow_none=True, metadata={
        "description": "The CRM's id: unique in the organization (trimmed, any case)."})


class DepartmentPatchSchema(_Trimmed):
    """The body of PATCH /departments/{id}: any subset of the fields (not the organization)."""

    name = _name()
    parent_id = _reference("A department of the same organization; never a cycle.")
    head_person_id = _reference("A person of the same organization.")
    external_ref = _external_ref(allow_none=True)


class DepartmentSchema(Schema):
    """A department as the API returns it."""

    id = fields.Integer()
    organization_id = fields.Integer()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    head_person_id = fields.Integer(allow_none=True)
    external_ref = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class DepartmentListArgsSchema(PageArgsSchema):
    """Filters of GET /departments."""

    organization_id = fields.Integer(validate=Id)
    parent_id = fields.Integer(validate=Id, metadata={"description": "Direct sub-departments of."})


DepartmentPageSchema = page_schema(DepartmentSchema, "DepartmentPageSchema")


class PersonImportSchema(_Trimmed):
    """One record of import-people: a person of the organization named by id or CRM id.

    A field left out keeps an existing person's value (null clears it); `department` is a
    department's name, `manager_external_ref` the CRM id of a person of the same organization
    (in the database or anywhere in the file).
    """

    organization_id = fields.Integer(validate=Id)
    organization_external_ref = fields.String(validate=validate.Length(min=1, max=100))
    name = _name(required=True)
    email = fields.String(allow_none=True, validate=EMAIL)
    external_ref = _external_ref(required=True)
    department = _name(allow_none=True)
    manager_external_ref = _external_ref(allow_none=True)
    active = strict_boolean()

    @validates_schema
    def _one_organization(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("organization_id" in data) == ("organization_external_ref" in data):
            raise ValidationError("Give either organization_id or organization_external_ref.",
                                  "organization_id")
