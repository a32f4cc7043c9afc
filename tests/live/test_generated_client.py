"""A client generated from the live OpenAPI document drives a whole CRM flow.

openapi-python-client (offline) turns the test app's /api/v1/openapi.json into a typed package
in tmp_path; the flow then goes through its typed functions only, over httpx's WSGI transport
to the test app: create two firms, match, refer, accept, convert, read the month's KPI. A
document the generator cannot read fully (it warns, and leaves an operation out) fails here.
(The KPI's CSV/XLSX formats are tested with plain HTTP: a generated client cannot choose a
response type from a query parameter.)
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

# Generating and importing a package takes some 15 s on this machine.
pytestmark = pytest.mark.slow

PACKAGE = "referral_client"


@pytest.fixture
def generated(app, tmp_path):
    """The generated client package, imported; gone from sys.modules afterwards."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.test_client().get("/api/v1/openapi.json").get_json()))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatter run: nothing to fetch
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator, "openapi-python-client is a dev dependency: pip install -e .[dev]"
    done = subprocess.run(
        [generator, "generate", "--path", str(document), "--meta", "none", "--output-path",
         str(tmp_path / PACKAGE), "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_records_a_referral_through_to_the_kpi(app, generated,
                                                                  admin_headers):
    from referral_client import AuthenticatedClient
    from referral_client.api.kpi import get_api_v1_kpi_monthly
    from referral_client.api.matching import post_api_v1_match
    from referral_client.api.organizations import post_api_v1_organizations
    from referral_client.api.referrals import get_referral, move_referral, post_api_v1_referrals
    from referral_client.models import (
        KpiMonth,
        Location,
        MatchRequest,
        MatchResponse,
        Office,
        Organization,
        OrganizationCreate,
        OrganizationCreateKind,
        Referral,
        ReferralClientIn,
        ReferralCreate,
        ReferralMove,
        ReferralMoveStatus,
        ValidationProblem,
    )

    token = admin_headers["Authorization"].removeprefix("Bearer ")
    client = AuthenticatedClient(base_url="http://testserver", token=token,
                                 raise_on_unexpected_status=True,
                                 httpx_args={"transport": httpx.WSGITransport(app=app)})
    with client:
        firms = []
        for name, skills, (latitude, longitude) in (
                ("Harbor Precision", ["CNC machining"], (22.6273, 120.3014)),
                ("Tainan Anodizing", ["Anodizing", "CNC machining"], (22.99, 120.21))):
            created = post_api_v1_organizations.sync(client=client, body=OrganizationCreate(
                name=name, kind=OrganizationCreateKind.PARTNER, skills=skills, capacity=5,
                offices=[Office(latitude=latitude, longitude=longitude, label="HQ")]))
            assert isinstance(created, Organization), created
            assert created.offices[0].latitude == pytest.approx(latitude)
            firms.append(created)
        referrer, receiver = firms

        ranking = post_api_v1_match.sync(client=client, body=MatchRequest(
            skills=["anodizing"], location=Location(latitude=22.63, longitude=120.30),
            referrer_organization_id=referrer.id))
        assert isinstance(ranking, MatchResponse), ranking
        assert [candidate.organization_id for candidate in ranking.candidates] == [receiver.id]
        best = ranking.candidates[0]
        assert best.matched_skills == ["anodizing"] and 0 < best.score <= 1

        referral = post_api_v1_referrals.sync(
            client=client, idempotency_key="crm-flow-1", body=ReferralCreate(
                referrer_organization_id=referrer.id, receiver_organization_id=receiver.id,
                client=ReferralClientIn(name="Acme Housings Ltd"), skills=["anodizing"],
                match_score=best.score))
        assert isinstance(referral, Referral), referral
        assert referral.status == "pending"

        etag = get_referral.sync_detailed(referral.id, client=client).headers["ETag"]
        accepted = move_referral.sync(referral.id, client=client, if_match=etag,
                                      body=ReferralMove(status=ReferralMoveStatus.ACCEPTED))
        assert isinstance(accepted, Referral) and accepted.status == "accepted"
        stale = move_referral.sync_detailed(
            referral.id, client=client, if_match=etag,
            body=ReferralMove(status=ReferralMoveStatus.CONVERTED))
        assert stale.status_code == 412
        converted = move_referral.sync(referral.id, client=client,
                                       body=ReferralMove(status=ReferralMoveStatus.CONVERTED))
        assert isinstance(converted, Referral) and converted.status == "converted"
        assert [step.status for step in converted.history] == ["pending", "accepted",
                                                               "converted"]

        month = datetime.now(UTC).strftime("%Y-%m")
        kpi = get_api_v1_kpi_monthly.sync(client=client, month=month)
        assert isinstance(kpi, KpiMonth), kpi
        rows = {row.organization_id: row for row in kpi.rows}
        assert (rows[referrer.id].referrals_made, rows[referrer.id].converted_made) == (1, 1)
        assert (rows[receiver.id].referrals_received, rows[receiver.id].accepted_received,
                rows[receiver.id].converted_received) == (1, 1, 1)
        assert rows[receiver.id].new_client_credits == 1

        refused = get_api_v1_kpi_monthly.sync(client=client, month="2026-13")
        assert isinstance(refused, ValidationProblem)
        assert "month" in refused.errors.to_dict()
