"""People and departments of each organization: /api/v1/people, /api/v1/departments."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    current_principal,
    etag,
    expected_version,
    links,
    location_header,
    page_body,
)
from referral_service.db import read_session, write_session
from referral_service.schemas import people as schemas
from referral_service.services import people

blp = Blueprint("people", __name__,
                description="An organization's staff: managers, departments, sign-ins.")
departments_blp = Blueprint("departments", __name__,
                            description="An organization's departments, under parents and heads.")

PERSON_LOCATION = location_header("person")
DEPARTMENT_LOCATION = location_header("department")
PERSON_TARGETS = {"GetPerson": "getPerson", "UpdatePerson": "updatePerson"}
DEPARTMENT_TARGETS = {"GetDepartment": "getDepartment", "UpdateDepartment": "updateDepartment"}
PERSON_FILTERS = ("organization_id", "department_id", "manager_id", "active", "external_ref")
DEPARTMENT_FILTERS = ("organization_id", "parent_id")


@blp.route("")
class People(MethodView):
    """The collection of people."""

    @blp.arguments(schemas.PersonListArgsSchema(), location="query")
    @blp.response(200, schemas.PersonPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self, args):
        """List people (a partner: its own organization's)."""
        items, total = people.list_people(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **{key: args[key] for key in PERSON_FILTERS
                                             if key in args})
        return page_body(items, total, args)

    @blp.arguments(schemas.PersonCreateSchema())
    @blp.response(201, schemas.PersonSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(responses={201: {"links": links(PERSON_TARGETS, "person_id"),
                              "headers": {**ETAG_HEADER, **PERSON_LOCATION}}})
    def post(self, data):
        """Create a person; a taken external_ref is a 409 with `existing_id`."""
        view = people.create_person(session=write_session(), data=data,
                                    actor=current_principal())
        return view, 201, {"ETag": etag("person", view.person.id, view.person.version),
                           "Location": url_for("people.PersonById", person_id=view.person.id)}


@blp.route("/<id:person_id>")
class PersonById(MethodView):
    """One person."""

    @blp.response(200, schemas.PersonSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="getPerson", responses={200: {"links": links(
        PERSON_TARGETS, "person_id", if_match="updatePerson"), "headers": ETAG_HEADER}})
    def get(self, person_id):
        """Get one person, with its ETag."""
        view = people.get_person_view(session=read_session(), person_id=person_id,
                                      actor=current_principal())
        return view, 200, {"ETag": etag("person", view.person.id, view.person.version)}

    @blp.arguments(schemas.PersonPatchSchema())
    @blp.response(200, schemas.PersonSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.doc(operationId="updatePerson", parameters=[IF_MATCH_PARAMETER],
             responses={200: {"links": links(PERSON_TARGETS, "person_id"),
                              "headers": ETAG_HEADER}})
    def patch(self, data, person_id):
        """Change some fields of a person; a stale If-Match is refused with 412."""
        view = people.update_person(
            session=write_session(), person_id=person_id, data=data, actor=current_principal(),
            expected_version=expected_version("person", person_id))
        return view, 200, {"ETag": etag("person", view.person.id, view.person.version)}


@departments_blp.route("")
class Departments(MethodView):
    """The collection of departments."""

    @departments_blp.arguments(schemas.DepartmentListArgsSchema(), location="query")
    @departments_blp.response(200, schemas.DepartmentPageSchema)
    @departments_blp.alt_response(401, response="UNAUTHORIZED")
    def get(self, args):
        """List departments (a partner: its own organization's)."""
        items, total = people.list_departments(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **{key: args[key] for key in DEPARTMENT_FILTERS
                                             if key in args})
        return page_body(items, total, args)

    @departments_blp.arguments(schemas.DepartmentCreateSchema())
    @departments_blp.response(201, schemas.DepartmentSchema)
    @departments_blp.alt_response(401, response="UNAUTHORIZED")
    @departments_blp.alt_response(403, response="FORBIDDEN")
    @departments_blp.alt_response(409, response="CONFLICT")
    @departments_blp.doc(responses={201: {"links": links(DEPARTMENT_TARGETS, "department_id"),
                                          "headers": {**ETAG_HEADER, **DEPARTMENT_LOCATION}}})
    def post(self, data):
        """Create a department; a taken name or external_ref is a 409 with `existing_id`."""
        department = people.create_department(session=write_session(), data=data,
                                              actor=current_principal())
        return department, 201, {
            "ETag": etag("department", department.id, department.version),
            "Location": url_for("departments.DepartmentById", department_id=department.id)}


@departments_blp.route("/<id:department_id>")
class DepartmentById(MethodView):
    """One department."""

    @departments_blp.response(200, schemas.DepartmentSchema)
    @departments_blp.alt_response(401, response="UNAUTHORIZED")
    @departments_blp.alt_response(404, response="NOT_FOUND")
    @departments_blp.doc(operationId="getDepartment", responses={200: {"links": links(
        DEPARTMENT_TARGETS, "department_id", if_match="updateDepartment"),
        "headers": ETAG_HEADER}})
    def get(self, department_id):
        """Get one department, with its ETag."""
        department = people.get_department(session=read_session(), department_id=department_id,
                                           actor=current_principal())
        return department, 200, {"ETag": etag("department", department.id, department.version)}

    @departments_blp.arguments(schemas.DepartmentPatchSchema())
    @departments_blp.response(200, schemas.DepartmentSchema)
    @departments_blp.alt_response(401, response="UNAUTHORIZED")
    @departments_blp.alt_response(403, response="FORBIDDEN")
    @departments_blp.alt_response(404, response="NOT_FOUND")
    @departments_blp.alt_response(409, response="CONFLICT")
    @departments_blp.alt_response(412, response="PRECONDITION_FAILED")
    @departments_blp.doc(operationId="updateDepartment", parameters=[IF_MATCH_PARAMETER],
                         responses={200: {"links": links(DEPARTMENT_TARGETS, "department_id"),
                                          "headers": ETAG_HEADER}})
    def patch(self, data, department_id):
        """Change some fields of a department; a stale If-Match is refused with 412."""
        department = people.update_department(
            session=write_session(), department_id=department_id, data=data,
            actor=current_principal(),
            expected_version=expected_version("department", department_id))
        return department, 200, {"ETag": etag("department", department.id, department.version)}
