"""Groups in matching (SPEC section 8): prefer_group weighs, same_group_only filters."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import DEFAULT_WEIGHTS, MatchIndex, Need, Weights, rank_naive
from tests.scoring.conftest import CLIENT
from tests.scoring.test_properties import needs, worlds

FORMOSA, SAKURA = 7, 9
PREFERRING = Weights(skill=0.6, location=0.25, performance=0.1, capacity=0.05, group=0.04)


def _need(**fields) -> Need:
    return Need(latitude=CLIENT[0], longitude=CLIENT[1], skills=("welding",), limit=10,
                **fields)


def test_prefer_group_lifts_the_referrers_affiliate_over_a_nearer_outsider(rank, make_firm):
    outsider = make_firm(1, (48.14, 11.58))  # at the client's door
    affiliate = make_firm(2, (48.20, 11.60), group_id=FORMOSA)  # about 7 km away

    plain = rank([outsider, affiliate], _need(group_id=FORMOSA), PREFERRING)
    preferring = rank([outsider, affiliate], _need(group_id=FORMOSA, prefer_group=True),
                      PREFERRING)

    assert [c.organization_id for c in plain] == [1, 2]
    assert "group" not in plain[0].breakdown
    assert [c.organization_id for c in preferring] == [2, 1]
    assert {c.organization_id: c.breakdown["group"] for c in preferring} == {1: 0.0, 2: 1.0}


def test_the_group_weight_never_lifts_a_firm_without_the_skill_over_one_with_it(
    rank, make_firm
):
    # The default group weight is set so that skill still comes first (config.py):
    # 0.6 * (0.75 - 0.25) = 0.30 > location 0.25 + group 0.04.
    skilled = make_firm(1, (48.9, 11.6), skills=("welding",))  # 85 km away
    affiliate = make_firm(2, CLIENT, skills=("painting",), group_id=FORMOSA,
                          description="welding")  # skill fit 0.25 from text alone
    ranked = rank([skilled, affiliate], _need(group_id=FORMOSA, prefer_group=True,
                                              min_skill_fit=0.0), PREFERRING)

    assert [c.organization_id for c in ranked] == [1, 2]


def test_same_group_only_proposes_only_the_referrers_group(rank, make_firm):
    firms = [make_firm(1), make_firm(2, group_id=FORMOSA), make_firm(3, group_id=SAKURA),
             make_firm(4, group_id=FORMOSA, active=False)]

    ranked = rank(firms, _need(group_id=FORMOSA, same_group_only=True))

    assert [c.organization_id for c in ranked] == [2]


def test_a_need_preferring_a_group_names_it():
    with pytest.raises(ValueError, match="group_id"):
        _need(prefer_group=True)
    with pytest.raises(ValueError, match="group_id"):
        _need(same_group_only=True)


def test_the_index_follows_a_firm_moving_between_groups(make_firm):
    index = MatchIndex().fit([make_firm(1, group_id=FORMOSA), make_firm(2, group_id=SAKURA)])
    need = _need(group_id=FORMOSA, same_group_only=True)
    assert [c.organization_id for c in index.query(need)] == [1]
    assert index.group_of(2) == SAKURA

    index.upsert(make_firm(2, group_id=FORMOSA))
    index.upsert(make_firm(1))  # leaves its group

    assert [c.organization_id for c in index.query(need)] == [2]
    assert index.group_of(1) is None
    with pytest.raises(KeyError):
        index.group_of(99)


@pytest.mark.parametrize("seed", range(5))
def test_the_index_ranks_groups_exactly_as_the_naive_ranking(make_firm, seed):
    rng = random.Random(seed)
    firms = [make_firm(i, (CLIENT[0] + rng.uniform(-1, 1), CLIENT[1] + rng.uniform(-1, 1)),
                       skills=rng.choice([("welding",), ("welding", "painting"), ("painting",)]),
                       group_id=rng.choice([None, FORMOSA, SAKURA]),
                       won=rng.randint(0, 5), failed=rng.randint(0, 5))
             for i in range(1, 200)]
    index = MatchIndex().fit(firms)
    for _ in range(3):  # some firms change group, as a sync would upsert them
        moved = rng.choice(firms)
        index.upsert(make_firm(moved.id, (moved.offices[0].latitude,
                                          moved.offices[0].longitude),
                               skills=moved.skills, group_id=rng.choice([None, SAKURA]),
                               won=moved.won, failed=moved.failed))
    current = [index.state_.store.firms[slot] for slot in sorted(
        index.state_.store.slot_of.values())]
    for fields in ({"prefer_group": True}, {"same_group_only": True},
                   {"prefer_group": True, "same_group_only": True}, {}):
        need = _need(group_id=FORMOSA, **fields)
        for weights in (PREFERRING, DEFAULT_WEIGHTS):
            assert index.query(need, weights) == rank_naive(current, need, weights)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds, need=needs(), groups=st.lists(st.sampled_from([None, FORMOSA, SAKURA]),
                                                   min_size=40, max_size=40),
       same=st.booleans())
def test_preferring_the_group_adds_its_weight_to_its_firms_and_nothing_else(
    world, need, groups, same
):
    firms = [replace(firm, group_id=groups[firm.id - 1]) for firm in world]
    need = replace(need, limit=12, group_id=FORMOSA)
    plain = rank_naive(firms, replace(need, same_group_only=same), Weights(**_four(PREFERRING)))
    preferring = MatchIndex().fit(firms).query(
        replace(need, prefer_group=True, same_group_only=same), PREFERRING)

    weight = PREFERRING.normalized().group
    scale = 1.0 - weight  # the other weights, normalised with the group weight among them
    expected = {c.organization_id: scale * c.score
                + (weight if groups[c.organization_id - 1] == FORMOSA else 0.0) for c in plain}
    assert {c.organization_id for c in preferring} <= set(expected) or len(plain) == 12
    for candidate in preferring:
        if candidate.organization_id in expected:
            assert math.isclose(candidate.score, expected[candidate.organization_id],
                                abs_tol=1e-9)
        assert candidate.breakdown["group"] == (
            1.0 if groups[candidate.organization_id - 1] == FORMOSA else 0.0)
        if same:
            assert groups[candidate.organization_id - 1] == FORMOSA


def _four(weights: Weights) -> dict[str, float]:
    return {name: getattr(weights, name)
            for name in ("skill", "location", "performance", "capacity")}
