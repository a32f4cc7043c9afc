"""Request ids on every response, one structured log line per request, Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re

import pytest

ORGS = "/api/v1/organizations"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_lines(capsys):
    """Return a function giving the lines the service logged (to stderr) since its last call."""

    def lines() -> list[str]:
        return [line for line in capsys.readouterr().err.splitlines() if line]

    return lines


@pytest.fixture
def json_app(app, database_url):
    """An app over the emptied test database that logs JSON at INFO."""
    from referral_service import create_app

    application = create_app({"DATABASE_URL": database_url, "TESTING": True,
                              "SECRET_KEY": "test-secret", "RATELIMIT_ENABLED": False,
                              "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    yield application
    application.extensions["db_engine"].dispose()


def test_a_valid_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "crm-sync.42_A"})
    assert response.headers["X-Request-ID"] == "crm-sync.42_A"


@pytest.mark.parametrize("sent", ["has space", "a" * 129, "semi;colon", "", "<script>"])
def test_an_unusable_request_id_is_replaced_by_a_new_one(client, sent):
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_each_request_without_an_id_gets_its_own(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_error_responses_carry_a_request_id_too(app, client, admin_headers, monkeypatch):
    from referral_service.services import organizations

    def explode(**_kwargs):
        raise RuntimeError("boom")

    responses = [
        client.get("/api/v1/nothing-here"),                          # 404
        client.get(ORGS),                                            # 401
        client.put(ORGS, headers=admin_headers, json={}),            # 405
        client.post(ORGS, headers=admin_headers, json={}),           # 422
        client.post(ORGS, headers=admin_headers, data=b"x" * (1024 * 1024 + 1),
                    content_type="application/json"),                # 413
    ]
    monkeypatch.setattr(organizations, "list_", explode)
    responses.append(client.get(ORGS, headers=admin_headers))        # 500
    assert [r.status_code for r in responses] == [404, 401, 405, 422, 413, 500]
    for response in responses:
        assert response.mimetype == "application/problem+json"
        assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_json_log_has_one_line_per_request_with_its_fields(json_app, log_lines, make_key):
    client = json_app.test_client()
    log_lines()
    headers = {**make_key("crm"), "X-Request-ID": "trace-me-1"}
    response = client.get(ORGS + "?page=1", headers=headers)
    assert response.status_code == 200

    entries = [json.loads(line) for line in log_lines()]
    request_lines = [e for e in entries if e["logger"] == "referral_service.request"]
    assert len(request_lines) == 1
    entry = request_lines[0]
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "trace-me-1"
    assert entry["method"] == "GET" and entry["path"] == ORGS  # no query string in logs
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0
    assert entry["actor"] == "key:test crm"
    assert entry["message"] == "GET /api/v1/organizations 200"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_an_error_is_logged_as_one_json_line_with_trace_and_request_id(
    json_app, log_lines, make_key, monkeypatch
):
    from referral_service.services import organizations

    def explode(**_kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(organizations, "list_", explode)
    client = json_app.test_client()
    log_lines()
    response = client.get(ORGS, headers={**make_key("admin"), "X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert "SELECT" not in response.get_data(as_text=True)

    entries = [json.loads(line) for line in log_lines()]  # every line parses
    error = next(e for e in entries if e["level"] == "ERROR")
    assert error["request_id"] == "boom-1" and error["path"] == ORGS
    assert "RuntimeError: SELECT secret FROM internals" in error["exception"]
    finished = next(e for e in entries if e["logger"] == "referral_service.request")
    assert finished["status"] == 500 and finished["level"] == "WARNING"


def test_text_format_is_plain_text_with_the_request_id(app, client, log_lines):
    logging.getLogger("referral_service.request").setLevel(logging.INFO)
    try:
        log_lines()
        client.get("/healthz", headers={"X-Request-ID": "plain-1"})
        line = log_lines()[-1]
    finally:
        logging.getLogger("referral_service.request").setLevel(logging.NOTSET)
    assert "GET /healthz 200" in line and "[plain-1]" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_metrics_count_requests_per_route_template_not_per_id(client, admin_headers):
    for organization_id in (1, 2, 3):
        client.get(f"{ORGS}/{organization_id}", headers=admin_headers)
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert ('flask_http_request_duration_seconds_count{method="GET",status="404",'
            'url_rule="/api/v1/organizations/<id:organization_id>"} 3.0') in text
    assert 'url_rule="/healthz"' in text
    assert "/api/v1/organizations/1" not in text
    # The scrape itself is not counted.
    assert 'url_rule="/metrics"' not in text


def test_metrics_are_kept_per_app(app, database_url):
    """Two apps in one process (as the tests build them) never share or clash on metrics."""
    from referral_service import create_app

    other = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "x",
                        "RATELIMIT_ENABLED": False, "LOG_FORMAT": "text"})
    try:
        other.test_client().get("/healthz")
        text = app.test_client().get("/metrics").get_data(as_text=True)
        assert 'url_rule="/healthz"' not in text
    finally:
        other.extensions["db_engine"].dispose()


@pytest.mark.slow
def test_gunicorn_and_app_lines_are_all_json_with_the_documented_fields(app, database_url):
    """Under gunicorn (gunicorn.conf.py) its own lines go through the same JSON formatter."""
    import requests

    from tests.conftest import LiveServer

    server = LiveServer(database_url, workers=1, LOG_LEVEL="INFO")
    try:
        assert requests.get(server.url + "/healthz",
                            headers={"X-Request-ID": "live-1"}).status_code == 200
    finally:
        server.stop()

    entries = [json.loads(line) for line in server.log_text().splitlines() if line]
    documented = {"time", "level", "logger", "message", "request_id", "method", "path",
                  "status", "duration_ms", "actor", "exception", "stack"}
    assert all(set(entry) <= documented for entry in entries), entries
    assert any(entry["logger"] == "gunicorn.error" and entry["message"].startswith("Booting worker")
               for entry in entries)
    [finished] = [e for e in entries if e.get("request_id") == "live-1"]
    assert (finished["logger"], finished["status"], finished["path"]) == (
        "referral_service.request", 200, "/healthz")
