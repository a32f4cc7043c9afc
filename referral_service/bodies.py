"""Request bodies: one size limit however the body is framed, and JSON nesting bounded.

werkzeug holds MAX_CONTENT_LENGTH against a Content-Length at once (413), but a chunked body
(`Transfer-Encoding: chunked`, no length) it only stops reading at the limit, silently: the
body was cut, and what was read could still parse and be stored (a 201 for valid JSON followed
by 3 MiB of spaces). Here a streamed body that goes on past the limit is the same 413, and a
body the server cannot unframe (a malformed chunk size) is a 400, not a 500.

Python's json module, which webargs parses bodies with, recurses once per level: 1,000 nested
`[` raise RecursionError (a 500). An API body nested deeper than MAX_JSON_DEPTH is a 400.
"""

from __future__ import annotations

import json
from typing import IO, Any

import orjson
from flask import Flask, Request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

# The deepest body of the API is 4 levels (a visit's leads' places); 32 leaves room and keeps
# every parser far from Python's recursion limit.
MAX_JSON_DEPTH = 32
MALFORMED_BODY = "The request body is malformed: its chunked framing cannot be read."
TOO_DEEP = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."


class BoundedStream(LimitedStream):
    """A streamed body read up to `maximum` bytes: one byte more is a 413, not a cut.

    It reads up to one byte past the maximum, so that a body of exactly the maximum ends
    normally and a longer one is noticed. A read the server's body reader cannot make (a
    malformed chunk) is a 400.
    """

    def __init__(self, stream: IO[bytes], maximum: int) -> None:
        super().__init__(stream, maximum + 1, is_max=True)
        self.maximum = maximum

    def readinto(self, buffer: bytearray) -> int | None:  # type: ignore[override]
        """Read into `buffer`; refuse a body longer than the maximum or that cannot be read."""
        try:
            count = super().readinto(buffer)
        except HTTPException:
            raise
        except Exception as error:
            # gunicorn's InvalidChunkSize and its kin are not OSErrors, which LimitedStream
            # would have turned into a 400 itself.
            raise BadRequest(MALFORMED_BODY) from error
        if self._pos > self.maximum:
            raise RequestEntityTooLarge()
        return count


class BoundedRequest(Request):
    """Flask's request whose streamed (chunked) body is held to MAX_CONTENT_LENGTH."""

    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        """The body's stream: a length-framed body as werkzeug gives it, a streamed one
        bounded by BoundedStream."""
        environ = self.environ
        maximum = self.max_content_length
        if (self.shallow or maximum is None or self.content_length is not None
                or "wsgi.input_terminated" not in environ):
            # Shallow requests raise in werkzeug's own property; the rest is its behaviour.
            return Request.stream.__get__(self, type(self))  # type: ignore[attr-defined]
        return BoundedStream(environ["wsgi.input"], maximum)


def json_depth(document: Any, limit: int) -> int:
    """Return how deeply `document` nests (a scalar is 0), counting no further than limit + 1."""
    deepest, level = 0, [(document, 1)]
    while level:
        value, depth = level.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        level.extend((item, depth + 1) for item in value)
    return deepest


def refuse_deep_json(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise a 400 if the JSON `body` nests deeper than `limit`; leave any other verdict
    (not JSON at all, a field refused) to the parser and the schema."""
    # Each level opens a bracket: with no more brackets than the limit, nothing to check.
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    try:
        document = orjson.loads(body)  # refuses past 1,024 levels, without recursing
    except orjson.JSONDecodeError:
        try:
            # What orjson refuses json may take (NaN, lone surrogates): its verdict stands.
            document = json.loads(body)
        except RecursionError:
            raise BadRequest(TOO_DEEP) from None
        except ValueError:
            return
    if json_depth(document, limit) > limit:
        raise BadRequest(TOO_DEEP)


def init_app(app: Flask) -> None:
    """Hold every request body, however framed, to MAX_CONTENT_LENGTH."""
    app.request_class = BoundedRequest
