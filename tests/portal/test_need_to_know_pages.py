"""Need to know in the portal (SPEC section 11): a receiver's pages name the client only once
it has accepted; the referrer's always do."""

from __future__ import annotations

from tests.portal.conftest import Portal

SECRET = "Secret Harbour Bikes"


def test_a_receiver_sees_who_the_client_is_only_after_accepting(app, partner, network,
                                                                 refer_to):
    referral = refer_to(network.beta, network.alpha, client=SECRET)
    for path in ("/dashboard", "/referrals", f"/referrals/{referral}",
                 "/referrals?client=secret", "/referrals?sort=client"):
        page = partner.text(path)
        assert SECRET not in page, path
    detail = partner.text(f"/referrals/{referral}")
    assert "Client named once you accept" in detail
    assert "Anodised aluminium housings" in detail  # the need is shown
    assert "No referral matches" in partner.text("/referrals?client=secret")
    # The referrer always sees the client.
    beta = Portal(app.test_client(), network.beta_user)
    assert SECRET in beta.text(f"/referrals/{referral}")
    accepted = partner.post(f"/referrals/{referral}/status/accepted", {},
                            token_from="/dashboard")
    assert accepted.status_code == 302
    assert SECRET in partner.text(f"/referrals/{referral}")
    assert SECRET in partner.text("/referrals?client=secret")
