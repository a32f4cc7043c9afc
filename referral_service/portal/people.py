"""An organization's people and departments (SPEC section 9): the list, and adding or editing
a person or a department. A partner user manages its own organization's; head office any."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from referral_service.db import read_session, write_session
from referral_service.portal.auth import login_required
from referral_service.portal.common import (
    PAGE_SIZE,
    blp,
    organization_names,
    page_number,
    principal,
    rendered,
)
from referral_service.portal.forms import (
    DepartmentForm,
    OrganizationPickForm,
    PersonForm,
    attach_errors,
    field_resolver,
    has_errors,
    said,
)
from referral_service.portal.sales import chosen_organization
from referral_service.schemas.base import MAX_ID
from referral_service.schemas.people import (
    DepartmentCreateSchema,
    DepartmentPatchSchema,
    PersonCreateSchema,
    PersonPatchSchema,
)
from referral_service.services import people
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

# The most departments and people a select lists (an organization's whole staff).
CHOICES = 1000
STALE = _l("Someone saved this after you opened it. Your changes are still below: save again "
           "to keep them, or reload to see theirs.")


@blp.get("/people")
@login_required
def people_list():
    """The organization's people and departments."""
    actor = principal()
    organization_id, pick_problem = chosen_organization(actor)
    pick = OrganizationPickForm(request.args)
    if organization_id is None:
        return rendered("people.html", pick=pick, pick_problem=pick_problem,
                        organization_id=None, status=422 if pick_problem else 200)
    page = page_number()
    session = read_session()
    views, total = people.list_people(session=session, actor=actor, page=page,
                                      page_size=PAGE_SIZE, organization_id=organization_id)
    departments = all_departments(organization_id)
    return rendered(
        "people.html", pick=pick, pick_problem=None, organization_id=organization_id,
        firm=organization_names({organization_id}).get(organization_id), views=views,
        total=total, page=page, page_size=PAGE_SIZE, departments=departments,
        department_names={d.id: d.name for d in departments},
        person_names=dict(staff(organization_id)))


def all_departments(organization_id: int) -> list[Any]:
    """Return the organization's departments."""
    found, _ = people.list_departments(session=read_session(), actor=principal(), page=1,
                                       page_size=CHOICES, organization_id=organization_id)
    return found


def staff(organization_id: int) -> list[tuple[int, str]]:
    """Return (id, name) of the organization's people."""
    views, _ = people.list_people(session=read_session(), actor=principal(), page=1,
                                  page_size=CHOICES, organization_id=organization_id)
    return [(view.person.id, view.person.name) for view in views]


def person_choices(organization_id: int, but: int | None = None) -> list[tuple[Any, str]]:
    """Return the choices of a select of the organization's people (with "nobody")."""
    return [("", "–")] + [(pid, name) for pid, name in staff(organization_id) if pid != but]


def department_choices(organization_id: int, but: int | None = None) -> list[tuple[Any, str]]:
    """Return the choices of a select of the organization's departments (with "none")."""
    return [("", "–")] + [(d.id, d.name) for d in all_departments(organization_id)
                          if d.id != but]


def organization_or_404(organization_id: int | None) -> int:
    """Return the page's organization; head office must have picked one."""
    if organization_id is None:
        raise NotFound("Pick an organization first.")
    return organization_id


# --- a person -----------------------------------------------------------------------------


@blp.route("/people/new", methods=["GET", "POST"])
@login_required
def person_new():
    """Add a person to the organization."""
    actor = principal()
    organization_id = organization_or_404(chosen_organization(actor)[0])
    form = PersonForm()
    form.department_id.choices = department_choices(organization_id)
    form.manager_id.choices = person_choices(organization_id)
    general: list[str] = []
    if form.validate_on_submit():
        body = person_input(form)
        if actor.is_staff:
            body["organization_id"] = organization_id
        try:
            data = PersonCreateSchema().load(body)
            view = people.create_person(session=write_session(), data=data, actor=actor)
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = show_errors(form, error)
        else:
            flash(gettext("%(name)s added.", name=view.person.name), "success")
            return redirect(people_url(organization_id))
    return person_page(form, general, organization_id=organization_id, person=None)


@blp.route(f"/people/<int(max={MAX_ID}):person_id>/edit", methods=["GET", "POST"])
@login_required
def person_edit(person_id: int):
    """Edit a person of the organization."""
    actor = principal()
    submitted = request.method == "POST"
    person = people.get_person(session=read_session(), person_id=person_id, actor=actor)
    organization_id = person.organization_id
    form = PersonForm() if submitted else PersonForm(obj=person, formdata=None)
    form.department_id.choices = department_choices(organization_id)
    form.manager_id.choices = person_choices(organization_id, but=person.id)
    general: list[str] = []
    if submitted and form.validate():
        version = form.version.data
        try:
            data = PersonPatchSchema().load(person_input(form))
            people.update_person(session=write_session(), person_id=person_id, data=data,
                                 actor=actor, expected_version=int(version)
                                 if version and version.isdigit() else None)
        except PreconditionFailed:
            form.version.data = str(people.get_person(session=read_session(),
                                                      person_id=person_id,
                                                      actor=actor).version)
            general = [str(STALE)]
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = show_errors(form, error)
        else:
            flash(gettext("%(name)s saved.", name=form.name.data), "success")
            return redirect(people_url(organization_id))
    return person_page(form, general, organization_id=organization_id, person=person)


def person_input(form: PersonForm) -> dict[str, Any]:
    """Return the person the form holds, as the people schemas take it."""
    return {"name": form.name.data, "email": form.email.data or None,
            "external_ref": form.external_ref.data or None,
            "department_id": form.department_id.data, "manager_id": form.manager_id.data,
            "active": bool(form.active.data)}


def person_page(form: PersonForm, general: list[str], **context: Any):
    """Render the person form (422 with errors)."""
    failed = bool(general) or has_errors(form)
    return rendered("person.html", form=form, general=general,
                    firm=organization_names({context["organization_id"]}).get(
                        context["organization_id"]),
                    status=422 if failed else 200, **context)


# --- a department -------------------------------------------------------------------------


@blp.route("/departments/new", methods=["GET", "POST"])
@login_required
def department_new():
    """Add a department to the organization."""
    actor = principal()
    organization_id = organization_or_404(chosen_organization(actor)[0])
    form = DepartmentForm()
    form.parent_id.choices = department_choices(organization_id)
    form.head_person_id.choices = person_choices(organization_id)
    general: list[str] = []
    if form.validate_on_submit():
        body = department_input(form)
        if actor.is_staff:
            body["organization_id"] = organization_id
        try:
            data = DepartmentCreateSchema().load(body)
            department = people.create_department(session=write_session(), data=data,
                                                  actor=actor)
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = show_errors(form, error)
        else:
            flash(gettext("Department %(name)s added.", name=department.name), "success")
            return redirect(people_url(organization_id))
    return department_page(form, general, organization_id=organization_id, department=None)


@blp.route(f"/departments/<int(max={MAX_ID}):department_id>/edit", methods=["GET", "POST"])
@login_required
def department_edit(department_id: int):
    """Edit a department of the organization."""
    actor = principal()
    submitted = request.method == "POST"
    department = people.get_department(session=read_session(), department_id=department_id,
                                       actor=actor)
    organization_id = department.organization_id
    form = DepartmentForm() if submitted else DepartmentForm(obj=department, formdata=None)
    form.parent_id.choices = department_choices(organization_id, but=department.id)
    form.head_person_id.choices = person_choices(organization_id)
    general: list[str] = []
    if submitted and form.validate():
        version = form.version.data
        try:
            data = DepartmentPatchSchema().load(department_input(form))
            people.update_department(session=write_session(), department_id=department_id,
                                     data=data, actor=actor, expected_version=int(version)
                                     if version and version.isdigit() else None)
        except PreconditionFailed:
            form.version.data = str(people.get_department(
                session=read_session(), department_id=department_id, actor=actor).version)
            general = [str(STALE)]
        except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
            general = show_errors(form, error)
        else:
            flash(gettext("Department %(name)s saved.", name=form.name.data), "success")
            return redirect(people_url(organization_id))
    return department_page(form, general, organization_id=organization_id,
                           department=department)


def department_input(form: DepartmentForm) -> dict[str, Any]:
    """Return the department the form holds, as the people schemas take it."""
    return {"name": form.name.data, "parent_id": form.parent_id.data,
            "head_person_id": form.head_person_id.data,
            "external_ref": form.external_ref.data or None}


def department_page(form: DepartmentForm, general: list[str], **context: Any):
    """Render the department form (422 with errors)."""
    failed = bool(general) or has_errors(form)
    return rendered("department.html", form=form, general=general,
                    firm=organization_names({context["organization_id"]}).get(
                        context["organization_id"]),
                    status=422 if failed else 200, **context)


# --- shared -------------------------------------------------------------------------------


def show_errors(form: Any, error: Exception) -> list[str]:
    """Put a schema's or a use case's errors beside the fields; return the rest."""
    resolve = field_resolver(form)
    if isinstance(error, ValidationError):
        return attach_errors(error.messages, resolve)
    if isinstance(error, ValidationFailed):
        return attach_errors(error.errors, resolve)
    if isinstance(error, Conflict):
        field = form.external_ref if "external_ref" in error.detail else form.name
        field.errors = [*field.errors, said(error.detail)]
        return []
    return [getattr(error, "detail", str(error))]


def people_url(organization_id: int) -> str:
    """Return the people page of the organization (head office names it in the URL)."""
    if principal().is_staff:
        return url_for(".people_list", organization_id=organization_id)
    return url_for(".people_list")
