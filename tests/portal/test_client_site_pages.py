"""Client sites in the portal (SPEC section 8): picked on the refer form, shown on the referral."""

from __future__ import annotations

import re

from tests.portal.conftest import record_referral
from tests.portal.test_refer import NEED, find, record


def _sites(app, client_name: str, organization_id: int) -> dict[str, int]:
    """Record a Taichung works and a Tainan warehouse of the client, for one firm."""
    from referral_service.db import session_scope
    from referral_service.services import client_sites, clients
    from referral_service.services.auth import SYSTEM

    ids = {}
    with session_scope(app) as session:
        client = clients.find(session=session, name=client_name, external_ref=None)
    for label, location in (
            ("Taichung works", {"city": "Taichung", "country": "TW",
                                "address": "12 Gongye Rd, Taichung"}),
            ("Tainan warehouse", {"latitude": 22.99, "longitude": 120.21, "city": "Tainan",
                                  "country": "TW"})):
        with session_scope(app) as session:
            ids[label] = client_sites.add(
                session=session, client_id=client.id, actor=SYSTEM,
                geocoder=app.extensions["geocoder"],
                data={"label": label, "location": location, "organization_id": organization_id}
            ).id
    return ids


def test_a_partner_picks_one_of_the_clients_sites_and_the_referral_shows_it(
    app, partner, network, client, admin_headers
):
    earlier = record_referral(app, network.alpha, network.gamma, client=NEED["client_name"])
    client.patch(f"/api/v1/referrals/{earlier}", headers=admin_headers,
                 json={"status": "withdrawn"})
    sites = _sites(app, NEED["client_name"], network.alpha)
    _sites(app, NEED["client_name"], network.beta)  # Beta's own: never offered to Alpha

    page = find(partner).get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="(\d+)"[^>]*>([^<]*)</option>', page)
    assert [text for _value, text in offered] == [
        "None: the place given above", "Taichung works, Taichung, TW",
        "Tainan warehouse, Tainan, TW"]
    assert {int(value) for value, _text in offered} == {0, *sites.values()}

    site = sites["Taichung works"]
    again = find(partner, client_site=str(site), city="", country="")
    assert again.status_code == 200
    page = again.get_data(as_text=True)
    ranked = re.findall(r'name="receiver" value="(\d+)"', page)
    response = record(partner, page, ranked[0], client_site=str(site), city="", country="")
    assert response.status_code == 302
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert body["client_site"] == {"id": site, "label": "Taichung works"}
    assert body["client"]["location"]["address"] == "12 Gongye Rd, Taichung"
    shown = partner.text(f"/referrals/{referral_id}")
    assert "Client site" in shown and "Taichung works" in shown
    assert "12 Gongye Rd, Taichung, Taichung, TW" in shown


def test_a_client_without_sites_gets_no_site_field(partner):
    page = find(partner).get_data(as_text=True)

    assert 'name="client_site"' not in page


def test_the_receiver_sees_the_site_once_it_accepts(app, network, client, admin_headers):
    from tests.portal.conftest import Portal

    earlier = record_referral(app, network.alpha, network.gamma, client="Site Client Ltd")
    client.patch(f"/api/v1/referrals/{earlier}", headers=admin_headers,
                 json={"status": "withdrawn"})
    sites = _sites(app, "Site Client Ltd", network.alpha)
    referral_id = record_referral(app, network.alpha, network.beta, client="Site Client Ltd",
                                  client_site_id=sites["Tainan warehouse"])
    beta = Portal(app.test_client(), network.beta_user)

    before = beta.text(f"/referrals/{referral_id}")
    assert "Tainan warehouse" not in before and "Tainan, TW" in before
    accepted = beta.post(f"/referrals/{referral_id}/status/accepted", {},
                         token_from="/dashboard")
    assert accepted.status_code == 302
    assert "Tainan warehouse" in beta.text(f"/referrals/{referral_id}")


def test_a_new_clients_first_referral_names_its_site_and_the_next_one_offers_it(
    partner, network, client, admin_headers
):
    place = {"city": "Taichung", "country": "TW"}
    page = find(partner, **place).get_data(as_text=True)
    assert "Record this place as a client site named" in page
    ranked = re.findall(r'name="receiver" value="(\d+)"', page)
    response = record(partner, page, ranked[0], new_site_label="Taichung works", **place)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert body["client_site"]["label"] == "Taichung works"
    assert body["client"]["location"]["city"] == "Taichung"

    client.patch(f"/api/v1/referrals/{referral_id}", headers=admin_headers,
                 json={"status": "withdrawn"})
    page = find(partner).get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="(\d+)"[^>]*>([^<]*)</option>', page)
    assert [text for _value, text in offered] == [
        "None: the place given above", "Taichung works, Taichung, TW"]
    # a recorded site picked and a new one named: said beside the new one, nothing recorded
    site = body["client_site"]["id"]
    response = record(partner, page, ranked[0], client_site=str(site), city="", country="",
                      new_site_label="Taichung plant")
    assert response.status_code == 422
    assert 'id="new_site_label-error"' in response.get_data(as_text=True)


def test_a_new_site_without_a_place_is_refused_beside_the_place(partner):
    page = find(partner).get_data(as_text=True)
    ranked = re.findall(r'name="receiver" value="(\d+)"', page)
    response = record(partner, page, ranked[0], new_site_label="Works", city="Nowhere At All",
                      country="TW")
    assert response.status_code == 422
    assert 'id="city-error"' in response.get_data(as_text=True)
