"""seed-demo makes every portal page look alive on first start."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Department, KpiTarget, Lead, Person, Referral, User, Visit, utcnow
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


@pytest.mark.slow
def test_demo_has_a_sales_force_with_visits_leads_and_every_referral_source(
        app, session, demo):
    lead_states = set(session.scalars(select(Lead.status).distinct()))
    assert lead_states == {"open", "won", "lost", "referred"}
    sources = set(session.scalars(select(Referral.source_kind).distinct()))
    assert sources == {"organization", "client", "acquaintance", "visit"}
    empty = session.scalars(select(Visit).where(Visit.empty_handed)).all()
    assert empty and all(visit.empty_handed_reason for visit in empty)
    assert session.scalar(select(func.count()).select_from(Visit).where(
        Visit.commitment_description.is_not(None))) > 0
    visited = {at.strftime("%Y-%m") for at in session.scalars(select(Visit.visited_at))}
    assert set(_months_back(4)) <= visited
    # Every referred lead is held by the referral whose source it is.
    for lead in session.scalars(select(Lead).where(Lead.status == "referred")):
        referral = session.get(Referral, lead.referral_id)
        assert (referral.source_kind, referral.source_lead_id) == ("visit", lead.id)
    assert session.scalar(select(func.count()).select_from(Referral).where(
        Referral.referred_by_person_id.is_(None))) == 0
    assert session.scalar(select(func.count()).select_from(Referral).where(
        Referral.status.in_(("accepted", "converted", "lost")),
        Referral.owner_person_id.is_(None))) == 0
    # Departments: Sales over North and South, each with its head.
    partner = session.scalar(select(User).where(User.email == demo.partner_email))
    person = session.get(Person, partner.person_id)
    assert person.organization_id == partner.organization_id
    departments = {d.name: d for d in session.scalars(select(Department).where(
        Department.organization_id == partner.organization_id))}
    assert set(departments) == {"Sales", "North", "South"}
    assert departments["North"].parent_id == departments["South"].parent_id == \
        departments["Sales"].id
    assert all(d.head_person_id is not None for d in departments.values())
    # The demo partner is a sales manager whose salespeople log visits.
    reports = set(session.scalars(select(Person.id).where(Person.manager_id == person.id)))
    assert reports
    assert session.scalar(select(func.count()).select_from(Visit).where(
        Visit.person_id.in_(reports))) > 0
    others = session.scalars(select(User).where(User.email.in_(demo.other_partner_emails)))
    assert all(user.person_id is not None for user in others)
