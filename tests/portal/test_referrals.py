"""The partner's referral pages: dashboard, list, detail and the lifecycle moves."""

from __future__ import annotations

import re

from tests.portal.conftest import csrf_token


def move(portal, referral_id: int, status: str, reason: str = "", version: str | None = None,
         confirm: bool = True):
    """Make a move as the page's form does; a final move confirmed (its second step)."""
    page = portal.text(f"/referrals/{referral_id}")
    if version is None:
        found = re.search(rf'id="{status}-version" name="{status}-version" type="hidden" '
                          r'value="(\d+)"', page)
        version = found.group(1) if found else ""
    data = {f"{status}-reason": reason, f"{status}-version": version,
            "csrf_token": csrf_token(page)}
    if confirm:
        data.update({f"{status}-confirming": "1", f"{status}-confirm": "y"})
    response = portal.client.post(f"/referrals/{referral_id}/status/{status}", data=data)
    response.close()
    return response


def status_of(client, headers, referral_id: int) -> dict:
    return client.get(f"/api/v1/referrals/{referral_id}", headers=headers).get_json()


def test_the_dashboard_shows_what_waits_for_the_firm(partner, network, refer_to):
    waiting = refer_to(network.beta, network.alpha, client="Waiting Client Ltd")
    refer_to(network.beta, network.gamma, client="Someone Elses Client")
    page = partner.text("/dashboard")
    # Named once Alpha accepts (need to know: test_need_to_know_pages).
    assert "Waiting Client Ltd" not in page and "Client named once you accept" in page
    assert f"/referrals/{waiting}" in page
    assert "Beta Finishing → Alpha Machining" in page
    assert "Someone Elses Client" not in page
    assert "This month&#39;s KPI" in page or "This month's KPI" in page


def test_accepting_then_winning_a_referral(partner, network, refer_to, client, admin_headers):
    referral = refer_to(network.beta, network.alpha)
    page = partner.text(f"/referrals/{referral}")
    assert ">Accept</button>" in page and ">Decline</button>" in page
    assert "Mark won" not in page
    response = move(partner, referral, "accepted")
    assert response.status_code == 302
    page = partner.text(f"/referrals/{referral}")
    assert f"Referral #{referral} accepted." in page
    assert "Mark won" in page and "Mark lost" in page
    move(partner, referral, "converted")
    body = status_of(client, admin_headers, referral)
    assert body["status"] == "converted"
    assert [step["status"] for step in body["history"]] == ["pending", "accepted", "converted"]
    assert "user:alpha@example.com" in [step["actor"] for step in body["history"]]


def test_declining_needs_a_reason_which_the_history_keeps(partner, network, refer_to, client,
                                                          admin_headers):
    referral = refer_to(network.beta, network.alpha)
    response = move(partner, referral, "declined", reason="   ")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Say why you decline it." in page
    assert status_of(client, admin_headers, referral)["status"] == "pending"
    move(partner, referral, "declined", reason="No capacity until March")
    body = status_of(client, admin_headers, referral)
    assert body["status"] == "declined"
    assert body["history"][-1]["reason"] == "No capacity until March"
    assert "No capacity until March" in partner.text(f"/referrals/{referral}")


def test_the_referrer_may_only_withdraw(network, refer_to, app):
    from tests.portal.conftest import Portal

    referral = refer_to(network.alpha, network.beta)
    portal = Portal(app.test_client(), network.partner_user)
    page = portal.text(f"/referrals/{referral}")
    assert ">Withdraw</button>" in page and ">Accept</button>" not in page
    response = move(portal, referral, "accepted", version="")
    assert response.status_code == 302
    assert "may not move a referral" in portal.text(f"/referrals/{referral}")


def test_a_move_the_lifecycle_forbids_is_explained(partner, network, refer_to):
    referral = refer_to(network.beta, network.alpha)
    move(partner, referral, "accepted")
    response = move(partner, referral, "declined", reason="Too late", version="")
    assert response.status_code == 302
    page = partner.text(f"/referrals/{referral}")
    assert "cannot become declined" in page


def test_a_referral_changed_meanwhile_is_not_moved(partner, network, refer_to, client,
                                                   admin_headers):
    referral = refer_to(network.beta, network.alpha)
    stale = move(partner, referral, "accepted", version="999")
    assert stale.status_code == 302
    assert "changed this referral while you were looking" in partner.text(
        f"/referrals/{referral}")
    assert status_of(client, admin_headers, referral)["status"] == "pending"


def test_another_firms_referral_is_not_found(partner, network, refer_to):
    other = refer_to(network.beta, network.gamma)
    response = partner.get(f"/referrals/{other}")
    assert response.status_code == 404
    assert "text/html" in response.content_type
    assert "Acme" not in response.get_data(as_text=True)
    moved = partner.post(f"/referrals/{other}/status/accepted", {}, token_from="/dashboard")
    assert moved.status_code == 404


def test_an_unknown_move_or_huge_id_is_not_found(partner):
    assert partner.get("/referrals/99999999999999").status_code == 404
    response = partner.post("/referrals/1/status/teleported", {}, token_from="/dashboard")
    assert response.status_code == 404


def test_the_referral_list_filters_and_pages(partner, network, refer_to):
    for number in range(23):
        refer_to(network.beta, network.alpha, client=f"Client {number:02d} GmbH")
    refer_to(network.alpha, network.gamma, client="Sent By Alpha Inc")
    first = partner.text("/referrals")
    assert "Page 1 of 2" in first and "24 in all" in first
    # Received and not accepted: unnamed (need to know); sent by Alpha: named, and newest.
    assert "Sent By Alpha Inc" in first and "Client 22 GmbH" not in first
    second = partner.text("/referrals?page=2")
    assert "Client named once you accept" in second
    sent = partner.text("/referrals?role=referrer")
    assert "Sent By Alpha Inc" in sent and "Client named once you accept" not in sent
    bad = partner.get("/referrals?month=2026-13")
    assert bad.status_code == 422
    assert "Use YYYY-MM." in bad.get_data(as_text=True)


def test_head_office_sees_and_moves_any_referral(admin, network, refer_to):
    referral = refer_to(network.beta, network.gamma)
    assert "Beta Finishing → Gamma Plastics" in admin.text("/referrals")
    assert move(admin, referral, "accepted").status_code == 302
    assert "accepted" in admin.text(f"/referrals?organization_id={network.gamma}")


def test_a_final_move_asks_for_a_confirmation_first(partner, network, refer_to, client,
                                                     admin_headers):
    """Issue 16: won, lost and decline are final but asked nothing."""
    referral = refer_to(network.beta, network.alpha)
    first = move(partner, referral, "declined", reason="Fully booked", confirm=False)
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "Confirm: mark it declined?" in page and "Yes, mark it declined" in page
    assert "Fully booked" in page  # the reason typed is kept for the second step
    assert ">Accept</button>" not in page  # only the move being confirmed
    assert status_of(client, admin_headers, referral)["status"] == "pending"
    unticked = partner.client.post(f"/referrals/{referral}/status/declined", data={
        "declined-reason": "Fully booked", "declined-confirming": "1",
        "csrf_token": csrf_token(page)})
    assert unticked.status_code == 422
    assert "Tick the box to confirm." in unticked.get_data(as_text=True)
    assert status_of(client, admin_headers, referral)["status"] == "pending"
    done = move(partner, referral, "declined", reason="Fully booked")
    assert done.status_code == 302
    assert status_of(client, admin_headers, referral)["status"] == "declined"
    # Accepting can be undone in effect (won or lost later): no confirmation step.
    other = refer_to(network.beta, network.alpha, client="Quick Accept Ltd")
    assert move(partner, other, "accepted", confirm=False).status_code == 302
