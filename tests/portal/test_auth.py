"""Signing in and out, the session cookie, CSRF, roles and error pages."""

from __future__ import annotations

from referral_service import create_app
from tests.portal.conftest import PASSWORD, Portal, csrf_token


def sign_in(client, email: str, password: str = PASSWORD, next_: str = ""):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": password,
                                           "next": next_, "csrf_token": token})
    response.close()
    return response


def test_site_root_sends_a_signed_out_visitor_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")


def test_signed_out_visitor_is_sent_to_sign_in_and_back_after(client, network):
    response = client.get("/referrals?status=pending")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]
    signed_in = sign_in(client, "alpha@example.com", next_="/referrals?status=pending")
    assert signed_in.headers["Location"] == "/referrals?status=pending"


def test_sign_in_opens_the_dashboard_with_a_hardened_cookie(client, network):
    response = sign_in(client, "Alpha@Example.com ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Alpha Machining" in page
    assert "Signed in as alpha@example.com" in page


def test_session_cookie_is_secure_unless_turned_off(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "TESTING": True})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    app.extensions["db_engine"].dispose()


def test_wrong_password_is_shown_beside_the_field_and_the_email_is_kept(client, network):
    response = sign_in(client, "alpha@example.com", password="not-the-password")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "do not match an active account" in page
    assert 'value="alpha@example.com"' in page
    assert 'aria-invalid="true"' in page
    assert client.get("/dashboard").status_code == 302


def test_sign_in_never_redirects_to_another_site(client, network):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = sign_in(client, "alpha@example.com", next_=target)
        assert response.headers["Location"] == "/dashboard", target
        client.post("/logout", data={"csrf_token": csrf_token(
            client.get("/dashboard").get_data(as_text=True))}).close()


def test_a_post_without_the_csrf_token_is_refused(partner, network):
    name_before = partner.text(f"/organizations/{network.alpha}")
    response = partner.client.post(f"/organizations/{network.alpha}",
                                   data={"name": "Hijacked", "save": "1"})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert "Hijacked" not in partner.text(f"/organizations/{network.alpha}")
    assert "Alpha Machining" in name_before


def test_sign_in_without_the_csrf_token_is_refused(client, network):
    response = client.post("/login", data={"email": "alpha@example.com",
                                           "password": PASSWORD})
    assert response.status_code == 400


def test_the_json_api_needs_no_csrf_token(client, admin_headers, network):
    response = client.patch(f"/api/v1/organizations/{network.alpha}",
                            json={"capacity": 3}, headers=admin_headers)
    assert response.status_code == 200


def test_sign_out_is_a_post_that_ends_the_session(partner):
    assert partner.get("/logout").status_code == 405
    response = partner.post("/logout", {}, token_from="/dashboard")
    assert response.headers["Location"].endswith("/login")
    assert partner.get("/dashboard").status_code == 302


def test_changing_the_password_ends_other_sessions(app, partner, network):
    from models import User
    from referral_service.db import session_scope

    assert partner.get("/dashboard").status_code == 200
    with session_scope(app) as session:
        session.get(User, network.partner_user).password_hash = "pbkdf2:sha256:1000$x$y"
        session.commit()
    assert partner.get("/dashboard").status_code == 302


def test_an_old_session_must_sign_in_again(partner):
    with partner.client.session_transaction() as cookie:
        cookie["signed_in_at"] -= 13 * 3600
    assert partner.get("/dashboard").status_code == 302


def test_a_partner_gets_403_on_head_office_pages(partner):
    for path in ("/organizations", "/match", "/kpi", "/kpi/export?format=csv"):
        response = partner.get(path)
        assert response.status_code == 403, path
        assert "text/html" in response.content_type
        page = response.get_data(as_text=True)
        assert "This page is for head office" in page, path
        assert "CRM" not in page, path  # API wording means nothing to a partner's staff


def test_a_partner_gets_404_for_another_firms_profile(partner, network):
    response = partner.get(f"/organizations/{network.beta}")
    assert response.status_code == 404
    assert "Beta Finishing" not in response.get_data(as_text=True)


def test_unknown_pages_are_html_for_browsers_and_problem_json_for_the_api(client):
    page = client.get("/no-such-page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert "text/html" in page.content_type
    api = client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.content_type == "application/problem+json"


def test_head_office_sees_every_menu_item(admin):
    page = admin.text("/dashboard")
    for label in ("Organizations", "Match", "KPI", "Refer a client"):
        assert f">{label}</a>" in page


def test_pages_forbid_framing_and_scripts(partner):
    response = partner.get("/dashboard")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_too_many_sign_in_attempts_are_slowed_down(database_url, network):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "TESTING": True,
                      "SESSION_COOKIE_SECURE": False, "RATELIMIT_LOGIN": "3 per minute",
                      "RATELIMIT_STORAGE_URI": "memory://"})
    client = app.test_client()
    statuses = [sign_in(client, "alpha@example.com", password="wrong-password").status_code
                for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    app.extensions["db_engine"].dispose()


def test_portal_class_signs_in_without_a_password(client, network):
    Portal(client, network.admin_user)
    assert client.get("/dashboard").status_code == 200


def test_form_text_with_a_nul_character_is_refused_with_a_page_not_a_crash(client, network):
    response = sign_in(client, "alpha\x00@example.com", password="whatever")
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def _copy_of(client, app):
    """Another browser holding a copy of this client's session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_a_copied_cookie_reused_after_sign_out_gets_the_sign_in_page(app, client, network):
    """Issue 11, row 2: signing out ends the session on the server, every copy of it."""
    assert sign_in(client, "alpha@example.com").status_code == 302
    copied = _copy_of(client, app)
    assert copied.get("/dashboard").status_code == 200
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    response = copied.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert copied.get("/referrals").status_code == 302
    # Signing in again works, with a new session.
    assert sign_in(client, "alpha@example.com").status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_sign_out_ends_every_session_of_that_person(app, network):
    phone, desk = app.test_client(), app.test_client()
    for browser in (phone, desk):
        assert sign_in(browser, "alpha@example.com").status_code == 302
    token = csrf_token(phone.get("/dashboard").get_data(as_text=True))
    phone.post("/logout", data={"csrf_token": token})
    assert desk.get("/dashboard").status_code == 302


def test_a_new_password_ends_every_session_even_a_copied_cookie(app, client, network):
    from referral_service.db import session_scope
    from referral_service.services import auth

    assert sign_in(client, "alpha@example.com").status_code == 302
    copied = _copy_of(client, app)
    with session_scope(app) as session:
        auth.set_password(session=session, user_id=network.partner_user,
                          password="a-new-pass-2026")
    assert client.get("/dashboard").status_code == 302
    assert copied.get("/dashboard").status_code == 302
    assert sign_in(client, "alpha@example.com", password="a-new-pass-2026").status_code == 302


def test_deactivating_a_user_or_their_person_ends_their_sessions(app, client, network,
                                                                  admin_headers):
    from models import User
    from referral_service.db import session_scope
    from referral_service.services import auth

    beta = app.test_client()
    assert sign_in(client, "alpha@example.com").status_code == 302
    assert sign_in(beta, "beta@example.com").status_code == 302
    with session_scope(app) as session:
        auth.deactivate_user(session=session, user_id=network.partner_user)
    assert client.get("/dashboard").status_code == 302
    assert sign_in(client, "alpha@example.com").status_code == 422
    # Beta's user is a person: deactivated through the API, the sign-in goes with them.
    person = client.post("/api/v1/people", headers=admin_headers, json={
        "organization_id": network.beta, "name": "Beta Staff"}).get_json()["id"]
    with session_scope(app) as session:
        session.get(User, network.beta_user).person_id = person
        session.commit()
    assert beta.get("/dashboard").status_code == 200
    assert client.patch(f"/api/v1/people/{person}", json={"active": False},
                        headers=admin_headers).status_code == 200
    assert beta.get("/dashboard").status_code == 302
    assert sign_in(beta, "beta@example.com").status_code == 422


def test_reactivating_a_person_does_not_bring_back_their_old_sessions(app, client, network,
                                                                     admin_headers):
    from models import User
    from referral_service.db import session_scope

    beta = app.test_client()
    assert sign_in(beta, "beta@example.com").status_code == 302
    person = client.post("/api/v1/people", headers=admin_headers, json={
        "organization_id": network.beta, "name": "Beta Staff"}).get_json()["id"]
    with session_scope(app) as session:
        session.get(User, network.beta_user).person_id = person
        session.commit()
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = beta.get_cookie(name).value
    for active in (False, True):
        assert client.patch(f"/api/v1/people/{person}", json={"active": active},
                            headers=admin_headers).status_code == 200
    copied = app.test_client()
    copied.set_cookie(name, cookie)
    assert copied.get("/dashboard").status_code == 302
    assert sign_in(beta, "beta@example.com").status_code == 302
    assert beta.get("/dashboard").status_code == 200


def _lockout_app(database_url, **config):
    import secrets

    return create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "TESTING": True,
                       "SESSION_COOKIE_SECURE": False, "RATELIMIT_LOGIN": "100 per hour",
                       "RATELIMIT_STORAGE_URI": "memory://", "LOGIN_LOCKOUT_FAILURES": 3,
                       "LOGIN_LOCKOUT_SECONDS": 60,
                       "RATELIMIT_KEY_PREFIX": "test-" + secrets.token_hex(6), **config})


def test_an_account_is_locked_after_failed_sign_ins_from_any_address(database_url, network):
    """Issue 11, row 8: a per-account lockout, whatever address the guesses come from."""
    app = _lockout_app(database_url)
    client = app.test_client()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        client.environ_base["REMOTE_ADDR"] = address
        assert sign_in(client, "alpha@example.com", password="wrong-password").status_code \
            == 422
    client.environ_base["REMOTE_ADDR"] = "10.0.0.4"
    locked = sign_in(client, "ALPHA@example.com")  # the right password, while locked
    assert locked.status_code == 429
    assert 55 <= int(locked.headers["Retry-After"]) <= 60
    # Another account is not affected; a success forgets its failures.
    assert sign_in(client, "beta@example.com", password="wrong-password").status_code == 422
    assert sign_in(client, "beta@example.com").status_code == 302
    app.extensions["db_engine"].dispose()


def test_the_lockout_backs_off_with_each_further_failure(database_url, network):
    import time

    app = _lockout_app(database_url, LOGIN_LOCKOUT_FAILURES=2, LOGIN_LOCKOUT_SECONDS=1)
    client = app.test_client()
    for _ in range(2):
        sign_in(client, "alpha@example.com", password="wrong-password")
    assert int(sign_in(client, "alpha@example.com").headers["Retry-After"]) == 1
    time.sleep(1.2)
    assert sign_in(client, "alpha@example.com", password="wrong-password").status_code == 422
    assert int(sign_in(client, "alpha@example.com").headers["Retry-After"]) == 2
    app.extensions["db_engine"].dispose()


def test_sign_in_limits_and_lockouts_are_shared_by_workers_through_redis(database_url,
                                                                          network):
    import secrets

    prefix = "test-" + secrets.token_hex(6)
    workers = [_lockout_app(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379",
                            RATELIMIT_KEY_PREFIX=prefix, RATELIMIT_LOGIN="4 per hour")
               for _ in range(2)]
    a, b = (worker.test_client() for worker in workers)
    assert sign_in(a, "alpha@example.com", password="wrong-password").status_code == 422
    assert sign_in(b, "alpha@example.com", password="wrong-password").status_code == 422
    assert sign_in(a, "alpha@example.com", password="wrong-password").status_code == 422
    assert sign_in(b, "alpha@example.com").status_code == 429  # locked on the other worker
    assert sign_in(a, "beta@example.com").status_code == 429  # the address's 5th attempt
    for worker in workers:
        worker.extensions["db_engine"].dispose()
