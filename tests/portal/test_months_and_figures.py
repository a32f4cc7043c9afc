"""The portal's months and figures come from the same rules and services as the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models import Referral, utcnow
from tests.portal.conftest import KAOHSIUNG, add_org, csrf_token

MONTH = utcnow().strftime("%Y-%m")


def test_a_month_the_api_refuses_is_refused_by_the_portal_too(client, admin_headers, admin):
    # 0001-01 has the YYYY-MM shape but lies outside the KPI's 1970-01..2999-12.
    assert client.get("/api/v1/kpi/monthly?month=0001-01",
                      headers=admin_headers).status_code == 422
    assert admin.get("/kpi/chart.png?month=0001-01").status_code == 404
    assert admin.get("/kpi/export?month=0001-01&format=csv").status_code == 404
    listed = admin.get("/referrals?month=0001-01")
    assert listed.status_code == 422
    assert "Use YYYY-MM." in listed.get_data(as_text=True)
    token = csrf_token(admin.text("/kpi"))
    saved = admin.client.post("/kpi/targets", data={"csrf_token": token, "month": "0001-01"})
    assert saved.status_code == 404
    shown = admin.get("/kpi?month=0001-01")
    assert shown.status_code == 302  # like any other malformed month: the current one
    assert "Give the month as YYYY-MM" in admin.text(shown.headers["Location"])


def test_the_kpi_page_is_paged_by_the_database_and_totals_every_firm(app, admin, network):
    from referral_service.db import session_scope
    from referral_service.services import kpi
    from referral_service.services.auth import SYSTEM

    firms = [add_org(app, f"Delta {number:02d} Works", KAOHSIUNG) for number in range(22)]
    with session_scope(app) as session:
        for firm in firms:
            kpi.set_target(session=session, organization_id=firm, month=MONTH,
                           new_clients=2, actor=SYSTEM)
    first = admin.text(f"/kpi?month={MONTH}")
    assert "Page 1 of 2 · 22 in all" in first
    assert "Delta 00 Works" in first and "Delta 21 Works" not in first
    second = admin.text(f"/kpi?month={MONTH}&page=2")
    assert "Delta 21 Works" in second and "Delta 00 Works" not in second
    for page in (first, second):  # the figures add up all 22 rows, not the page's
        assert '<dt>Targets</dt><dd class="big">44</dd>' in page


def test_the_kpi_page_links_no_month_outside_the_kpis_range(admin):
    page = admin.text("/kpi?month=1970-01")
    assert "1969-12" not in page and "1970-02 →" in page


def test_saving_the_kpi_table_sets_only_the_targets_that_changed(app, admin, network):
    from referral_service.db import session_scope
    from referral_service.services import kpi
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        for firm in (network.alpha, network.beta):
            kpi.set_target(session=session, organization_id=firm, month=MONTH,
                           new_clients=3, actor=SYSTEM)
    page = admin.text(f"/kpi?month={MONTH}")
    data = {"csrf_token": csrf_token(page), "month": MONTH,
            "targets-0-organization_id": str(network.alpha), "targets-0-new_clients": "3",
            "targets-1-organization_id": str(network.beta), "targets-1-new_clients": "7",
            # A firm without a row this month is not set from the table.
            "targets-2-organization_id": str(network.gamma), "targets-2-new_clients": "9"}
    response = admin.client.post("/kpi/targets", data=data)
    assert response.status_code == 302
    assert "1 target saved" in admin.text(response.headers["Location"])
    with session_scope(app, write=False) as session:
        rows = kpi.monthly_kpi(session=session, month=MONTH, actor=SYSTEM)
    assert {row["organization_id"]: row["target"] for row in rows} == {
        network.alpha: 3, network.beta: 7}


def test_recent_outcomes_are_the_newest_closed_referrals_of_the_callers_firm(
        app, network, refer_to):
    from referral_service.db import session_scope
    from referral_service.services import dashboard
    from referral_service.services.auth import SYSTEM, Principal

    ids = [refer_to(network.beta, network.alpha, client=f"Client {n}") for n in range(6)]
    others = refer_to(network.beta, network.gamma, client="Not Alpha's")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Closed in an order unlike their ids; the last one of Alpha's stays open.
    closed = {ids[0]: ("lost", 5), ids[1]: ("converted", 1), ids[2]: ("declined", 4),
              ids[3]: ("withdrawn", 2), ids[4]: ("expired", 3), others: ("lost", 9)}
    with session_scope(app) as session:
        for referral_id, (status, day) in closed.items():
            referral = session.get(Referral, referral_id)
            referral.status, referral.updated_at = status, start + timedelta(days=day)
        session.commit()
    alpha = Principal(name="alpha", role="partner", organization_id=network.alpha)
    with session_scope(app, write=False) as session:
        found = dashboard.recent_outcomes(session=session, actor=alpha, count=4)
        network_wide = dashboard.recent_outcomes(session=session, actor=SYSTEM, count=2)
    assert [r.id for r in found] == [ids[0], ids[2], ids[4], ids[3]]
    assert [r.id for r in network_wide] == [others, ids[0]]


def test_kpi_summary_adds_up_the_rows_the_caller_may_see(app, network, refer_to):
    from referral_service.db import session_scope
    from referral_service.services import dashboard, kpi
    from referral_service.services.auth import SYSTEM, Principal

    refer_to(network.alpha, network.beta)
    refer_to(network.gamma, network.beta, client="Other Co")
    with session_scope(app) as session:
        kpi.set_target(session=session, organization_id=network.beta, month=MONTH,
                       new_clients=4, actor=SYSTEM)
    alpha = Principal(name="alpha", role="partner", organization_id=network.alpha)
    with session_scope(app, write=False) as session:
        everyone = dashboard.kpi_summary(session=session, month=MONTH, actor=SYSTEM)
        own = dashboard.kpi_summary(session=session, month=MONTH, actor=alpha)
        beta = dashboard.kpi_summary(session=session, month=MONTH, actor=SYSTEM,
                                     organization_id=network.beta)
    assert (everyone["organizations"], everyone["referrals_made"],
            everyone["referrals_received"], everyone["target"]) == (3, 2, 2, 4)
    assert (own["organizations"], own["referrals_made"], own["target"],
            own["attainment"]) == (1, 1, None, None)
    assert (beta["referrals_received"], beta["target"], beta["attainment"]) == (2, 4, 0.0)
