"""The referral page shows the client's place as the referrer gave it."""

from __future__ import annotations


def test_the_referral_page_shows_the_clients_place(app, partner, network):
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    place = {"address": "1 Harbour Rd", "city": "Tainan", "country": "TW"}
    with session_scope(app) as session:
        referral_id = referrals.record_referral(
            session=session, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            attribution_window_days=365,
            data={"referrer_organization_id": network.beta,
                  "receiver_organization_id": network.alpha,
                  "client": {"name": "Placed Co", "location": place}}).id
    # The receiver sees the city before it accepts (need to know), the address after.
    page = partner.text(f"/referrals/{referral_id}")
    assert "Tainan, TW" in page and "1 Harbour Rd" not in page
    accepted = partner.post(f"/referrals/{referral_id}/status/accepted", {},
                            token_from="/dashboard")
    assert accepted.status_code == 302
    assert "1 Harbour Rd, Tainan, TW" in partner.text(f"/referrals/{referral_id}")
