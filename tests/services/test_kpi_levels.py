"""KPI levels (SPEC section 10): organization, department and person rows, recomputed in plain
Python from the raw rows of random worlds and compared with monthly_kpi at every level."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from models import (
    Client,
    Department,
    KpiTarget,
    KpiTargetProposal,
    Lead,
    Organization,
    Person,
    Referral,
    Visit,
)
from referral_service.services import kpi
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import NotFound, ValidationFailed

MONTHS = ("2026-01", "2026-02", "2026-03")
CHECKED = (*MONTHS, "2026-04")
FIGURES = (*kpi.ACTIVITY, "new_client_credits")
_names = itertools.count()


# ----------------------------------------------------------------------------- the worlds

def moment():
    """A time in one of MONTHS: sometimes the very first second of a month, or its last."""
    return st.one_of(
        st.builds(lambda m, d, h: datetime(2026, m, d, h, tzinfo=UTC),
                  st.integers(1, 3), st.integers(1, 28), st.integers(0, 23)),
        st.builds(lambda m: datetime(2026, m, 1, tzinfo=UTC), st.integers(1, 3)),
        st.builds(lambda m: datetime(2026, m + 1, 1, tzinfo=UTC) - timedelta(microseconds=1),
                  st.integers(1, 3)),
    )


@st.composite
def worlds(draw):
    """Organizations with nested departments, people with managers, visits, leads with their
    moves, referrals with referred_by/owner and their moves, targets and proposals."""
    world: dict = {"orgs": draw(st.integers(2, 3))}
    departments, people = [], []
    for org in range(world["orgs"]):
        first = len(departments)
        for _ in range(draw(st.integers(0, 4))):
            parents = [None, *range(first, len(departments))]
            departments.append({"org": org, "parent": draw(st.sampled_from(parents))})
        org_departments = [None, *range(first, len(departments))]
        first_person = len(people)
        for _ in range(draw(st.integers(1, 4))):
            managers = [None, *range(first_person, len(people))]
            people.append({"org": org, "department": draw(st.sampled_from(org_departments)),
                           "manager": draw(st.sampled_from(managers))})
        org_people = list(range(first_person, len(people)))
        for index in range(first, len(departments)):
            departments[index]["head"] = draw(st.sampled_from([None, *org_people]))
    world["departments"], world["people"] = departments, people
    person = st.integers(0, len(people) - 1)
    world["visits"] = draw(st.lists(st.fixed_dictionaries({
        "person": person, "at": moment(),
        "kind": st.sampled_from(("commitment", "empty", "leads"))}), max_size=8))
    world["leads"] = draw(st.lists(st.fixed_dictionaries({
        "person": person, "at": moment(), "status": st.sampled_from(("open", "won", "lost",
                                                                     "referred")),
        "later": st.integers(0, 40), "receiver": st.integers(0, 2)}), max_size=8))
    world["referrals"] = draw(st.lists(st.fixed_dictionaries({
        "referrer": st.integers(0, world["orgs"] - 1), "receiver": st.integers(1, 2),
        "at": moment(), "status": st.sampled_from(("pending", "accepted", "converted",
                                                   "lost", "declined")),
        "accepted_after": st.integers(0, 30), "closed_after": st.integers(0, 40),
        "by": st.one_of(st.none(), st.integers(0, 30)),
        "owner": st.one_of(st.none(), st.integers(0, 30))}), max_size=8))
    scopes = st.one_of(
        st.tuples(st.just("organization"), st.integers(0, world["orgs"] - 1)),
        st.tuples(st.just("person"), person),
        *([st.tuples(st.just("department"), st.integers(0, len(departments) - 1))]
          if departments else []))
    world["targets"] = draw(st.dictionaries(st.tuples(scopes, st.sampled_from(CHECKED)),
                                            st.integers(0, 5), max_size=6))
    world["proposals"] = draw(st.dictionaries(
        st.tuples(scopes, st.sampled_from(CHECKED)),
        st.sampled_from(("proposed", "declined")), max_size=6))
    return world


def build(session, world) -> dict[str, list[int]]:
    """Insert a world through the models; return the ids given to its rows."""
    tag = next(_names)
    orgs = []
    for number in range(world["orgs"]):
        org = Organization(name=f"Levels {tag}-{number}", kind="partner", description="")
        session.add(org)
        orgs.append(org)
    session.flush()
    departments = []
    for number, spec in enumerate(world["departments"]):
        parent = None if spec["parent"] is None else departments[spec["parent"]].id
        department = Department(organization_id=orgs[spec["org"]].id, name=f"D{number}",
                                parent_id=parent)
        session.add(department)
        session.flush()
        departments.append(department)
    people = []
    for number, spec in enumerate(world["people"]):
        person = Person(
            organization_id=orgs[spec["org"]].id, name=f"P{tag}-{number}",
            department_id=(None if spec["department"] is None
                           else departments[spec["department"]].id),
            manager_id=None if spec["manager"] is None else people[spec["manager"]].id)
        session.add(person)
        session.flush()
        people.append(person)
    for department, spec in zip(departments, world["departments"], strict=True):
        department.head_person_id = None if spec["head"] is None else people[spec["head"]].id
    client = Client(name=f"Visited {tag}", normalized_name=f"visited {tag}-{next(_names)}")
    session.add(client)
    session.flush()
    visits_of: dict[int, list[Visit]] = {}
    for spec in world["visits"]:
        person = people[spec["person"]]
        visit = Visit(
            organization_id=person.organization_id, person_id=person.id, client_id=client.id,
            visited_at=spec["at"], created_by="test",
            commitment_description="An order" if spec["kind"] == "commitment" else None,
            empty_handed=spec["kind"] == "empty",
            empty_handed_reason="Nobody in" if spec["kind"] == "empty" else None)
        session.add(visit)
        visits_of.setdefault(person.organization_id, []).append(visit)
    session.flush()

    def referral(referrer: int, receiver: int, at: datetime, **values) -> Referral:
        name = f"referred {tag}-{next(_names)}"
        own = Client(name=name, normalized_name=name)
        session.add(own)
        session.flush()
        made = Referral(referrer_organization_id=referrer, receiver_organization_id=receiver,
                        client_id=own.id, created_at=at, updated_at=at, **values)
        session.add(made)
        session.flush()
        return made

    def org_person(org: Organization, choice: int | None) -> int | None:
        staff = [p.id for p in people if p.organization_id == org.id]
        return None if choice is None else staff[choice % len(staff)] if staff else None

    for spec in world["referrals"]:
        referrer = orgs[spec["referrer"]]
        receiver = orgs[(spec["referrer"] + spec["receiver"]) % len(orgs)]
        if receiver is referrer:
            continue
        status, at = spec["status"], spec["at"]
        accepted = (at + timedelta(days=spec["accepted_after"])
                    if status in ("accepted", "converted", "lost") else None)
        closed = (accepted or at) + timedelta(days=spec["closed_after"])
        referral(referrer.id, receiver.id, at, status=status, accepted_at=accepted,
                 converted_at=closed if status == "converted" else None,
                 lost_at=closed if status == "lost" else None,
                 declined_at=closed if status == "declined" else None,
                 referred_by_person_id=org_person(referrer, spec["by"]),
                 owner_person_id=org_person(receiver, spec["owner"]) if accepted else None)
    for spec in world["leads"]:
        person = people[spec["person"]]
        org = next(o for o in orgs if o.id == person.organization_id)
        if not visits_of.get(org.id):
            visit = Visit(organization_id=org.id, person_id=person.id, client_id=client.id,
                          visited_at=spec["at"], created_by="test")
            session.add(visit)
            session.flush()
            visits_of[org.id] = [visit]
        moved = spec["at"] + timedelta(days=spec["later"]) if spec["status"] != "open" \
            else spec["at"]
        referral_id = None
        if spec["status"] == "referred":
            receiver = orgs[(orgs.index(org) + 1 + spec["receiver"] % (len(orgs) - 1))
                            % len(orgs)]
            referral_id = referral(org.id, receiver.id, moved, status="pending",
                                   referred_by_person_id=person.id).id
        session.add(Lead(organization_id=org.id, visit_id=visits_of[org.id][0].id,
                         person_id=person.id, client_id=client.id, name="A lead",
                         status=spec["status"], referral_id=referral_id,
                         created_at=spec["at"], updated_at=moved))
    session.flush()
    ids = {"organization": [o.id for o in orgs], "department": [d.id for d in departments],
           "person": [p.id for p in people]}
    for ((scope, index), month), value in world["targets"].items():
        scope_id = ids[scope][index]
        session.add(KpiTarget(scope=scope, scope_id=scope_id, month=month,
                              organization_id=_org_of(scope, scope_id, orgs, departments,
                                                      people),
                              new_clients=value, agreed_by="test"))
    for ((scope, index), month), status in world["proposals"].items():
        scope_id = ids[scope][index]
        session.add(KpiTargetProposal(
            scope=scope, scope_id=scope_id, month=month, new_clients=3, status=status,
            organization_id=_org_of(scope, scope_id, orgs, departments, people),
            side="holder", proposed_by="test"))
    session.commit()
    return ids


def _org_of(scope, scope_id, orgs, departments, people) -> int:
    if scope == "organization":
        return scope_id
    rows = departments if scope == "department" else people
    return next(row.organization_id for row in rows if row.id == scope_id)


# ---------------------------------------------------------------------------- the oracle

def expected(session, ids: dict[str, list[int]], month: str) -> dict[str, dict[int, dict]]:
    """Every level's rows of `month`, recomputed in Python from the raw rows."""
    start, end = kpi.month_range(month)

    def within(at):
        return at is not None and start <= at < end

    orgs = set(ids["organization"])
    departments = session.scalars(select(Department).where(
        Department.organization_id.in_(orgs))).all()
    people = session.scalars(select(Person).where(Person.organization_id.in_(orgs))).all()
    visits = session.scalars(select(Visit).where(Visit.organization_id.in_(orgs))).all()
    leads = session.scalars(select(Lead).where(Lead.organization_id.in_(orgs))).all()
    referrals = {r.id: r for r in session.scalars(select(Referral).where(
        Referral.referrer_organization_id.in_(orgs)))}
    targets = {(t.scope, t.scope_id): t.new_clients for t in session.scalars(
        select(KpiTarget).where(KpiTarget.organization_id.in_(orgs), KpiTarget.month == month))}
    proposed = {(p.scope, p.scope_id) for p in session.scalars(select(KpiTargetProposal).where(
        KpiTargetProposal.organization_id.in_(orgs), KpiTargetProposal.month == month,
        KpiTargetProposal.status == "proposed"))}

    person_figures: dict[int, Counter] = {p.id: Counter() for p in people}
    org_figures: dict[int, Counter] = {o: Counter() for o in orgs}
    for visit in visits:
        if within(visit.visited_at):
            for figures in (person_figures[visit.person_id], org_figures[visit.organization_id]):
                figures["visits"] += 1
                figures["empty_handed_visits"] += visit.empty_handed
                figures["commitments"] += visit.commitment_description is not None
    for lead in leads:
        for figures in (person_figures[lead.person_id], org_figures[lead.organization_id]):
            figures["leads"] += within(lead.created_at)
            won = lead.status == "won" and within(lead.updated_at)
            figures["leads_won"] += won
            figures["new_client_credits"] += won
            figures["leads_referred"] += (lead.referral_id is not None
                                          and within(referrals[lead.referral_id].created_at))
    for referral in referrals.values():
        referrer = org_figures[referral.referrer_organization_id]
        receiver = org_figures[referral.receiver_organization_id]
        referrer["referrals_made"] += within(referral.created_at)
        receiver["referrals_received"] += within(referral.created_at)
        receiver["accepted_received"] += within(referral.accepted_at)
        # A conversion counts while it stands: one head office reversed counts nowhere.
        if referral.status == "converted" and within(referral.converted_at):
            referrer["converted_made"] += 1
            receiver["converted_received"] += 1
            referrer["new_client_credits"] += 1
            receiver["new_client_credits"] += 1
            for person_id in (referral.referred_by_person_id, referral.owner_person_id):
                if person_id is not None:
                    person_figures[person_id]["new_client_credits"] += 1

    def status(keys):
        if any(key in targets for key in keys):
            return "agreed"
        return "proposed" if any(key in proposed for key in keys) else "none"

    def attainment(credits, target):
        return None if not target else round(credits / target, 4)

    result: dict[str, dict[int, dict]] = {"organization": {}, "department": {}, "person": {}}
    for org, figures in org_figures.items():
        key = ("organization", org)
        if any(figures.values()) or key in targets or key in proposed:
            target = targets.get(key)
            result["organization"][org] = {
                **{name: figures[name] for name in (
                    "referrals_made", "referrals_received", "accepted_received",
                    "converted_made", "converted_received", *FIGURES)},
                "target": target, "target_status": status([key]),
                "attainment": attainment(figures["new_client_credits"], target)}

    children: dict[int | None, list[int]] = {}
    for department in departments:
        children.setdefault(department.parent_id, []).append(department.id)

    def tree(department_id: int) -> set[int]:
        found = {department_id}
        for child in children.get(department_id, []):
            found |= tree(child)
        return found

    department_figures: dict[int, Counter] = {}
    for department in departments:
        inside = tree(department.id)
        total = Counter()
        for person in people:
            if person.department_id in inside:
                total.update(person_figures[person.id])
        department_figures[department.id] = total
        key = ("department", department.id)
        if any(total.values()) or key in targets or key in proposed:
            target = targets.get(key)
            result["department"][department.id] = {
                **{name: total[name] for name in FIGURES}, "target": target,
                "target_status": status([key]),
                "attainment": attainment(total["new_client_credits"], target)}

    parent_of = {d.id: d.parent_id for d in departments}
    head_of = {d.id: d.head_person_id for d in departments}

    def ancestors(department_id: int) -> list[int]:
        found, current = [], parent_of[department_id]
        while current is not None:
            found.append(current)
            current = parent_of[current]
        return found

    for person in people:
        headed = [d.id for d in departments if d.head_person_id == person.id
                  and all(head_of[a] != person.id for a in ancestors(d.id))]
        if headed:
            total = Counter()
            for department_id in headed:
                total.update(department_figures[department_id])
            keys = [("department", d) for d in headed]
            agreed = [targets[key] for key in keys if key in targets]
            target = sum(agreed) if agreed else None
            shown = (any(any(department_figures[d].values()) for d in headed)
                     or any(key in targets or key in proposed for key in keys))
        else:
            total, keys = person_figures[person.id], [("person", person.id)]
            target = targets.get(keys[0])
            shown = any(total.values()) or keys[0] in targets or keys[0] in proposed
        if shown:
            result["person"][person.id] = {
                **{name: total[name] for name in FIGURES}, "target": target,
                "target_status": status(keys),
                "attainment": attainment(total["new_client_credits"], target)}
    return result


def observed(session, ids, month: str, level: str, **filters) -> dict[int, dict]:
    key = {"organization": "organization_id", "department": "department_id",
           "person": "person_id"}[level]
    rows = kpi.monthly_kpi(session=session, month=month, actor=SYSTEM, level=level, **filters)
    assert all(tuple(row) == kpi.LEVEL_COLUMNS[level] for row in rows)
    assert [row[key] for row in rows] == sorted(row[key] for row in rows)
    mine = set(ids[level])
    found = {}
    for row in rows:
        if row[key] in mine:
            compared = {name: row[name] for name in expected_names(level)}
            if compared["attainment"] is not None:
                compared["attainment"] = round(compared["attainment"], 4)
            found[row[key]] = compared
    return found


def expected_names(level: str) -> tuple[str, ...]:
    extra = (("referrals_made", "referrals_received", "accepted_received", "converted_made",
              "converted_received") if level == "organization" else ())
    return (*extra, *FIGURES, "target", "target_status", "attainment")


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(world=worlds())
def test_every_level_equals_a_recount_of_the_raw_rows(session, world):
    ids = build(session, world)
    for month in CHECKED:
        want = expected(session, ids, month)
        for level in kpi.LEVELS:
            assert observed(session, ids, month, level) == want[level], (month, level)
        # organization_id narrows every level to that firm's rows.
        org = ids["organization"][0]
        for level in ("department", "person"):
            narrowed = kpi.monthly_kpi(session=session, month=month, actor=SYSTEM,
                                       level=level, organization_id=org)
            assert {row["organization_id"] for row in narrowed} <= {org}
            assert observed(session, ids, month, level, organization_id=org) == {
                key: row for key, row in want[level].items()
                if key in _ids_of(session, level, org)}


ADMIN = Principal(name="head office", role="admin")
ROW_KEYS = {"organization": "organization_id", "department": "department_id",
            "person": "person_id"}


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(world=worlds(), closing=st.sets(st.sampled_from(CHECKED), min_size=1),
       conversions=st.lists(st.fixed_dictionaries({
           "referrer": st.integers(0, 2), "receiver": st.integers(1, 2), "at": moment(),
           "status": st.sampled_from(("converted", "pending")),
           "accepted_after": st.integers(0, 10), "closed_after": st.integers(0, 10),
           "by": st.one_of(st.none(), st.integers(0, 30)),
           "owner": st.one_of(st.none(), st.integers(0, 30))}), min_size=1, max_size=4),
       reversing=st.lists(st.booleans(), min_size=12, max_size=12), expiring=st.booleans())
def test_closed_months_stay_and_their_corrections_add_up_to_a_recount(
        session, world, closing, conversions, reversing, expiring):
    """Random histories (with a few more conversions and pending referrals); some months
    close; then conversions are reversed and referrals expire. Each closed month's rows stay
    as they were, and its snapshot plus the corrections booked for it equal its rows
    recounted from the raw rows now."""
    from models import KpiCorrection, KpiMonth, KpiMonthExport, KpiMonthSnapshot
    from referral_service.services import months, referrals

    for model in (KpiCorrection, KpiMonthExport, KpiMonthSnapshot, KpiMonth):
        session.execute(delete(model))  # each example closes its own months
    session.commit()
    world["referrals"] += [{**spec, "referrer": spec["referrer"] % world["orgs"]}
                           for spec in conversions]
    ids = build(session, world)
    frozen = {}
    for month in sorted(closing):
        months.close(session=session, month=month, actor=ADMIN)
        frozen[month] = {level: kpi.monthly_kpi(session=session, month=month, actor=SYSTEM,
                                                level=level) for level in kpi.LEVELS}
    converted = session.scalars(select(Referral.id).where(
        Referral.referrer_organization_id.in_(ids["organization"]),
        Referral.status == "converted").order_by(Referral.id)).all()
    for referral_id, reverse in zip(converted, reversing, strict=False):
        if reverse:
            referrals.move_referral(session=session, referral_id=referral_id, status="lost",
                                    reason=f"Reversed {referral_id}", actor=ADMIN)
    if expiring:
        referrals.expire_pending(session=session, older_than_days=14)
    session.expire_all()
    for month in sorted(closing):
        want = expected(session, ids, month)
        for level in kpi.LEVELS:
            rows = kpi.monthly_kpi(session=session, month=month, actor=SYSTEM, level=level)
            assert rows == frozen[month][level], (month, level)
            names, key = months.figures(level), ROW_KEYS[level]
            shown: dict[int, Counter] = {}
            for row in rows:
                if row["organization_id"] in ids["organization"]:
                    shown[row[key]] = Counter({name: row[name] for name in names})
            for correction in session.scalars(select(KpiCorrection).where(
                    KpiCorrection.correction_of == month, KpiCorrection.level == level,
                    KpiCorrection.organization_id.in_(ids["organization"]))):
                assert correction.month not in closing or correction.month > month
                row_id = correction.row_id if key != "organization_id" else (
                    correction.organization_id)
                shown.setdefault(row_id, Counter()).update(correction.deltas)
            recount = {row_id: Counter({name: row[name] for name in names})
                       for row_id, row in want[level].items()}
            assert _nonzero(shown) == _nonzero(recount), (month, level)


def _nonzero(rows: dict[int, Counter]) -> dict[int, dict[str, int]]:
    """Each row's non-zero figures; rows with none left out."""
    kept = {row_id: {name: value for name, value in figures.items() if value}
            for row_id, figures in rows.items()}
    return {row_id: figures for row_id, figures in kept.items() if figures}


def _ids_of(session, level: str, org: int) -> set[int]:
    model = Department if level == "department" else Person
    return set(session.scalars(select(model.id).where(model.organization_id == org)))


# ----------------------------------------------------------------------- worked examples

MARCH = "2026-03"


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


@pytest.fixture
def sales(session):
    """Firm A: Sales (head Ann) over Sales North (head Bob, member Cy); Firm B: Dee."""
    world = {
        "orgs": 2,
        "departments": [{"org": 0, "parent": None, "head": 0},
                        {"org": 0, "parent": 0, "head": 1}],
        "people": [{"org": 0, "department": 0, "manager": None},
                   {"org": 0, "department": 1, "manager": 0},
                   {"org": 0, "department": 1, "manager": 1},
                   {"org": 1, "department": None, "manager": None}],
        "visits": [{"person": 2, "at": at(2), "kind": "commitment"},
                   {"person": 2, "at": at(3), "kind": "empty"},
                   {"person": 0, "at": at(4), "kind": "leads"}],
        "leads": [{"person": 2, "at": at(2), "status": "won", "later": 3, "receiver": 0},
                  {"person": 1, "at": at(20, 2), "status": "referred", "later": 10,
                   "receiver": 0}],
        "referrals": [{"referrer": 1, "receiver": 1, "at": at(1, 2), "status": "converted",
                       "accepted_after": 1, "closed_after": 35, "by": 0, "owner": 2}],
        "targets": {(("department", 0), MARCH): 4, (("person", 2), MARCH): 2,
                    (("person", 0), MARCH): 99},
        "proposals": {(("department", 1), MARCH): "proposed"},
    }
    return build(session, world)


def test_a_department_sums_its_tree_and_its_head_shows_it(session, sales):
    people = {row["person_id"]: row for row in kpi.monthly_kpi(
        session=session, month=MARCH, actor=SYSTEM, level="person")}
    departments = {row["department_id"]: row for row in kpi.monthly_kpi(
        session=session, month=MARCH, actor=SYSTEM, level="department")}
    ann, bob, cy, dee = sales["person"]
    top, north = sales["department"]
    # Cy: two visits (a commitment, empty-handed), a lead won, and the referral he owns.
    assert {k: people[cy][k] for k in FIGURES} == {
        "visits": 2, "empty_handed_visits": 1, "commitments": 1, "leads": 1, "leads_won": 1,
        "leads_referred": 0, "new_client_credits": 2}
    assert (people[cy]["target"], people[cy]["target_status"]) == (2, "agreed")
    # Sales North: Bob's referred lead and Cy's work; Bob, its head, shows just that.
    assert departments[north]["leads_referred"] == 1
    assert departments[north]["new_client_credits"] == 2
    assert departments[north]["target_status"] == "proposed"
    assert {k: people[bob][k] for k in FIGURES} == {k: departments[north][k] for k in FIGURES}
    assert people[bob]["target_status"] == "proposed"
    # Sales: Ann's visit too; Ann's row is the department's, with its target (not her 99).
    assert departments[top]["visits"] == 3
    assert {k: people[ann][k] for k in FIGURES} == {k: departments[top][k] for k in FIGURES}
    assert (people[ann]["target"], people[ann]["attainment"]) == (4, 0.5)
    # Dee referred the client Cy converted: a credit at the other firm.
    assert people[dee]["new_client_credits"] == 1
    assert people[dee]["department_id"] is None


def test_a_partner_sees_only_its_own_rows_at_every_level(session, sales):
    firm_a, firm_b = sales["organization"]
    partner = Principal(name="key:b", role="partner", organization_id=firm_b)
    for level in kpi.LEVELS:
        rows = kpi.monthly_kpi(session=session, month=MARCH, actor=partner, level=level)
        assert {row["organization_id"] for row in rows} == (
            set() if level == "department" else {firm_b})  # firm B has no departments
        with pytest.raises(NotFound):
            kpi.monthly_kpi(session=session, month=MARCH, actor=partner, level=level,
                            organization_id=firm_a)


def test_a_person_signed_in_sees_the_people_under_them(session, sales):
    firm_a = sales["organization"][0]
    ann, bob, cy, _ = sales["person"]
    user = Principal(name="bob", role="partner", organization_id=firm_a, person_id=bob)
    rows = kpi.monthly_kpi(session=session, month=MARCH, actor=user, level="person")
    assert {row["person_id"] for row in rows} == {bob, cy}
    departments = kpi.monthly_kpi(session=session, month=MARCH, actor=user, level="department")
    assert [row["department_id"] for row in departments] == [sales["department"][1]]


def test_an_unknown_level_is_refused(session):
    with pytest.raises(ValidationFailed):
        kpi.monthly_kpi(session=session, month=MARCH, actor=SYSTEM, level="team")


def test_every_level_exports_deterministically(session, sales, tmp_path):
    import openpyxl

    levels = {level: kpi.monthly_kpi(session=session, month=MARCH, actor=SYSTEM, level=level)
              for level in kpi.LEVELS}
    for level, rows in levels.items():
        csv_data = kpi.export(rows, "csv", MARCH, level).decode("utf-8-sig")
        assert csv_data.splitlines()[0] == ",".join(kpi.LEVEL_COLUMNS[level])
    data = kpi.export_levels(levels, "xlsx", MARCH)
    assert kpi.export_levels(levels, "xlsx", MARCH) == data
    path = tmp_path / "all.xlsx"
    path.write_bytes(data)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Organizations", "Departments", "People",
                                   "Credits by department"]
    assert [c.value for c in workbook["Departments"][1]] == list(kpi.DEPARTMENT_COLUMNS)
    workbook.close()
    with pytest.raises(ValidationFailed):
        kpi.export_levels(levels, "csv", MARCH)
