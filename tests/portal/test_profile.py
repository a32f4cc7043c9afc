"""A firm's profile form: what partners and head office change, and how errors show."""

from __future__ import annotations

import re

from tests.portal.conftest import csrf_token


def profile_form(portal, organization_id: int) -> dict[str, str]:
    """Return the profile form's current values, as the browser would send them."""
    html = portal.text(f"/organizations/{organization_id}")
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="checkbox"' not in tag and 'type="submit"' not in tag:
            fields[name.group(1)] = value.group(1) if value else ""
        elif name and "checked" in tag:
            fields[name.group(1)] = "y"
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>\n?(.*?)</textarea>',
                                  html, re.S):
        fields[name] = value
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected',
                           body)
        fields[name] = next(g for g in chosen.groups() if g is not None) if chosen else ""
    return fields


def save(portal, organization_id: int, **changes):
    form = profile_form(portal, organization_id)
    form.update({key: str(value) for key, value in changes.items()})
    form["save"] = "1"
    response = portal.client.post(f"/organizations/{organization_id}", data=form)
    response.close()
    return response


def api_view(client, headers, organization_id: int) -> dict:
    return client.get(f"/api/v1/organizations/{organization_id}", headers=headers).get_json()


def test_partner_edits_the_profile_and_the_api_shows_it(partner, network, client,
                                                        admin_headers):
    response = save(partner, network.alpha, name="Alpha Precision",
                    skills="CNC machining\nWire EDM, Anodizing", capacity="7",
                    **{"offices-1-label": "Tainan branch", "offices-1-city": "Tainan",
                       "offices-1-country": "tw"})
    assert response.status_code == 302
    page = partner.text(f"/organizations/{network.alpha}")
    assert "Profile saved." in page
    body = api_view(client, admin_headers, network.alpha)
    assert body["name"] == "Alpha Precision"
    assert body["skills"] == ["cnc-machining", "wire-edm", "anodizing"]
    assert body["capacity"] == 7
    branch = next(o for o in body["offices"] if o["label"] == "Tainan branch")
    assert branch["country"] == "TW"
    assert abs(branch["latitude"] - 22.99) < 0.1


def test_an_empty_capacity_means_no_limit(partner, network, client, admin_headers):
    save(partner, network.alpha, capacity="4")
    save(partner, network.alpha, capacity="")
    assert api_view(client, admin_headers, network.alpha)["capacity"] is None


def test_errors_show_beside_their_field_and_keep_what_was_typed(partner, network):
    response = save(partner, network.alpha, name="Alpha Renamed", capacity="-3",
                    **{"offices-0-latitude": "95"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="Alpha Renamed"' in page
    assert 'value="-3"' in page
    capacity_field = page[page.index('id="capacity"'):]
    assert 'id="capacity-error"' in capacity_field[:600]
    assert re.search(r'id="offices-0-latitude-error">Number must be between -90', page)
    assert "Alpha Renamed" not in partner.text(f"/organizations/{network.alpha}")


def test_an_unknown_city_is_reported_beside_that_office(partner, network):
    response = save(partner, network.alpha, **{"offices-1-city": "Nowhereville-on-Sea",
                                               "offices-1-country": "TW"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="offices-1-city-error"' in page
    assert 'value="Nowhereville-on-Sea"' in page


def test_a_new_city_with_the_old_coordinates_is_placed_anew(partner, network, client,
                                                            admin_headers):
    save(partner, network.alpha, **{"offices-0-city": "Taichung", "offices-0-country": "TW"})
    office = api_view(client, admin_headers, network.alpha)["offices"][0]
    assert office["city"] == "Taichung"
    assert abs(office["latitude"] - 24.15) < 0.1


def test_add_another_office_gives_a_blank_row_without_saving(partner, network):
    form = profile_form(partner, network.alpha)
    form.update({"name": "Typed but not saved", "add_office": "1"})
    response = partner.client.post(f"/organizations/{network.alpha}", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="offices-2-city"' in page
    assert 'value="Typed but not saved"' in page
    assert "Typed but not saved" not in partner.text(f"/organizations/{network.alpha}")


def test_an_office_can_be_removed_but_not_the_last_one(partner, network, client,
                                                       admin_headers):
    save(partner, network.alpha, **{"offices-1-city": "Tainan", "offices-1-country": "TW"})
    assert len(api_view(client, admin_headers, network.alpha)["offices"]) == 2
    save(partner, network.alpha, **{"offices-0-remove": "y"})
    offices = api_view(client, admin_headers, network.alpha)["offices"]
    assert [o["city"] for o in offices] == ["Tainan"]
    response = save(partner, network.alpha, **{"offices-0-remove": "y"})
    assert response.status_code == 422
    assert len(api_view(client, admin_headers, network.alpha)["offices"]) == 1


def test_a_profile_saved_meanwhile_is_not_overwritten_silently(partner, network, client,
                                                               admin_headers):
    form = profile_form(partner, network.alpha)
    client.patch(f"/api/v1/organizations/{network.alpha}", json={"description": "By the CRM"},
                 headers=admin_headers).close()
    form.update({"name": "Mine", "save": "1"})
    response = partner.client.post(f"/organizations/{network.alpha}", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Someone saved this profile after you opened it" in page
    assert 'value="Mine"' in page
    assert api_view(client, admin_headers, network.alpha)["name"] == "Alpha Machining"
    # Saving again, having been told, goes through.
    form["version"] = re.search(r'id="version" name="version" type="hidden" value="(\d+)"',
                                page).group(1)
    form["csrf_token"] = csrf_token(page)
    partner.client.post(f"/organizations/{network.alpha}", data=form).close()
    assert api_view(client, admin_headers, network.alpha)["name"] == "Mine"


def test_a_partner_cannot_change_what_is_head_offices(partner, network, client,
                                                      admin_headers):
    page = partner.text(f"/organizations/{network.alpha}")
    assert 'name="kind"' not in page and 'name="active"' not in page
    save(partner, network.alpha, kind="affiliate", active="")
    body = api_view(client, admin_headers, network.alpha)
    assert body["kind"] == "partner" and body["active"] is True


def test_head_office_edits_any_firm_including_kind_and_active(admin, network, client,
                                                             admin_headers):
    response = save(admin, network.beta, kind="affiliate", group="Formosa Group", active="")
    assert response.status_code == 302
    body = api_view(client, admin_headers, network.beta)
    assert body["kind"] == "affiliate"
    assert body["group"] == "Formosa Group"
    assert body["active"] is False  # the box was unticked


def test_my_profile_link_leads_to_the_partners_own_firm(partner, network):
    response = partner.get("/profile")
    assert response.headers["Location"].endswith(f"/organizations/{network.alpha}")
