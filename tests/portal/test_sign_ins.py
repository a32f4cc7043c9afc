"""Head office manages sign-ins and firms in the portal (issue 16): invitations and new
passwords by one-time link, deactivation, adding a firm."""

from __future__ import annotations

import re

import pytest
from itsdangerous import URLSafeTimedSerializer

from tests.portal.conftest import KAOHSIUNG, Portal, csrf_token

LINK = re.compile(r'id="made-link"[^>]*value="(http://[^"]+/welcome/[^"]+)"')


def made_link(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:3000]
    found = LINK.search(response.get_data(as_text=True))
    assert found, "no link on the page"
    return found.group(1).split("localhost", 1)[1]


def sign_in(client, email: str, password: str):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email,
                                           "password": password})
    response.close()
    return response


def choose_password(client, path: str, password: str, repeat: str | None = None):
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                       "password": password,
                                       "repeat": password if repeat is None else repeat})
    response.close()
    return response


def invite(admin: Portal, **fields):
    data = {"email": "new.person@alpha.example", "name": "New Person", "role": "partner",
            "organization": "Alpha Machining", **fields}
    return admin.post("/sign-ins", data, token_from="/sign-ins")


def test_an_invited_person_chooses_a_password_once_and_signs_in(app, admin, network):
    link = made_link(invite(admin))
    fresh = app.test_client()
    # Before choosing a password, the sign-in works with none.
    assert sign_in(fresh, "new.person@alpha.example", "").status_code == 422
    mismatch = choose_password(fresh, link, "first-choice-2026", repeat="other-choice-2026")
    assert mismatch.status_code == 422
    assert "The two passwords differ." in mismatch.get_data(as_text=True)
    short = choose_password(fresh, link, "short")
    assert short.status_code == 422
    done = choose_password(fresh, link, "first-choice-2026")
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    signed = sign_in(fresh, "new.person@alpha.example", "first-choice-2026")
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/dashboard")
    # The person is one of Alpha's staff, and the link works only once.
    from models import Person, User
    from referral_service.db import session_scope

    with session_scope(app, write=False) as session:
        user = session.query(User).filter_by(email="new.person@alpha.example").one()
        assert (user.role, user.organization_id) == ("partner", network.alpha)
        assert session.get(Person, user.person_id).name == "New Person"
    again = app.test_client().get(link)
    assert again.status_code == 404
    assert "has been used or replaced" in again.get_data(as_text=True)


def test_bad_invitations_say_what_to_fix_and_create_nothing(app, admin, network):
    from models import User
    from referral_service.db import session_scope

    def users() -> int:
        with session_scope(app, write=False) as session:
            return session.query(User).count()

    before = users()
    for fields, problem in (
        ({"email": "alpha@example.com"}, "Already registered."),
        ({"organization": ""}, "Name the firm this person works for."),
        ({"organization": "No Such Firm"}, "No firm&#39;s name contains"),
        ({"email": "not-an-address"}, "Not an email."),
    ):
        response = invite(admin, **fields)
        assert response.status_code == 422, fields
        page = response.get_data(as_text=True)
        assert problem in page, (fields, page[:3000])
        assert 'id="error-summary"' in page
        assert 'id="made-link"' not in page
    assert users() == before
    head_office = invite(admin, email="second.boss@example.com", role="admin", organization="")
    made_link(head_office)
    assert users() == before + 1


def test_a_new_password_link_stops_the_old_password_and_ends_sessions(app, admin, network):
    from models import User
    from referral_service.db import session_scope

    fresh = app.test_client()
    assert sign_in(fresh, "alpha@example.com", "portal-pass-2026").status_code == 302
    assert fresh.get("/dashboard").status_code == 200
    with session_scope(app, write=False) as session:
        user_id = session.query(User).filter_by(email="alpha@example.com").one().id
    link = made_link(admin.post("/sign-ins/action", {"user_id": user_id, "action": "reset"},
                                token_from="/sign-ins"))
    assert fresh.get("/dashboard").status_code == 302  # signed out everywhere
    assert sign_in(app.test_client(), "alpha@example.com", "portal-pass-2026"
                   ).status_code == 422
    other = app.test_client()
    assert choose_password(other, link, "brand-new-pass-2026").status_code == 302
    assert sign_in(other, "alpha@example.com", "brand-new-pass-2026").status_code == 302
    # A second link replaces the first, unused one.
    first = made_link(admin.post("/sign-ins/action", {"user_id": user_id, "action": "reset"},
                                 token_from="/sign-ins"))
    second = made_link(admin.post("/sign-ins/action", {"user_id": user_id, "action": "reset"},
                                  token_from="/sign-ins"))
    assert app.test_client().get(first).status_code == 404
    assert app.test_client().get(second).status_code == 200


def test_deactivated_sign_ins_end_and_head_office_cannot_lock_itself_out(app, admin, network):
    fresh = app.test_client()
    assert sign_in(fresh, "beta@example.com", "portal-pass-2026").status_code == 302
    page = admin.text("/sign-ins")
    assert "Deactivate<span class=\"visually-hidden\"> beta@example.com" in page
    assert "Deactivate<span class=\"visually-hidden\"> boss@example.com" not in page
    done = admin.post("/sign-ins/action", {"user_id": network.beta_user,
                                           "action": "deactivate"}, token_from="/sign-ins")
    assert done.status_code == 302
    assert fresh.get("/dashboard").status_code == 302
    assert sign_in(app.test_client(), "beta@example.com", "portal-pass-2026"
                   ).status_code == 422
    assert "deactivated" in admin.text("/sign-ins?q=beta")
    own = admin.post("/sign-ins/action", {"user_id": network.admin_user,
                                          "action": "deactivate"}, token_from="/sign-ins")
    assert own.status_code == 422
    assert admin.get("/dashboard").status_code == 200


@pytest.mark.parametrize("token", [
    "not-a-token",
    URLSafeTimedSerializer("another secret", salt="portal-password-link").dumps(
        {"user": 1, "fingerprint": "x"}),
], ids=["garbage", "signed-with-another-secret"])  # fixed ids: the token holds a time
def test_a_forged_link_is_a_plain_404(client, network, token):
    response = client.get(f"/welcome/{token}", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "not valid" in response.get_data(as_text=True)


def test_a_partner_manages_no_sign_ins_and_adds_no_firms(partner, network):
    for path in ("/sign-ins", "/organizations/new"):
        assert partner.get(path).status_code == 403, path
    token = csrf_token(partner.text("/dashboard"))
    for path, data in (("/sign-ins", {"email": "x@y.example", "role": "admin"}),
                       ("/sign-ins/action", {"user_id": network.admin_user,
                                             "action": "deactivate"})):
        response = partner.client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 403, path


def test_head_office_adds_a_firm_and_an_error_keeps_what_was_typed(app, admin, client,
                                                                     admin_headers):
    form = {"name": "Delta Coatings", "description": "Powder coating of steel frames",
            "skills": "Powder coating\nSandblasting", "capacity": "5", "kind": "partner",
            "group": "", "active": "y", "offices-0-label": "Works",
            "offices-0-city": "Kaohsiungg", "offices-0-country": "TW",
            "offices-0-service_radius_km": "80", "save": "1"}
    refused = admin.post("/organizations/new", form)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "Office 1, City" in page and 'value="Kaohsiungg"' in page
    form.update({"offices-0-city": "", "offices-0-latitude": str(KAOHSIUNG["latitude"]),
                 "offices-0-longitude": str(KAOHSIUNG["longitude"])})
    done = admin.post("/organizations/new", form, token_from="/organizations/new")
    assert done.status_code == 302
    firm_id = int(done.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/organizations/{firm_id}", headers=admin_headers).get_json()
    assert (body["name"], body["capacity"], body["skills"]) == (
        "Delta Coatings", 5, ["powder-coating", "sandblasting"])
    assert body["offices"][0]["service_radius_km"] == 80
