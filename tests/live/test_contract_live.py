"""The organizations contract through a real gunicorn server with several workers."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import org_payload

pytestmark = pytest.mark.slow


def test_organization_contract_through_gunicorn(live_server, make_key):
    base = live_server.url + "/api/v1/organizations"
    headers = make_key("admin")
    with requests.Session() as http:
        http.headers.update(headers)
        created = http.post(base, json=org_payload(offices=[{"city": "Hsinchu",
                                                             "country": "TW"}]))
        assert created.status_code == 201
        url = f"{base}/{created.json()['id']}"
        etag = http.get(url).headers["ETag"]
        assert http.patch(url, json={"capacity": 3}, headers={"If-Match": etag}).status_code == 200
        stale = http.patch(url, json={"capacity": 4}, headers={"If-Match": etag})
        assert stale.status_code == 412
        assert stale.headers["Content-Type"] == "application/problem+json"
        assert http.get(url).json()["capacity"] == 3

        for response, status in (
            (http.get(live_server.url + "/api/v1/nope"), 404),
            (http.put(base, json={}), 405),
            (http.post(base, data=b"{", headers={"Content-Type": "application/json"}), 400),
            (http.post(base, data=b"x" * (1024 * 1024 + 1),
                       headers={"Content-Type": "application/json"}), 413),
            (http.get(f"{base}/99999999999999999999"), 404),
            (http.post(base, json={"name": ""}), 422),
            (requests.get(base), 401),
        ):
            assert response.status_code == status, (status, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert "Traceback" not in response.text
        assert http.get(base).json()["total"] == 1


def test_readyz_answers_through_gunicorn(live_server):
    assert requests.get(live_server.url + "/readyz").status_code == 200
