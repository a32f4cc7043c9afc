"""Matching behaviour, each example run against both MatchIndex and rank_naive."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from geopy.distance import geodesic

from scoring import DEFAULT_SCALE_KM, DEFAULT_WEIGHTS, Need, Office, Weights

from .conftest import CLIENT

MUNICH = CLIENT
AUGSBURG = (48.371, 10.898)  # about 56 km from Munich
NUREMBERG = (49.452, 11.077)  # about 151 km
BERLIN = (52.520, 13.405)  # about 504 km


def need_at(place: tuple[float, float] = MUNICH, **fields: object) -> Need:
    return Need(place[0], place[1], **fields)  # type: ignore[arg-type]


def ids(candidates: list) -> list[int]:
    return [candidate.organization_id for candidate in candidates]


def test_aluminium_anodising_need_finds_anodizing_firm_without_the_tag(rank, make_firm) -> None:
    firms = [
        make_firm(1, skills=("joinery",), description="timber joinery and furniture"),
        make_firm(2, AUGSBURG, description="surface finishing and anodizing of aluminum parts"),
        make_firm(3, skills=("welding",), description="steel welding and assembly"),
    ]
    result = rank(firms, need_at(description="aluminium anodising"))
    assert ids(result)[0] == 2
    assert result[0].breakdown["skill"] > 0.5
    assert all(c.breakdown["skill"] == 0.0 for c in result[1:])


def test_british_and_american_spellings_match(rank, make_firm) -> None:
    firms = [
        make_firm(1, description="colour matching and injection moulding centre"),
        make_firm(2, AUGSBURG, description="injection molding of housings"),
    ]
    result = rank(firms, need_at(description="color injection molding center"))
    assert ids(result) == [1, 2]
    assert result[0].breakdown["skill"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("asked", "tagged"),
    [
        ("anodizing", "anodising"),
        ("anodising", "anodized"),
        ("translation", "translations"),
        ("injection-molding", "injection-moulding"),
        ("powder-coating", "powder-coatings"),
        ("cnc-machining", "cnc-machined"),
    ],
)
def test_a_variant_spelling_of_a_skill_counts_as_the_skill(rank, make_firm, asked, tagged) -> None:
    # issue 12: an Osaka client asking for anodizing got Osaka's anodising firm at #9
    firms = [
        make_firm(1, skills=(tagged,)),
        make_firm(2, BERLIN, skills=(asked,), radius_km=900.0),
        make_firm(3, AUGSBURG, skills=("bakery",), description="bread"),
    ]
    result = rank(firms, need_at(skills=(asked,)))
    assert ids(result) == [1, 2]
    assert result[0].matched_skills == (asked,)
    assert result[0].missing_skills == ()
    assert result[0].breakdown["skill"] == result[1].breakdown["skill"] == pytest.approx(1.0)


def test_firm_with_all_required_skills_beats_nearer_firm_with_none(rank, make_firm) -> None:
    skills = ("anodizing", "cnc-machining")
    firms = [
        # at the door, no required skill, a description full of the need's words
        make_firm(1, MUNICH, skills=("painting",), description="anodizing cnc machining anodizing"),
        # at the very edge of its service radius, every skill, an unrelated description
        make_firm(2, NUREMBERG, skills=skills, description="timber", radius_km=151.0),
    ]
    result = rank(firms, need_at(skills=skills, description="anodizing cnc machining"))
    assert ids(result) == [2, 1]
    assert result[0].breakdown["location"] > 0.0


def test_nearer_firm_ranks_higher_when_profiles_are_equal(rank, make_firm) -> None:
    profile = {"skills": ("welding",), "description": "steel welding", "radius_km": 200.0}
    firms = [make_firm(1, NUREMBERG, **profile), make_firm(2, AUGSBURG, **profile)]
    result = rank(firms, need_at(skills=("welding",)))
    assert ids(result) == [2, 1]
    assert result[0].breakdown["location"] > result[1].breakdown["location"]


def test_match_drops_firms_beyond_max_distance(rank, make_firm) -> None:
    firms = [make_firm(1, AUGSBURG), make_firm(2, NUREMBERG, radius_km=500.0)]
    result = rank(firms, need_at(skills=("welding",), max_distance_km=100.0))
    assert ids(result) == [1]
    assert result[0].distance_km <= 100.0


def test_max_distance_is_measured_to_the_nearest_office(rank, make_firm) -> None:
    offices = (Office(10, *NUREMBERG), Office(11, *AUGSBURG))
    result = rank(
        [make_firm(1, offices=offices)], need_at(skills=("welding",), max_distance_km=60.0)
    )
    assert [(c.organization_id, c.office_id) for c in result] == [(1, 11)]


@pytest.mark.parametrize(("capacity", "open_referrals"), [(3, 3), (3, 5), (0, 0)])
def test_firm_at_capacity_is_never_proposed(rank, make_firm, capacity, open_referrals) -> None:
    firms = [
        make_firm(1, capacity=capacity, open_referrals=open_referrals),
        make_firm(2, AUGSBURG),
    ]
    assert ids(rank(firms, need_at(skills=("welding",)))) == [2]


def test_inactive_firms_are_never_proposed(rank, make_firm) -> None:
    firms = [make_firm(1, active=False), make_firm(2, AUGSBURG)]
    assert ids(rank(firms, need_at(skills=("welding",)))) == [2]


def test_excluded_firms_are_never_proposed(rank, make_firm) -> None:
    firms = [make_firm(1), make_firm(2, AUGSBURG), make_firm(3, NUREMBERG, radius_km=200.0)]
    need = need_at(skills=("welding",), exclude_ids=frozenset({1, 3}))
    assert ids(rank(firms, need)) == [2]


def test_kinds_filter_proposes_only_those_kinds(rank, make_firm) -> None:
    firms = [make_firm(1, kind="affiliate"), make_firm(2, AUGSBURG, kind="partner")]
    assert ids(rank(firms, need_at(skills=("welding",), kinds=frozenset({"partner"})))) == [2]
    assert ids(rank(firms, need_at(skills=("welding",), kinds=frozenset({"insurer"})))) == []


def test_firm_without_offices_is_never_proposed(rank, make_firm) -> None:
    firms = [make_firm(1, offices=()), make_firm(2, AUGSBURG)]
    assert ids(rank(firms, need_at(skills=("welding",)))) == [2]


def test_each_office_is_judged_against_its_own_radius(rank, make_firm) -> None:
    # the nearest office (Augsburg) serves 20 km only; the farther one reaches Munich
    offices = (Office(10, *AUGSBURG, service_radius_km=20.0), Office(11, *NUREMBERG, 500.0))
    result = rank([make_firm(1, offices=offices)], need_at(skills=("welding",)))
    assert result[0].office_id == 11
    assert 150 < result[0].distance_km < 152
    assert result[0].breakdown["location"] == pytest.approx(
        1 / (1 + result[0].distance_km / DEFAULT_SCALE_KM)
    )


def test_firm_reaching_the_client_from_a_far_office_beats_one_that_does_not(
    rank, make_firm
) -> None:
    # issue 12: a studio nearby with a 5 km radius and works farther off that serve 300 km
    firms = [
        make_firm(1, offices=(Office(10, *AUGSBURG, 5.0), Office(11, *NUREMBERG, 300.0))),
        make_firm(2, offices=(Office(20, *AUGSBURG, 5.0),)),
    ]
    result = rank(firms, need_at(skills=("welding",)))
    assert ids(result) == [1, 2]
    assert result[0].breakdown["location"] > 0.0 == result[1].breakdown["location"]


def test_location_is_zero_and_office_the_nearest_when_no_office_serves(rank, make_firm) -> None:
    offices = (Office(10, *NUREMBERG, 20.0), Office(11, *AUGSBURG, 20.0), Office(12, *BERLIN, 9.0))
    result = rank([make_firm(1, offices=offices)], need_at(skills=("welding",)))
    assert result[0].office_id == 11
    assert result[0].breakdown["location"] == 0.0


def test_offices_beyond_max_distance_do_not_serve(rank, make_firm) -> None:
    offices = (Office(10, *AUGSBURG, 20.0), Office(11, *NUREMBERG, 500.0))
    need = need_at(skills=("welding",), max_distance_km=100)
    result = rank([make_firm(1, offices=offices)], need)
    assert (result[0].office_id, result[0].breakdown["location"]) == (10, 0.0)


def test_location_fit_follows_the_documented_curve(rank, make_firm) -> None:
    result = rank([make_firm(1, NUREMBERG, radius_km=500.0)], need_at(skills=("welding",)))
    distance = result[0].distance_km
    assert result[0].breakdown["location"] == pytest.approx(1 / (1 + distance / DEFAULT_SCALE_KM))
    assert 150 < distance < 152


def test_office_id_is_the_nearest_office(rank, make_firm) -> None:
    offices = (Office(7, *BERLIN, 900.0), Office(8, *NUREMBERG, 900.0), Office(9, *AUGSBURG, 900.0))
    result = rank([make_firm(1, offices=offices)], need_at(skills=("welding",)))
    assert result[0].office_id == 9


@pytest.mark.parametrize(
    "place", [AUGSBURG, NUREMBERG, BERLIN, (-33.87, 151.21), (48.1371, 11.5751)]
)
def test_distance_km_within_half_percent_of_geodesic(rank, make_firm, place) -> None:
    result = rank([make_firm(1, place, radius_km=20_000.0)], need_at(skills=("welding",)))
    expected = geodesic(MUNICH, place).km
    assert result[0].distance_km == pytest.approx(expected, rel=0.005, abs=1e-6)


def test_newcomer_performance_is_one_half(rank, make_firm) -> None:
    result = rank([make_firm(1)], need_at(skills=("welding",)))
    assert result[0].breakdown["performance"] == 0.5


@pytest.mark.parametrize(("won", "failed"), [(0, 10), (10, 0), (3, 1), (40, 60)])
def test_performance_is_the_smoothed_conversion_rate(rank, make_firm, won, failed) -> None:
    result = rank([make_firm(1, won=won, failed=failed)], need_at(skills=("welding",)))
    performance = result[0].breakdown["performance"]
    assert performance == (won + 1) / (won + failed + 2)
    assert 0.0 < performance < 1.0


@pytest.mark.parametrize(("capacity", "open_referrals", "free"), [(None, 7, 1.0), (4, 1, 0.75)])
def test_capacity_fit_is_the_free_share(rank, make_firm, capacity, open_referrals, free) -> None:
    firm = make_firm(1, capacity=capacity, open_referrals=open_referrals)
    assert rank([firm], need_at(skills=("welding",)))[0].breakdown["capacity"] == free


def test_matched_and_missing_skills_follow_the_need_order(rank, make_firm) -> None:
    firm = make_firm(1, skills=("welding", "anodizing", "painting"))
    need = need_at(skills=("painting", "laser-cutting", "welding", "bending"))
    result = rank([firm], need)
    assert result[0].matched_skills == ("painting", "welding")
    assert result[0].missing_skills == ("laser-cutting", "bending")
    assert result[0].breakdown["skill"] >= 0.75 * 2 / 4


def test_ties_are_broken_by_organization_id(rank, make_firm) -> None:
    firms = [make_firm(firm_id, description="welding") for firm_id in (5, 3, 9, 4)]
    result = rank(firms, need_at(description="welding"))
    assert ids(result) == [3, 4, 5, 9]
    assert len({c.score for c in result}) == 1
    assert [c.rank for c in result] == [1, 2, 3, 4]


def test_limit_caps_the_number_of_candidates(rank, make_firm) -> None:
    firms = [make_firm(firm_id, (MUNICH[0] + firm_id / 100, MUNICH[1])) for firm_id in range(1, 9)]
    result = rank(firms, need_at(skills=("welding",), limit=3))
    assert ids(result) == [1, 2, 3]


def test_score_is_the_weighted_sum_of_the_breakdown(rank, make_firm) -> None:
    firms = [
        make_firm(1, skills=("welding",), description="steel welding", won=3, failed=1),
        make_firm(2, NUREMBERG, radius_km=300.0, capacity=10, open_referrals=4),
    ]
    weights = Weights(skill=2, location=1, performance=1, capacity=0)
    normalized = weights.normalized()
    for candidate in rank(firms, need_at(skills=("welding",), description="welding"), weights):
        b = candidate.breakdown
        assert set(b) == {"skill", "location", "performance", "capacity"}
        expected = (
            normalized.skill * b["skill"]
            + normalized.location * b["location"]
            + normalized.performance * b["performance"]
            + normalized.capacity * b["capacity"]
        )
        assert candidate.score == pytest.approx(expected, abs=1e-9)


def test_location_only_weights_rank_by_distance(rank, make_firm) -> None:
    firms = [
        make_firm(1, NUREMBERG, skills=("welding",), radius_km=500.0),
        make_firm(2, AUGSBURG),
        make_firm(3, BERLIN, skills=("welding",), radius_km=900.0),
    ]
    weights = Weights(skill=0, location=1, performance=0, capacity=0)
    assert ids(rank(firms, need_at(skills=("welding",)), weights)) == [2, 1, 3]


def test_need_without_skills_uses_text_similarity_as_skill_fit(rank, make_firm) -> None:
    firms = [
        make_firm(1, description="powder coating"),
        make_firm(2, AUGSBURG, description="powder coating of steel racks"),
    ]
    result = rank(firms, need_at(description="powder coating"))
    assert ids(result) == [1, 2]
    assert [c.breakdown["skill"] for c in result] == [pytest.approx(1.0)] * 2
    assert result[0].matched_skills == result[0].missing_skills == ()


TAX = (24.30, 120.66)  # about 25 km north of Taichung
TAICHUNG = (24.1477, 120.6736)


def test_relevance_floor_leaves_out_firms_unrelated_to_a_plain_language_need(
    rank, make_firm
) -> None:
    # issue 12: "tax advice for a small exporter" in Taichung got a CNC shop 1 km away first
    firms = [
        make_firm(1, TAICHUNG, skills=("cnc-machining", "welding"),
                  description="CNC machining and welding of steel frames"),
        make_firm(2, TAX, skills=("tax-advice", "bookkeeping"),
                  description="tax returns and customs advice for exporters"),
        make_firm(3, TAICHUNG, skills=("bakery",), description="bread and cakes"),
    ]
    need = need_at(TAICHUNG, description="tax advice for a small exporter")
    result = rank(firms, need)
    assert ids(result) == [2]
    assert result[0].breakdown["skill"] >= need.min_skill_fit
    # 0 turns the floor off: every firm with an office is listed again
    assert set(ids(rank(firms, replace(need, min_skill_fit=0.0)))) == {1, 2, 3}


def test_floor_keeps_a_firm_with_every_required_skill_whatever_its_text(rank, make_firm) -> None:
    firms = [make_firm(1, skills=("welding", "painting"), description="")]
    need = need_at(skills=("welding", "painting"), description="ships", min_skill_fit=0.75)
    assert ids(rank(firms, need)) == [1]


def test_one_word_profile_does_not_outrank_a_full_profile(rank, make_firm) -> None:
    # issue 12: "machining" alone scored skill 0.993, a full profile with the same tags 0.965
    tags = ("cnc-machining", "anodizing")
    firms = [
        make_firm(1, skills=tags, description="machining"),
        make_firm(2, skills=tags, description="5-axis CNC machining of aluminium housings and "
                  "brackets, hard anodising in house, 2000 pieces a month, ISO 9001"),
    ]
    need = need_at(skills=("cnc-machining",),
                   description="5-axis machining of aluminium housings, 2000 pcs a month")
    result = rank(firms, need)
    assert ids(result) == [2, 1]
    assert result[0].breakdown["skill"] > result[1].breakdown["skill"]


def test_same_input_gives_the_same_output(rank, make_firm) -> None:
    firms = [make_firm(i, (48 + i / 7, 11 + i / 5), skills=("welding",)) for i in range(1, 30)]
    need = need_at(skills=("welding",), description="steel", limit=10)
    assert rank(firms, need) == rank(firms, need) == rank(list(reversed(firms)), need)


def test_default_weights_favour_skills_over_location() -> None:
    w = DEFAULT_WEIGHTS.normalized()
    # full coverage vs none is worth 0.75 - 0.25 of skill fit at worst, more than all location
    assert w.skill * (0.75 - 0.25) > w.location
    assert math.isclose(w.skill + w.location + w.performance + w.capacity, 1.0)
