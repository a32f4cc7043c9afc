"""The app's JSON responses, written by orjson.

Every API answer is JSON: Flask's default provider (json.dumps with sorted keys) cost a few
times orjson's CPU on a referral with its history (py-spy on POST /referrals, December). Same
output rules as Flask's: keys sorted, compact; UTF-8 text instead of \\u escapes. Values
orjson does not know (Decimal, a Markup) go through Flask's conversion, and what orjson
refuses (an integer beyond 64 bits, echoed in a 422) through Flask's own provider.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson doing the writing."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize `obj` to a JSON string."""
        return self._bytes(obj, **kwargs).decode()

    def response(self, *args: Any, **kwargs: Any):
        """Return a JSON response of the arguments (as flask.jsonify)."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._bytes(obj), mimetype=self.mimetype)

    def _bytes(self, obj: Any, **kwargs: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=DefaultJSONProvider.default, option=OPTIONS)
        except TypeError:
            return super().dumps(obj, **kwargs).encode()
