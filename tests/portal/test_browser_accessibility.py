"""Every portal page passes axe-core with no serious or critical violation, for head office and
a partner, on a desktop and on a phone (issue 16).

axe-core comes from the npm registry (scripts/test.sh installs it into .cache/axe); it is run
inside the page by Playwright's evaluate, which the portal's Content-Security-Policy does not
restrict (nothing is injected as a <script>).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.portal.conftest import record_referral
from tests.portal.test_browser import PHONE, browser, signed_in, site  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE_JS = Path(os.environ.get("AXE_CORE_JS") or Path(__file__).resolve().parents[2]
              / ".cache/axe/node_modules/axe-core/axe.min.js")
DESKTOP = {"width": 1280, "height": 900}
SEVERE = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is missing at {AXE_JS}: run scripts/test.sh, or "
                    "`npm install --prefix .cache/axe axe-core@4`", pytrace=False)
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pages(site) -> dict[str, list[str]]:  # noqa: F811
    """Make one of everything a page can show; return the paths each role can open."""
    network = site.network

    def api(method: str, path: str, body: dict) -> dict:
        response = requests.request(method, site.url + "/api/v1" + path, json=body,
                                    headers=site.api_headers, timeout=20)
        assert response.status_code in (200, 201), response.text
        return response.json()

    referral = record_referral(site.app, network.beta, network.alpha, client="Axe Client Ltd")
    manager = api("POST", "/people", {"organization_id": network.alpha, "name": "Mia Axe"})
    seller = api("POST", "/people", {"organization_id": network.alpha, "name": "Sam Axe",
                                     "manager_id": manager["id"]})
    department = api("POST", "/departments", {"organization_id": network.alpha,
                                              "name": "Axe Sales", "head_person_id": manager["id"]})
    visit = api("POST", "/visits", {
        "person_id": seller["id"], "client": {"name": "Axe Bicycles"},
        "visited_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "leads": [{"name": "Axe Frames", "skills": ["Anodizing"],
                   "description": "anodising of bicycle frames",
                   "location": {"city": "Kaohsiung", "country": "TW"}}]})
    lead = visit["leads"][0]["id"]
    month = datetime.now(UTC).strftime("%Y-%m")
    proposal = api("POST", "/kpi/target-proposals", {
        "scope": "organization", "scope_id": network.alpha, "month": month,
        "new_clients": 4, "note": "A fair aim"})
    shared = ["/dashboard", "/referrals", f"/referrals/{referral}", "/refer", "/visits",
              f"/visits/{visit['id']}", "/leads", f"/leads/{lead}", f"/leads/{lead}/refer",
              "/people", "/people/new", f"/people/{seller['id']}/edit", "/departments/new",
              f"/departments/{department['id']}/edit", "/targets",
              f"/targets/{proposal['id']}"]
    organization = f"organization_id={network.alpha}"
    return {
        "boss@example.com": [*shared, "/organizations", f"/organizations/{network.alpha}",
                             "/organizations/new", "/sign-ins",
                             "/match", "/skills", "/kpi", "/kpi?level=department",
                             "/kpi?level=person",
                             f"/visits/new?{organization}", f"/people?{organization}"],
        "alpha@example.com": [*shared, "/profile", "/visits/new", "/organizations",
                              f"/firms/{network.beta}",
                              "/no-such-page"],
    }


def severe_violations(page, axe_source: str) -> list[str]:
    """Run axe-core on the page as it is now; return its serious and critical findings."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{violation['id']} ({violation['impact']}): {violation['help']} at "
            f"{[node['target'] for node in violation['nodes']][:3]}"
            for violation in results["violations"] if violation["impact"] in SEVERE]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("email", ["boss@example.com", "alpha@example.com"])
def test_no_page_has_a_serious_accessibility_violation(browser, site, pages,  # noqa: F811
                                                        axe_source, email, viewport):
    page = signed_in(browser, site, email, viewport=viewport)
    found: dict[str, list[str]] = {}
    for path in pages[email]:
        page.goto(site.url + path)
        found[path] = severe_violations(page, axe_source)
    # Pages in their error state: a form sent empty shows its error summary.
    page.goto(site.url + "/refer")
    page.click("main form button[type=submit] >> nth=-1")
    found["/refer (errors)"] = severe_violations(page, axe_source)
    page.context.close()
    login = browser.new_context(viewport=viewport).new_page()
    login.goto(site.url + "/login")
    found["/login"] = severe_violations(login, axe_source)
    login.fill("#email", email)
    login.fill("#password", "wrong password")
    login.click("main button[type=submit]")
    found["/login (wrong password)"] = severe_violations(login, axe_source)
    login.context.close()
    assert {path: problems for path, problems in found.items() if problems} == {}


def test_the_audit_does_find_a_violation_when_there_is_one(browser, site, axe_source):  # noqa: F811
    page = signed_in(browser, site, "alpha@example.com")
    page.goto(site.url + "/dashboard")
    assert severe_violations(page, axe_source) == []
    # A button with no name and a low-contrast text: what axe must catch on this page.
    page.evaluate("""() => {
        const button = document.createElement('button');
        document.querySelector('main').appendChild(button);
        const faint = document.createElement('p');
        faint.textContent = 'Faint text';
        faint.style.color = '#eeeeee';
        document.querySelector('main').appendChild(faint);
    }""")
    found = " ".join(severe_violations(page, axe_source))
    assert "button-name" in found and "color-contrast" in found, found
    page.context.close()
