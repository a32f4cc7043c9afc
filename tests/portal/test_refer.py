"""Refer a client: describe the need, pick a receiver from the ranked list, record it."""

from __future__ import annotations

import re

from tests.portal.conftest import NEAR_TAINAN, add_org, csrf_token

NEED = {"client_name": "Kaohsiung Bikes Ltd", "client_ref": "", "skills": "Anodizing",
        "description": "Hard anodising of aluminium bicycle frames", "city": "Tainan",
        "country": "TW", "address": "", "latitude": "", "longitude": "", "note": "Urgent"}


def find(portal, **changes):
    page = portal.text("/refer")
    data = {**NEED, **changes, "find": "1", "csrf_token": csrf_token(page)}
    response = portal.client.post("/refer", data=data)
    response.close()
    return response


def record(portal, page: str, receiver: int | str, **changes):
    data = {**NEED, **changes, "record": "1", "receiver": str(receiver),
            "csrf_token": csrf_token(page)}
    response = portal.client.post("/refer", data=data)
    response.close()
    return response


def test_refer_a_client_through_the_ranked_list(partner, network, client, admin_headers):
    found = find(partner)
    page = found.get_data(as_text=True)
    assert found.status_code == 200
    assert "Pick the receiving firm" in page
    # Beta has the skill and is in Tainan: first, with why.
    ranked = re.findall(r'name="receiver" value="(\d+)"', page)
    assert ranked[0] == str(network.beta)
    assert str(network.alpha) not in ranked  # never the referrer itself
    assert "Has anodizing." in page
    assert "km away" in page
    assert 'value="Kaohsiung Bikes Ltd"' in page
    response = record(partner, page, network.beta)
    assert response.status_code == 302
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert body["referrer_organization_id"] == network.alpha
    assert body["receiver_organization_id"] == network.beta
    assert body["client"]["name"] == "Kaohsiung Bikes Ltd"
    assert body["skills"] == ["anodizing"]
    assert body["note"] == "Urgent"
    assert 0 < body["match_score"] <= 1
    assert "was referred to Beta Finishing" in partner.text(f"/referrals/{referral_id}")


def test_the_receiver_must_come_from_the_list(partner, network):
    page = find(partner).get_data(as_text=True)
    response = record(partner, page, 999)
    assert response.status_code == 422
    assert "Pick one of the firms listed below." in response.get_data(as_text=True)
    response = record(partner, page, network.alpha)
    assert response.status_code == 422


def test_a_client_already_referred_is_refused_with_the_existing_referral(
        partner, network, refer_to):
    existing = refer_to(network.gamma, network.beta, client="Kaohsiung Bikes Co.")
    page = find(partner).get_data(as_text=True)
    response = record(partner, page, network.beta)
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"referral #{existing}" in text
    assert 'value="Kaohsiung Bikes Ltd"' in text
    assert "Kaohsiung Bikes Co." not in text  # the holder's spelling is not Alpha's to learn


def test_a_client_another_firm_registered_shows_as_the_partner_named_it(
        app, partner, network, client, admin_headers):
    """Issue 11, row 1: naming a free CRM id of another firm's client shows the partner its
    own name for it, never the stored name or place."""
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        held = referrals.record_referral(
            session=session, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            attribution_window_days=365, data={
                "referrer_organization_id": network.gamma,
                "receiver_organization_id": network.beta, "skills": [], "description": "",
                "note": "", "client": {"name": "Stored Secret Name", "external_ref": "CRM-77",
                                       "location": {"city": "Taichung", "country": "TW",
                                                    "address": "9 Secret Road"}}}).id
    client.patch(f"/api/v1/referrals/{held}", json={"status": "declined"},
                 headers=admin_headers)
    page = find(partner, client_ref="crm-77").get_data(as_text=True)
    response = record(partner, page, network.beta, client_ref="crm-77")
    assert response.status_code == 302
    shown = partner.text(response.headers["Location"])
    assert "Kaohsiung Bikes Ltd" in shown
    for secret in ("Stored Secret Name", "9 Secret Road", "Taichung", "CRM-77"):
        assert secret not in shown
    listing = partner.text("/referrals")
    assert "Kaohsiung Bikes Ltd" in listing and "Stored Secret Name" not in listing


def test_an_unknown_place_is_shown_beside_the_city(partner):
    response = find(partner, city="Nowhereville-on-Sea")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="city-error"' in page
    assert 'value="Nowhereville-on-Sea"' in page
    assert 'value="Kaohsiung Bikes Ltd"' in page


def test_a_need_and_a_place_are_required(partner):
    no_place = find(partner, city="")
    assert no_place.status_code == 422
    assert ("Give coordinates, or a city (with country), or an address."
            in no_place.get_data(as_text=True))
    no_need = find(partner, skills="", description="")
    assert no_need.status_code == 422
    assert "Give skills or a description of the need." in no_need.get_data(as_text=True)


def test_head_office_refers_on_behalf_of_a_firm(admin, network, client, admin_headers):
    response = find(admin, referrer="Gamma")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert str(network.gamma) not in re.findall(r'name="receiver" value="(\d+)"', page)
    done = record(admin, page, network.beta, referrer="Gamma")
    referral_id = int(done.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert body["referrer_organization_id"] == network.gamma
    unknown = find(admin, referrer="Nobody at all")
    assert unknown.status_code == 422
    assert "No firm&#39;s name contains" in unknown.get_data(as_text=True)


def test_a_client_whose_referral_went_nowhere_is_referred_on_without_retyping(
        app, partner, network, refer_to, client, admin_headers):
    """Issue 16: the receiver retyped the client to refer it on."""
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    lost = refer_to(network.beta, network.alpha, client="Onward Frames Ltd")
    never_accepted = refer_to(network.beta, network.alpha, client="Unseen Frames Ltd",
                              auto_reoffer=False)
    with session_scope(app) as session:
        for referral_id, moves in ((lost, ("accepted", "lost")),
                                   (never_accepted, ("declined",))):
            for status in moves:
                referrals.move_referral(session=session, referral_id=referral_id,
                                        status=status, reason="Not for us", actor=SYSTEM)
    page = partner.text(f"/referrals/{lost}")
    assert "Refer this client to another firm" in page
    form = partner.text(f"/refer?from_referral={lost}")
    assert 'value="Onward Frames Ltd"' in form
    assert "Anodised aluminium housings" in form and "anodizing</textarea>" in form
    # Alpha never knew who the declined one was: no link, nothing of the client filled in.
    assert "Refer this client to another firm" not in partner.text(f"/referrals/{never_accepted}")
    assert "Unseen Frames" not in partner.text(f"/refer?from_referral={never_accepted}")
    # Sent on as typed for it: the lost referral no longer holds the client.
    found = partner.client.post("/refer", data={
        **NEED, "client_name": "Onward Frames Ltd", "find": "1",
        "csrf_token": csrf_token(form)})
    result = found.get_data(as_text=True)
    ranked = re.findall(r'name="receiver" value="(\d+)"', result)
    response = record(partner, result, ranked[0], client_name="Onward Frames Ltd")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{new_id}", headers=admin_headers).get_json()
    assert (body["referrer_organization_id"], body["client"]["name"]) == (
        network.alpha, "Onward Frames Ltd")


def test_a_partner_opens_a_candidate_firms_profile_from_the_match_list(app, partner, network):
    """Issue 16: the match list could not open a candidate's profile."""
    page = find(partner).get_data(as_text=True)
    assert f'href="/firms/{network.beta}"' in page
    profile = partner.text(f"/firms/{network.beta}")
    assert "Beta Finishing" in profile
    assert "Hard anodising and powder coating of aluminium parts." in profile
    assert "anodizing, powder-coating" in profile
    assert "serves 100 km around" in profile
    # Its own pages stay its own: no referrals, figures or editing.
    main = profile.split("<main")[1].split("</main>")[0]
    assert "Referrals of this firm" not in main and "<form" not in main
    assert partner.get(f"/organizations/{network.beta}").status_code == 404
    from models import Organization
    from referral_service.db import session_scope

    with session_scope(app) as session:
        session.get(Organization, network.gamma).active = False
        session.commit()
    assert partner.get(f"/firms/{network.gamma}").status_code == 404


def test_a_partner_prefers_or_keeps_to_firms_of_its_own_group(app, partner, network):
    from referral_service.db import session_scope
    from referral_service.services import organizations
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        organizations.update(session=session, organization_id=network.alpha,
                             data={"group": "Formosa Group"}, actor=SYSTEM,
                             geocoder=app.extensions["geocoder"])
    sister = add_org(app, "Delta Anodizing", NEAR_TAINAN, skills=["Anodizing"],
                     description="Hard anodising and powder coating of aluminium parts.",
                     group="Formosa Group")

    def ranked(**changes) -> list[str]:
        response = find(partner, **changes)
        assert response.status_code == 200, response.get_data(as_text=True)[:2000]
        return re.findall(r'name="receiver" value="(\d+)"', response.get_data(as_text=True))

    assert ranked()[0] == str(network.beta)  # Beta is in Tainan, Delta a little farther
    assert ranked(prefer_group="y")[0] == str(sister)
    assert ranked(same_group_only="y") == [str(sister)]
