"""The OpenAPI document's types are exact, and the server holds the same line (issue 11, row 11)."""

from __future__ import annotations

import pytest

from tests.conftest import org_payload

OPENAPI = "/api/v1/openapi.json"


def walk(node, path=""):
    """Yield (path, schema) of every object in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def test_a_nullable_nested_object_is_that_object_or_null(client):
    schemas = client.get(OPENAPI).get_json()["components"]["schemas"]
    assert schemas["ClientIn"]["properties"]["location"] == {
        "allOf": [{"$ref": "#/components/schemas/Location"}], "nullable": True}
    assert schemas["ClientOut"]["properties"]["location"] == {
        "allOf": [{"$ref": "#/components/schemas/PlaceOut"}], "nullable": True}


def test_no_branch_of_the_document_admits_any_object(client):
    document = client.get(OPENAPI).get_json()
    loose = [path for path, node in walk(document)
             for branch in node.get("anyOf", []) + node.get("oneOf", [])
             if isinstance(branch, dict) and branch.get("type") == "object"
             and not set(branch) - {"type", "nullable", "enum"}]
    assert loose == []


@pytest.mark.parametrize("country", ["TW\n", "tw\n", "T\n", "TW\r\n"])
def test_a_country_with_a_trailing_newline_is_refused(client, admin_headers, country):
    payload = org_payload(offices=[{"city": "Kaohsiung", "country": country}])
    response = client.post("/api/v1/organizations", json=payload, headers=admin_headers)
    assert response.status_code == 422
    assert "country" in str(response.get_json()["errors"])


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/match", {"skills": ["anodizing"], "location": {"latitude": 22.6,
                                                             "longitude": 120.3},
                       "limit": "5"}, "limit"),
    ("/api/v1/organizations", org_payload(capacity="5"), "capacity"),
    ("/api/v1/referrals", {"referrer_organization_id": "1", "receiver_organization_id": 2,
                           "client": {"name": "Acme"}}, "referrer_organization_id"),
    ("/api/v1/people", {"organization_id": "1", "name": "Ann"}, "organization_id"),
    ("/api/v1/people", {"organization_id": 1, "name": "Ann", "manager_id": "2"}, "manager_id"),
], ids=["match-limit", "capacity", "referrer", "person-organization", "person-manager"])
def test_a_json_integer_given_as_text_is_refused(client, admin_headers, path, body, field):
    response = client.post(path, json=body, headers=admin_headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_a_query_string_integer_is_still_read_from_text(client, admin_headers, make_org):
    make_org()
    response = client.get("/api/v1/organizations?page=1&page_size=5", headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json()["page_size"] == 5


def test_other_patterns_refuse_a_trailing_newline_too(client, admin_headers):
    from marshmallow import ValidationError

    from referral_service.schemas.base import MONTH, NAMED
    from referral_service.schemas.visits import CURRENCY

    for validator, text in ((MONTH, "2026-03\n"), (CURRENCY, "TWD\n")):
        with pytest.raises(ValidationError):
            validator(text)
    assert NAMED("Acme\nLtd") == "Acme\nLtd"  # a newline inside is text like any other
    response = client.get("/api/v1/kpi/monthly?month=2026-03%0A", headers=admin_headers)
    assert response.status_code == 422
