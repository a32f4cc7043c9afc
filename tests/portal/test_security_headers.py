"""Security headers on every response class (issue 11, row 10), found by walking app.url_map.

Every route of the app is called with each of its methods (signed in as head office for the
portal, with an admin key for the API), plus the KPI's CSV and XLSX and 404s outside any
blueprint; each answer is checked by what it is: an HTML page, the API docs page, or data
(JSON, problems, CSV, XLSX, images), and static assets.
"""

from __future__ import annotations

import re

import pytest

from referral_service.headers import DATA_POLICY, PAGE_POLICY

SAMPLE_ARGUMENTS = {"month": "2026-03", "move": "accept"}
STATIC_FILES = {"swagger_assets.swagger_assets": "swagger-ui.css", "portal.static": "portal.css",
                "static": "nothing.css"}
STATIC_ENDPOINTS = {"swagger_assets.swagger_assets", "portal.static"}
API_ENDPOINTS = ("api-docs.", "organizations.", "skills.", "matching.", "referrals.", "kpi.",
                 "audit.", "people.", "departments.", "visits.", "leads.")
DOCS_POLICY = re.compile(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'; .*frame-ancestors 'none'")


def url_of(rule, ids: dict[str, int]) -> str:
    values = {}
    for name in rule.arguments:
        if name == "filename":
            values[name] = STATIC_FILES[rule.endpoint]
        elif name in SAMPLE_ARGUMENTS:
            values[name] = SAMPLE_ARGUMENTS[name]
        else:
            values[name] = ids.get(name, 1)
    return rule.build(values, append_unknown=False)[1]


def response_class(response, endpoint: str) -> str:
    if endpoint in STATIC_ENDPOINTS and response.status_code == 200:
        return "static"
    if response.mimetype == "text/html":
        return "docs" if endpoint.endswith("openapi_swagger_ui") else "page"
    return "data:" + response.mimetype


def check(response, endpoint: str) -> str:
    kind = response_class(response, endpoint)
    headers = response.headers
    where = f"{endpoint} {response.status_code} {response.mimetype}"
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    if kind == "static":
        assert headers.get("Cache-Control") != "no-store", where
        return kind
    if endpoint.startswith(API_ENDPOINTS) or kind != "data:" + "image/png":
        assert headers.get("Cache-Control") == "no-store", where
    else:  # a chart the portal lets the browser keep a minute: never a shared cache
        assert headers.get("Cache-Control", "").startswith("private"), where
    if kind == "page":
        assert headers.get("Content-Security-Policy") == PAGE_POLICY, where
    elif kind == "docs":
        assert DOCS_POLICY.search(headers.get("Content-Security-Policy", "")), where
    else:
        assert headers.get("Content-Security-Policy") == DATA_POLICY, where
    if kind in ("page", "docs"):
        assert headers.get("X-Frame-Options") == "DENY", where
        assert headers.get("Referrer-Policy") == "same-origin", where
    return kind


def test_every_route_and_method_answers_with_the_headers_of_its_class(
    app, admin, network, make_key
):
    api_headers = make_key("admin")
    ids = {"organization_id": network.alpha}
    seen: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        url = url_of(rule, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            api = rule.rule.startswith("/api/")
            kwargs = {"headers": api_headers, "json": {}} if api else {"data": {}}
            if method in ("GET", "DELETE"):
                kwargs.pop("json", None)
                kwargs.pop("data", None)
            response = admin.client.open(url, method=method, **kwargs)
            response.close()
            assert response.status_code < 500, (method, url, response.status_code)
            seen.setdefault(check(response, rule.endpoint), set()).add(f"{method} {url}")
    for query in ("csv", "xlsx", "json"):
        response = admin.client.get(f"/api/v1/kpi/monthly?month=2026-03&format={query}",
                                    headers=api_headers)
        assert response.status_code == 200
        seen.setdefault(check(response, "kpi.MonthlyKpi"), set()).add(query)
    assert {"page", "docs", "static", "data:application/json", "data:application/problem+json",
            "data:text/csv"} <= set(seen), sorted(seen)
    assert any("spreadsheetml" in kind for kind in seen), sorted(seen)


def test_a_404_outside_the_portal_has_the_headers_of_its_class(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert check(page, "") == "page"
    problem = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert problem.status_code == 404
    assert check(problem, "") == "data:application/problem+json"
    api = client.get("/api/v1/no-such-thing")
    assert check(api, "") == "data:application/problem+json"


def test_the_docs_page_allows_exactly_its_own_inline_script(client):
    import base64
    import hashlib

    response = client.get("/api/v1/docs")
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    for src in re.findall(r'src="([^"]+)"', html):
        assert src.startswith("/api/v1/docs/assets/"), src  # 'self' covers them


@pytest.mark.browser
@pytest.mark.slow
def test_swagger_ui_works_under_its_policy_in_a_browser(live_server):
    from playwright.sync_api import sync_playwright

    from tests.portal.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            messages: list[str] = []
            page.on("console", lambda message: messages.append(message.text))
            page.goto(live_server.url + "/api/v1/docs")
            page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            assert page.locator(".swagger-ui .opblock").count() > 10
        finally:
            chromium.close()
    assert not [m for m in messages if "Content Security Policy" in m], messages
