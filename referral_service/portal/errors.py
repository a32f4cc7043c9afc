"""The portal's error pages: the same statuses as the API (errors.STATUS_BY_ERROR), as HTML."""

from __future__ import annotations

import logging

from flask import render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, NotFound

from referral_service.errors import handle_http_exception, status_of
from referral_service.portal.common import blp
from referral_service.portal.forms import said
from referral_service.services.errors import ServiceError

log = logging.getLogger(__name__)

ERROR_MESSAGES = {
    400: _l("The request could not be understood."),
    403: _l("You are signed in, but this page is not yours to see or change."),
    404: _l("There is nothing here, or it is not yours to see."),
    409: _l("Someone changed this at the same moment; reload the page and try again."),
    413: _l("What was sent is larger than the service accepts; send less at a time."),
    429: _l("Too many attempts; wait a moment and try again."),
    500: _l("Something went wrong on our side. It has been logged; please try again."),
    503: _l("The service is briefly unavailable; please try again in a moment."),
}


def wants_html() -> bool:
    """Return whether the client asked for a web page rather than JSON."""
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html"


def render_error(status: int, message: str | None = None, *, title: str | None = None):
    """Render the portal's HTML error page."""
    return render_template("portal/error.html", status=status, title=title,
                           message=message or ERROR_MESSAGES.get(status, "")), status


def not_found(error: NotFound):
    """An unknown URL anywhere: an HTML page for a browser, problem+json for everyone else."""
    if request.path.startswith("/api/") or not wants_html():
        return handle_http_exception(error)
    # Werkzeug's own description is English and technical: the page says ours.
    return render_error(error.code or 404)


@blp.errorhandler(HTTPException)
def handle_http_error(error: HTTPException):
    """An HTTP error inside the portal: an HTML page, not problem+json."""
    status = error.code or 500
    if status == 400 and "CSRF" in (error.description or ""):
        return render_error(400, gettext("This form has expired or did not come from this "
                                         "site. Go back, reload the page and send it again."),
                            title=gettext("Form expired"))
    page = render_error(status, ERROR_MESSAGES.get(status) if status != 429
                        else error.description)
    retry_after = getattr(error, "retry_after", None)
    if status == 429 and retry_after:
        return page[0], status, {"Retry-After": str(retry_after)}
    return page


@blp.errorhandler(ServiceError)
def handle_service_error(error: ServiceError):
    """A refused or missing object, as an HTML page with the service's status."""
    status = status_of(error)
    message = ERROR_MESSAGES.get(404) if status == 404 else said(error.detail)
    return render_error(status, message)


@blp.errorhandler(StaleDataError)
def handle_stale(_error: StaleDataError):
    """Two saves raced; the second is told to reload."""
    return render_error(409)


@blp.errorhandler(Exception)
def handle_unexpected(error: Exception):
    """Log the trace; show the user a plain page without it."""
    if isinstance(error, DBAPIError) and (isinstance(error, OperationalError)
                                          or error.connection_invalidated):
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return render_error(503)
    log.exception("unhandled error in the portal")
    return render_error(500)
