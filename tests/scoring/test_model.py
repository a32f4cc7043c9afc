"""Validation of the matching dataclasses and skill slugs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import DEFAULT_WEIGHTS, Firm, Need, Office, Weights, slugify_skill


@pytest.mark.parametrize(
    "name",
    ["CNC Machining", "cnc machining", " cnc-machining ", "CNC__Machining!!", "Ｃｎｃ Machining"],
)
def test_slugify_folds_case_spaces_and_punctuation(name: str) -> None:
    assert slugify_skill(name) == "cnc-machining"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("陽極處理", "陽極處理"),
        ("Eloxieren / Färben", "eloxieren-färben"),
        ("5-Axis  CNC", "5-axis-cnc"),
    ],
)
def test_slugify_keeps_letters_of_any_script_and_digits(name: str, slug: str) -> None:
    assert slugify_skill(name) == slug


@pytest.mark.parametrize("name", ["", "   ", "---", "!!"])
def test_slugify_rejects_names_without_letters_or_digits(name: str) -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        slugify_skill(name)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_slugify_is_idempotent(name: str) -> None:
    try:
        slug = slugify_skill(name)
    except ValueError:
        return
    assert slugify_skill(slug) == slug
    assert slug == slug.strip("-") and "--" not in slug


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"latitude": 91.0}, "latitude"),
        ({"latitude": math.nan}, "latitude"),
        ({"longitude": -181.0}, "longitude"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": True}, "limit"),
        ({"skills": (), "description": "  "}, "at least one skill"),
        ({"max_distance_km": 0.0}, "max_distance_km"),
        ({"max_distance_km": math.nan}, "max_distance_km"),
        ({"skills": ("CNC Machining",)}, "not a slug"),
        ({"skills": ("welding", "welding")}, "repeat"),
        ({"kinds": frozenset()}, "kinds"),
    ],
)
def test_need_rejects_invalid_fields_with_a_sentence(fields: dict, message: str) -> None:
    values = {"latitude": 48.0, "longitude": 11.0, "skills": ("welding",)} | fields
    with pytest.raises(ValueError, match=message):
        Need(**values)


def test_need_stores_tuples_and_frozensets() -> None:
    need = Need(48.0, 11.0, skills=["welding"], kinds={"partner"}, exclude_ids={3})  # type: ignore[arg-type]
    assert need.skills == ("welding",)
    assert need.kinds == frozenset({"partner"})
    assert need.exclude_ids == frozenset({3})


@pytest.mark.parametrize(
    "fields",
    [
        {"latitude": -90.5},
        {"longitude": math.inf},
        {"service_radius_km": 0.0},
        {"service_radius_km": math.nan},
    ],
)
def test_office_rejects_invalid_fields(fields: dict) -> None:
    with pytest.raises(ValueError):
        Office(**({"id": 1, "latitude": 48.0, "longitude": 11.0} | fields))


@pytest.mark.parametrize(
    "fields", [{"won": -1}, {"failed": -2}, {"open_referrals": -1}, {"capacity": -1}, {"won": 1.5}]
)
def test_firm_rejects_negative_counts(fields: dict) -> None:
    with pytest.raises(ValueError):
        Firm(1, "A", "partner", (), "", (), **fields)


@pytest.mark.parametrize(
    "values",
    [(-0.1, 1, 1, 1), (math.nan, 1, 1, 1), (math.inf, 1, 1, 1), (0, 0, 0, 0)],
)
def test_weights_reject_negative_non_finite_or_all_zero(values: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Weights(*values)


def test_normalized_weights_sum_to_one_and_keep_ratios() -> None:
    weights = Weights(skill=3, location=1, performance=0, capacity=0).normalized()
    assert weights == Weights(skill=0.75, location=0.25, performance=0.0, capacity=0.0)
    assert math.fsum(vars_of(DEFAULT_WEIGHTS.normalized())) == pytest.approx(1.0, abs=1e-15)


def vars_of(weights: Weights) -> tuple[float, ...]:
    return (weights.skill, weights.location, weights.performance, weights.capacity)
