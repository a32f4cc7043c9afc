"""Every error is problem+json, and no trace or SQL reaches the client."""

from __future__ import annotations

import pytest

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


# ------------------------------------------------- one validation problem, unknown queries

LIST_ENDPOINTS = ["/api/v1/organizations", "/api/v1/referrals", "/api/v1/audit",
                  "/api/v1/skills", "/api/v1/kpi/monthly?month=2026-03"]


def _is_the_validation_problem(response) -> dict:
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "https://referral-service.example/problems/validation-failed"
    assert body["title"] == "Validation failed"
    assert body["status"] == 422
    return body


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_unknown_query_parameters_are_a_422_naming_each(client, admin_headers, path):
    joiner = "&" if "?" in path else "?"
    response = client.get(f"{path}{joiner}colour=x&per_page=10", headers=admin_headers)
    body = _is_the_validation_problem(response)
    assert set(body["errors"]) == {"colour", "per_page"}


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_documented_query_parameters_are_still_taken(client, admin_headers, path):
    joiner = "&" if "?" in path else "?"
    query = "" if path.endswith("skills") else "page=1" if "kpi" not in path else "format=json"
    response = client.get(f"{path}{joiner}{query}", headers=admin_headers)
    assert response.status_code == 200, response.get_json()


def test_a_query_on_an_operation_without_parameters_is_a_422(client, admin_headers, make_org):
    organization = make_org()
    response = client.get(f"/api/v1/organizations/{organization['id']}?expand=offices",
                          headers=admin_headers)
    assert set(_is_the_validation_problem(response)["errors"]) == {"expand"}


def test_an_unknown_query_parameter_without_a_key_is_still_a_401(client):
    assert client.get("/api/v1/organizations?colour=x").status_code == 401


def test_schema_and_service_refusals_are_the_same_problem_type(client, admin_headers, make_org):
    from_schema = _is_the_validation_problem(
        client.post("/api/v1/organizations", headers=admin_headers, json={"name": ""}))
    organization = make_org()
    from_service = _is_the_validation_problem(client.post(
        "/api/v1/referrals", headers=admin_headers,
        json={"referrer_organization_id": organization["id"],
              "receiver_organization_id": organization["id"], "client": {"name": "Acme"}}))
    assert "name" in from_schema["errors"]
    assert "receiver_organization_id" in from_service["errors"]
    assert from_schema["detail"] != from_service["detail"]


def test_the_document_gives_every_422_the_validation_problem(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    problem = spec["components"]["schemas"]["ValidationProblem"]
    assert "errors" in problem["required"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            response = operation["responses"].get("422")
            if response is not None:
                assert response == {"$ref": "#/components/responses/UNPROCESSABLE_ENTITY"}, (
                    method, path)
