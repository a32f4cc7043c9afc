"""Property-based fuzzing of every API operation with schemathesis, in-process over WSGI."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.conftest import org_payload

pytestmark = pytest.mark.slow

SEED = 20261127
MAX_EXAMPLES = 30


@pytest.fixture
def api_schema(app, client, admin_headers):
    """The app's OpenAPI document, loaded by schemathesis, with a few objects to find."""
    ids = []
    for name in ("Alpha Machining", "Beta Finishing", "Gamma Coatings"):
        response = client.post("/api/v1/organizations", json=org_payload(name=name, capacity=None),
                               headers=admin_headers)
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    response = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": ids[0], "receiver_organization_id": ids[1],
        "client": {"name": "Acme Ltd"}, "skills": ["CNC Machining"]})
    assert response.status_code == 201
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "headers": dict(admin_headers),
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "deterministic": True},
    })
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_survives_generated_requests(case):
    case.call_and_validate()
