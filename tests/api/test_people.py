"""People and departments of each organization (SPEC section 9): the API contract."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEntry

PEOPLE = "/api/v1/people"
DEPARTMENTS = "/api/v1/departments"


@pytest.fixture
def firms(make_org):
    return make_org(name="Harbor Works")["id"], make_org(name="Coast Works")["id"]


@pytest.fixture
def post(client, admin_headers):
    """POST a body to a collection as admin; return the response."""

    def send(url: str, body: dict, headers: dict | None = None):
        return client.post(url, json=body, headers=headers or admin_headers)

    return send


@pytest.fixture
def person(post):
    """Create a person as admin and return its JSON."""

    def create(organization_id: int, name: str = "Ann Lee", **extra) -> dict:
        response = post(PEOPLE, {"organization_id": organization_id, "name": name, **extra})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture
def department(post):
    """Create a department as admin and return its JSON."""

    def create(organization_id: int, name: str = "Sales", **extra) -> dict:
        response = post(DEPARTMENTS, {"organization_id": organization_id, "name": name, **extra})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


def audit_count(session, action: str) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == action))


def assert_422(response, field: str) -> None:
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"], response.get_json()


# ------------------------------------------------------------------------------ people


def test_create_person_returns_201_location_etag_and_the_whole_shape(
        client, admin_headers, post, firms, department, session):
    sales = department(firms[0])
    response = post(PEOPLE, {"organization_id": firms[0], "name": "  Ann Lee ",
                             "email": "ann@harbor.example", "external_ref": " CRM-7 ",
                             "department_id": sales["id"]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"id", "organization_id", "name", "email", "external_ref",
                         "department_id", "manager_id", "active", "can_sign_in", "created_at",
                         "updated_at", "version"}
    assert (body["name"], body["external_ref"], body["department_id"]) == (
        "Ann Lee", "CRM-7", sales["id"])
    assert (body["active"], body["can_sign_in"], body["manager_id"], body["version"]) == (
        True, False, None, 1)
    assert response.headers["Location"] == f"{PEOPLE}/{body['id']}"
    assert response.headers["ETag"] == f'"person-{body["id"]}-v1"'
    again = client.get(response.headers["Location"], headers=admin_headers)
    assert again.get_json() == body and again.headers["ETag"] == response.headers["ETag"]
    assert audit_count(session, "person.create") == 1


def test_staff_must_name_an_existing_organization(post, firms):
    assert_422(post(PEOPLE, {"name": "Ann"}), "organization_id")
    assert_422(post(PEOPLE, {"name": "Ann", "organization_id": 999_999}), "organization_id")
    assert_422(post(DEPARTMENTS, {"name": "Sales"}), "organization_id")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "   "}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Ann", "email": "not-an-email"}, "email"),
    ({"name": "Ann", "external_ref": "  "}, "external_ref"),
    ({"name": "Ann", "active": "yes"}, "active"),
    ({"name": "Ann", "manager_id": 0}, "manager_id"),
    ({"name": "Ann", "can_sign_in": True}, "can_sign_in"),
])
def test_bad_person_input_is_a_422_naming_the_field(post, firms, body, field):
    assert_422(post(PEOPLE, {"organization_id": firms[0], **body}), field)


def test_department_and_manager_must_exist_in_the_same_organization(
        post, firms, person, department, client, admin_headers):
    harbor, coast = firms
    coast_sales, coast_boss = department(coast), person(coast, "Coast Boss")
    for body, field in [({"department_id": coast_sales["id"]}, "department_id"),
                        ({"department_id": 999_999}, "department_id"),
                        ({"manager_id": coast_boss["id"]}, "manager_id"),
                        ({"manager_id": 999_999}, "manager_id")]:
        assert_422(post(PEOPLE, {"organization_id": harbor, "name": "Ann", **body}), field)
    ann = person(harbor)
    for body, field in [({"department_id": coast_sales["id"]}, "department_id"),
                        ({"manager_id": coast_boss["id"]}, "manager_id")]:
        assert_422(client.patch(f"{PEOPLE}/{ann['id']}", json=body, headers=admin_headers),
                   field)
    listed = client.get(f"{PEOPLE}?organization_id={harbor}", headers=admin_headers).get_json()
    assert [item["name"] for item in listed["items"]] == ["Ann Lee"]


def test_a_manager_cycle_is_a_422(client, admin_headers, person, firms):
    boss = person(firms[0], "Boss")
    middle = person(firms[0], "Middle", manager_id=boss["id"])
    clerk = person(firms[0], "Clerk", manager_id=middle["id"])
    for manager in (clerk["id"], middle["id"], boss["id"]):  # a report, or themselves
        response = client.patch(f"{PEOPLE}/{boss['id']}", json={"manager_id": manager},
                                headers=admin_headers)
        assert_422(response, "manager_id")
    got = client.get(f"{PEOPLE}/{boss['id']}", headers=admin_headers).get_json()
    assert (got["manager_id"], got["version"]) == (None, 1)
    moved = client.patch(f"{PEOPLE}/{clerk['id']}", json={"manager_id": boss["id"]},
                         headers=admin_headers)
    assert moved.status_code == 200 and moved.get_json()["manager_id"] == boss["id"]


def test_a_taken_external_ref_is_a_409_with_the_holder(
        post, person, firms, client, admin_headers, session):
    harbor, coast = firms
    first = person(harbor, external_ref="CRM-1")
    for ref in ("CRM-1", " crm-1 "):
        response = post(PEOPLE, {"organization_id": harbor, "name": "Twin", "external_ref": ref})
        assert response.status_code == 409, response.get_json()
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["existing_id"] == first["id"]
    assert person(coast, external_ref="CRM-1")["external_ref"] == "CRM-1"  # another firm's
    other = person(harbor, "Other", external_ref="CRM-2")
    clash = client.patch(f"{PEOPLE}/{other['id']}", json={"external_ref": "crm-1"},
                         headers=admin_headers)
    assert clash.status_code == 409 and clash.get_json()["existing_id"] == first["id"]
    recase = client.patch(f"{PEOPLE}/{first['id']}", json={"external_ref": "crm-1"},
                          headers=admin_headers)
    assert recase.status_code == 200 and recase.get_json()["external_ref"] == "crm-1"
    assert audit_count(session, "person.create") == 3


def test_a_duplicate_lost_to_a_concurrent_insert_is_a_409_not_a_500(
        post, person, firms, monkeypatch):
    """The unique constraint decides when the check ran before the winner committed."""
    from referral_service.services import people

    first = person(firms[0], external_ref="CRM-9")
    checks = []
    real = people._refuse_taken

    def late(*args):  # the first check misses the winner, as under a race
        checks.append(args)
        if len(checks) > 1:
            real(*args)

    monkeypatch.setattr(people, "_refuse_taken", late)
    response = post(PEOPLE, {"organization_id": firms[0], "name": "Twin",
                             "external_ref": "crm-9"})
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["existing_id"] == first["id"]


def test_patch_applies_with_a_fresh_etag_and_a_stale_one_is_412(
        client, admin_headers, person, firms, session):
    ann = person(firms[0])
    url = f"{PEOPLE}/{ann['id']}"
    etag = client.get(url, headers=admin_headers).headers["ETag"]
    ok = client.patch(url, json={"name": " Ann Chen ", "active": False, "email": None},
                      headers={**admin_headers, "If-Match": etag})
    assert ok.status_code == 200, ok.get_json()
    assert (ok.get_json()["name"], ok.get_json()["active"], ok.get_json()["version"]) == (
        "Ann Chen", False, 2)
    assert ok.headers["ETag"] == f'"person-{ann["id"]}-v2"'
    stale = client.patch(url, json={"name": "Late"}, headers={**admin_headers, "If-Match": etag})
    assert stale.status_code == 412
    same = client.patch(url, json={"name": "Ann Chen"}, headers=admin_headers)
    assert same.get_json()["version"] == 2  # nothing changed, nothing written
    assert audit_count(session, "person.update") == 1
    assert client.patch(f"{PEOPLE}/999999", json={"name": "X"},
                        headers=admin_headers).status_code == 404
    assert_422(client.patch(url, json={"organization_id": firms[1]}, headers=admin_headers),
               "organization_id")


def test_list_filters_and_pages(client, admin_headers, person, department, firms):
    harbor, coast = firms
    sales = department(harbor)
    boss = person(harbor, "Boss", department_id=sales["id"], external_ref="B-1")
    person(harbor, "Ann", manager_id=boss["id"], department_id=sales["id"])
    person(harbor, "Bo", manager_id=boss["id"], active=False)
    person(coast, "Cy")

    def names(query: str) -> list[str]:
        response = client.get(PEOPLE + query, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
        return [item["name"] for item in response.get_json()["items"]]

    assert names("") == ["Boss", "Ann", "Bo", "Cy"]
    assert names(f"?organization_id={coast}") == ["Cy"]
    assert names(f"?department_id={sales['id']}") == ["Boss", "Ann"]
    assert names(f"?manager_id={boss['id']}") == ["Ann", "Bo"]
    assert names("?active=false") == ["Bo"]
    assert names("?external_ref=%20b-1") == ["Boss"]
    assert names("?external_ref=%20%20") == []
    page = client.get(f"{PEOPLE}?page=2&page_size=3", headers=admin_headers).get_json()
    assert (page["total"], page["page"], page["page_size"], len(page["items"])) == (4, 2, 3, 1)
    assert_422(client.get(f"{PEOPLE}?per_page=2", headers=admin_headers), "per_page")
    assert_422(client.get(f"{DEPARTMENTS}?name=x", headers=admin_headers), "name")


def test_can_sign_in_says_whether_a_portal_user_is_the_person(client, admin_headers, app,
                                                              firms):
    from referral_service.db import session_scope
    from referral_service.services import auth

    with session_scope(app) as db_session:
        user = auth.create_user(session=db_session, email="sam@harbor.example",
                                password="long enough", role="partner",
                                organization_id=firms[0], name="Sam")
        person_id = user.person_id
    got = client.get(f"{PEOPLE}/{person_id}", headers=admin_headers).get_json()
    assert (got["name"], got["can_sign_in"]) == ("Sam", True)
    listed = client.get(PEOPLE, headers=admin_headers).get_json()["items"]
    assert [item["can_sign_in"] for item in listed] == [True]


# ------------------------------------------------------------------------- departments


def test_create_department_returns_201_and_the_whole_shape(client, admin_headers, post,
                                                           person, firms, department):
    head = person(firms[0])
    parent = department(firms[0], "Operations")
    response = post(DEPARTMENTS, {"organization_id": firms[0], "name": " Sales ",
                                  "parent_id": parent["id"], "head_person_id": head["id"],
                                  "external_ref": "D-1"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"id", "organization_id", "name", "parent_id", "head_person_id",
                         "external_ref", "created_at", "updated_at", "version"}
    assert (body["name"], body["parent_id"], body["head_person_id"]) == (
        "Sales", parent["id"], head["id"])
    assert response.headers["Location"] == f"{DEPARTMENTS}/{body['id']}"
    assert response.headers["ETag"] == f'"department-{body["id"]}-v1"'
    assert client.get(response.headers["Location"], headers=admin_headers).get_json() == body
    children = client.get(f"{DEPARTMENTS}?parent_id={parent['id']}",
                          headers=admin_headers).get_json()
    assert [item["id"] for item in children["items"]] == [body["id"]]


def test_department_references_stay_in_the_organization(post, client, admin_headers, person,
                                                        department, firms):
    harbor, coast = firms
    coast_dept, coast_person = department(coast, "Coast Ops"), person(coast)
    for body, field in [({"parent_id": coast_dept["id"]}, "parent_id"),
                        ({"head_person_id": coast_person["id"]}, "head_person_id"),
                        ({"parent_id": 999_999}, "parent_id")]:
        assert_422(post(DEPARTMENTS, {"organization_id": harbor, "name": "Sales", **body}),
                   field)
    sales = department(harbor)
    assert_422(client.patch(f"{DEPARTMENTS}/{sales['id']}",
                            json={"head_person_id": coast_person["id"]}, headers=admin_headers),
               "head_person_id")


def test_a_department_parent_cycle_is_a_422(client, admin_headers, department, firms):
    top = department(firms[0], "Top")
    middle = department(firms[0], "Middle", parent_id=top["id"])
    leaf = department(firms[0], "Leaf", parent_id=middle["id"])
    for parent in (leaf["id"], middle["id"], top["id"]):
        assert_422(client.patch(f"{DEPARTMENTS}/{top['id']}", json={"parent_id": parent},
                                headers=admin_headers), "parent_id")
    moved = client.patch(f"{DEPARTMENTS}/{leaf['id']}", json={"parent_id": top["id"]},
                         headers=admin_headers)
    assert moved.status_code == 200 and moved.get_json()["version"] == 2


def test_a_taken_department_name_or_external_ref_is_a_409(post, client, admin_headers,
                                                          department, firms):
    sales = department(firms[0], external_ref="D-1")
    for body in ({"name": "Sales"}, {"name": "Other", "external_ref": "d-1"}):
        response = post(DEPARTMENTS, {"organization_id": firms[0], **body})
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["existing_id"] == sales["id"]
    assert department(firms[1], external_ref="D-1")["name"] == "Sales"  # another firm's
    other = department(firms[0], "Other")
    clash = client.patch(f"{DEPARTMENTS}/{other['id']}", json={"name": "Sales"},
                         headers=admin_headers)
    assert clash.status_code == 409 and clash.get_json()["existing_id"] == sales["id"]


def test_department_patch_with_a_stale_etag_is_412(client, admin_headers, department, firms):
    sales = department(firms[0])
    url = f"{DEPARTMENTS}/{sales['id']}"
    etag = client.get(url, headers=admin_headers).headers["ETag"]
    assert client.patch(url, json={"name": "Sales East"},
                        headers={**admin_headers, "If-Match": etag}).status_code == 200
    assert client.patch(url, json={"name": "Sales West"},
                        headers={**admin_headers, "If-Match": etag}).status_code == 412
    assert client.get(url, headers=admin_headers).get_json()["name"] == "Sales East"


# ---------------------------------------------------------------------------- partners


def test_a_partner_reads_and_writes_only_its_own_organization(
        client, make_key, person, department, firms):
    harbor, coast = firms
    partner = make_key("partner", harbor)
    theirs, their_dept = person(coast, "Coast Person"), department(coast, "Coast Dept")
    mine = client.post(PEOPLE, json={"name": "Own Person"}, headers=partner)
    assert mine.status_code == 201 and mine.get_json()["organization_id"] == harbor
    own_dept = client.post(DEPARTMENTS, json={"name": "Own Dept", "organization_id": harbor},
                           headers=partner)
    assert own_dept.status_code == 201
    for url in (f"{PEOPLE}/{theirs['id']}", f"{DEPARTMENTS}/{their_dept['id']}"):
        assert client.get(url, headers=partner).status_code == 404
        assert client.patch(url, json={"name": "Mine Now"}, headers=partner).status_code == 404
    for url in (PEOPLE, DEPARTMENTS):
        assert client.post(url, json={"name": "Planted", "organization_id": coast},
                           headers=partner).status_code == 403
        listed = client.get(url, headers=partner).get_json()
        assert {item["organization_id"] for item in listed["items"]} == {harbor}
        assert client.get(f"{url}?organization_id={coast}", headers=partner).get_json() == {
            "items": [], "total": 0, "page": 1, "page_size": 50}
    assert_422(client.post(PEOPLE, json={"name": "X", "manager_id": theirs["id"]},
                           headers=partner), "manager_id")
    changed = client.patch(f"{PEOPLE}/{mine.get_json()['id']}",
                           json={"department_id": own_dept.get_json()["id"]}, headers=partner)
    assert changed.status_code == 200


def test_a_crm_key_reads_and_writes_every_organization(client, make_key, person, firms):
    crm = make_key("crm")
    theirs = person(firms[1])
    assert client.get(f"{PEOPLE}/{theirs['id']}", headers=crm).status_code == 200
    assert client.patch(f"{PEOPLE}/{theirs['id']}", json={"active": False},
                        headers=crm).status_code == 200
    assert client.post(DEPARTMENTS, json={"organization_id": firms[1], "name": "Ops"},
                       headers=crm).status_code == 201
