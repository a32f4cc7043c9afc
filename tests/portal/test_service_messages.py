"""Messages worded by the services reach the portal in the user's language (issue 16): each is
a texts.Text (the English message, keeping its template and parameters), written through
gettext by the portal, while the API keeps English problem+json."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import orjson
import pytest

from referral_service.texts import N_, Text
from tests.conftest import office, org_payload
from tests.portal.conftest import csrf_token, record_referral
from tests.portal.test_profile import profile_form
from tests.portal.test_refer import NEED

JA = {"Accept-Language": "ja"}
ZH = {"Accept-Language": "zh-TW"}
ROOT = Path(__file__).resolve().parents[2]
SERVICE_ERRORS = {"NotFound", "Forbidden", "Conflict", "InvalidTransition",
                  "PreconditionFailed", "ValidationFailed", "Unavailable", "ServiceError",
                  "GeocodingError", "GeocodingUnavailable"}


def test_a_text_is_its_english_message_and_keeps_its_template():
    text = N_("Unknown city '%(city)s' in %(country)s.", city="Taichungg", country="TW")
    assert text == "Unknown city 'Taichungg' in TW."
    assert isinstance(text, str)
    assert (text.template, text.params) == ("Unknown city '%(city)s' in %(country)s.",
                                            {"city": "Taichungg", "country": "TW"})
    assert orjson.loads(orjson.dumps({"detail": text})) == {"detail": text}
    copy = pickle.loads(pickle.dumps(text))
    assert (copy, copy.template, copy.params) == (text, text.template, text.params)
    assert N_("50% off") == "50% off"  # no parameters: the template as it is


def test_an_unknown_city_in_an_office_is_told_in_japanese_beside_the_field(partner, network):
    form = profile_form(partner, network.alpha)
    form.update({"offices-0-city": "Taichungg", "offices-0-country": "TW",
                 "offices-0-latitude": "", "offices-0-longitude": "", "save": "1"})
    response = partner.client.post(f"/organizations/{network.alpha}", data=form, headers=JA)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    message = re.search(r'<p class="error" id="offices-0-city-error">([^<]*)</p>', page)
    assert message, page[:3000]
    assert message.group(1) == "TW に「Taichungg」という都市は見つかりません。"
    assert "Unknown city" not in page


def test_a_client_referred_already_is_told_in_chinese(app, partner, network):
    existing = record_referral(app, network.gamma, network.beta, client=NEED["client_name"])
    page = partner.client.get("/refer", headers=ZH).get_data(as_text=True)
    response = partner.client.post("/refer", headers=ZH, data={
        **NEED, "record": "1", "receiver": str(network.beta), "csrf_token": csrf_token(page)})
    text = response.get_data(as_text=True)
    assert response.status_code == 409, text[:2000]
    assert f"此客戶已歸屬於轉介 {existing}；最先登錄客戶的公司保有業績。" in text
    assert "already attributed" not in text


def test_the_api_keeps_english_problems_whatever_the_browser_asks(client, admin_headers):
    response = client.post("/api/v1/organizations", headers={**admin_headers, **JA},
                           json=org_payload(offices=[office("Taichungg", "TW")]))
    assert response.status_code == 422
    assert response.get_json()["errors"]["offices"]["0"]["city"] == [
        "Unknown city 'Taichungg' in TW."]


def _literal_messages(path: Path) -> list[str]:
    """Where a domain error is raised with a message written out (a string or an f-string)
    rather than a Text (N_), a variable or a call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in SERVICE_ERRORS and node.args
                and isinstance(node.args[0], ast.Constant | ast.JoinedStr)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_message_the_services_and_adapters_raise_is_translatable():
    package = ROOT / "referral_service"
    found = [line for folder in ("services", "adapters")
             for path in sorted((package / folder).rglob("*.py"))
             for line in _literal_messages(path)]
    assert found == [], "wrap these messages in texts.N_(template, **params)"


def test_the_readmes_extraction_finds_the_services_texts(tmp_path):
    import subprocess
    import sys

    from babel.messages.pofile import read_po

    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
         str(ROOT / "babel.cfg"), "-k", "lazy_gettext", "-k", "_l", "--no-location",
         "-o", str(pot), str(ROOT / "referral_service" / "portal")],
        check=True, capture_output=True)
    with open(pot, "rb") as handle:
        ids = {message.id for message in read_po(handle)}
    assert "The receiver is at capacity: it has as many open referrals as it accepts; choose " \
           "another firm." in ids  # services/referrals.py
    assert "Unknown city '%(city)s' in %(country)s." in ids  # adapters/geocoding.py
    assert "Save profile" in ids  # and still the portal's own (portal/forms.py)
    assert "Referrals of this firm" in ids  # templates


@pytest.mark.parametrize("message", [N_("the receiver"), "plain"])
def test_said_writes_a_text_in_the_users_language_and_leaves_the_rest(app, message):
    from referral_service.portal.forms import said

    with app.test_request_context("/", headers=JA):
        assert said(message) == ("紹介先" if isinstance(message, Text) else "plain")
        nested = N_("As %(role)s you may not move a referral to %(status)r.",
                    role=N_("the receiver"), status="accepted")
        # each parameter said too: a Text, and a stored word (a status) through WORDS
        assert said(nested) == "紹介先として、紹介を '受諾済み' に変更することはできません。"
