"""An organization's people and departments in the portal: list, add, edit, who may."""

from __future__ import annotations

import re

from tests.portal import test_visits
from tests.portal.test_visits import kept

# The sales team's fixtures: Alpha's Mia manages Sam and Pat; Bea sells for Beta.
team, sam, bea = test_visits.team, test_visits.sam, test_visits.bea


def added_id(response, client, headers, path: str, name: str) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    items = client.get(f"/api/v1/{path}?page_size=100", headers=headers).get_json()["items"]
    return next(item["id"] for item in items if item["name"] == name)


def test_a_partner_sees_its_people_and_departments(sam, team):
    page = sam.text("/people")
    assert "People of Alpha Machining" in page
    for name in ("Mia Manager", "Sam Seller", "Pat Peer"):
        assert name in page
    assert "Bea Beta" not in page
    # Sam can sign in; the manager column names Mia.
    row = page[page.index("Sam Seller"):page.index("Sam Seller") + 600]
    assert "Mia Manager" in row and "yes" in row
    assert "No departments yet." in page


def test_a_partner_adds_a_department_and_a_person_in_it(sam, team, client, admin_headers):
    response = sam.post("/departments/new", {"name": "Southern sales",
                                             "head_person_id": str(team.mia),
                                             "parent_id": "", "external_ref": "D-S"})
    department = added_id(response, client, admin_headers, "departments", "Southern sales")
    assert "Department Southern sales added." in sam.text("/people")
    response = sam.post("/people/new", {
        "name": "Nina New", "email": "nina@alpha.example", "external_ref": "CRM-9",
        "department_id": str(department), "manager_id": str(team.mia), "active": "y"})
    person = added_id(response, client, admin_headers, "people", "Nina New")
    body = client.get(f"/api/v1/people/{person}", headers=admin_headers).get_json()
    assert (body["department_id"], body["manager_id"], body["active"]) == (
        department, team.mia, True)
    assert body["can_sign_in"] is False
    page = sam.text("/people")
    assert "Nina New" in page and "Southern sales" in page


def test_a_partner_edits_a_person_and_a_department(sam, team, client, admin_headers):
    page = sam.text(f"/people/{team.pat}/edit")
    assert kept(page, "Pat Peer")
    # A person is never their own manager: not offered.
    assert f'<option value="{team.pat}"' not in page
    response = sam.post(f"/people/{team.pat}/edit", {
        "name": "Pat Peer-Lee", "email": "", "external_ref": "", "department_id": "",
        "manager_id": "", "version": re.search(r'name="version" type="hidden" value="(\d+)"',
                                               page).group(1)})
    assert response.status_code == 302
    body = client.get(f"/api/v1/people/{team.pat}", headers=admin_headers).get_json()
    assert (body["name"], body["manager_id"], body["active"]) == ("Pat Peer-Lee", None, False)
    sam.post("/departments/new", {"name": "North"})
    department = added_id(sam.post("/departments/new", {"name": "South"}), client,
                          admin_headers, "departments", "South")
    response = sam.post(f"/departments/{department}/edit", {"name": "South and East"})
    assert response.status_code == 302
    assert "South and East" in sam.text("/people")


def test_errors_show_beside_the_fields_and_keep_the_form(sam, team):
    sam.post("/people/new", {"name": "First", "external_ref": "CRM-1", "active": "y"})
    response = sam.post("/people/new", {"name": "Second", "external_ref": "crm-1",
                                        "email": "not-an-address", "active": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="email-error"' in page and 'href="#email"' in page
    assert kept(page, "Second") and kept(page, "not-an-address")
    response = sam.post("/people/new", {"name": "Second", "external_ref": "crm-1",
                                        "active": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="external_ref-error"' in page and "CRM-1" in page.upper()
    sam.post("/departments/new", {"name": "Taken"})
    response = sam.post("/departments/new", {"name": "Taken"})
    assert response.status_code == 422
    assert 'id="name-error"' in response.get_data(as_text=True)


def test_a_manager_cycle_is_refused_beside_the_manager(sam, team):
    page = sam.text(f"/people/{team.mia}/edit")
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    response = sam.post(f"/people/{team.mia}/edit", {
        "name": "Mia Manager", "manager_id": str(team.sam), "active": "y", "version": version})
    assert response.status_code == 422
    assert 'id="manager_id-error"' in response.get_data(as_text=True)


def test_a_stale_edit_is_kept_and_explained(sam, team):
    response = sam.post(f"/people/{team.pat}/edit", {"name": "Pat Later", "active": "y",
                                                     "version": "1"})
    assert response.status_code == 302
    response = sam.post(f"/people/{team.pat}/edit", {"name": "Pat Stale", "active": "y",
                                                     "version": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Someone saved this after you opened it" in page and kept(page, "Pat Stale")


def test_another_firms_people_are_not_found(bea, team):
    assert bea.get(f"/people/{team.sam}/edit").status_code == 404
    response = bea.post(f"/people/{team.sam}/edit", {"name": "Hijacked", "active": "y"},
                        token_from="/people")
    assert response.status_code == 404
    # A reference to another firm's person is refused, not followed.
    response = bea.post("/people/new", {"name": "Spy", "manager_id": str(team.sam)})
    assert response.status_code == 422


def test_head_office_picks_an_organization_and_adds_a_person(admin, network, team, client,
                                                             admin_headers):
    page = admin.text("/people")
    assert 'name="organization"' in page and "Sam Seller" not in page
    page = admin.text("/people?organization=Beta+Finishing")
    assert "Bea Beta" in page and "Sam Seller" not in page
    assert admin.get("/people?organization=Nobody+Here").status_code == 422
    assert admin.get("/people/new").status_code == 404
    response = admin.post(f"/people/new?organization_id={network.gamma}",
                          {"name": "Gus Gamma", "active": "y"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/people?organization_id={network.gamma}"
    person = added_id(response, client, admin_headers, "people", "Gus Gamma")
    body = client.get(f"/api/v1/people/{person}", headers=admin_headers).get_json()
    assert body["organization_id"] == network.gamma
