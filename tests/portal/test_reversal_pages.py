"""Head office reverses a conversion on the referral page (with a reason, CSRF as every form),
and the KPI pages show the corrections it books in the first open month (SPEC section 10)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from models import Referral, utcnow
from tests.portal.conftest import Portal
from tests.portal.test_referrals import move, status_of

THIS_MONTH = utcnow().strftime("%Y-%m")
LAST_MONTH = (utcnow().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def converted_last_month(app, refer_to, referrer: int, receiver: int) -> int:
    """A referral converted last month, and last month closed."""
    from referral_service.db import session_scope
    from referral_service.services import months, referrals
    from referral_service.services.auth import SYSTEM

    referral_id = refer_to(referrer, receiver, client="Mistaken Win Ltd")
    with session_scope(app) as session:
        for status in ("accepted", "converted"):
            referrals.move_referral(session=session, referral_id=referral_id, status=status,
                                    reason=None, actor=SYSTEM)
    when = utcnow().replace(day=1) - timedelta(days=3)
    with app.extensions["db_engine"].begin() as connection:
        connection.execute(update(Referral).where(Referral.id == referral_id).values(
            created_at=when, accepted_at=when, converted_at=when))
    with session_scope(app) as session:
        months.close(session=session, month=LAST_MONTH, actor=SYSTEM)
    return referral_id


def test_head_office_reverses_a_conversion_with_a_reason_and_the_kpi_shows_it(
        app, admin, partner, network, refer_to, client, admin_headers):
    referral_id = converted_last_month(app, refer_to, network.alpha, network.beta)
    # Neither party may reverse it; the partner's page offers nothing.
    assert "Reverse the conversion" not in partner.text(f"/referrals/{referral_id}")
    page = admin.text(f"/referrals/{referral_id}")
    assert "Reverse the conversion: mark lost" in page
    assert "Reason for reversing the conversion" in page
    refused = move(admin, referral_id, "lost", reason="  ")
    assert refused.status_code == 422
    assert "Say why the conversion is reversed." in refused.get_data(as_text=True)
    assert status_of(client, admin_headers, referral_id)["status"] == "converted"
    # Without the CSRF token nothing moves.
    forged = admin.client.post(f"/referrals/{referral_id}/status/lost",
                               data={"lost-reason": "Forged"})
    assert forged.status_code == 400
    done = move(admin, referral_id, "lost", reason="The client never signed")
    assert done.status_code == 302
    body = status_of(client, admin_headers, referral_id)
    assert body["status"] == "lost"
    assert body["history"][-1]["reason"] == "The client never signed"
    assert "The client never signed" in admin.text(f"/referrals/{referral_id}")

    # Head office's KPI page of this month lists the corrections of last month with the
    # reason, at every level; last month's page shows its frozen rows and no correction.
    kpi_page = admin.text(f"/kpi?month={THIS_MONTH}")
    assert "Corrections of closed months" in kpi_page
    assert "The client never signed" in kpi_page
    assert "converted made -1" in kpi_page and "converted received -1" in kpi_page
    assert "Alpha Machining" in kpi_page and "Beta Finishing" in kpi_page
    assert "Corrections of closed months" not in admin.text(f"/kpi?month={LAST_MONTH}")
    # A partner sees its own firm's correction on its dashboard, not the other firm's.
    alpha = partner.text("/dashboard")
    assert "The client never signed" in alpha and "converted made -1" in alpha
    assert "converted received" not in alpha
    gamma_user = _user_of(app, network.gamma)
    assert "Corrections of closed months" not in Portal(app.test_client(),
                                                        gamma_user).text("/dashboard")


def _user_of(app, organization_id: int) -> int:
    from tests.portal.conftest import add_user

    return add_user(app, "gamma@example.com", "partner", organization_id)
