"""Need to know (SPEC section 11): until it accepts, a receiver sees the need, the skills and
the client's city, not who the client is; after it accepts, all. The referrer and head office
always see all."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

BASE = "/api/v1/referrals"
# What identifies the client (and who introduced them): none may reach the receiver early.
SECRETS = ("Secret Harbour Bikes", "CRM-SECRET-77", "1 Hidden Lane", "22.6301",
           "120.3102", "Ann Introducer", "ann@introducer.example", "Cora Consentgiver")
# The consent's `by` may name a person at the client: withheld too (given_at is not).
CLIENT = {"name": "Secret Harbour Bikes", "external_ref": "CRM-SECRET-77",
          "location": {"address": "1 Hidden Lane", "city": "Kaohsiung", "country": "TW",
                       "latitude": 22.6301, "longitude": 120.3102},
          "consent": {"given_at": "2026-11-30T09:00:00Z", "by": "Cora Consentgiver"}}


@pytest.fixture
def world(make_org, make_key, client, admin_headers):
    alpha = make_org(name="Alpha Receiving", capacity=None)["id"]
    beta = make_org(name="Beta Referring", capacity=None)["id"]
    receiver, referrer = make_key("partner", alpha), make_key("partner", beta)
    response = client.post(BASE, headers=referrer, json={
        "referrer_organization_id": beta, "receiver_organization_id": alpha,
        "client": CLIENT, "skills": ["CNC Machining"], "description": "Bicycle frame jigs",
        "note": "Met at the fair",
        "source": {"kind": "acquaintance", "name": "Ann Introducer",
                   "contact": "ann@introducer.example"}})
    assert response.status_code == 201, response.get_json()
    return {"alpha": alpha, "beta": beta, "receiver": receiver, "referrer": referrer,
            "admin": admin_headers, "referral": response.get_json()["id"]}


def leaked(body) -> list[str]:
    text = json.dumps(body)
    return [secret for secret in SECRETS if secret in text]


def test_a_receiver_sees_the_need_and_the_city_until_it_accepts(client, world):
    referral = client.get(f"{BASE}/{world['referral']}", headers=world["receiver"]).get_json()
    assert leaked(referral) == []
    assert referral["client"]["name"] is None and referral["client"]["external_ref"] is None
    assert referral["client"]["location"] == {"latitude": None, "longitude": None,
                                              "city": "Kaohsiung", "country": "TW",
                                              "address": None}
    assert (referral["skills"], referral["description"]) == (["cnc-machining"],
                                                             "Bicycle frame jigs")
    assert referral["source"] == {"kind": "acquaintance", "name": None}
    listed = client.get(BASE, headers=world["receiver"]).get_json()
    assert listed["total"] == 1 and leaked(listed) == []
    # Nor can it find the client by name, or learn its place in an order by name.
    assert client.get(f"{BASE}?client=secret", headers=world["receiver"]).get_json()[
        "total"] == 0
    assert leaked(client.get(f"{BASE}?sort=client", headers=world["receiver"]).get_json()) == []
    # The referrer and head office see all.
    for who in ("referrer", "admin"):
        full = client.get(f"{BASE}/{world['referral']}", headers=world[who]).get_json()
        assert full["client"]["name"] == "Secret Harbour Bikes", who
        assert full["source"]["contact"] == "ann@introducer.example", who
        assert client.get(f"{BASE}?client=secret", headers=world[who]).get_json()[
            "total"] == 1, who


def test_a_receiver_that_accepts_sees_all_and_one_that_declines_never(client, world):
    accepted = client.patch(f"{BASE}/{world['referral']}", json={"status": "accepted"},
                            headers=world["receiver"])
    assert accepted.status_code == 200
    assert accepted.get_json()["client"]["name"] == "Secret Harbour Bikes"
    assert accepted.get_json()["client"]["location"]["address"] == "1 Hidden Lane"
    assert client.get(f"{BASE}/{world['referral']}", headers=world["receiver"]).get_json()[
        "source"]["name"] == "Ann Introducer"
    # Another referral, declined: the answer to the decline and every read stay withheld.
    other = client.post(BASE, headers=world["referrer"], json={
        "referrer_organization_id": world["beta"], "receiver_organization_id": world["alpha"],
        "client": {"name": "Quiet Frames Ltd", "external_ref": "CRM-QUIET-1"},
        "skills": ["CNC Machining"], "description": "Jigs"}).get_json()["id"]
    declined = client.patch(f"{BASE}/{other}", json={"status": "declined"},
                            headers=world["receiver"])
    assert declined.status_code == 200
    for body in (declined.get_json(),
                 client.get(f"{BASE}/{other}", headers=world["receiver"]).get_json()):
        assert body["client"]["name"] is None and body["client"]["external_ref"] is None
        assert "Quiet Frames" not in json.dumps(body)
    names = {item["id"]: item["client"]["name"]
             for item in client.get(BASE, headers=world["receiver"]).get_json()["items"]}
    assert names == {world["referral"]: "Secret Harbour Bikes", other: None}


def test_every_endpoint_a_receiver_can_read_keeps_the_client_unknown(client, world):
    """Every GET of the document, called as the receiver with the ids it may use: no value
    that identifies the client appears in any answer."""
    document = client.get("/api/v1/openapi.json").get_json()
    ids = {"referral_id": world["referral"], "organization_id": world["alpha"]}
    called = []
    for path, operations in document["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", path)
        if any(name not in ids for name in names):
            continue
        url = re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)
        if path.endswith("/kpi/monthly"):
            url += "?month=" + datetime.now(UTC).strftime("%Y-%m")
        response = client.get(url, headers=world["receiver"])
        if response.status_code != 200 or not response.is_json:
            continue
        called.append(path)
        assert leaked(response.get_json()) == [], path
    assert {"/api/v1/referrals", "/api/v1/referrals/{referral_id}",
            "/api/v1/kpi/monthly"} <= set(called), called
