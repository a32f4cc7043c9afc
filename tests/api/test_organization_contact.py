"""A firm's business contact (issue 16): given, changed and cleared through the API, checked by
the schema and held by the database, imported from CSV, and stated in the OpenAPI document."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from models import Organization
from tests.conftest import org_payload
from tests.services.test_importing import run_import

BASE = "/api/v1/organizations"
CONTACT = {"name": "Mei Lin", "email": "mei.lin@harbor.example", "phone": "+886 7 123 4567"}


def test_a_firm_is_created_with_its_contact_and_reads_it_back(client, admin_headers):
    created = client.post(BASE, json=org_payload(contact=CONTACT), headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["contact"] == CONTACT
    read = client.get(f"{BASE}/{created.get_json()['id']}", headers=admin_headers).get_json()
    assert read["contact"] == CONTACT


def test_a_firm_without_a_contact_reads_null(client, make_org, admin_headers):
    firm = make_org()
    assert firm["contact"] is None
    assert client.get(f"{BASE}/{firm['id']}", headers=admin_headers).get_json()["contact"] is None


def test_patch_replaces_the_whole_contact_and_null_clears_it(client, make_org, admin_headers):
    firm = make_org(contact=CONTACT)
    url = f"{BASE}/{firm['id']}"
    changed = client.patch(url, json={"contact": {"email": "desk@harbor.example"}},
                           headers=admin_headers)
    assert changed.status_code == 200
    assert changed.get_json()["contact"] == {"name": None, "email": "desk@harbor.example",
                                             "phone": None}
    untouched = client.patch(url, json={"capacity": 3}, headers=admin_headers).get_json()
    assert untouched["contact"]["email"] == "desk@harbor.example"
    cleared = client.patch(url, json={"contact": None}, headers=admin_headers)
    assert cleared.get_json()["contact"] is None


@pytest.mark.parametrize(("contact", "field"), [
    ({"email": "not an address"}, "email"),
    ({"email": "mei@"}, "email"),
    ({"email": "mei@harbor"}, "email"),
    ({"phone": "call me"}, "phone"),
    ({"phone": "12"}, "phone"),
    ({"phone": "+886 7 123 4567 " + "8" * 40}, "phone"),
    ({"name": "x" * 201}, "name"),
    ({"name": ""}, "name"),
    ({"fax": "123456"}, "fax"),
])
def test_a_bad_contact_is_422_naming_the_part(client, admin_headers, contact, field):
    response = client.post(BASE, json=org_payload(contact=contact), headers=admin_headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]["contact"]
    assert client.get(BASE, headers=admin_headers).get_json()["total"] == 0


@pytest.mark.parametrize("phone", ["+886 7 123 4567", "(02) 2345-6789", "+81-3-1234-5678",
                                   "06.12.34.56.78", "+886 (7) 123 4567"])
def test_phone_numbers_as_people_write_them_are_taken(client, admin_headers, phone):
    response = client.post(BASE, json=org_payload(contact={"phone": phone}),
                           headers=admin_headers)
    assert response.status_code == 201, response.get_json()


def test_a_partner_edits_its_own_contact_but_not_another_firms(client, make_org, make_key):
    own, other = make_org(), make_org(name="Other Works")
    partner = make_key("partner", organization_id=own["id"])
    response = client.patch(f"{BASE}/{own['id']}", json={"contact": CONTACT}, headers=partner)
    assert response.status_code == 200
    assert response.get_json()["contact"] == CONTACT
    assert client.patch(f"{BASE}/{other['id']}", json={"contact": CONTACT},
                        headers=partner).status_code == 404


def test_the_database_refuses_a_contact_the_schema_would(app, make_org):
    from referral_service.db import session_scope

    firm = make_org()
    for column, value in (("contact_email", "nobody"), ("contact_phone", "12"),
                          ("contact_name", "")):
        with pytest.raises(IntegrityError), session_scope(app) as session:
            session.execute(update(Organization).where(Organization.id == firm["id"])
                            .values({column: value}))


def test_the_openapi_document_states_the_contact_and_its_rules(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    contact = schemas["Contact"]["properties"]
    assert contact["email"]["pattern"].startswith("^")
    assert contact["phone"]["pattern"].startswith("^")
    assert contact["name"]["maxLength"] == 200
    create = schemas["OrganizationCreate"]["properties"]["contact"]
    assert "business contact" in str(create)


def test_csv_import_fills_the_contact_and_a_file_without_it_keeps_it(app, tmp_path, client,
                                                                      admin_headers):
    header = "name,kind,skills,external_ref,latitude,longitude,contact_name,contact_email\n"
    result = run_import(app, tmp_path, "a.csv", header +
                        "Harbor Works,partner,welding,X1,22.6,120.3,Mei Lin,mei@harbor.example\n"
                        "Bad Mail,partner,welding,X2,22.6,120.3,,not-an-address\n")
    assert "created 1, updated 0, rejected 1" in result.output, result.output
    assert "line 3: rejected: contact.email" in result.output
    run_import(app, tmp_path, "b.csv", "name,kind,skills,external_ref,latitude,longitude\n"
               "Harbor Works,partner,cutting,X1,22.6,120.3\n")
    [firm] = client.get(BASE, headers=admin_headers).get_json()["items"]
    assert firm["skills"] == ["cutting"]
    assert firm["contact"] == {"name": "Mei Lin", "email": "mei@harbor.example", "phone": None}


def test_the_imports_compiled_load_takes_a_contact_exactly_as_the_schema_does():
    from referral_service.schemas.compiled import compile_load
    from referral_service.schemas.organizations import OrganizationCreateSchema

    schema = OrganizationCreateSchema()
    quick_load = compile_load(schema)
    good = org_payload(contact=CONTACT)
    assert quick_load(good) == schema.load(good)  # the fast path, not left to the schema
    for contact in ({"email": "not an address"}, {"phone": "call me"}, {"name": ""}):
        assert quick_load(org_payload(contact=contact)) is None  # the schema words why


def test_any_key_reads_an_active_firms_contact_and_nothing_else(client, make_org, make_key,
                                                                admin_headers):
    own, other = make_org(), make_org(name="Other Works", contact=CONTACT)
    partner = make_key("partner", organization_id=own["id"])
    for headers in (partner, make_key("crm"), admin_headers):
        response = client.get(f"{BASE}/{other['id']}/contact", headers=headers)
        assert response.status_code == 200
        assert response.get_json() == CONTACT
    assert client.get(f"{BASE}/{own['id']}/contact", headers=partner).get_json() == {
        "name": None, "email": None, "phone": None}
    assert client.delete(f"{BASE}/{other['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"{BASE}/{other['id']}/contact", headers=partner).status_code == 404
    assert client.get(f"{BASE}/{other['id']}/contact", headers=admin_headers).status_code == 200
    assert client.get(f"{BASE}/999999/contact", headers=partner).status_code == 404
    assert client.get(f"{BASE}/{other['id']}/contact").status_code == 401
