"""What every API resource shares: the caller, paging, ETags, the geocoder."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import PreconditionFailed, Unauthorized

from referral_service import limits
from referral_service.db import read_session
from referral_service.services import auth
from referral_service.services.auth import Principal

PUBLIC_ENDPOINT_SUFFIXES = ("openapi_json", "openapi_swagger_ui", "swagger_assets",
                            "openapi_redoc")
# PATCH documents the optional If-Match header, so that a link can carry a GET's ETag to it.
IF_MATCH_PARAMETER = {
    "in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
    "description": "The ETag of a GET; optional. A stale one is refused with 412.",
}
# The header GET, POST and PATCH of one object send (documented with their responses).
ETAG_HEADER = {"ETag": {"description": "The object's version, for If-Match.",
                        "schema": {"type": "string"}}}
_ETAG = re.compile(r'^(?:W/)?"(?P<kind>[a-z]+)-(?P<id>\d+)-v(?P<version>\d+)"$')


def authenticate() -> None:
    """Resolve the bearer key of an API request into `g.principal`, or refuse with 401."""
    endpoint = request.endpoint or ""
    if endpoint.endswith(PUBLIC_ENDPOINT_SUFFIXES):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, raw_key = header.partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        limits.count_failed_authentication()
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    principal = auth.authenticate_key(session=read_session(), raw_key=raw_key.strip(),
                                      cache=current_app.extensions.get("api_key_cache"))
    if principal is None:
        # Counted only now that the key failed: a valid key is never refused for others'.
        limits.count_failed_authentication()
        raise Unauthorized("The API key is not valid.")
    g.principal = principal


def current_principal() -> Principal:
    """Return the caller of this request."""
    return g.principal


def location_header(what: str) -> dict[str, Any]:
    """The Location header of a 201, as documented with the response (as ETAG_HEADER)."""
    return {"Location": {"description": f"The URL of the new {what} (GET it there).",
                         "schema": {"type": "string", "format": "uri-reference"}}}


def created(body: dict[str, Any], endpoint: str, *, etag_kind: str | None = None,
            **ids: int) -> Response:
    """Answer 201 with a body a use case has already shaped (and that an idempotent repeat
    gets again as it was), its Location and, given the ETag's kind, its ETag."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for(endpoint, **ids)
    if etag_kind is not None:
        response.headers["ETag"] = etag(etag_kind, body["id"], body["version"])
    return response


def page_body(items: list[Any], total: int, args: dict[str, Any]) -> dict[str, Any]:
    """Return the list envelope of the SPEC."""
    return {"items": items, "total": total, "page": args["page"],
            "page_size": args["page_size"]}


def links(targets: dict[str, str], parameter: str, *, if_match: str | None = None) -> dict:
    """Return OpenAPI links from a response's `id` to the operations that take it as `parameter`.

    `targets` maps link names to operationIds; the one named by `if_match` also gets the
    response's ETag as its If-Match header (a GET's links).
    """
    found = {}
    for name, operation_id in targets.items():
        parameters = {parameter: "$response.body#/id"}
        if operation_id == if_match:
            parameters["header.If-Match"] = "$response.header.ETag"
        found[name] = {"operationId": operation_id, "parameters": parameters}
    return found


def etag(kind: str, object_id: int, version: int) -> str:
    """Return the strong ETag of one version of an object."""
    return f'"{kind}-{object_id}-v{version}"'


def expected_version(kind: str, object_id: int) -> int | None:
    """Return the version an If-Match header asks for, or None if there is none.

    A header naming another object, or one that is not ours, can never match: 412.
    """
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    for candidate in (part.strip() for part in header.split(",")):
        found = _ETAG.match(candidate)
        if found and found["kind"] == kind and int(found["id"]) == object_id:
            return int(found["version"])
    raise PreconditionFailed("The If-Match header does not match the current version.")
