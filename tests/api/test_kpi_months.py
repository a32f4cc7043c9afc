"""Closed months (SPEC section 10): POST /kpi/months/{month}/close, GET /kpi/months, and a
closed month's KPI served as stored at close, byte-identical for ever."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models import KpiTarget, Organization, Referral
from referral_service.services import kpi, months
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict
from tests.services.test_kpi_levels import MARCH, at, build

API = "/api/v1/kpi"
ADMIN = Principal(name="head office", role="admin")


@pytest.fixture
def world(app):
    """March 2026: firm A (Sales, head Ann; Cy) and firm B (Dee), with visits, a won lead, an
    accepted and a converted referral, and agreed targets."""
    from referral_service.db import new_session

    session = new_session(app)
    try:
        return build(session, {
            "orgs": 2,
            "departments": [{"org": 0, "parent": None, "head": 0}],
            "people": [{"org": 0, "department": 0, "manager": None},
                       {"org": 0, "department": 0, "manager": 0},
                       {"org": 1, "department": None, "manager": None}],
            "visits": [{"person": 1, "at": at(2), "kind": "commitment"},
                       {"person": 2, "at": at(3), "kind": "empty"}],
            "leads": [{"person": 1, "at": at(2), "status": "won", "later": 3, "receiver": 0}],
            "referrals": [
                {"referrer": 0, "receiver": 1, "status": "accepted", "at": at(4),
                 "accepted_after": 1, "closed_after": 1, "by": 1, "owner": 0},
                {"referrer": 1, "receiver": 1, "status": "converted", "at": at(5),
                 "accepted_after": 1, "closed_after": 2, "by": 0, "owner": 1},
            ],
            "targets": {(("organization", 0), MARCH): 5, (("department", 0), MARCH): 2},
            "proposals": {},
        })
    finally:
        session.close()


def close(client, headers, month: str):
    """POST /kpi/months/{month}/close."""
    return client.post(f"{API}/months/{month}/close", headers=headers, json={})


def hashes(client, headers) -> dict[tuple[str, str], str]:
    """The SHA-256 of March's export at every level and in every format."""
    found = {}
    for level in kpi.LEVELS:
        for fmt in kpi.FORMATS:
            response = client.get(f"{API}/monthly?month={MARCH}&level={level}&format={fmt}",
                                  headers=headers)
            assert response.status_code == 200, (level, fmt)
            found[level, fmt] = hashlib.sha256(response.get_data()).hexdigest()
    return found


def test_a_closed_months_exports_stay_byte_identical_after_later_changes(
        app, client, admin_headers, world):
    before = hashes(client, admin_headers)
    closed = close(client, admin_headers, MARCH)
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["status"] == "closed"
    assert hashes(client, admin_headers) == before  # closing changes nothing of what it shows
    first = world["organization"][0]
    renamed = client.patch(f"/api/v1/organizations/{first}", headers=admin_headers,
                           json={"name": "Renamed After Closing"})
    assert renamed.status_code == 200, renamed.get_json()
    with app.extensions["db_engine"].begin() as connection:
        # A late conversion dated in March, an expiry, and a target rewritten behind the API.
        connection.execute(update(Referral).where(Referral.status == "accepted").values(
            status="converted", converted_at=at(20)))
        connection.execute(update(Referral).where(Referral.status == "converted",
                                                  Referral.converted_at == at(8)).values(
            status="expired"))
        connection.execute(update(KpiTarget).where(KpiTarget.month == MARCH).values(
            new_clients=99))
    assert client.put(f"{API}/targets/{first}/{MARCH}", json={"new_clients": 1},
                      headers=admin_headers).status_code == 409
    assert hashes(client, admin_headers) == before
    organization_rows = client.get(f"{API}/monthly?month={MARCH}",
                                   headers=admin_headers).get_json()["rows"]
    with app.extensions["db_engine"].connect() as connection:
        others = set(connection.execute(
            select(Organization.name).where(Organization.id != first)).scalars())
    assert {row["organization_name"] for row in organization_rows} >= others
    assert "Renamed After Closing" not in str(organization_rows)


def test_a_closed_month_is_recomputed_no_more_but_an_open_one_is(app, client, admin_headers,
                                                                 world):
    assert close(client, admin_headers, MARCH).status_code == 200
    with app.extensions["db_engine"].begin() as connection:
        connection.execute(update(Referral).where(Referral.status == "accepted").values(
            status="converted", converted_at=at(20)))
    frozen = client.get(f"{API}/monthly?month={MARCH}", headers=admin_headers).get_json()
    from referral_service.db import new_session

    session = new_session(app, write=False)
    try:
        statement, params = kpi.level_query("organization", MARCH)
        live = sum(row.new_client_credits for row in session.execute(statement, params))
    finally:
        session.close()
    assert sum(row["new_client_credits"] for row in frozen["rows"]) == live - 2


def test_a_partner_gets_its_own_rows_of_a_closed_month(client, admin_headers, make_key, world):
    assert close(client, admin_headers, MARCH).status_code == 200
    mine = world["organization"][1]
    partner = make_key("partner", mine)
    for level in kpi.LEVELS:
        rows = client.get(f"{API}/monthly?month={MARCH}&level={level}",
                          headers=partner).get_json()["rows"]
        assert {row["organization_id"] for row in rows} == (
            set() if level == "department" else {mine})  # firm B has no department
    other = world["organization"][0]
    assert client.get(f"{API}/monthly?month={MARCH}&organization_id={other}",
                      headers=partner).status_code == 404
    paged = client.get(f"{API}/monthly?month={MARCH}&level=person&organization_id={other}",
                       headers=admin_headers).get_json()["rows"]
    assert {row["organization_id"] for row in paged} == {other}


def test_only_head_office_closes_and_only_once(client, admin_headers, make_key, world):
    for role, organization in (("partner", world["organization"][0]), ("crm", None)):
        refused = client.post(f"{API}/months/{MARCH}/close", json={},
                              headers=make_key(role, organization))
        assert refused.status_code == 403, role
    assert close(client, admin_headers, MARCH).status_code == 200
    again = close(client, admin_headers, MARCH)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"


def test_a_month_not_over_does_not_close(client, admin_headers):
    now = datetime.now(UTC)
    current = now.strftime("%Y-%m")
    following = (now.replace(day=28) + timedelta(days=5)).strftime("%Y-%m")
    assert client.post(f"{API}/months/{following}/close", json={},
                       headers=admin_headers).status_code == 409
    answer = close(client, admin_headers, current)
    last_day = (now + timedelta(days=1)).month != now.month
    assert answer.status_code == (200 if last_day else 409)
    assert close(client, admin_headers, "2026-13").status_code == 422


def test_the_current_month_closes_on_its_last_day(app):
    from referral_service.db import new_session

    session = new_session(app)
    try:
        with pytest.raises(Conflict):
            months.close(session=session, month="2026-04", actor=ADMIN,
                         now=datetime(2026, 4, 29, 23, 59, tzinfo=UTC))
        closed = months.close(session=session, month="2026-04", actor=ADMIN,
                              now=datetime(2026, 4, 30, 0, 1, tzinfo=UTC))
        assert closed.status == "closed"
    finally:
        session.close()


def test_the_months_list_shows_open_and_closed(client, admin_headers, make_key, world):
    assert close(client, admin_headers, "2026-01").status_code == 200
    listed = client.get(f"{API}/months", headers=admin_headers)
    assert listed.status_code == 200
    items = {item["month"]: item for item in listed.get_json()["items"]}
    assert items[MARCH]["status"] == "open"
    assert items["2026-01"]["status"] == "closed"
    assert items["2026-01"]["closed_by"]
    assert list(items) == sorted(items, reverse=True)
    # A firm with no activity sees only the closed months, none of another firm's.
    lonely = client.post("/api/v1/organizations", headers=admin_headers, json={
        "name": "Lonely Works", "kind": "partner", "capacity": None,
        "offices": [{"label": "HQ", "latitude": 22.6, "longitude": 120.3}]})
    assert lonely.status_code == 201, lonely.get_json()
    partner = make_key("partner", lonely.get_json()["id"])
    seen = client.get(f"{API}/months", headers=partner).get_json()["items"]
    assert [item["month"] for item in seen] == ["2026-01"]


@pytest.mark.parametrize("month_is_closed", [False, True])
def test_targets_of_a_closed_month_cannot_change(client, admin_headers, world,
                                                 month_is_closed):
    if month_is_closed:
        assert client.post(f"{API}/months/{MARCH}/close", json={},
                           headers=admin_headers).status_code == 200
    firm = world["organization"][0]
    answer = client.put(f"{API}/targets/{firm}/{MARCH}", json={"new_clients": 3},
                        headers=admin_headers)
    assert answer.status_code == (409 if month_is_closed else 200)


def test_proposals_of_a_closed_month_are_neither_made_countered_nor_agreed(
        client, admin_headers, make_key, world):
    proposals = f"{API}/target-proposals"
    firm = world["organization"][0]
    partner = make_key("partner", firm)
    opened = client.post(proposals, headers=partner, json={
        "scope": "organization", "scope_id": firm, "month": MARCH, "new_clients": 4,
        "note": ""})
    assert opened.status_code == 201, opened.get_json()
    assert close(client, admin_headers, MARCH).status_code == 200
    proposal = opened.get_json()["id"]
    assert client.post(f"{proposals}/{proposal}/agree", headers=admin_headers,
                       json={}).status_code == 409
    assert client.post(f"{proposals}/{proposal}/counter", headers=admin_headers,
                       json={"new_clients": 2}).status_code == 409
    assert client.post(proposals, headers=admin_headers, json={
        "scope": "organization", "scope_id": world["organization"][1], "month": MARCH,
        "new_clients": 4}).status_code == 409
    # Withdrawing one's own open proposal changes no target: still allowed.
    assert client.post(f"{proposals}/{proposal}/withdraw", headers=partner,
                       json={}).status_code == 200
