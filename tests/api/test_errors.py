"""Every error is problem+json, and no trace or SQL reaches the client."""

from __future__ import annotations

from tests.conftest import org_payload


def test_unknown_route_is_problem_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= {"type", "title", "status", "detail"}


def test_wrong_method_is_problem_405_with_allow(client, admin_headers):
    response = client.put("/api/v1/organizations", headers=admin_headers, json={})
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_body_over_one_mib_is_413(client, admin_headers):
    response = client.post("/api/v1/organizations", headers=admin_headers,
                           data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                           content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_malformed_json_is_problem_400(client, admin_headers):
    response = client.post("/api/v1/organizations", headers=admin_headers,
                           data=b'{"name": ', content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"


def test_missing_fields_are_named(client, admin_headers):
    response = client.post("/api/v1/organizations", headers=admin_headers, json={})
    assert response.status_code == 422
    assert {"name", "kind", "offices"} <= set(response.get_json()["errors"])


def test_unexpected_exception_is_a_bare_500(app, client, admin_headers, monkeypatch):
    from referral_service.services import organizations

    def explode(**_kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(organizations, "list_", explode)
    response = client.get("/api/v1/organizations", headers=admin_headers)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "SELECT" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_wrong_types_are_422_not_500(client, admin_headers):
    response = client.post("/api/v1/organizations", headers=admin_headers,
                           json=org_payload(capacity="many", skills="welding"))
    assert response.status_code == 422
    assert {"capacity", "skills"} <= set(response.get_json()["errors"])


def test_openapi_document_declares_problem_responses(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/organizations/" in spec["paths"] or "/api/v1/organizations" in spec["paths"]
    responses = spec["components"]["responses"]
    assert "application/problem+json" in responses["NOT_FOUND"]["content"]


def test_docs_page_loads_assets_locally(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "cdn" not in html.lower()
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    asset.close()
    assert asset.status_code == 200


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
