"""Security headers on every response, by what the response is.

- Everything: `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` unless the view
  chose caching (the portal's and Swagger UI's static assets): API bodies name clients and
  firms, so no shared or browser cache keeps them.
- HTML (the portal, its error pages, an HTML 404 anywhere): the portal's policy (PAGE_POLICY):
  only the site's own assets, no script at all, never in a frame.
- The API's docs page (Swagger UI): the site's own scripts and styles plus its one inline
  script, allowed by hash (DOCS_POLICY), never in a frame.
- Anything else (JSON, problems, CSV, XLSX): nothing may run or be framed (DATA_POLICY).
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; script-src 'none'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI sets inline styles and draws data: images; its setup is an inline script.
DOCS_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self' {hashes}; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Endpoints whose responses may be cached (they set their own Cache-Control or validators).
CACHEABLE_ENDPOINTS = ("static", "portal.static", "swagger_assets.swagger_assets")
DOCS_ENDPOINT_SUFFIX = "openapi_swagger_ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> str:
    """Return the CSP sources ('sha256-...') of the inline scripts of `html`."""
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html))


def secure(response: Response) -> Response:
    """Add the headers of the response's class (module docstring); a view's own stay."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    endpoint = request.endpoint or ""
    if endpoint not in CACHEABLE_ENDPOINTS or response.status_code >= 400:
        headers.setdefault("Cache-Control", "no-store")
    if response.mimetype != "text/html":
        headers.setdefault("Content-Security-Policy", DATA_POLICY)
        return response
    if endpoint.endswith(DOCS_ENDPOINT_SUFFIX):
        policy = DOCS_POLICY.format(hashes=inline_script_hashes(response.get_data(as_text=True)))
    else:
        policy = PAGE_POLICY
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    """Give every response, of every blueprint and error handler, its security headers."""
    app.after_request(secure)
