"""Invariants of matching, checked on generated firms and needs (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
from geopy.distance import geodesic
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import scoring.index
from scoring import DEFAULT_WEIGHTS, Candidate, Firm, MatchIndex, Need, Office, Weights, rank_naive
from scoring.components import SPHERE_TOLERANCE, score_firm, spherical_km
from scoring.text import profile_vector

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SKILLS = ("anodizing", "welding", "cnc-machining", "painting", "laser-cutting", "bending")
_WORDS_TEXT = (
    "aluminium aluminum anodising anodizing welding steel cnc machining painting laser "
    "cutting bending timber bakery colour color the and of"
)
WORDS = _WORDS_TEXT.split()

descriptions = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
latitudes = st.floats(45.0, 50.0)
longitudes = st.floats(8.0, 14.0)
radii = st.sampled_from((5.0, 50.0, 100.0, 300.0, 20_000.0))
counts = st.integers(0, 6)


def offices_strategy(max_size: int = 4) -> st.SearchStrategy[tuple[Office, ...]]:
    office = st.builds(Office, st.integers(1, 10**6), latitudes, longitudes, radii)
    return st.lists(office, max_size=max_size).map(tuple)


def firm_strategy(firm_id: int | st.SearchStrategy[int]) -> st.SearchStrategy[Firm]:
    return st.builds(
        Firm,
        id=firm_id if isinstance(firm_id, st.SearchStrategy) else st.just(firm_id),
        name=st.just("Firm"),
        kind=st.sampled_from(("partner", "affiliate")),
        skills=st.lists(st.sampled_from(SKILLS), max_size=4).map(tuple),
        description=descriptions,
        offices=offices_strategy(),
        active=st.booleans(),
        capacity=st.none() | st.integers(0, 6),
        open_referrals=counts,
        won=counts,
        failed=counts,
    )


worlds = st.lists(st.integers(1, 40), unique=True, max_size=10).flatmap(
    lambda ids: st.tuples(*(firm_strategy(firm_id) for firm_id in ids)).map(list)
)


@st.composite
def needs(draw: st.DrawFn) -> Need:
    skills = tuple(draw(st.lists(st.sampled_from(SKILLS), max_size=3, unique=True)))
    description = draw(descriptions)
    assume(skills or description.strip())
    return Need(
        latitude=draw(latitudes),
        longitude=draw(longitudes),
        skills=skills,
        description=description,
        limit=draw(st.integers(1, 12)),
        max_distance_km=draw(st.none() | st.floats(1.0, 800.0)),
        kinds=draw(st.none() | st.sampled_from((frozenset({"partner"}), frozenset({"affiliate"})))),
        exclude_ids=frozenset(draw(st.lists(st.integers(1, 40), max_size=3))),
        min_skill_fit=draw(st.sampled_from((0.0, 0.15, 0.3, 0.75))),
    )


weights_strategy = (
    st.tuples(*(st.floats(0.0, 1.0) for _ in range(4)))
    .filter(lambda values: sum(values) > 0.01)
    .map(lambda values: Weights(*values))
)


def both(firms: list[Firm], need: Need, weights: Weights = DEFAULT_WEIGHTS) -> list[Candidate]:
    """Rank with MatchIndex and rank_naive, check they agree, and return the ranking."""
    indexed = MatchIndex().fit(firms).query(need, weights)
    assert indexed == rank_naive(firms, need, weights)
    return indexed


def place(origin: tuple[float, float], distance_km: float, bearing: float) -> tuple[float, float]:
    point = geodesic(kilometers=distance_km).destination(origin, bearing)
    return point.latitude, point.longitude


def twin_firms(
    first: tuple[int, tuple[float, float], float, tuple[str, ...], str],
    second: tuple[int, tuple[float, float], float, tuple[str, ...], str],
    record: tuple[int, int, int | None, int],
) -> list[Firm]:
    won, failed, capacity, open_referrals = record
    return [
        Firm(
            firm_id,
            f"Firm {firm_id}",
            "partner",
            skills,
            description,
            (Office(firm_id, at[0], at[1], radius),),
            capacity=capacity,
            open_referrals=_below(open_referrals, capacity),
            won=won,
            failed=failed,
        )
        for firm_id, at, radius, skills, description in (first, second)
    ]


def _below(open_referrals: int, capacity: int | None) -> int:
    """Return open_referrals kept under capacity, so that the firm can be proposed."""
    return open_referrals if capacity is None else min(open_referrals, capacity - 1)


records = st.tuples(counts, counts, st.none() | st.integers(1, 6), counts)
firm_ids = st.lists(st.integers(1, 10**6), min_size=2, max_size=2, unique=True)
clients = st.tuples(st.floats(-70.0, 70.0), st.floats(-179.0, 179.0))


@SETTINGS
@given(
    client=clients,
    required=st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True),
    extra=st.lists(st.sampled_from(SKILLS), max_size=2),
    description=descriptions,
    full_description=descriptions,
    none_description=descriptions,
    radius=st.floats(0.5, 3000.0),
    bearing=st.floats(0.0, 360.0),
    record=records,
    ids=firm_ids,
)
def test_firm_with_every_required_skill_beats_nearer_firm_with_none(
    client, required, extra, description, full_description, none_description, radius, bearing,
    record, ids,
) -> None:  # fmt: skip
    full = tuple(dict.fromkeys([*required, *extra]))
    others = tuple(skill for skill in SKILLS if skill not in required)
    edge = place(client, radius, bearing)  # at the edge of its service radius
    # the rival sits at the client's door and may describe itself with the need's own words
    firms = twin_firms(
        (ids[0], edge, radius, full, full_description),
        (ids[1], client, 100.0, others, none_description + " " + " ".join(required)),
        record,
    )
    # no floor: the rival must rank second, not merely be left out
    need = Need(client[0], client[1], skills=tuple(required), description=description, limit=2,
                min_skill_fit=0.0)
    assert [c.organization_id for c in both(firms, need)] == ids


@SETTINGS
@given(
    client=clients,
    near=st.floats(0.0, 2000.0),
    gap=st.floats(0.01, 2000.0),
    bearings=st.tuples(st.floats(0.0, 360.0), st.floats(0.0, 360.0)),
    skills=st.lists(st.sampled_from(SKILLS), max_size=3, unique=True).map(tuple),
    description=descriptions,
    record=records,
    ids=firm_ids,
)
def test_nearer_firm_ranks_higher_when_profiles_are_equal(
    client, near, gap, bearings, skills, description, record, ids
) -> None:
    far = near + gap
    radius = far * 1.01 + 1.0
    firms = twin_firms(
        (ids[0], place(client, near, bearings[0]), radius, skills, description),
        (ids[1], place(client, far, bearings[1]), radius, skills, description),
        record,
    )
    need = Need(client[0], client[1], skills=("welding",), description="steel", limit=2,
                min_skill_fit=0.0)
    result = both(firms, need)
    assert [c.organization_id for c in result] == ids
    assert result[0].distance_km < result[1].distance_km


@SETTINGS
@given(firms=worlds, need=needs(), weights=weights_strategy)
def test_components_are_in_unit_range_and_score_is_their_weighted_sum(firms, need, weights):
    normalized = weights.normalized()
    for candidate in both(firms, need, weights):
        b = candidate.breakdown
        assert all(0.0 <= value <= 1.0 for value in b.values())
        weighted = (
            normalized.skill * b["skill"]
            + normalized.location * b["location"]
            + normalized.performance * b["performance"]
            + normalized.capacity * b["capacity"]
        )
        assert math.isclose(candidate.score, weighted, rel_tol=0, abs_tol=1e-9)
        assert candidate.organization_id not in need.exclude_ids


@SETTINGS
@given(firms=worlds, need=needs(), data=st.data())
def test_ranking_is_the_same_when_the_input_is_shuffled(firms, need, data) -> None:
    shuffled = data.draw(st.permutations(firms))
    assert both(shuffled, need) == both(firms, need)


operations = st.lists(
    st.tuples(st.just("upsert"), firm_strategy(st.integers(1, 15)))
    | st.tuples(st.just("remove"), st.integers(1, 15)),
    max_size=12,
)


@settings(SETTINGS, max_examples=20)
@given(
    firms=st.lists(st.integers(1, 15), unique=True, max_size=8).flatmap(
        lambda ids: st.tuples(*(firm_strategy(firm_id) for firm_id in ids)).map(list)
    ),
    steps=operations,
    queries=st.lists(needs(), min_size=1, max_size=3),
)
def test_incremental_updates_give_what_a_fresh_fit_gives(firms, steps, queries) -> None:
    with mock.patch.object(scoring.index, "MIN_DEAD_SLOTS", 3):  # compact often, too
        index = MatchIndex(compact_ratio=0.5).fit(firms)
        current = {firm.id: firm for firm in firms}
        for operation, argument in steps:
            if operation == "upsert":
                index.upsert(argument)
                current[argument.id] = argument
            else:
                index.remove(argument)
                current.pop(argument, None)
    assert len(index) == len(current)
    assert all(firm_id in index for firm_id in current)
    rebuilt = MatchIndex().fit(current.values())
    for need in queries:
        assert index.query(need) == rebuilt.query(need) == rank_naive(current.values(), need)


@settings(max_examples=100, deadline=None)
@given(a=clients, b=st.tuples(st.floats(-90.0, 90.0), st.floats(-180.0, 180.0)))
def test_spherical_distance_is_within_tolerance_of_the_geodesic(a, b) -> None:
    exact = geodesic(a, b).km
    assume(exact > 1e-3)
    assert abs(spherical_km(a, b) / exact - 1.0) <= SPHERE_TOLERANCE


# Spellings that must count as one skill (SPEC section 8): British/American, plurals and
# inflections; hyphens, spaces and case already meet in the slug.
SKILL_VARIANTS = {
    "anodizing": ("anodising", "anodized", "anodised", "anodization"),
    "welding": ("weld", "welded", "welds"),
    "cnc-machining": ("cnc-machined", "cnc-machine"),
    "painting": ("paint", "painted", "paints"),
    "laser-cutting": ("laser-cut", "laser-cuts"),
    "bending": ("bend", "bends"),
}


@SETTINGS
@given(firms=worlds, need=needs(), data=st.data())
def test_a_variant_of_a_tag_scores_as_the_tag(firms, need, data) -> None:
    def respelled(firm: Firm) -> Firm:
        skills = tuple(data.draw(st.sampled_from((s, *SKILL_VARIANTS[s]))) for s in firm.skills)
        return Firm(**{**{f: getattr(firm, f) for f in Firm.__dataclass_fields__},
                       "skills": tuple(dict.fromkeys(skills))})

    assume(all(len(set(firm.skills)) == len(firm.skills) for firm in firms))
    variant_world = [respelled(firm) for firm in firms]
    assert both(variant_world, need) == both(firms, need)


@SETTINGS
@given(
    firm=firm_strategy(1),
    need=needs(),
    distance=st.floats(0.0, 3000.0),
    bearing=st.floats(0.0, 360.0),
    spare=st.floats(0.0, 500.0),
)
def test_adding_an_office_that_serves_the_client_never_lowers_the_location_fit(
    firm, need, distance, bearing, spare
) -> None:
    at = place((need.latitude, need.longitude), distance, bearing)
    # a radius that surely reaches the client: geodesic distance plus a margin
    office = Office(10**7, at[0], at[1], distance * 1.01 + 1.0 + spare)
    bigger = Firm(**{**{f: getattr(firm, f) for f in Firm.__dataclass_fields__},
                     "offices": (*firm.offices, office)})
    unlimited = replace(need, limit=100, max_distance_km=None)
    before = {c.organization_id: c for c in both([firm], unlimited)}
    after = {c.organization_id: c for c in both([bigger], unlimited)}
    assert set(before) <= set(after)
    for firm_id, candidate in before.items():
        assert after[firm_id].breakdown["location"] >= candidate.breakdown["location"]
    if after:
        assert after[1].breakdown["location"] > 0.0


@SETTINGS
@given(firms=worlds, need=needs(), floor=st.floats(0.0, 0.75))
def test_the_floor_never_drops_a_firm_that_has_every_required_skill(firms, need, floor) -> None:
    assume(need.skills)
    unfloored = both(firms, replace(need, limit=100, min_skill_fit=0.0))
    floored_need = replace(need, limit=100, min_skill_fit=floor)
    floored = {c.organization_id for c in both(firms, floored_need)}
    complete = {c.organization_id for c in unfloored if not c.missing_skills}
    assert complete <= floored
    assert all(c.breakdown["skill"] >= floor for c in unfloored if c.organization_id in floored)


@SETTINGS
@given(firms=worlds, need=needs(), extra=descriptions, data=st.data())
def test_a_longer_profile_never_scores_a_lower_skill_fit(firms, need, extra, data) -> None:
    assume(firms)
    firm = data.draw(st.sampled_from(firms))
    longer = Firm(**{**{f: getattr(firm, f) for f in Firm.__dataclass_fields__},
                     "description": f"{firm.description} {extra}"})
    # the same corpus on both sides, so that the idf is the same: the firm and its longer twin
    others = [f for f in firms if f.id != firm.id]
    twin = Firm(**{**{f: getattr(longer, f) for f in Firm.__dataclass_fields__}, "id": 10**6})
    probe = replace(need, limit=100, min_skill_fit=0.0, exclude_ids=frozenset(),
                    kinds=None, max_distance_km=None)
    result = {c.organization_id: c for c in both([*others, firm, twin], probe)}
    if firm.id in result:
        assert result[10**6].breakdown["skill"] >= result[firm.id].breakdown["skill"]


@SETTINGS
@given(firms=worlds, need=needs(), weights=weights_strategy)
def test_the_index_bound_is_never_below_a_firms_exact_score(firms, need, weights) -> None:
    # what lets MatchIndex stop early: every firm's bound is at least its exact score, with
    # each office judged against its own radius and the floor applied
    index = MatchIndex().fit(firms)
    state, normalized = index.state_, weights.normalized()
    query, rows = scoring.index._text_query(state, need)
    text = np.zeros(state.n_slots)
    bound, _, chosen = index._upper_bounds(state, need, normalized, rows, text)
    # the bounds are of the slots `chosen` (every slot when None): a firm left out cannot score
    at = {slot: i for i, slot in enumerate(range(len(bound)) if chosen is None else chosen)}
    slack = scoring.index.SCORE_SLACK + scoring.index.SCORE_SLACK_PER_SKILL * len(need.skills)
    for slot, firm in enumerate(state.store.firms):
        exact = score_firm(firm, need, query, normalized, profile_vector(firm))
        if exact is not None:
            assert float(bound[at[slot]]) + slack >= exact.score
            assert text[slot] == pytest.approx(query.similarity(profile_vector(firm)), abs=1e-12)


QUALIFIED = st.tuples(st.sampled_from(("hard", "precision", "tig", "")),
                      st.sampled_from(("services", "parts", "")))


@SETTINGS
@given(firms=worlds, need=needs(), qualifier=QUALIFIED, data=st.data())
def test_a_tag_naming_a_skill_with_more_words_covers_it(firms, need, qualifier, data) -> None:
    assume(firms and need.skills)
    firm = data.draw(st.sampled_from(firms))
    skill = data.draw(st.sampled_from(need.skills))
    before, after = qualifier
    tag = "-".join(part for part in (before, skill, after) if part)
    without = Firm(**{**{f: getattr(firm, f) for f in Firm.__dataclass_fields__},
                      "skills": tuple(s for s in firm.skills if s != skill)})
    # the firm without the skill and its twin with the longer tag, in one corpus (one idf)
    twin = Firm(**{**{f: getattr(without, f) for f in Firm.__dataclass_fields__},
                   "id": 10**6, "skills": (*without.skills, tag)})
    others = [f for f in firms if f.id != firm.id]
    probe = replace(need, limit=100, min_skill_fit=0.0, exclude_ids=frozenset(),
                    kinds=None, max_distance_km=None)
    result = {c.organization_id: c for c in both([*others, without, twin], probe)}
    if firm.id in result:
        assert skill in result[10**6].matched_skills
        assert skill not in result[firm.id].matched_skills
        assert result[10**6].breakdown["skill"] > result[firm.id].breakdown["skill"]
        assert result[10**6].score > result[firm.id].score
