"""A decline in the portal re-offers the client (SPEC section 11); the referral page shows the
chain, linking the referrals the reader may open."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Referral
from tests.portal.conftest import KAOHSIUNG, Portal, add_org
from tests.portal.test_referrals import move


def _refer(app, referrer: int, receiver: int, client: str = "Harbour Cranes Ltd") -> int:
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    data = {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
            "client": {"name": client,
                       "location": {"latitude": 22.63, "longitude": 120.30}},
            "skills": ["Anodizing"], "description": "Anodised aluminium housings"}
    with session_scope(app) as session:
        return referrals.record_referral(
            session=session, data=data, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            attribution_window_days=365).id


def test_a_portal_decline_re_offers_and_the_pages_show_the_chain(app, network, partner, admin,
                                                                session):
    # Delta anodises next door to the client; Beta does too, 40 km away in Tainan.
    delta = add_org(app, "Delta Anodising", KAOHSIUNG, skills=["Anodizing"],
                    description="Anodising of aluminium.")
    first = _refer(app, network.gamma, network.alpha)

    response = move(partner, first, "declined", reason="No capacity this month.")

    assert response.status_code == 302
    second = session.scalars(select(Referral).where(
        Referral.previous_referral_id == first)).one()
    assert second.receiver_organization_id == delta
    assert second.referrer_organization_id == network.gamma
    # Alpha, the receiver that declined, sees the chain but opens only its own referral.
    page = partner.text(f"/referrals/{first}")
    assert "Re-offers" in page
    assert f'<strong aria-current="page">#{first}</strong> → #{second.id}' in page
    assert f'href="/referrals/{second.id}"' not in page
    # The re-offer carries the client on: no manual "refer on" for the declined one (a 409).
    assert "Refer this client to another firm" not in admin.text(f"/referrals/{first}")
    # Head office opens every referral of it.
    page = admin.text(f"/referrals/{second.id}")
    assert f'<a href="/referrals/{first}">#{first}</a> → ' in page
    assert f'<strong aria-current="page">#{second.id}</strong>' in page
    # A referral that was never re-offered shows no chain.
    other = _refer(app, network.beta, network.alpha, client="Quiet Dock Co")
    assert "Re-offers" not in Portal(app.test_client(), network.admin_user).text(
        f"/referrals/{other}")


def test_the_refer_form_offers_re_offer_ticked_by_default_and_keeps_the_choice(
    app, partner, network, client, admin_headers
):
    from tests.portal.test_refer import find, record

    page = partner.text("/refer")
    assert re.search(r'<input[^>]*checked[^>]*name="auto_reoffer"|'
                     r'<input[^>]*name="auto_reoffer"[^>]*checked', page)
    app.config["AUTO_REOFFER"] = False
    assert not re.search(r'name="auto_reoffer"[^>]*checked', partner.text("/refer"))

    found = find(partner, auto_reoffer="y")  # ticked by the user
    response = record(partner, found.get_data(as_text=True), network.beta, auto_reoffer="y")
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.get(f"/api/v1/referrals/{referral_id}",
                      headers=admin_headers).get_json()["auto_reoffer"] is True

    found = find(partner, client_name="Another Bikes Co")  # left unticked
    response = record(partner, found.get_data(as_text=True), network.beta,
                      client_name="Another Bikes Co")
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.get(f"/api/v1/referrals/{referral_id}",
                      headers=admin_headers).get_json()["auto_reoffer"] is False

