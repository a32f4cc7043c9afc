"""The sales force's pages: log a visit, team visits, my leads (won, lost, referred on)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.portal.conftest import CHEAP_HASH, Portal, csrf_token

WHEN = "2025-11-03T10:30"
SEEN_WHEN = "2025-11-03 10:30"


def add_person(app, organization_id: int, name: str, manager_id: int | None = None) -> int:
    """Create a person of the organization through the people use case; return the id."""
    from referral_service.db import session_scope
    from referral_service.services import people
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        view = people.create_person(session=session, actor=SYSTEM, data={
            "organization_id": organization_id, "name": name, "manager_id": manager_id})
        return view.person.id


def add_person_user(app, email: str, organization_id: int, person_id: int) -> int:
    """Create a partner user who is this person; return the user's id."""
    from models import User
    from referral_service.db import session_scope

    with session_scope(app) as session:
        user = User(email=email, password_hash=CHEAP_HASH, role="partner",
                    organization_id=organization_id, person_id=person_id, active=True)
        session.add(user)
        session.commit()
        return user.id


@dataclass
class Team:
    """Alpha's sales team: Mia manages Sam and Pat; Bea sells for Beta."""

    mia: int
    sam: int
    pat: int
    bea: int
    mia_user: int
    sam_user: int
    pat_user: int
    bea_user: int


@pytest.fixture
def team(app, network) -> Team:
    mia = add_person(app, network.alpha, "Mia Manager")
    sam = add_person(app, network.alpha, "Sam Seller", manager_id=mia)
    pat = add_person(app, network.alpha, "Pat Peer", manager_id=mia)
    bea = add_person(app, network.beta, "Bea Beta")
    return Team(mia, sam, pat, bea,
                add_person_user(app, "mia@alpha.example", network.alpha, mia),
                add_person_user(app, "sam@alpha.example", network.alpha, sam),
                add_person_user(app, "pat@alpha.example", network.alpha, pat),
                add_person_user(app, "bea@beta.example", network.beta, bea))


@pytest.fixture
def sam(app, team) -> Portal:
    return Portal(app.test_client(), team.sam_user)


@pytest.fixture
def mia(app, team) -> Portal:
    return Portal(app.test_client(), team.mia_user)


@pytest.fixture
def pat(app, team) -> Portal:
    return Portal(app.test_client(), team.pat_user)


@pytest.fixture
def bea(app, team) -> Portal:
    return Portal(app.test_client(), team.bea_user)


def kept(page: str, value: str) -> bool:
    """Return whether an input or a text area of the page holds `value`."""
    from markupsafe import escape

    value = str(escape(value))
    return f'value="{value}"' in page or f"\n{value}</textarea>" in page


def lead_row(index: int, **fields) -> dict[str, str]:
    return {f"leads-{index}-{name}": value for name, value in fields.items()}


ANODIZING_LEAD = {"name": "Tainan Frames Co", "contact": "Ms Lin, 06-555-0101",
                  "skills": "Anodizing", "description": "Hard anodising of bicycle frames",
                  "city": "Tainan", "country": "TW", "relationship": "Their supplier"}
MOULDING_LEAD = {"name": "Taichung Toys Ltd", "contact": "", "skills": "Injection molding",
                 "description": "Plastic toy housings", "city": "Taichung", "country": "TW",
                 "relationship": "A customer"}


def visit_form(**changes) -> dict[str, str]:
    """A visit with a commitment, the client in Kaohsiung and no leads."""
    return {"client_name": "Harbour Bikes Ltd", "client_ref": "", "client_city": "Kaohsiung",
            "client_country": "tw", "visited_at": WHEN,
            "commitment_description": "Order of 200 frames", "commitment_amount": "125000",
            "commitment_currency": "twd", "commitment_expected_on": "2025-12-01",
            "notes": "Met the buyer", "empty_handed_reason": "", "save": "1", **changes}


def post_visit(portal: Portal, data: dict, path: str = "/visits/new"):
    token = csrf_token(portal.text(path))
    response = portal.client.post(path, data={"csrf_token": token, **data})
    response.close()
    return response


def visit_id_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    found = re.fullmatch(r"/visits/(\d+)", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


def api_visit(client, headers, visit_id: int) -> dict:
    response = client.get(f"/api/v1/visits/{visit_id}", headers=headers)
    assert response.status_code == 200
    return response.get_json()


def log_leads(portal: Portal, *leads: dict, **changes) -> int:
    data = visit_form(commitment_description="", commitment_amount="",
                      commitment_currency="", commitment_expected_on="", **changes)
    for index, lead in enumerate(leads):
        data.update(lead_row(index, **lead))
    return visit_id_of(post_visit(portal, data))


# --- log a visit --------------------------------------------------------------------------


def test_the_form_starts_with_one_lead_row_the_time_now_and_the_rule_explained(sam):
    page = sam.text("/visits/new")
    assert 'name="leads-0-name"' in page and 'name="leads-1-name"' not in page
    assert re.search(r'name="visited_at" required type="datetime-local" '
                     r'value="\d{4}-\d\d-\d\dT\d\d:\d\d"', page)
    assert "A report with neither an order commitment nor a lead needs a reason" in page
    # Sam has nobody to report for but himself: no salesperson to pick.
    assert 'name="person_id"' not in page
    assert 'formnovalidate' in page and "Add another lead" in page


def test_add_another_lead_keeps_everything_typed(sam):
    data = visit_form(add_lead="1", save="", **lead_row(0, **ANODIZING_LEAD))
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="leads-1-name"' in page and 'name="leads-2-name"' not in page
    for value in ("Harbour Bikes Ltd", "Order of 200 frames", "125000", "Tainan Frames Co",
                  "Ms Lin, 06-555-0101", "Their supplier"):
        assert kept(page, value), value
    assert 'class="form-errors' not in page


def test_log_a_visit_with_a_commitment_and_two_leads(sam, team, client, admin_headers):
    data = visit_form(**lead_row(0, **ANODIZING_LEAD), **lead_row(1, **MOULDING_LEAD))
    response = post_visit(sam, data)
    visit_id = visit_id_of(response)
    body = api_visit(client, admin_headers, visit_id)
    assert body["person_id"] == team.sam
    assert body["client"]["name"] == "Harbour Bikes Ltd"
    assert body["visited_at"].startswith("2025-11-03T10:30")
    assert body["commitment"] == {"description": "Order of 200 frames", "amount": 125000.0,
                                  "currency": "TWD", "expected_on": "2025-12-01"}
    assert [lead["name"] for lead in body["leads"]] == ["Tainan Frames Co", "Taichung Toys Ltd"]
    first = body["leads"][0]
    assert first["skills"] == ["anodizing"]
    assert first["relationship"] == "Their supplier"
    assert first["location"]["city"] == "Tainan"
    assert body["empty_handed"] is False
    page = sam.text(f"/visits/{visit_id}")
    assert "Visit to Harbour Bikes Ltd saved with 2 leads." in page
    assert "Tainan Frames Co" in page and "Order of 200 frames" in page
    assert "Sam Seller" in page


def test_blank_lead_rows_are_skipped(sam, client, admin_headers):
    data = visit_form(**lead_row(0, name=""), **lead_row(1, **ANODIZING_LEAD))
    body = api_visit(client, admin_headers, visit_id_of(post_visit(sam, data)))
    assert [lead["name"] for lead in body["leads"]] == ["Tainan Frames Co"]


def test_a_report_with_nothing_and_no_reason_is_refused_and_kept(sam):
    data = visit_form(commitment_description="", commitment_amount="",
                      commitment_currency="", commitment_expected_on="",
                      notes="Buyer was out")
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="empty_handed_reason-error"' in page
    assert "say why in empty_handed_reason" in page
    # The summary at the top links to the field.
    summary = page[page.index('id="error-summary"'):]
    assert 'href="#empty_handed_reason"' in summary
    assert page.index('id="error-summary"') < page.index('id="client_name"')
    assert kept(page, "Harbour Bikes Ltd") and kept(page, "Buyer was out")


def test_an_empty_handed_visit_with_its_reason_is_stored_and_shown_first(
        sam, mia, team, client, admin_headers):
    visit_id_of(post_visit(sam, visit_form()))
    data = visit_form(client_name="Quiet Harbour Co", commitment_description="",
                      commitment_amount="", commitment_currency="",
                      commitment_expected_on="", empty_handed_reason="Buyer on holiday")
    empty = visit_id_of(post_visit(sam, data))
    assert api_visit(client, admin_headers, empty)["empty_handed"] is True
    page = mia.text("/visits")
    assert page.index("Quiet Harbour Co") < page.index("Harbour Bikes Ltd")
    assert "empty-handed" in page and "Buyer on holiday" in page
    assert "Sam Seller" in page


def test_commitment_errors_show_beside_their_fields(sam):
    data = visit_form(commitment_description="", commitment_amount="12,5x",
                      commitment_currency="")
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="commitment_description-error"' in page
    assert 'id="commitment_amount-error"' in page
    assert 'value="12,5x"' in page


def test_an_amount_without_currency_is_refused_beside_the_currency(sam):
    response = post_visit(sam, visit_form(commitment_currency=""))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="commitment_currency-error"' in page and "An amount needs its currency." in page


def test_a_visit_in_the_future_is_refused(sam):
    response = post_visit(sam, visit_form(visited_at="2999-01-01T10:00"))
    assert response.status_code == 422
    assert 'id="visited_at-error"' in response.get_data(as_text=True)


def test_lead_errors_show_beside_the_row_they_belong_to(sam):
    data = visit_form(**lead_row(0, name=""), **lead_row(1, contact="someone", city="Tainan"),
                      **lead_row(2, name="Lost Place Ltd", city="Nowhereville-on-Sea",
                                 country="TW"))
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    # Row 1 (the second) has no name; the schema's error lands there, not on row 0.
    assert 'id="leads-1-name-error"' in page and 'id="leads-0-name-error"' not in page
    assert 'href="#leads-1-name"' in page
    assert "Lead 2, Name:" in page
    assert 'value="someone"' in page and 'value="Nowhereville-on-Sea"' in page


def test_an_unknown_place_of_a_lead_is_shown_beside_its_city(sam):
    data = visit_form(**lead_row(0, name="Lost Place Ltd", city="Nowhereville-on-Sea",
                                 country="TW"))
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="leads-0-city-error"' in page and 'href="#leads-0-city"' in page


def test_an_unknown_client_place_is_shown_beside_the_client_city(sam):
    response = post_visit(sam, visit_form(client_city="Nowhereville-on-Sea"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="client_city-error"' in page


def test_the_same_lead_twice_is_kept_as_typed(sam):
    data = visit_form(**lead_row(0, **ANODIZING_LEAD), **lead_row(1, **ANODIZING_LEAD))
    response = post_visit(sam, data)
    assert response.status_code == 302
    page = sam.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count(ANODIZING_LEAD["name"]) >= 2


def test_a_lead_held_by_another_firm_is_a_409_and_the_form_is_kept(sam, network, refer_to):
    held = refer_to(network.beta, network.gamma, client="Tainan Frames Co")
    data = visit_form(**lead_row(0, **MOULDING_LEAD), **lead_row(1, **ANODIZING_LEAD))
    response = post_visit(sam, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"(referral #{held})" in page
    assert 'id="leads-1-name-error"' in page and "Another firm already holds this client." in page
    assert 'value="Tainan Frames Co"' in page and 'value="Taichung Toys Ltd"' in page


def test_a_geocoder_outage_keeps_the_form(app, sam):
    from referral_service.adapters.geocoding import GeocodingUnavailable

    class Down:
        def geocode(self, **_place):
            raise GeocodingUnavailable("The geocoder is down.", field="city")

    app.extensions["geocoder"] = Down()
    response = post_visit(sam, visit_form(**lead_row(0, **ANODIZING_LEAD)))
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "nothing was saved" in page
    assert 'value="Harbour Bikes Ltd"' in page and 'value="Tainan Frames Co"' in page


def test_a_manager_reports_for_one_of_their_people(mia, team, client, admin_headers):
    page = mia.text("/visits/new")
    options = re.findall(r'<option (?:selected )?value="(\d+)"', page)
    assert sorted(map(int, options)) == sorted([team.mia, team.sam, team.pat])
    body = api_visit(client, admin_headers,
                     visit_id_of(post_visit(mia, visit_form(person_id=str(team.pat)))))
    assert body["person_id"] == team.pat


def test_a_manager_cannot_report_for_someone_outside_their_team(mia, team):
    response = post_visit(mia, visit_form(person_id=str(team.bea)))
    assert response.status_code == 422
    assert 'id="person_id-error"' in response.get_data(as_text=True)


def test_a_salesperson_always_reports_for_themself(sam, team, client, admin_headers):
    body = api_visit(client, admin_headers,
                     visit_id_of(post_visit(sam, visit_form(person_id=str(team.pat)))))
    assert body["person_id"] == team.sam


def test_head_office_picks_the_organization_then_the_person(admin, network, team, client,
                                                            admin_headers):
    page = admin.text("/visits/new")
    assert "Pick the salesperson" in page and 'name="client_name"' not in page
    page = admin.text("/visits/new?organization=Alpha+Machining")
    assert 'name="client_name"' in page and "Sam Seller" in page and "Bea Beta" not in page
    path = f"/visits/new?organization_id={network.alpha}"
    body = api_visit(client, admin_headers, visit_id_of(
        post_visit(admin, visit_form(person_id=str(team.sam)), path=path)))
    assert body["person_id"] == team.sam and body["created_by"] == "user:boss@example.com"


def test_head_office_is_told_when_the_organization_is_unknown(admin, team):
    response = admin.get("/visits/new?organization=Nobody+Here")
    assert "No firm&#39;s name contains" in response.get_data(as_text=True)


def test_a_partner_user_who_is_nobody_picks_a_person_of_the_firm(partner, team, client,
                                                                 admin_headers):
    page = partner.text("/visits/new")
    assert "Sam Seller" in page and "Bea Beta" not in page
    body = api_visit(client, admin_headers,
                     visit_id_of(post_visit(partner, visit_form(person_id=str(team.sam)))))
    assert body["person_id"] == team.sam


def test_a_firm_without_people_is_told_to_add_one(partner):
    response = post_visit(partner, visit_form())
    assert response.status_code == 422
    assert "add the salesperson on the People page" in response.get_data(as_text=True)


def test_a_visit_post_without_the_csrf_token_is_refused(sam):
    response = sam.client.post("/visits/new", data=visit_form())
    assert response.status_code == 400


def test_the_menu_links_the_sales_pages(sam):
    page = sam.text("/dashboard")
    for path, label in (("/visits/new", "Log a visit"), ("/leads", "Leads"),
                        ("/visits", "Visits"), ("/people", "People")):
        assert f'href="{path}">{label}</a>' in page


# --- visits -------------------------------------------------------------------------------


def test_a_manager_filters_the_team_visits_by_person_and_date(sam, pat, mia, team):
    visit_id_of(post_visit(sam, visit_form(client_name="Sam Client Co")))
    visit_id_of(post_visit(pat, visit_form(client_name="Pat Client Co",
                                           visited_at="2025-10-01T09:00")))
    page = mia.text("/visits")
    assert "Sam Client Co" in page and "Pat Client Co" in page
    page = mia.text(f"/visits?person_id={team.sam}")
    assert "Sam Client Co" in page and "Pat Client Co" not in page
    page = mia.text("/visits?visited_from=2025-11-01")
    assert "Sam Client Co" in page and "Pat Client Co" not in page
    page = mia.text("/visits?visited_to=2025-10-31")
    assert "Sam Client Co" not in page and "Pat Client Co" in page
    assert mia.get("/visits?visited_from=yesterday").status_code == 422


def test_a_salesperson_sees_only_their_own_visits(sam, pat, team):
    pats = visit_id_of(post_visit(pat, visit_form(client_name="Pat Client Co",
                                                  **lead_row(0, **ANODIZING_LEAD))))
    visit_id_of(post_visit(sam, visit_form(client_name="Sam Client Co")))
    page = sam.text("/visits")
    assert "Sam Client Co" in page and "Pat Client Co" not in page
    assert sam.get(f"/visits/{pats}").status_code == 404
    assert "Tainan Frames Co" not in sam.text("/leads")
    lead_id = lead_ids(sam.client.application, pats)[0]
    assert sam.get(f"/leads/{lead_id}").status_code == 404
    assert sam.get(f"/leads/{lead_id}/refer").status_code == 404
    assert post_move(sam, lead_id, "won", confirm=True, token_from="/leads").status_code == 404


def test_another_firm_sees_none_of_our_visits_leads_or_people(bea, sam, team):
    visit_id = visit_id_of(post_visit(sam, visit_form(**lead_row(0, **ANODIZING_LEAD))))
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    assert bea.get(f"/visits/{visit_id}").status_code == 404
    assert bea.get(f"/leads/{lead_id}").status_code == 404
    assert bea.get(f"/leads/{lead_id}/refer").status_code == 404
    assert post_move(bea, lead_id, "lost", confirm=True, token_from="/leads").status_code == 404
    assert "Harbour Bikes Ltd" not in bea.text("/visits")
    assert "Tainan Frames Co" not in bea.text("/leads")
    assert bea.get(f"/people/{team.sam}/edit").status_code == 404
    page = bea.text("/people")
    assert "Sam Seller" not in page and "Bea Beta" in page


def test_an_unknown_visit_is_404(sam):
    assert sam.get("/visits/999999").status_code == 404


# --- leads --------------------------------------------------------------------------------


def lead_ids(app, visit_id: int) -> list[int]:
    from sqlalchemy import select

    from models import Lead
    from referral_service.db import session_scope

    with session_scope(app, write=False) as session:
        return list(session.scalars(select(Lead.id).where(Lead.visit_id == visit_id)
                                    .order_by(Lead.id)))


def post_move(portal: Portal, lead_id: int, move: str, *, confirm: bool = False,
              reason: str = "", token_from: str | None = None, confirming: bool = False):
    token = csrf_token(portal.text(token_from or f"/leads/{lead_id}"))
    data = {f"{move}-csrf_token": token, f"{move}-reason": reason}
    if confirm:
        data[f"{move}-confirm"] = "y"
    if confirming:
        data[f"{move}-confirming"] = "1"
    response = portal.client.post(f"/leads/{lead_id}/status/{move}", data=data)
    response.close()
    return response


def test_my_leads_lists_a_salespersons_leads_with_a_status_filter(sam, mia, team):
    visit_id = log_leads(sam, ANODIZING_LEAD, MOULDING_LEAD)
    first, second = lead_ids(sam.client.application, visit_id)
    page = sam.text("/leads")
    assert "Tainan Frames Co" in page and "Taichung Toys Ltd" in page
    assert f'href="/leads/{first}/refer"' in page
    assert post_move(sam, second, "lost", confirm=True).status_code == 302
    assert "marked lost" in sam.text(f"/leads/{second}")
    page = sam.text("/leads?status=open")
    assert "Tainan Frames Co" in page and "Taichung Toys Ltd" not in page
    page = sam.text("/leads?status=lost")
    assert "Tainan Frames Co" not in page and "Taichung Toys Ltd" in page
    assert sam.get("/leads?status=bogus").status_code == 422
    # The manager sees them too, with who brought them back.
    page = mia.text("/leads")
    assert "Tainan Frames Co" in page and "Brought back by Sam Seller" in page


def test_won_asks_for_confirmation_first(sam, client, admin_headers):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    response = post_move(sam, lead_id, "won", reason="Signed", token_from="/leads")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Confirm: mark it won?" in page and 'name="won-confirm"' in page
    assert kept(page, "Signed")
    lead = client.get(f"/api/v1/leads/{lead_id}", headers=admin_headers).get_json()
    assert lead["status"] == "open"
    # Sent again without ticking the box: asked again, with the reason beside the box.
    response = post_move(sam, lead_id, "won", reason="Signed", confirming=True)
    assert response.status_code == 422
    assert 'id="won-confirm-error"' in response.get_data(as_text=True)
    response = post_move(sam, lead_id, "won", reason="Signed", confirm=True)
    assert response.status_code == 302
    lead = client.get(f"/api/v1/leads/{lead_id}", headers=admin_headers).get_json()
    assert (lead["status"], lead["status_reason"]) == ("won", "Signed")
    assert "Lead Tainan Frames Co marked won." in sam.text(f"/leads/{lead_id}")
    # A closed lead cannot move again.
    response = post_move(sam, lead_id, "lost", confirm=True, token_from="/leads")
    assert response.status_code == 302
    assert "A won lead cannot become lost" in sam.text(f"/leads/{lead_id}")


def test_an_unknown_move_is_404(sam):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    assert post_move(sam, lead_id, "referred", confirm=True).status_code == 404


def test_head_office_names_a_firm_by_name(admin, sam, network):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    response = admin.post(f"/leads/{lead_id}/refer", {"firm": "Gamma Plastics"})
    assert response.status_code == 302


def test_refer_a_lead_to_a_firm_from_the_ranked_list(sam, team, network, client,
                                                     admin_headers):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    page = sam.text(f"/leads/{lead_id}/refer")
    ranked = re.findall(r'name="receiver" value="(\d+)"', page)
    assert ranked[0] == str(network.beta) and str(network.alpha) not in ranked
    assert "Has anodizing." in page and "km away" in page
    token = csrf_token(page)
    response = sam.client.post(f"/leads/{lead_id}/refer", data={
        "csrf_token": token, "receiver": str(network.beta), "note": "Call Ms Lin"})
    assert response.status_code == 302
    referral_id = int(re.fullmatch(r"/referrals/(\d+)", response.headers["Location"]).group(1))
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=admin_headers).get_json()
    assert (body["referrer_organization_id"], body["receiver_organization_id"]) == (
        network.alpha, network.beta)
    assert body["source"] == {"kind": "visit", "visit_id": visit_id, "lead_id": lead_id}
    assert body["referred_by_person_id"] == team.sam
    assert body["note"] == "Call Ms Lin"
    page = sam.text(f"/referrals/{referral_id}")
    assert "Tainan Frames Co was referred to Beta Finishing" in page
    assert f'href="/visits/{visit_id}">visit #{visit_id}</a>' in page
    assert "Sam Seller" in page
    lead = client.get(f"/api/v1/leads/{lead_id}", headers=admin_headers).get_json()
    assert (lead["status"], lead["referral_id"]) == ("referred", referral_id)
    # Referred: no second referral, and the list links the referral.
    assert sam.get(f"/leads/{lead_id}/refer").status_code == 302
    assert f'href="/referrals/{referral_id}"' in sam.text("/leads")


def test_the_receiver_must_be_picked_or_named(sam, network):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    path = f"/leads/{lead_id}/refer"
    response = sam.post(path, {"receiver": "999999"})
    assert response.status_code == 422
    assert "Pick one of the firms listed, or name a firm." in response.get_data(as_text=True)
    response = sam.post(path, {"firm": "No Such Firm Anywhere"})
    assert response.status_code == 422
    assert 'id="firm-error"' in response.get_data(as_text=True)
    response = sam.post(path, {"firm": "Gamma Plastics"})
    assert response.status_code == 422
    assert "Give the firm&#39;s id" in response.get_data(as_text=True)
    response = sam.post(path, {"firm": "999999"})
    assert "No firm has id 999999." in response.get_data(as_text=True)
    response = sam.post(path, {"firm": str(network.gamma), "note": "kept"})
    assert response.status_code == 302


def test_a_lead_without_a_place_is_referred_to_a_named_firm(sam, network, client,
                                                            admin_headers):
    visit_id = log_leads(sam, {"name": "Placeless Ltd", "skills": "Anodizing"})
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    page = sam.text(f"/leads/{lead_id}/refer")
    assert "recorded without a place" in page and 'name="receiver"' not in page
    response = sam.post(f"/leads/{lead_id}/refer", {})
    assert response.status_code == 422
    assert "Name the firm to refer the lead to." in response.get_data(as_text=True)
    response = sam.post(f"/leads/{lead_id}/refer", {"firm": str(network.beta)})
    assert response.status_code == 302


def test_a_full_receiver_is_a_409_with_the_note_kept(app, sam, network):
    from referral_service.db import session_scope
    from referral_service.services import organizations
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        organizations.update(session=session, organization_id=network.gamma,
                             data={"capacity": 0}, actor=SYSTEM,
                             geocoder=app.extensions["geocoder"])
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(sam.client.application, visit_id)[0]
    response = sam.post(f"/leads/{lead_id}/refer", {"firm": str(network.gamma),
                                                     "note": "Please call"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert kept(page, "Please call") and kept(page, str(network.gamma))


def test_the_referral_page_shows_an_acquaintance_source(partner, network, refer_to):
    referral = refer_to(network.alpha, network.beta, client="Friend Co",
                        source={"kind": "acquaintance", "name": "Old Chen",
                                "contact": "chen@example.com"})
    page = partner.text(f"/referrals/{referral}")
    assert "an acquaintance: Old Chen (chen@example.com)" in page


def test_the_receiver_sees_a_visit_source_without_a_link(app, sam, team, network):
    visit_id = log_leads(sam, ANODIZING_LEAD)
    lead_id = lead_ids(app, visit_id)[0]
    response = sam.post(f"/leads/{lead_id}/refer", {"receiver": str(network.beta)})
    referral_id = int(response.headers["Location"].rsplit("/", 1)[1])
    beta = Portal(app.test_client(), team.bea_user)
    page = beta.text(f"/referrals/{referral_id}")
    assert "a client visit" in page and f"/visits/{visit_id}" not in page
    assert "Referred by" in page and "a member of the referring firm" in page


def test_head_office_sees_a_firms_visits(admin, sam, bea, network):
    visit_id_of(post_visit(sam, visit_form(client_name="Alpha Visit Co")))
    visit_id_of(post_visit(bea, visit_form(client_name="Beta Visit Co")))
    page = admin.text("/visits")
    assert "Alpha Visit Co" in page and "Beta Visit Co" in page
    page = admin.text("/visits?organization=Beta+Finishing")
    assert "Visits of Beta Finishing" in page
    assert "Alpha Visit Co" not in page and "Beta Visit Co" in page and "Bea Beta" in page
    assert admin.get("/visits?organization=Nobody+Here").status_code == 422
