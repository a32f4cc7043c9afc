"""Object-level authorization: what each key may read and change, for every API operation.

The matrix below has one entry per operation of /api/v1/openapi.json, read from the document
itself, so that a new endpoint without an entry fails the test. Each entry lists what a partner
key of firm Alpha tries against firm Bravo's objects (Bravo's profile, referrals between Bravo
and Charlie, Bravo's KPI row and target): no answer may carry Bravo's data, and nothing may
change (everything is read back as admin and compared with the state before).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from tests.conftest import org_payload

API = "/api/v1"
MONTH = datetime.now(UTC).strftime("%Y-%m")
MOVES = ("accepted", "declined", "withdrawn", "expired", "converted", "lost")

# Text only Bravo and the Bravo-Charlie referrals hold: none of it may reach Alpha.
BRAVO_PRIVATE = ("bravo-private-description", "EXT-BRAVO-7", "12 Bravo Lane",
                 "Client Of Bravo", "bravo-note-secret", "charlie-note-secret",
                 "Client Of Charlie", "Bravo Staffer Secret", "EXT-BRAVO-P1",
                 "bravo-staff@secret.example", "Bravo Dept Secret", "EXT-BRAVO-D1",
                 "Client Bravo Visited", "Bravo Lead Secret", "bravo-visit-notes",
                 "bravo-target-note")
BRAVO_NAME = "Bravo Secret Works"


@dataclass
class World:
    """Three firms, their referrals and keys; ids filled in by the fixture."""

    alpha: int
    bravo: int
    charlie: int
    bravo_to_charlie: int  # a referral Alpha is no party to
    charlie_to_bravo: int
    alpha_to_bravo: int  # Alpha's own referrals, for the role tests
    bravo_to_alpha: int
    partner: dict[str, str]  # Alpha's key
    crm: dict[str, str]
    admin: dict[str, str]
    bravo_etag: str = ""
    referral_etags: dict[int, str] = field(default_factory=dict)  # as an admin read them
    bravo_person: int = 0  # a person of Bravo, in Bravo's department
    bravo_department: int = 0
    bravo_person_etag: str = ""
    bravo_department_etag: str = ""
    bravo_visit: int = 0  # a visit by Bravo's person, with one lead
    bravo_lead: int = 0
    bravo_lead_etag: str = ""
    bravo_proposals: tuple[int, ...] = ()  # open target proposals: the firm's, the person's
    bravo_client: int = 0  # the client of bravo_to_charlie, which Alpha does not know
    alpha_client: int = 0  # the client of alpha_to_bravo
    bravo_sites: tuple[int, ...] = ()  # sites Bravo recorded: of its client, of Alpha's


@pytest.fixture
def world(client, make_key, admin_headers) -> World:
    def org(name: str, **extra) -> int:
        response = client.post(f"{API}/organizations", headers=admin_headers,
                               json=org_payload(name=name, capacity=None, **extra))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def referral(referrer: int, receiver: int, client_name: str, note: str = "") -> int:
        response = client.post(f"{API}/referrals", headers=admin_headers, json={
            "referrer_organization_id": referrer, "receiver_organization_id": receiver,
            "client": {"name": client_name}, "note": note, "description": note})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    alpha = org("Alpha Partner Works")
    bravo = org(BRAVO_NAME, description="bravo-private-description", external_ref="EXT-BRAVO-7",
                skills=["Bravo Plating"], offices=[{
                    "label": "HQ", "address": "12 Bravo Lane", "latitude": 22.63,
                    "longitude": 120.30}])
    charlie = org("Charlie Coatings")
    target = client.put(f"{API}/kpi/targets/{bravo}/{MONTH}", json={"new_clients": 7},
                        headers=admin_headers)
    assert target.status_code == 200
    found = World(
        alpha=alpha, bravo=bravo, charlie=charlie,
        bravo_to_charlie=referral(bravo, charlie, "Client Of Bravo", "bravo-note-secret"),
        charlie_to_bravo=referral(charlie, bravo, "Client Of Charlie", "charlie-note-secret"),
        alpha_to_bravo=referral(alpha, bravo, "Alpha Client One"),
        bravo_to_alpha=referral(bravo, alpha, "Client For Alpha"),
        partner=make_key("partner", alpha), crm=make_key("crm"), admin=admin_headers,
    )
    found.bravo_etag = client.get(f"{API}/organizations/{bravo}",
                                  headers=admin_headers).headers["ETag"]
    for referral_id in (found.bravo_to_charlie, found.charlie_to_bravo):
        found.referral_etags[referral_id] = client.get(
            f"{API}/referrals/{referral_id}", headers=admin_headers).headers["ETag"]
    department = client.post(f"{API}/departments", headers=admin_headers, json={
        "organization_id": bravo, "name": "Bravo Dept Secret", "external_ref": "EXT-BRAVO-D1"})
    assert department.status_code == 201, department.get_json()
    person = client.post(f"{API}/people", headers=admin_headers, json={
        "organization_id": bravo, "name": "Bravo Staffer Secret", "external_ref": "EXT-BRAVO-P1",
        "email": "bravo-staff@secret.example", "department_id": department.get_json()["id"]})
    assert person.status_code == 201, person.get_json()
    found.bravo_department, found.bravo_person = (department.get_json()["id"],
                                                  person.get_json()["id"])
    found.bravo_department_etag = department.headers["ETag"]
    found.bravo_person_etag = person.headers["ETag"]
    visit = client.post(f"{API}/visits", headers=admin_headers, json={
        "person_id": found.bravo_person, "client": {"name": "Client Bravo Visited"},
        "visited_at": "2026-01-05T09:00:00Z", "notes": "bravo-visit-notes",
        "leads": [{"name": "Bravo Lead Secret", "skills": ["Bravo Plating"],
                   "location": {"latitude": 22.63, "longitude": 120.30}}]})
    assert visit.status_code == 201, visit.get_json()
    found.bravo_visit = visit.get_json()["id"]
    found.bravo_lead = visit.get_json()["leads"][0]["id"]
    found.bravo_lead_etag = client.get(f"{API}/leads/{found.bravo_lead}",
                                       headers=admin_headers).headers["ETag"]
    proposals = [client.post(f"{API}/kpi/target-proposals", headers=admin_headers, json={
        "scope": scope, "scope_id": scope_id, "month": MONTH, "new_clients": 6,
        "note": "bravo-target-note"}) for scope, scope_id in (
        ("organization", bravo), ("person", found.bravo_person))]
    assert all(p.status_code == 201 for p in proposals), [p.get_json() for p in proposals]
    found.bravo_proposals = tuple(p.get_json()["id"] for p in proposals)
    found.bravo_client, found.alpha_client = (
        client.get(f"{API}/referrals/{referral_id}", headers=admin_headers)
        .get_json()["client"]["id"] for referral_id in (found.bravo_to_charlie,
                                                        found.alpha_to_bravo))
    sites = [client.post(f"{API}/clients/{client_id}/sites", headers=admin_headers, json={
        "label": "Bravo Dept Secret", "organization_id": bravo, "location": {
            "address": "12 Bravo Lane", "latitude": 22.63, "longitude": 120.30}})
        for client_id in (found.bravo_client, found.alpha_client)]
    assert all(s.status_code == 201 for s in sites), [s.get_json() for s in sites]
    found.bravo_sites = tuple(s.get_json()["id"] for s in sites)
    return found


@dataclass(frozen=True)
class Attempt:
    """One request a partner of Alpha sends, and the statuses that refuse it properly."""

    method: str
    path: str
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    refused: tuple[int, ...] = (403, 404)
    answered: bool = False  # a 200 is due (a list, a ranking): its content is checked
    # What the JSON of such an answer may hold, checked item by item.
    ok: Callable[[World, dict], list[str]] | None = None
    may_name_bravo: bool = False  # a match ranks other firms by name, by design


def _no_item(key: str, forbidden: Callable[[World], set[int]]):
    """A check that no listed item has `key` among the forbidden ids."""

    def check(w: World, body: dict) -> list[str]:
        items = body.get("items", body.get("rows", []))
        return [f"{key}={item[key]} listed" for item in items if item[key] in forbidden(w)]

    return check


def _alpha_rows_only(w: World, body: dict) -> list[str]:
    return [f"KPI row of {row['organization_id']}" for row in body["rows"]
            if row["organization_id"] != w.alpha]


def _alpha_referrals_only(w: World, body: dict) -> list[str]:
    return [f"referral {item['id']} listed" for item in body["items"]
            if w.alpha not in (item["referrer_organization_id"],
                               item["receiver_organization_id"])]


def _match_shows_no_profile(w: World, body: dict) -> list[str]:
    allowed = {"rank", "organization_id", "name", "kind", "score", "breakdown",
               "distance_km", "office_id", "matched_skills", "missing_skills"}
    return [f"candidate field {key}" for candidate in body["candidates"]
            for key in set(candidate) - allowed]


def _public_catalog(w: World, body: dict) -> list[str]:
    return [f"field {key}" for item in body["items"]
            for key in set(item) - {"skill", "organizations", "aliases"}]


def _contact_only(w: World, body: dict) -> list[str]:
    return [f"field {key}" for key in set(body) - {"name", "email", "phone"}]


def _groups_only(w: World, body: dict) -> list[str]:
    return [f"field {key}" for item in body["items"]
            for key in set(item) - {"id", "name", "organizations", "active_organizations"}]


def _alpha_sites_only(w: World, body: dict) -> list[str]:
    return [f"site {item['id']} of {item['organization_id']} listed" for item in body["items"]
            if item["organization_id"] != w.alpha]


def _months_only(w: World, body: dict) -> list[str]:
    return [f"month field {key}" for item in body["items"]
            for key in set(item) - {"month", "status", "closed_at", "closed_by"}]


def _hands_off(*moves: str) -> Callable[[World], list[Attempt]]:
    def attempts(w: World) -> list[Attempt]:
        return [Attempt("PATCH", f"{API}/referrals/{referral}", {"status": status,
                                                                 "reason": "mine now"},
                        headers={"If-Match": etag} if etag else {})
                for referral in (w.bravo_to_charlie, w.charlie_to_bravo)
                for status in moves for etag in ("", w.referral_etags[referral])]

    return attempts


# One entry per documented operation: what Alpha's partner key tries on Bravo's objects.
MATRIX: dict[str, Callable[[World], list[Attempt]]] = {
    "GET /api/v1/organizations": lambda w: [
        Attempt("GET", f"{API}/organizations{query}", ok=_no_item(
            "id", lambda w: {w.bravo, w.charlie}))
        for query in ("", f"?q={BRAVO_NAME}", "?skill=Bravo+Plating", "?active=true&page_size=500")
    ],
    "POST /api/v1/organizations": lambda w: [
        Attempt("POST", f"{API}/organizations", org_payload(name="Alpha Clone")),
        Attempt("POST", f"{API}/organizations", org_payload(name="Bravo Twin",
                                                            external_ref="EXT-BRAVO-7")),
    ],
    "GET /api/v1/organizations/{organization_id}": lambda w: [
        Attempt("GET", f"{API}/organizations/{org}") for org in (w.bravo, w.charlie)
    ],
    "PATCH /api/v1/organizations/{organization_id}": lambda w: [
        Attempt("PATCH", f"{API}/organizations/{w.bravo}", body, headers=headers)
        for body in ({"name": "Hijacked"}, {"description": "mine", "capacity": 0},
                     {"active": False}, {"offices": [{"latitude": 1.0, "longitude": 1.0}]})
        for headers in ({}, {"If-Match": w.bravo_etag})
    ],
    "DELETE /api/v1/organizations/{organization_id}": lambda w: [
        Attempt("DELETE", f"{API}/organizations/{org}") for org in (w.bravo, w.charlie)
    ],
    "GET /api/v1/organizations/{organization_id}/contact": lambda w: [
        # A firm's business contact is for referrers (README): name, e-mail and phone only.
        Attempt("GET", f"{API}/organizations/{w.bravo}/contact", ok=_contact_only),
    ],
    "GET /api/v1/groups": lambda w: [
        # Groups are not secret between firms (a profile shows its group): names and counts.
        Attempt("GET", f"{API}/groups", ok=_groups_only),
    ],
    "GET /api/v1/clients/{client_id}/sites": lambda w: [
        Attempt("GET", f"{API}/clients/{w.bravo_client}/sites", refused=(404,)),
        # Alpha's own client: only the sites Alpha recorded, none of Bravo's.
        Attempt("GET", f"{API}/clients/{w.alpha_client}/sites", ok=_alpha_sites_only),
    ],
    "POST /api/v1/clients/{client_id}/sites": lambda w: [
        Attempt("POST", f"{API}/clients/{w.bravo_client}/sites", {
            "label": "Mine", "location": {"latitude": 1.0, "longitude": 1.0}}, refused=(404,)),
        Attempt("POST", f"{API}/clients/{w.alpha_client}/sites", {
            "label": "For Bravo", "organization_id": w.bravo,
            "location": {"latitude": 1.0, "longitude": 1.0}}, refused=(403,)),
    ],
    "GET /api/v1/skills": lambda w: [
        # A catalog of skill names and counts across firms, no firm named in it.
        Attempt("GET", f"{API}/skills", ok=_public_catalog),
    ],
    # The vocabulary is head office's: a partner neither adds aliases nor merges skills.
    "POST /api/v1/skills/aliases": lambda w: [
        Attempt("POST", f"{API}/skills/aliases", {"alias": "bravo alias",
                                                  "skill": "bravo-plating"}),
    ],
    "DELETE /api/v1/skills/aliases/{alias}": lambda w: [
        Attempt("DELETE", f"{API}/skills/aliases/bravo-alias"),
    ],
    "POST /api/v1/skills/merge": lambda w: [
        Attempt("POST", f"{API}/skills/merge", {"from": "bravo-plating", "into": "welding"}),
    ],
    "POST /api/v1/match": lambda w: [
        # Ranking other firms by name and score is what a match is for (SPEC section 7:
        # partners refer clients onwards); their profiles stay private.
        Attempt("POST", f"{API}/match", {"skills": ["Bravo Plating"],
                                         "location": {"latitude": 22.63, "longitude": 120.3},
                                         "referrer_organization_id": w.bravo},
                ok=_match_shows_no_profile, may_name_bravo=True),
        # Bravo's client sites are Bravo's: their place is not Alpha's to match from.
        *[Attempt("POST", f"{API}/match", {"skills": ["Bravo Plating"], "client_site_id": site},
                  refused=(422,)) for site in w.bravo_sites],
    ],
    "GET /api/v1/referrals": lambda w: [
        Attempt("GET", f"{API}/referrals{query}", ok=_alpha_referrals_only)
        for query in ("", f"?organization_id={w.bravo}", f"?organization_id={w.charlie}",
                      f"?organization_id={w.bravo}&role=referrer", "?status=pending",
                      f"?month={MONTH}&page_size=500")
    ],
    "POST /api/v1/referrals": lambda w: [
        # A partner records referrals only with itself as the referrer.
        Attempt("POST", f"{API}/referrals", {
            "referrer_organization_id": referrer, "receiver_organization_id": receiver,
            "client": {"name": "Stolen Credit Ltd"}}, refused=(403,))
        for referrer, receiver in ((w.bravo, w.charlie), (w.bravo, w.alpha),
                                   (w.charlie, w.bravo))
    ] + [
        # Naming a client of a referral between other firms, spelt otherwise: a 409 with the
        # holder's id, and never the client's stored name (issue 11, row 1).
        Attempt("POST", f"{API}/referrals", {
            "referrer_organization_id": w.alpha, "receiver_organization_id": w.charlie,
            "client": {"name": name}}, refused=(409,))
        for name in ("client of bravo", "CLIENT OF CHARLIE, Ltd.")
    ] + [
        # A site Bravo recorded, even of Alpha's own client, is not Alpha's to name.
        Attempt("POST", f"{API}/referrals", {
            "referrer_organization_id": w.alpha, "receiver_organization_id": w.charlie,
            "client": {"name": "Alpha Client One"}, "client_site_id": w.bravo_sites[1]},
            refused=(422,)),
    ],
    "GET /api/v1/referrals/{referral_id}": lambda w: [
        Attempt("GET", f"{API}/referrals/{referral}")
        for referral in (w.bravo_to_charlie, w.charlie_to_bravo)
    ],
    "PATCH /api/v1/referrals/{referral_id}": _hands_off(*MOVES),
    "GET /api/v1/kpi/monthly": lambda w: [
        *(Attempt("GET", f"{API}/kpi/monthly?month={MONTH}&organization_id={org}{fmt}")
          for org in (w.bravo, w.charlie) for fmt in ("", "&format=csv", "&format=xlsx")),
        Attempt("GET", f"{API}/kpi/monthly?month={MONTH}", ok=_alpha_rows_only),
        Attempt("GET", f"{API}/kpi/monthly?month={MONTH}&format=csv", answered=True),
        # Every level (SPEC section 10): another firm's departments and people are as unseen.
        *(Attempt("GET", f"{API}/kpi/monthly?month={MONTH}&level={level}"
                         f"&organization_id={org}{fmt}")
          for level in ("department", "person") for org in (w.bravo, w.charlie)
          for fmt in ("", "&format=csv")),
        *(Attempt("GET", f"{API}/kpi/monthly?month={MONTH}&level={level}",
                  ok=_alpha_rows_only) for level in ("department", "person")),
    ],
    "PUT /api/v1/kpi/targets/{organization_id}/{month}": lambda w: [
        # Targets are agreed with head office: not even Alpha's own.
        Attempt("PUT", f"{API}/kpi/targets/{org}/{MONTH}", {"new_clients": 99})
        for org in (w.bravo, w.charlie, w.alpha)
    ],
    "GET /api/v1/kpi/months": lambda w: [
        # Months and whether they are closed: no firm's data (a partner's activity is its own).
        Attempt("GET", f"{API}/kpi/months", ok=_months_only),
    ],
    "POST /api/v1/kpi/months/{month}/close": lambda w: [
        # Only head office closes a month (SPEC section 10).
        Attempt("POST", f"{API}/kpi/months/{month}/close", {}, refused=(403,))
        for month in (MONTH, "2026-01")
    ],
    "GET /api/v1/audit": lambda w: [
        Attempt("GET", f"{API}/audit{query}", refused=(403,))
        for query in ("", f"?object_type=organization&object_id={w.bravo}")
    ],
    # Only head office erases a client's personal data (SPEC section 11): every client id,
    # Bravo's clients and Alpha's own alike.
    "DELETE /api/v1/clients/{client_id}": lambda w: [
        Attempt("DELETE", f"{API}/clients/{client_id}", refused=(403,))
        for client_id in range(1, 6)
    ],
}


def _own_firm_only(w: World, body: dict) -> list[str]:
    return [f"{item['id']} of organization {item['organization_id']} listed"
            for item in body["items"] if item["organization_id"] != w.alpha]


def _people_attempts(w: World) -> dict[str, list[Attempt]]:
    """What Alpha's partner key tries on Bravo's people and departments."""
    people, departments = f"{API}/people", f"{API}/departments"
    return {
        "GET /api/v1/people": [
            Attempt("GET", people + query, ok=_own_firm_only)
            for query in ("", f"?organization_id={w.bravo}", f"?department_id={w.bravo_department}",
                          f"?manager_id={w.bravo_person}", "?external_ref=EXT-BRAVO-P1",
                          "?active=true&page_size=500")],
        "POST /api/v1/people": [
            Attempt("POST", people, {"organization_id": w.bravo, "name": "Planted"},
                    refused=(403,)),
            Attempt("POST", people, {"organization_id": w.charlie, "name": "Planted",
                                     "external_ref": "EXT-BRAVO-P1"}, refused=(403,)),
            # Alpha's own person, placed under Bravo's manager or department: no such one.
            Attempt("POST", people, {"name": "Mole", "manager_id": w.bravo_person},
                    refused=(422,)),
            Attempt("POST", people, {"name": "Mole", "department_id": w.bravo_department},
                    refused=(422,)),
        ],
        "GET /api/v1/people/{person_id}": [Attempt("GET", f"{people}/{w.bravo_person}")],
        "PATCH /api/v1/people/{person_id}": [
            Attempt("PATCH", f"{people}/{w.bravo_person}", body, headers=headers)
            for body in ({"name": "Hijacked"}, {"active": False}, {"department_id": None},
                         {"external_ref": "MINE"})
            for headers in ({}, {"If-Match": w.bravo_person_etag})],
        "GET /api/v1/departments": [
            Attempt("GET", departments + query, ok=_own_firm_only)
            for query in ("", f"?organization_id={w.bravo}",
                          f"?parent_id={w.bravo_department}")],
        "POST /api/v1/departments": [
            Attempt("POST", departments, {"organization_id": w.bravo, "name": "Planted"},
                    refused=(403,)),
            Attempt("POST", departments, {"name": "Mole Unit", "parent_id": w.bravo_department},
                    refused=(422,)),
            Attempt("POST", departments, {"name": "Mole Unit", "head_person_id": w.bravo_person},
                    refused=(422,)),
        ],
        "GET /api/v1/departments/{department_id}": [
            Attempt("GET", f"{departments}/{w.bravo_department}")],
        "PATCH /api/v1/departments/{department_id}": [
            Attempt("PATCH", f"{departments}/{w.bravo_department}", body, headers=headers)
            for body in ({"name": "Hijacked"}, {"head_person_id": None})
            for headers in ({}, {"If-Match": w.bravo_department_etag})],
    }


MATRIX.update({operation: (lambda w, operation=operation: _people_attempts(w)[operation])
               for operation in ("GET /api/v1/people", "POST /api/v1/people",
                                 "GET /api/v1/people/{person_id}",
                                 "PATCH /api/v1/people/{person_id}", "GET /api/v1/departments",
                                 "POST /api/v1/departments",
                                 "GET /api/v1/departments/{department_id}",
                                 "PATCH /api/v1/departments/{department_id}")})


def _visit_attempts(w: World) -> dict[str, list[Attempt]]:
    """What Alpha's partner key tries on Bravo's visits and leads."""
    visits, leads = f"{API}/visits", f"{API}/leads"
    lead = f"{leads}/{w.bravo_lead}"
    return {
        "GET /api/v1/visits": [
            Attempt("GET", visits + query, ok=_own_firm_only)
            for query in ("", f"?organization_id={w.bravo}", f"?person_id={w.bravo_person}",
                          "?empty_handed=false&page_size=500")],
        "POST /api/v1/visits": [
            # A report for Bravo's salesperson: no such person among Alpha's.
            Attempt("POST", visits, {"person_id": w.bravo_person,
                                     "client": {"name": "Planted Visit"},
                                     "visited_at": "2026-01-06T09:00:00Z",
                                     "empty_handed_reason": "planted"}, refused=(422,)),
        ],
        "GET /api/v1/visits/{visit_id}": [Attempt("GET", f"{visits}/{w.bravo_visit}")],
        "GET /api/v1/leads": [
            Attempt("GET", leads + query, ok=_own_firm_only)
            for query in ("", f"?organization_id={w.bravo}", f"?person_id={w.bravo_person}",
                          f"?visit_id={w.bravo_visit}", "?status=open")],
        "GET /api/v1/leads/{lead_id}": [Attempt("GET", lead)],
        "PATCH /api/v1/leads/{lead_id}": [
            Attempt("PATCH", lead, {"status": status}, headers=headers)
            for status in ("won", "lost") for headers in ({}, {"If-Match": w.bravo_lead_etag})],
        "POST /api/v1/leads/{lead_id}/refer": [
            Attempt("POST", f"{lead}/refer", body)
            for body in ({}, {"receiver_organization_id": w.alpha},
                         {"receiver_organization_id": w.charlie})],
    }


MATRIX.update({operation: (lambda w, operation=operation: _visit_attempts(w)[operation])
               for operation in ("GET /api/v1/visits", "POST /api/v1/visits",
                                 "GET /api/v1/visits/{visit_id}", "GET /api/v1/leads",
                                 "GET /api/v1/leads/{lead_id}", "PATCH /api/v1/leads/{lead_id}",
                                 "POST /api/v1/leads/{lead_id}/refer")})


def _target_attempts(w: World) -> dict[str, list[Attempt]]:
    """What Alpha's partner key tries on Bravo's target proposals."""
    proposals = f"{API}/kpi/target-proposals"
    return {
        "GET /api/v1/kpi/target-proposals": [
            Attempt("GET", proposals + query, ok=_own_firm_only)
            for query in ("", f"?organization_id={w.bravo}", f"?scope=organization&scope_id="
                          f"{w.bravo}", f"?scope=person&scope_id={w.bravo_person}",
                          f"?status=proposed&month={MONTH}&page_size=500")],
        "POST /api/v1/kpi/target-proposals": [
            # Another firm's scope is no scope Alpha knows of: a 422 naming scope_id.
            Attempt("POST", proposals, {"scope": scope, "scope_id": scope_id, "month": MONTH,
                                        "new_clients": 0}, refused=(422,))
            for scope, scope_id in (("organization", w.bravo), ("person", w.bravo_person),
                                    ("department", w.bravo_department))],
        "GET /api/v1/kpi/target-proposals/{proposal_id}": [
            Attempt("GET", f"{proposals}/{proposal}") for proposal in w.bravo_proposals],
        **{f"POST /api/v1/kpi/target-proposals/{{proposal_id}}/{decision}": [
            Attempt("POST", f"{proposals}/{proposal}/{decision}", body)
            for proposal in w.bravo_proposals for body in ({}, {"note": "mine"})]
           for decision in ("agree", "decline", "withdraw")},
        "POST /api/v1/kpi/target-proposals/{proposal_id}/counter": [
            Attempt("POST", f"{proposals}/{proposal}/counter", {"new_clients": 0})
            for proposal in w.bravo_proposals],
    }


TARGET_OPERATIONS = (
    "GET /api/v1/kpi/target-proposals", "POST /api/v1/kpi/target-proposals",
    "GET /api/v1/kpi/target-proposals/{proposal_id}",
    *(f"POST /api/v1/kpi/target-proposals/{{proposal_id}}/{decision}"
      for decision in ("agree", "counter", "decline", "withdraw")))
MATRIX.update({operation: (lambda w, operation=operation: _target_attempts(w)[operation])
               for operation in TARGET_OPERATIONS})


def documented_operations(client) -> set[str]:
    """Return every operation of the OpenAPI document as 'METHOD path'."""
    spec = client.get(f"{API}/openapi.json").get_json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items()
            for method in item if method in methods}


def snapshot(client, w: World) -> dict:
    """Everything a partner could change, read as admin."""
    def get(path: str):
        response = client.get(f"{API}{path}", headers=w.admin)
        assert response.status_code == 200, path
        return response.get_json()

    referrals = get("/referrals?page_size=500")["items"]
    return {
        "organizations": get("/organizations?page_size=500"),
        "referrals": [get(f"/referrals/{item['id']}") for item in referrals],
        "kpi": get(f"/kpi/monthly?month={MONTH}"),
        "audit_entries": get("/audit?page_size=1")["total"],
        "people": get("/people?page_size=500"),
        "departments": get("/departments?page_size=500"),
        "visits": get("/visits?page_size=500"),
        "leads": get("/leads?page_size=500"),
        "target_proposals": [get(f"/kpi/target-proposals/{item['id']}") for item in get(
            "/kpi/target-proposals?page_size=500")["items"]],
        "client_sites": [get(f"/clients/{client_id}/sites")
                         for client_id in (w.bravo_client, w.alpha_client)],
    }


def send(client, w: World, attempt: Attempt):
    """Send an attempt with Alpha's partner key."""
    return client.open(attempt.path, method=attempt.method, json=attempt.body,
                       headers={**w.partner, **attempt.headers})


def problems_with(w: World, attempt: Attempt, response) -> list[str]:
    """Return what is wrong with the answer to an attempt: a leak or a wrong status."""
    text = response.get_data().decode("utf-8", errors="replace")  # XLSX is binary
    found = [f"body shows {marker!r}" for marker in BRAVO_PRIVATE if marker in text]
    if not attempt.may_name_bravo and BRAVO_NAME in text:
        found.append("body names Bravo")
    expected = (200,) if attempt.answered or attempt.ok else attempt.refused
    if response.status_code not in expected:
        found.append(f"status {response.status_code}, expected one of {expected}")
    elif attempt.ok is not None:
        found.extend(attempt.ok(w, response.get_json()))
    return found


def test_every_documented_operation_has_an_entry_in_the_matrix(client):
    documented = documented_operations(client)
    assert documented - set(MATRIX) == set(), "operations without an authorization entry"
    assert set(MATRIX) - documented == set(), "entries for operations no longer documented"


def test_a_partner_neither_reads_nor_changes_another_firms_objects(client, world):
    before = snapshot(client, world)
    failures = []
    for operation in sorted(documented_operations(client)):
        if operation not in MATRIX:
            failures.append(f"{operation}: no entry in the matrix")
            continue
        attempts = MATRIX[operation](world)
        assert attempts, operation
        for attempt in attempts:
            response = send(client, world, attempt)
            label = f"{operation}: {attempt.method} {attempt.path} {json.dumps(attempt.body)}"
            failures.extend(f"{label}: {problem}"
                            for problem in problems_with(world, attempt, response))
            if snapshot(client, world) != before:
                failures.append(f"{label}: changed what an admin reads")
                before = snapshot(client, world)
    assert failures == [], "\n".join(failures)


def test_every_operation_refuses_a_request_without_a_valid_key(client, world):
    for operation in sorted(documented_operations(client)):
        for attempt in MATRIX[operation](world):
            for headers in ({}, {"Authorization": "Bearer rk_not-a-key"},
                            {"Authorization": "Basic YWRtaW46YWRtaW4="}):
                response = client.open(attempt.path, method=attempt.method, json=attempt.body,
                                       headers=headers)
                assert response.status_code == 401, (operation, headers)
                assert response.mimetype == "application/problem+json"
                assert BRAVO_NAME not in response.get_data(as_text=True)


def test_crm_key_cannot_read_the_audit_log(client, world):
    refused = client.get(f"{API}/audit", headers=world.crm)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert client.get(f"{API}/audit", headers=world.admin).status_code == 200


def test_crm_key_does_everything_else_on_any_firm(client, world):
    crm = world.crm
    assert client.get(f"{API}/organizations/{world.bravo}", headers=crm).status_code == 200
    assert client.get(f"{API}/referrals/{world.bravo_to_charlie}", headers=crm).status_code == 200
    assert client.patch(f"{API}/organizations/{world.bravo}", json={"capacity": 5},
                        headers=crm).status_code == 200
    assert client.put(f"{API}/kpi/targets/{world.bravo}/{MONTH}", json={"new_clients": 3},
                      headers=crm).status_code == 200


def test_a_partner_records_referrals_only_as_the_referrer(client, world):
    own = client.post(f"{API}/referrals", headers=world.partner, json={
        "referrer_organization_id": world.alpha, "receiver_organization_id": world.charlie,
        "client": {"name": "Fresh Client Ltd"}})
    assert own.status_code == 201
    assert own.get_json()["referrer_organization_id"] == world.alpha
    as_bravo = client.post(f"{API}/referrals", headers=world.partner, json={
        "referrer_organization_id": world.bravo, "receiver_organization_id": world.alpha,
        "client": {"name": "Another Client Ltd"}})
    assert as_bravo.status_code == 403
    listed = client.get(f"{API}/referrals?page_size=500", headers=world.admin).get_json()
    assert "Another Client Ltd" not in json.dumps(listed)


def _move(client, world, referral_id: int, status: str):
    return client.patch(f"{API}/referrals/{referral_id}", json={"status": status},
                        headers=world.partner)


@pytest.mark.parametrize("status", [s for s in MOVES if s != "withdrawn"])
def test_a_partner_as_referrer_may_not_move_to(client, world, status):
    before = snapshot(client, world)
    response = _move(client, world, world.alpha_to_bravo, status)
    assert response.status_code == 403, response.get_json()
    assert snapshot(client, world) == before


def test_a_partner_as_referrer_may_withdraw(client, world):
    response = _move(client, world, world.alpha_to_bravo, "withdrawn")
    assert response.status_code == 200
    assert response.get_json()["history"][-1]["status"] == "withdrawn"


@pytest.mark.parametrize("status", ["withdrawn", "expired"])
def test_a_partner_as_receiver_may_not_move_to(client, world, status):
    before = snapshot(client, world)
    response = _move(client, world, world.bravo_to_alpha, status)
    assert response.status_code == 403, response.get_json()
    assert snapshot(client, world) == before


@pytest.mark.parametrize("path", [("declined",), ("accepted", "converted"),
                                  ("accepted", "lost")])
def test_a_partner_as_receiver_may_accept_decline_convert_and_lose(client, world, path):
    for status in path:
        response = _move(client, world, world.bravo_to_alpha, status)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == status


def test_a_partner_naming_another_firms_client_by_its_crm_id_learns_nothing_of_it(
        client, world):
    """Issue 11, row 1: a guessed CRM id gives a 409 with the holder's id and no name; a free
    one a 201 showing the client as the partner named it, now and on every later read."""
    def crm_referral(ref: str, status: str | None = None) -> int:
        response = client.post(f"{API}/referrals", headers=world.admin, json={
            "referrer_organization_id": world.bravo, "receiver_organization_id": world.charlie,
            "client": {"name": f"Bamboo Robotics {ref}", "external_ref": ref,
                       "location": {"latitude": 25.033, "longitude": 121.565,
                                    "address": "7 Bamboo Road"}}})
        assert response.status_code == 201, response.get_json()
        if status:
            client.patch(f"{API}/referrals/{response.get_json()['id']}", json={"status": status},
                         headers=world.admin)
        return response.get_json()["id"]

    held, freed = crm_referral("CRM-C5001"), crm_referral("CRM-C5002", "declined")

    def alpha_refers(ref: str):
        return client.post(f"{API}/referrals", headers=world.partner, json={
            "referrer_organization_id": world.alpha, "receiver_organization_id": world.charlie,
            "client": {"name": "Guessed Name", "external_ref": ref.lower()}})

    conflict = alpha_refers("CRM-C5001")
    assert conflict.status_code == 409
    assert conflict.get_json()["existing_referral_id"] == held
    assert "Bamboo" not in conflict.get_data(as_text=True)
    created = alpha_refers("CRM-C5002")
    assert created.status_code == 201
    referral_id = created.get_json()["id"]
    bodies = [created.get_json(),
              client.get(f"{API}/referrals/{referral_id}", headers=world.partner).get_json(),
              *[item for item in client.get(f"{API}/referrals?page_size=500",
                                            headers=world.partner).get_json()["items"]
                if item["id"] == referral_id]]
    assert len(bodies) == 3
    for body in bodies:
        assert body["client"]["name"] == "Guessed Name"
        assert body["client"]["external_ref"] == "crm-c5002"
        assert body["client"]["location"] is None  # not the coordinates Bravo gave
        assert "Bamboo" not in json.dumps(body) and "121.565" not in json.dumps(body)
    # Bravo's own referral still shows the client as Bravo named it.
    own = client.get(f"{API}/referrals/{freed}", headers=world.admin).get_json()
    assert own["client"]["name"] == "Bamboo Robotics CRM-C5002"
    assert own["client"]["location"]["address"] == "7 Bamboo Road"
