"""Property-based fuzzing of the whole API with schemathesis, in-process over WSGI.

`test_schemathesis_finds_nothing` runs schemathesis' engine (what `schemathesis run` does) over
every operation of /api/v1/openapi.json with an admin key: the coverage, fuzzing and stateful
phases (the state machine follows the document's OpenAPI links, e.g. POST /organizations ->
GET/PATCH/DELETE /organizations/{id}, GET /referrals/{id} -> PATCH with the ETag as If-Match).
Every check must pass: no 5xx, every status, content type, header and body as documented,
schema-violating input refused, schema-valid input accepted (exceptions below, each with its
reason).

The engine is used rather than `schemathesis.pytest.from_fixture(...).parametrize()` because
that plugin sets `Node._nodeid`, which pytest 9.2 no longer has (AttributeError at run time).

The two tests after it feed generated text through the paths that succeed (creating firms and
referrals, the KPI exports), which random ids and places rarely reach.

The fast tests at the end pin what the fuzzing found, one request each.

Reproducible: a fixed seed, derandomized generation, no example database. Statistics are printed
(`pytest -s`): operations, cases per phase, responses per status.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from scoring.model import slugify_skill
from tests.conftest import org_payload

SEED = 20261127
MAX_EXAMPLES = 30  # per operation when fuzzing; the whole run stays within a few minutes
OPENAPI = "/api/v1/openapi.json"

CONFIG = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {
        # Crashes on the WSGI transport in schemathesis 4.32 (it passes `max_redirects` to
        # werkzeug's EnvironBuilder); keys are tested in test_authorization_matrix.py.
        "ignored_auth": {"enabled": False},
        # DELETE /organizations/{id} deactivates (SPEC section 3): the firm stays readable
        # with active=false, by design.
        "use_after_free": {"enabled": False},
        # A stale or foreign If-Match is a schema-valid header answered 412, by design.
        "positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 412]},
    },
    # The stateful phase follows the document's own links and Location headers. Its
    # dependency analysis also pours any new id into any field of that name (a department
    # of firm A into a person of firm B), which the SPEC refuses with a 422 by design.
    "phases": {"stateful": {"inference": {"algorithms": ["location-headers"]}}},
}


@pytest.fixture
def seeded(client, admin_headers):
    """Three firms, a referral between the first two and a target: objects to find."""
    ids = []
    for name in ("Alpha Machining", "Beta Finishing", "Gamma Coatings"):
        response = client.post("/api/v1/organizations", headers=admin_headers,
                               json=org_payload(name=name, capacity=None))
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    response = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": ids[0], "receiver_organization_id": ids[1],
        "client": {"name": "Acme Ltd"}, "skills": ["CNC Machining"]})
    assert response.status_code == 201
    month = datetime.now(UTC).strftime("%Y-%m")
    response = client.put(f"/api/v1/kpi/targets/{ids[0]}/{month}", headers=admin_headers,
                          json={"new_clients": 3})
    assert response.status_code == 200
    return ids


@pytest.fixture
def api_schema(app, client, admin_headers, seeded, caplog):
    """The app's OpenAPI document as schemathesis sees it, calling the app with an admin key."""
    # Thousands of requests: keep the log to warnings (a 5xx logs one) so it stays readable.
    caplog.set_level(logging.WARNING)
    config = SchemathesisConfig.from_dict({**CONFIG, "headers": dict(admin_headers)})
    schema = schemathesis.openapi.from_wsgi(OPENAPI, app, config=config)
    schema.hook("map_case")(_LookupSteering(client, admin_headers))
    return schema


# Places of the gazetteer and firms that exist: what a positive case refers to.
KAOHSIUNG = {"latitude": 22.6273, "longitude": 120.3014}


class _LookupSteering:
    """Point the references of schema-valid cases at things that exist.

    Some refusals depend on the data, not on the request's shape, so no document can state
    them: a city or address the gazetteer does not know, an office id that is not one of the
    firm's, a referral naming a firm that does not exist or is inactive (the stateful phase
    deactivates some) or the same firm twice, an Idempotency-Key reused with another body.
    Each is a 422 by the SPEC, and each is pinned by a test of its own. A positive case gets
    coordinates for its places, new offices, two distinct active firms and a fresh key, so
    that `positive_data_acceptance` judges every rule the document can state; negative cases
    are left alone.
    """

    def __init__(self, client, headers) -> None:
        self.client, self.headers = client, headers
        self.keys = itertools.count(1)

    def __call__(self, _context, case):
        """Steer one case."""
        meta = case.meta
        # The stateful phase's cases carry no meta: they are schema-valid, so steered too.
        if (meta is not None and not meta.generation.mode.is_positive) or not isinstance(
                case.body, dict):
            return case
        operation = f"{case.method.upper()} {case.path}"
        body = case.body
        if operation == "POST /api/v1/match":
            # A client site must be one of the caller's, and a group match needs a referrer
            # in a group (tests/api/test_client_sites.py, test_groups.py pin those 422s).
            for name in ("client_site_id", "prefer_group", "same_group_only"):
                body.pop(name, None)
            body["location"] = _located(body.get("location") or {"city": "Kaohsiung"})
        elif operation in ("POST /api/v1/organizations",
                           "PATCH /api/v1/organizations/{organization_id}"):
            if isinstance(body.get("offices"), list):
                body["offices"] = [_located({k: v for k, v in office.items() if k != "id"})
                                   for office in body["offices"]]
        elif operation == "POST /api/v1/referrals":
            if isinstance(body.get("client"), dict) and body["client"].get("location"):
                body["client"]["location"] = _located(body["client"]["location"])
            referrer, receiver = self._two_active_firms()
            body["referrer_organization_id"] = referrer
            body["receiver_organization_id"] = receiver
            body.pop("client_site_id", None)  # the referrer's site of the client (422s pinned)
            if isinstance(body.get("new_client_site"), dict):
                # a place the gazetteer knows (unknown places are 422s pinned in
                # tests/api/test_client_sites.py)
                site = body["new_client_site"]
                site["location"] = _located(site.get("location"))
            # A source or person must exist and belong to the referrer (pinned in
            # tests/api/test_visits.py): the firm itself, named by nobody in particular.
            if isinstance(body.get("source"), dict):
                body["source"] = {"kind": "organization"}
            body.pop("referred_by_person_id", None)
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = f"fuzz-{next(self.keys)}"
        elif operation == "POST /api/v1/visits":
            # An active person who exists, a visit in the past, places with coordinates (the
            # future and unknown people are 422s pinned in tests/api/test_visits.py).
            body["person_id"] = self._a_person()
            body["visited_at"] = "2026-01-05T09:00:00Z"
            if isinstance(body.get("client"), dict) and body["client"].get("location"):
                body["client"]["location"] = _located(body["client"]["location"])
            for lead in body.get("leads") or ():
                if isinstance(lead, dict) and lead.get("location"):
                    lead["location"] = _located(lead["location"])
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = f"fuzz-{next(self.keys)}"
        elif operation == "PATCH /api/v1/referrals/{referral_id}":
            # The owner must be a person of the receiver (pinned in tests/api/test_visits.py).
            body.pop("owner_person_id", None)
            # Reversing a conversion needs a reason, which depends on the referral's state
            # (a 422 pinned in tests/api/test_referral_reversal.py).
            if body.get("status") == "lost" and not str(body.get("reason") or "").strip():
                body["reason"] = "Fuzz: reversed"
        elif operation == "POST /api/v1/leads/{lead_id}/refer":
            # To the best match: a named firm must exist, be active and not the lead's own,
            # and a named person be the referrer's (pinned in tests/api/test_visits.py).
            body.pop("receiver_organization_id", None)
            body.pop("referred_by_person_id", None)
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = f"fuzz-{next(self.keys)}"
        elif operation in PEOPLE_WRITES:
            # A firm that exists (staff must name one); no department, manager, parent or
            # head, which must be the firm's own (tests/api/test_people.py pins those 422s).
            if operation.startswith("POST"):
                body["organization_id"] = self._two_active_firms()[0]
            for reference in ("department_id", "manager_id", "parent_id", "head_person_id"):
                if reference in body:
                    body[reference] = None
        elif operation == "POST /api/v1/clients/{client_id}/sites":
            # Head office names the firm, which must exist (tests/api/test_client_sites.py).
            body["organization_id"] = self._two_active_firms()[0]
            body["location"] = _located(body.get("location"))
        elif operation == "POST /api/v1/skills/aliases":
            # A new name each time: an alias equal to its skill, or a skill that an earlier
            # case made an alias, is a 422 the document cannot state (pinned in
            # tests/api/test_skill_aliases.py).
            body["alias"] = f"fuzz alias {next(self.keys)}"
        elif operation == "POST /api/v1/skills/merge":
            # Merging a skill into itself is a 422 pinned in tests/api/test_skill_aliases.py.
            if isinstance(body.get("from"), str) and isinstance(body.get("into"), str) and (
                    _same_skill(body["from"], body["into"])):
                body["into"] = "fuzz merge target"
        elif operation == "POST /api/v1/kpi/target-proposals":
            # A scope that exists (a missing one is a 422 pinned in tests/api/test_targets.py):
            # a firm, for which head office proposes; a repeat is a (correct) 409.
            body["scope"], body["scope_id"] = "organization", self._two_active_firms()[0]
        return case

    def _a_person(self) -> int:
        firm = self._two_active_firms()[0]
        found = self.client.get(f"/api/v1/people?organization_id={firm}&active=true",
                                headers=self.headers).get_json()["items"]
        if found:
            return found[0]["id"]
        made = self.client.post("/api/v1/people", headers=self.headers,
                                json={"organization_id": firm, "name": "Fuzz Seller"})
        return made.get_json()["id"]

    def _two_active_firms(self) -> tuple[int, int]:
        page = self.client.get("/api/v1/organizations?active=true&page_size=500",
                               headers=self.headers).get_json()
        ids = [item["id"] for item in page["items"]]
        while len(ids) < 2:  # the stateful phase deactivates firms: make another
            made = self.client.post("/api/v1/organizations", headers=self.headers,
                                    json=org_payload(name=f"Steered Firm {next(self.keys)}",
                                                     capacity=None))
            ids.append(made.get_json()["id"])
        return ids[0], ids[1]


PEOPLE_WRITES = ("POST /api/v1/people", "PATCH /api/v1/people/{person_id}",
                 "POST /api/v1/departments", "PATCH /api/v1/departments/{department_id}")


def _same_skill(one: str, other: str) -> bool:
    try:
        return slugify_skill(one) == slugify_skill(other)
    except ValueError:  # no letters or digits: a 422 the document states
        return False


def _located(place):
    """The place with coordinates (kept as given, so the gazetteer is not asked)."""
    if not isinstance(place, dict):
        return place
    return {**place, **KAOHSIUNG}


@dataclass
class Run:
    """What one engine run did."""

    cases: Counter = field(default_factory=Counter)  # (phase, operation) -> cases
    statuses: Counter = field(default_factory=Counter)  # status code -> responses
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, event: events.EngineEvent) -> None:
        """Take in one engine event."""
        if isinstance(event, events.ScenarioFinished):
            self._scenario(event)
        elif isinstance(event, events.PhaseFinished):
            self.phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.NonFatalError):
            self.errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            self.errors.append(repr(event.exception))
        elif isinstance(event, events.EngineFinished):
            self.seconds = event.running_time
            self.failures.extend(f"after run: {failure.title}: {failure.message}"
                                 for failure in event.failures)

    def _scenario(self, event: events.ScenarioFinished) -> None:
        recorder = event.recorder
        self.cases[(event.phase.value, recorder.label)] += len(recorder.cases)
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    answer = (interaction.response.content[:500].decode(errors="replace")
                              if interaction and interaction.response else "")
                    self.failures.append(
                        f"{recorder.label} [{check.name}] {failure.title}: {failure.message}\n"
                        f"{check.failure_info.code_sample}  (case {case_id})\n-> {answer}")

    def summary(self) -> str:
        """Return the figures of the run in a few lines."""
        per_phase = Counter()
        for (phase, _operation), count in self.cases.items():
            per_phase[phase] += count
        return (f"schemathesis: {len(self.operations())} operations, "
                f"{sum(self.cases.values())} cases {dict(per_phase)}, "
                f"responses {dict(sorted(self.statuses.items()))}, "
                f"{len(self.failures)} failures, {len(self.errors)} errors, "
                f"{self.seconds:.1f} s")

    def operations(self) -> set[str]:
        """Return the operations that got at least one case outside the stateful phase."""
        return {operation for (phase, operation), count in self.cases.items()
                if count and phase != "stateful"}


@pytest.mark.slow
def test_schemathesis_finds_nothing(api_schema):
    run = Run()
    for event in from_schema(api_schema).execute():
        run.record(event)
    print(run.summary())

    assert run.failures == [], "\n\n".join(run.failures)
    assert run.errors == []
    documented = {operation.label for operation in
                  (result.ok() for result in api_schema.get_all_operations())}
    assert len(documented) >= 14
    assert run.operations() == documented
    # The document's links: POST/GET/PATCH of organizations and referrals to what takes the id.
    assert api_schema.statistic.transitions.total >= 18
    assert run.phases["stateful"] == "success"
    stateful = sum(count for (phase, _), count in run.cases.items() if phase == "stateful")
    assert stateful >= 50
    assert not any(status >= 500 for status in run.statuses)


# ------------------------------------------------------------------- the successful paths

GENERATED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# The tests below alter generated bodies on purpose: schemathesis' acceptance checks, which
# judge a body by how it was generated, do not apply; every response check does.
ALTERED = [schemathesis.checks.negative_data_rejection,
           schemathesis.checks.positive_data_acceptance]


def _with_coordinates(offices: list[dict]) -> list[dict]:
    """Keep the generated office text, but place each office where the gazetteer needs none."""
    return [{**{key: value for key, value in office.items() if key != "id"},
             "latitude": 22.6273, "longitude": 120.3014} for office in offices]


@pytest.mark.slow
def test_generated_profiles_are_stored_and_exported(api_schema, client, admin_headers):
    create = api_schema["/api/v1/organizations"]["POST"]
    created = []
    numbers = itertools.count(1)

    @GENERATED
    @given(case=create.as_strategy())
    def create_profile(case):
        case.body["offices"] = _with_coordinates(case.body["offices"])
        case.body.pop("external_ref", None)  # unique: a repeat would be a (correct) 409
        # Unique among active firms too (issue 11, row 9): a repeat would be a (correct) 409.
        case.body["name"] = f"{case.body['name'][:180]} #{next(numbers)}"
        response = case.call_and_validate(headers=admin_headers, excluded_checks=ALTERED)
        assert response.status_code in (201, 422), response.text
        if response.status_code == 201:
            body = response.json()
            again = client.get(f"/api/v1/organizations/{body['id']}", headers=admin_headers)
            assert again.get_json() == body
            assert body["name"] == case.body["name"]
            created.append(body["id"])

    create_profile()
    assert len(created) >= MAX_EXAMPLES // 3, "too few generated profiles were accepted"
    month = datetime.now(UTC).strftime("%Y-%m")
    for organization_id in created:  # a target puts the firm in the month's KPI
        client.put(f"/api/v1/kpi/targets/{organization_id}/{month}", json={"new_clients": 2},
                   headers=admin_headers)
    _assert_exports_read_back(client, admin_headers, created)


@pytest.mark.slow
def test_generated_referrals_are_recorded_moved_and_exported(api_schema, client, admin_headers,
                                                             seeded):
    record = api_schema["/api/v1/referrals"]["POST"]
    recorded = []
    attempts = itertools.count(1)

    @GENERATED
    @given(case=record.as_strategy())
    def record_referral(case):
        referrer, receiver = seeded[len(recorded) % 3], seeded[(len(recorded) + 1) % 3]
        case.body["referrer_organization_id"] = referrer
        case.body["receiver_organization_id"] = receiver
        client_in = case.body["client"]
        # A new client each time (or its first referral keeps the credit: a correct 409).
        client_in["name"] = f"{client_in['name']} {next(attempts)}"
        client_in.pop("external_ref", None)
        if client_in.get("location"):
            client_in["location"] = {"latitude": 23.0, "longitude": 120.2}
        case.headers = {}  # no Idempotency-Key: generated ones repeat across bodies
        response = case.call_and_validate(headers=admin_headers, excluded_checks=ALTERED)
        assert response.status_code in (201, 422), response.text
        if response.status_code == 201:
            referral = response.json()
            assert referral["status"] == "pending"
            assert referral["client"]["name"] == client_in["name"].strip()
            for status in ("accepted", "converted"):
                moved = client.patch(f"/api/v1/referrals/{referral['id']}",
                                     json={"status": status, "reason": case.body.get("note")},
                                     headers=admin_headers)
                assert moved.status_code == 200, moved.get_json()
            recorded.append(referral["id"])

    record_referral()
    assert len(recorded) >= MAX_EXAMPLES // 3, "too few generated referrals were accepted"
    _assert_exports_read_back(client, admin_headers, seeded)


def _assert_exports_read_back(client, headers, organization_ids):
    """The month's KPI reads the same in JSON, CSV and XLSX, whatever the firms are named."""
    from openpyxl import load_workbook

    month = datetime.now(UTC).strftime("%Y-%m")
    query = f"/api/v1/kpi/monthly?month={month}"
    rows = client.get(query, headers=headers).get_json()["rows"]
    assert {row["organization_id"] for row in rows} >= set(organization_ids)
    as_csv = client.get(query + "&format=csv", headers=headers)
    assert as_csv.status_code == 200
    lines = list(csv.reader(io.StringIO(as_csv.data.decode("utf-8-sig"), newline="")))
    assert len(lines) == len(rows) + 1
    assert [int(line[0]) for line in lines[1:]] == [row["organization_id"] for row in rows]
    as_xlsx = client.get(query + "&format=xlsx", headers=headers)
    assert as_xlsx.status_code == 200
    workbook = load_workbook(io.BytesIO(as_xlsx.data), read_only=True)
    ids = [values[0] for values in workbook.worksheets[0].iter_rows(min_row=2, values_only=True)]
    workbook.close()
    assert ids == [row["organization_id"] for row in rows]


# ------------------------------------------------------- what the fuzzing found, pinned

NUL_REQUESTS = [
    ("POST", "/api/v1/organizations", {**org_payload(name="Nul\x00Works")}),
    ("GET", "/api/v1/organizations?q=a%00b", None),
    ("GET", "/api/v1/audit?object_type=organization%00", None),
    ("POST", "/api/v1/match", {"skills": ["x"], "location": {"city": "Tai\x00nan"}}),
    ("POST", "/api/v1/referrals", {"referrer_organization_id": 1, "receiver_organization_id": 2,
                                   "client": {"name": "Acme\x00"}}),
    ("PATCH", "/api/v1/referrals/1", {"status": "accepted", "reason": "\x00"}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_REQUESTS)
def test_text_with_nul_is_a_422_naming_the_field(client, admin_headers, seeded, method, path,
                                                 body):
    response = client.open(path, method=method, json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "NUL" in json.dumps(response.get_json()["errors"])


def test_unpaired_surrogates_are_a_422(client, admin_headers):
    response = client.post("/api/v1/organizations", headers=admin_headers,
                           data='{"name": "\\udaf6", "kind": "partner", "offices": '
                                '[{"latitude": 1, "longitude": 1}]}',
                           content_type="application/json")
    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]


@pytest.mark.parametrize("skill", ["-", "\ufb03" * 100])
def test_a_skill_without_letters_or_too_long_once_normalized_is_a_422(client, admin_headers,
                                                                       skill):
    for method, path in (("POST", "/api/v1/organizations"), ("POST", "/api/v1/match")):
        body = org_payload(skills=[skill]) if path.endswith("organizations") else {
            "skills": [skill], "location": {"latitude": 22.6, "longitude": 120.3}}
        response = client.open(path, method=method, json=body, headers=admin_headers)
        assert response.status_code == 422, path
        assert "skills" in response.get_json()["errors"]


def test_a_client_name_that_grows_when_normalized_is_recorded(client, admin_headers, seeded):
    # "ß" folds to "ss": 200 of them normalize to 400 characters.
    response = client.post("/api/v1/referrals", headers=admin_headers, json={
        "referrer_organization_id": seeded[0], "receiver_organization_id": seeded[2],
        "client": {"name": "\u00df" * 200}})
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("body", [{"capacity": 2.5}, {"capacity": 1e-42},
                                  {"offices": [{"latitude": 1, "longitude": 1,
                                                "country": "TW\n"}]}])
def test_fractions_and_padded_codes_are_refused_not_rounded(client, admin_headers, seeded,
                                                            body):
    response = client.patch(f"/api/v1/organizations/{seeded[0]}", json=body,
                            headers=admin_headers)
    assert response.status_code == 422
    again = client.get(f"/api/v1/organizations/{seeded[0]}", headers=admin_headers)
    assert again.get_json()["version"] == 1


@pytest.mark.parametrize("query", ["month=0000-01", "month=9999-12", "month=2026-03%0A"])
def test_months_outside_1970_to_2999_are_a_422(client, admin_headers, query):
    response = client.get(f"/api/v1/kpi/monthly?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert "month" in response.get_json()["errors"]


def test_a_target_for_a_month_past_9999_is_a_422(client, admin_headers, seeded):
    response = client.put(f"/api/v1/kpi/targets/{seeded[0]}/9999-12", json={"new_clients": 1},
                          headers=admin_headers)
    assert response.status_code == 422


@pytest.mark.parametrize("content", [None, "text/plain"])
def test_a_write_without_a_json_body_is_a_415(client, admin_headers, seeded, content):
    response = client.patch(f"/api/v1/organizations/{seeded[0]}", data="name=x" if content else
                            None, content_type=content, headers=admin_headers)
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("headers", [{"Idempotency-Key": "key\x00"},
                                     {"Authorization": "Bearer rk_\x00abc"}])
def test_header_text_the_database_refuses_is_a_4xx(client, admin_headers, seeded, headers):
    response = client.post("/api/v1/referrals", headers={**admin_headers, **headers}, json={
        "referrer_organization_id": seeded[0], "receiver_organization_id": seeded[1],
        "client": {"name": "Header Client"}})
    assert response.status_code in (401, 422)


def test_a_refused_move_documents_its_extra_member(client, admin_headers, api_schema, seeded):
    # A 409 names the referral's status: the document's Problem schema must allow it.
    response = client.patch("/api/v1/referrals/1", json={"status": "lost"},
                            headers=admin_headers)
    assert response.status_code == 409
    assert response.get_json()["current_status"] == "pending"
    problem = api_schema.raw_schema["components"]["schemas"]["Problem"]
    assert "current_status" in problem["properties"]


# --- the shapes of issue 11, rows 4-7, against every write operation of the document -------

MIB = 1024 * 1024


class _BrokenChunks(io.RawIOBase):
    """A request body whose reader fails as gunicorn's does on a malformed chunk size."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, _offset: int, _whence: int = 0) -> int:
        return 0

    def readinto(self, _buffer) -> int:
        raise RuntimeError("Invalid chunk size")


def _write_operations(client) -> list[tuple[str, str]]:
    document = client.get(OPENAPI).get_json()
    return [(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in ("post", "put", "patch")]


def _hostile_bodies() -> dict[str, tuple[dict, int, str]]:
    """Name -> (test client keyword arguments, expected status, a word of the detail)."""
    chunked = {"Transfer-Encoding": "chunked"}
    streamed = {"wsgi.input_terminated": True}
    return {
        "nested-1000": ({"data": "[" * 1000 + "]" * 1000}, 400, "nested"),
        "nested-unclosed": ({"data": '{"a":' * 50_000}, 400, "nested"),
        "chunked-past-limit": ({"input_stream": io.BytesIO(b"{}" + b" " * (3 * MIB)),
                                "headers": chunked, "environ_overrides": streamed}, 413, "larger"),
        "bad-chunk": ({"input_stream": _BrokenChunks(), "headers": chunked,
                       "environ_overrides": streamed}, 400, "malformed"),
    }


@pytest.mark.parametrize("shape", list(_hostile_bodies()))
def test_every_write_answers_hostile_bodies_with_a_documented_problem(
    client, admin_headers, seeded, api_schema, shape
):
    month = datetime.now(UTC).strftime("%Y-%m")
    operations = _write_operations(client)
    assert len(operations) >= 10
    problem_fields = set(api_schema.raw_schema["components"]["schemas"]["Problem"]["required"])
    for method, path in operations:
        kwargs, status, word = _hostile_bodies()[shape]
        url = (path.replace("{month}", month)
               .replace("{organization_id}", str(seeded[0])).replace("{referral_id}", "1"))
        url = url.replace("{person_id}", "1").replace("{department_id}", "1").replace(
            "{lead_id}", "1").replace("{visit_id}", "1").replace("{proposal_id}", "1").replace(
            "{client_id}", "1")
        headers = {**admin_headers, "Content-Type": "application/json",
                   **kwargs.pop("headers", {})}
        response = client.open(url, method=method, headers=headers, **kwargs)
        assert response.status_code == status, (method, url, response.get_data()[:300])
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert problem_fields <= set(body) and word in body["detail"], (method, url, body)
        responses = api_schema.raw_schema["paths"][path][method.lower()]["responses"]
        assert str(status) in responses or "default" in responses


@pytest.mark.parametrize("target", ["/dashboard\r\nSet-Cookie: x=1", "/\r\n\r\n<html>",
                                    "https://evil.example/", "//evil.example", "/\\evil",
                                    "/ok\u2028", "/%0d%0aSet-Cookie:x=1"])
def test_sign_in_with_a_hostile_next_never_leaves_the_site(app, client, target):
    from tests.portal.conftest import PASSWORD, add_user, csrf_token

    add_user(app, "fuzz@example.com", "admin")
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "fuzz@example.com", "password": PASSWORD,
                                           "next": target, "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "\r" not in location and "\n" not in location
    assert "x=1" not in response.headers.get("Set-Cookie", "")
