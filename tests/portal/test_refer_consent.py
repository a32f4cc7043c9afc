"""The refer form asks for the client's consent when REQUIRE_CLIENT_CONSENT is on."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.portal.test_refer import find, record


def test_without_require_client_consent_the_form_does_not_ask(partner, network):
    page = find(partner).get_data(as_text=True)
    assert "consent_given" not in page


def test_the_form_refuses_a_referral_without_consent_and_records_it_given(
        app, partner, network, client, admin_headers):
    app.config["REQUIRE_CLIENT_CONSENT"] = True
    found = find(partner)
    page = found.get_data(as_text=True)
    assert found.status_code == 200
    assert 'name="consent_given"' in page and "The client agreed to be referred" in page
    refused = record(partner, page, network.beta)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "the client&#39;s consent is needed" in text
    assert client.get("/api/v1/referrals", headers=admin_headers).get_json()["total"] == 0
    recorded = record(partner, text, network.beta, consent_given="y",
                      consent_by="Wen Chao, owner")
    assert recorded.status_code == 302, recorded.get_data(as_text=True)
    referral_id = int(recorded.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert body["client"]["consent"]["by"] == "Wen Chao, owner"
    assert body["client"]["consent"]["given_at"] is not None


def test_the_referral_page_shows_the_consent_given(
        app, partner, network, client, admin_headers):
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        referral_id = referrals.record_referral(
            session=session, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            attribution_window_days=365, data={
                "referrer_organization_id": network.alpha,
                "receiver_organization_id": network.beta, "skills": [], "description": "",
                "note": "", "client": {"name": "Consenting Bikes", "consent": {
                    "given_at": datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
                    "by": "Wen Chao, owner"}}}).id
    page = partner.text(f"/referrals/{referral_id}")  # Alpha referred it: sees all
    assert "Client's consent" in page and "by Wen Chao, owner" in page
