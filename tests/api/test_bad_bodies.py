"""Bodies no client should send: nested without end, over the size limit, badly framed.

Each is a clear 4xx problem (issue 11, rows 4-6), never a 500 or a silently cut body.
"""

from __future__ import annotations

import io
import json

import pytest

from referral_service.bodies import MAX_JSON_DEPTH
from tests.conftest import org_payload

JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    return body


WRITES = [("post", "/api/v1/organizations"), ("post", "/api/v1/referrals"),
          ("post", "/api/v1/match"), ("post", "/api/v1/visits"), ("post", "/api/v1/people"),
          ("patch", "/api/v1/organizations/1"), ("put", "/api/v1/kpi/targets/1/2026-03")]


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
@pytest.mark.parametrize("depth", [1_000, 5_000, 100_000])
def test_deeply_nested_arrays_are_a_400_problem(client, admin_headers, method, path, depth):
    body = "[" * depth + "]" * depth
    response = getattr(client, method)(path, data=body, headers={**admin_headers, **JSON})
    assert "nested" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize("body", [
    "[" * 100_000,                                       # never closed
    '{"a":' * 2_000 + "1" + "}" * 2_000,                 # objects
    '{"name": ' + "[" * 1_000 + "]" * 1_000 + "}",       # inside a field
    "[" * 900 + "NaN" + "]" * 900,                       # what only json takes
], ids=["unclosed", "objects", "in-a-field", "nan"])
def test_deep_nesting_of_any_shape_is_a_400_problem(client, admin_headers, body):
    response = client.post("/api/v1/referrals", data=body, headers={**admin_headers, **JSON})
    assert "nested" in assert_problem(response, 400)["detail"]


def test_nesting_just_past_the_limit_is_refused_and_at_it_read(client, admin_headers):
    over = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    response = client.post("/api/v1/match", data=over, headers={**admin_headers, **JSON})
    assert_problem(response, 400)
    at = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    response = client.post("/api/v1/match", data=at, headers={**admin_headers, **JSON})
    assert_problem(response, 422)  # read, then refused by the schema as any list would be


def test_a_body_with_many_brackets_but_little_depth_is_read(client, admin_headers):
    offices = [{"label": f"Office {i}", "latitude": 22.6, "longitude": 120.3}
               for i in range(40)]
    response = client.post("/api/v1/organizations", headers=admin_headers,
                           json=org_payload(offices=offices))
    assert response.status_code == 201, response.get_json()


def test_a_json_body_over_the_limit_is_a_413_problem(client, admin_headers):
    body = '{"name": "' + "a" * (2 * MIB) + '"}'
    response = client.post("/api/v1/organizations", data=body,
                           headers={**admin_headers, **JSON})
    assert_problem(response, 413)


def chunked(client, path, stream, headers):
    """POST `stream` as a streamed body with no length, as a WSGI server gives a chunked one."""
    return client.post(path, input_stream=stream,
                       headers={**headers, **JSON, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_a_streamed_body_past_the_limit_is_a_413_not_a_cut(client, admin_headers):
    payload = io.BytesIO(b'{"name": "Padded Ltd"}' + b" " * (3 * MIB))
    response = chunked(client, "/api/v1/organizations", payload, admin_headers)
    assert_problem(response, 413)
    assert client.get("/api/v1/organizations", headers=admin_headers).get_json()["total"] == 0


def test_a_streamed_body_of_exactly_the_limit_is_read(client, admin_headers):
    text = json.dumps(org_payload(name="Exactly Ltd")).encode()
    payload = io.BytesIO(text + b" " * (MIB - len(text)))
    response = chunked(client, "/api/v1/organizations", payload, admin_headers)
    assert response.status_code == 201, response.get_json()


class BrokenChunks(io.RawIOBase):
    """A WSGI input whose reader fails as gunicorn's does on a malformed chunk size."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, _offset: int, _whence: int = 0) -> int:
        return 0  # the test client asks for a length: none is known

    def readinto(self, _buffer) -> int:
        raise RuntimeError("Invalid chunk size")


def test_a_body_that_cannot_be_unframed_is_a_400_problem(client, admin_headers):
    response = chunked(client, "/api/v1/organizations", BrokenChunks(), admin_headers)
    assert "malformed" in assert_problem(response, 400)["detail"]
