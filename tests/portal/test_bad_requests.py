"""What a malformed or oversized request gets from the portal: a clear page, never a 500."""

from __future__ import annotations

import pytest

from tests.portal.conftest import PASSWORD, csrf_token

TWO_MIB = 2 * 1024 * 1024


@pytest.mark.parametrize("target", [
    "/dashboard\r\nSet-Cookie: x=1",
    "/dashboard\nLocation: https://evil.example/",
    "/referrals\x7f",
    "/\tevil.example",
    "/referrals\\..\\evil",
    "https://evil.example/",
    "//evil.example/x",
    "/\\evil.example",
], ids=["crlf-header", "lf-header", "del", "tab", "backslash", "absolute", "scheme-relative",
        "slash-backslash"])
def test_sign_in_with_a_bad_next_lands_on_the_dashboard(client, network, target):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "alpha@example.com", "password": PASSWORD,
                                           "next": target, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert "x=1" not in response.headers.get("Set-Cookie", "")


def test_sign_in_keeps_a_good_next_with_a_query(client, network):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "alpha@example.com", "password": PASSWORD,
                                           "next": "/referrals?status=pending&page=2",
                                           "csrf_token": token})
    assert response.headers["Location"] == "/referrals?status=pending&page=2"


@pytest.mark.parametrize("path", ["/logout", "/login", "/refer"])
def test_a_portal_post_over_the_body_limit_is_a_413_page(client, network, path):
    response = client.post(path, data={"x": "a" * TWO_MIB},
                           headers={"Accept": "text/html"})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "too large" in response.get_data(as_text=True).lower()


def test_a_signed_in_portal_post_over_the_body_limit_is_a_413_page(partner, network):
    response = partner.client.post("/logout", data={"x": "a" * TWO_MIB},
                                   headers={"Accept": "text/html"})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    # The page's own sign-out form is still there, with a token: it read nothing of the body.
    assert 'name="csrf_token"' in response.get_data(as_text=True)
