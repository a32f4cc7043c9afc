"""The webhook events of organizations and closed months (SPEC section 12), written to the
outbox in the transaction of the change: one event per change, none for a refused or empty one.

Referral, visit and target events are tested with their use cases (test_referrals, test_reoffer,
test_visits, test_targets); every type's delivery and signature in tests/live/test_webhooks_live.
"""

from __future__ import annotations

from sqlalchemy import select

from models import OutboxEvent
from referral_service.db import session_scope
from tests.services.test_importing import CSV, run_import

BASE = "/api/v1/organizations"


def announced(app, type_: str) -> list[dict]:
    """Return the data of every `type_` event in the outbox, oldest first."""
    with session_scope(app, write=False) as session:
        return list(session.scalars(select(OutboxEvent.payload)
                                    .where(OutboxEvent.type == type_).order_by(OutboxEvent.id)))


def test_a_firm_created_changed_and_deactivated_is_announced_each_time(
        app, client, admin_headers, make_org):
    firm = make_org(name="Harbor Works")
    url = f"{BASE}/{firm['id']}"
    changed = client.patch(url, json={"capacity": 7, "description": "Five-axis work."},
                           headers=admin_headers)
    assert changed.status_code == 200, changed.get_json()
    same = client.patch(url, json={"capacity": 7}, headers=admin_headers)  # nothing changes
    assert same.status_code == 200
    assert client.delete(url, headers=admin_headers).status_code == 204
    after = client.get(url, headers=admin_headers)

    created, *later = announced(app, "organization.changed")
    assert (created["id"], created["version"], created["change"]) == (firm["id"], 1, "created")
    assert {"name", "kind", "skills", "offices", "capacity"} <= set(created["fields"])
    assert later == [
        {"id": firm["id"], "version": 2, "change": "updated",
         "fields": ["capacity", "description"]},
        {"id": firm["id"], "version": 3, "change": "deactivated", "fields": ["active"]},
    ]
    # The version in the event is the profile's: deactivating moves it and the ETag on.
    assert after.get_json()["version"] == 3
    assert after.headers["ETag"] != changed.headers["ETag"]


def test_a_refused_change_announces_nothing(app, client, admin_headers, make_org):
    firm, other = make_org(name="Harbor Works"), make_org(name="Blue Anodizing")
    before = announced(app, "organization.changed")
    url = f"{BASE}/{firm['id']}"
    stale = client.patch(url, json={"capacity": 3},
                         headers={**admin_headers, "If-Match": '"stale"'})
    taken = client.patch(url, json={"name": other["name"].upper()}, headers=admin_headers)
    assert (stale.status_code, taken.status_code) == (412, 409)
    assert announced(app, "organization.changed") == before


def test_an_import_announces_each_firm_it_creates_or_changes_and_no_other(
        app, tmp_path, session):
    assert run_import(app, tmp_path, "a.csv", CSV).exit_code == 0
    created = announced(app, "organization.changed")
    assert [(event["version"], event["change"]) for event in created] == [
        (1, "created"), (1, "created")]  # Harbor Works and Coords Co; 3 lines rejected
    again = run_import(app, tmp_path, "b.csv", CSV.replace("Machining,5", "Machining,6"))
    assert again.exit_code == 0, again.output
    assert announced(app, "organization.changed")[2:] == [
        {"id": created[0]["id"], "version": 2, "change": "updated", "fields": ["capacity"]}]


def test_closing_a_month_announces_it_once(app, client, admin_headers):
    closed = client.post("/api/v1/kpi/months/2026-03/close", json={}, headers=admin_headers)
    assert closed.status_code == 200, closed.get_json()
    again = client.post("/api/v1/kpi/months/2026-03/close", json={}, headers=admin_headers)
    assert again.status_code == 409
    assert announced(app, "month.closed") == [closed.get_json()]
    assert closed.get_json()["status"] == "closed"
