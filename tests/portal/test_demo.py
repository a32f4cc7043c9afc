"""seed-demo makes every portal page look alive on first start."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import KpiTarget, Referral, User, utcnow
from tests.portal.conftest import Portal


@pytest.fixture
def demo(app):
    from referral_service import demo as demo_data
    from referral_service.db import session_scope

    with session_scope(app) as session:
        result = demo_data.seed(session=session, geocoder=app.extensions["geocoder"])
    return result


def _months_back(count: int) -> list[str]:
    now = utcnow()
    index = now.year * 12 + now.month - 1
    return [f"{(index - n) // 12:04d}-{(index - n) % 12 + 1:02d}" for n in range(count)]


@pytest.mark.slow
def test_demo_data_fills_every_page(app, session, demo):
    statuses = dict(session.execute(
        select(Referral.status, func.count()).group_by(Referral.status)).all())
    assert set(statuses) == {"pending", "accepted", "declined", "withdrawn", "expired",
                             "converted", "lost"}
    assert demo.referrals == sum(statuses.values())
    created = {at.strftime("%Y-%m") for at in session.scalars(select(Referral.created_at))}
    assert set(_months_back(4)) <= created
    target_months = set(session.scalars(select(KpiTarget.month)))
    assert set(_months_back(2)) <= target_months
    assert len(demo.other_partner_emails) >= 3
    users = {u.email: u for u in session.scalars(select(User))}
    partner = Portal(app.test_client(), users[demo.partner_email].id)
    admin = Portal(app.test_client(), users[demo.admin_email].id)

    dashboard = partner.text("/dashboard")
    assert "pending" in dashboard and "accepted" in dashboard and "won" in dashboard
    for path in ("/referrals", "/profile", "/refer", "/kpi/history.png"):
        assert partner.get(path, follow_redirects=True).status_code == 200, path
    for path in ("/dashboard", "/referrals", "/organizations", "/match", "/kpi",
                 "/kpi/chart.png", "/kpi/export?format=xlsx"):
        assert admin.get(path).status_code == 200, path
    kpi = admin.text("/kpi")
    assert "%" in kpi and "Page 1 of" in kpi or "in all" in kpi
