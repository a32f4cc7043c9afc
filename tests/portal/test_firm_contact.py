"""A firm's business contact in the portal (issue 16): the firm and head office edit it on the
profile page; every signed-in firm sees it, with mail and phone links, on the firm's page that
the match list opens."""

from __future__ import annotations

from tests.portal.test_profile import api_view, profile_form, save
from tests.portal.test_refer import find

CONTACT = {"contact_name": "Bo Chen", "contact_email": "bo@beta.example",
           "contact_phone": "+886 6 765 4321"}


def test_a_firm_gives_its_contact_on_its_profile_and_the_api_shows_it(partner, network, client,
                                                                       admin_headers):
    response = save(partner, network.alpha, contact_name="Mei Lin",
                    contact_email="mei@alpha.example", contact_phone="(07) 123-4567")
    assert response.status_code == 302
    assert api_view(client, admin_headers, network.alpha)["contact"] == {
        "name": "Mei Lin", "email": "mei@alpha.example", "phone": "(07) 123-4567"}
    form = profile_form(partner, network.alpha)
    assert (form["contact_name"], form["contact_email"], form["contact_phone"]) == (
        "Mei Lin", "mei@alpha.example", "(07) 123-4567")
    # Emptied, the contact is gone.
    save(partner, network.alpha, contact_name="", contact_email="", contact_phone="")
    assert api_view(client, admin_headers, network.alpha)["contact"] is None


def test_a_bad_address_or_number_shows_beside_its_field_and_keeps_what_was_typed(
        partner, network, client, admin_headers):
    response = save(partner, network.alpha, contact_email="mei at alpha",
                    contact_phone="call the desk")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="mei at alpha"' in page and 'value="call the desk"' in page
    assert 'id="contact_email-error"' in page and 'id="contact_phone-error"' in page
    assert "Not a valid e-mail address" in page
    assert "area code in brackets" in page
    assert api_view(client, admin_headers, network.alpha)["contact"] is None


def test_head_office_edits_any_firms_contact(admin, network, client, admin_headers):
    assert save(admin, network.beta, **CONTACT).status_code == 302
    assert api_view(client, admin_headers, network.beta)["contact"]["email"] == "bo@beta.example"


def test_a_candidate_firms_contact_is_on_the_page_the_match_list_opens(admin, partner, network):
    save(admin, network.beta, **CONTACT)
    matches = find(partner).get_data(as_text=True)
    assert f'href="/firms/{network.beta}"' in matches
    assert "profile and contact" in matches
    page = partner.text(f"/firms/{network.beta}")
    assert "Bo Chen" in page
    assert 'href="mailto:bo@beta.example"' in page
    assert 'href="tel:+88667654321"' in page  # as written, less its spaces
    # A firm without a contact says so.
    assert "has not given a contact yet" in partner.text(f"/firms/{network.gamma}")
