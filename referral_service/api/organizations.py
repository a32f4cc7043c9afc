"""Organizations: /api/v1/organizations."""

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
from referral_service.extensions import geocoder
from referral_service.schemas import organizations as schemas
from referral_service.services import organizations

blp = Blueprint("organizations", __name__, description="Firm profiles: skills, offices, capacity.")

# The header of a 201 (documented with the response, as common.ETAG_HEADER).
LOCATION_HEADER = location_header("organization")
# OpenAPI links: where the id of an organization in a response can be used next.
ORGANIZATION_TARGETS = {
    "GetOrganization": "getOrganization",
    "UpdateOrganization": "updateOrganization",
    "DeactivateOrganization": "deactivateOrganization",
    "SetKpiTarget": "setKpiTarget",
}


@blp.route("")
class Organizations(MethodView):
    """The collection of organizations."""

    @blp.arguments(schemas.OrganizationListArgsSchema(), location="query")
    @blp.response(200, schemas.OrganizationPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self, args):
        """List organizations."""
        filters = {key: args[key] for key in ("kind", "active", "skill", "q", "group")
                   if key in args}
        items, total = organizations.list_(
            session=read_session(), actor=current_principal(), page=args["page"],
            page_size=args["page_size"], **filters,
        )
        return page_body(items, total, args)

    @blp.arguments(schemas.OrganizationCreateSchema())
    @blp.response(201, schemas.OrganizationSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(responses={201: {"links": links(ORGANIZATION_TARGETS, "organization_id"),
                              "headers": {**ETAG_HEADER, **LOCATION_HEADER}}})
    def post(self, data):
        """Create an organization."""
        organization = organizations.create(
            session=write_session(), data=data, actor=current_principal(), geocoder=geocoder()
        )
        return organization, 201, {
            "ETag": etag("org", organization.id, organization.version),
            "Location": url_for("organizations.OrganizationById",
                                organization_id=organization.id)}


@blp.route("/<id:organization_id>/contact")
class OrganizationContact(MethodView):
    """One firm's business contact."""

    @blp.response(200, schemas.ContactOutSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="getOrganizationContact")
    def get(self, organization_id):
        """Get an active firm's business contact (any key: it is not need-to-know)."""
        return organizations.contact(session=read_session(), organization_id=organization_id,
                                     actor=current_principal())


@blp.route("/<id:organization_id>")
class OrganizationById(MethodView):
    """One organization."""

    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="getOrganization", responses={200: {"links": links(
        ORGANIZATION_TARGETS, "organization_id", if_match="updateOrganization"),
        "headers": ETAG_HEADER}})
    def get(self, organization_id):
        """Get one organization, with its ETag."""
        organization = organizations.get(
            session=read_session(), organization_id=organization_id, actor=current_principal()
        )
        return organization, 200, {"ETag": etag("org", organization.id, organization.version)}

    @blp.arguments(schemas.OrganizationPatchSchema())
    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.doc(operationId="updateOrganization", parameters=[IF_MATCH_PARAMETER],
             responses={200: {"links": links(ORGANIZATION_TARGETS, "organization_id"),
                              "headers": ETAG_HEADER}})
    def patch(self, data, organization_id):
        """Change some fields of an organization; a stale If-Match is refused with 412.

        Fields left out keep their values. `offices`, when given, is the whole list: an
        office given with its `id` keeps the fields it does not give (coordinates, radius),
        one without `id` is added, and the offices left out of the list are removed.
        """
        organization = organizations.update(
            session=write_session(), organization_id=organization_id, data=data,
            actor=current_principal(), geocoder=geocoder(),
            expected_version=expected_version("org", organization_id),
        )
        return organization, 200, {"ETag": etag("org", organization.id, organization.version)}

    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="deactivateOrganization")
    def delete(self, organization_id):
        """Deactivate an organization; its history and KPI rows stay."""
        organizations.deactivate(
            session=write_session(), organization_id=organization_id, actor=current_principal()
        )

