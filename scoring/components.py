"""The four score components and the exact score of one firm for one need.

Every component is in [0, 1]; the score is their weighted sum with weights summing to 1:

    skill       = 0.75 * matched / required + 0.25 * text    (need with skills)
                = text                                       (need without skills)
    location    = max over offices of 1 / (1 + d / 50 km) if d <= that office's radius, else 0
    performance = (won + 1) / (won + failed + 2)
    capacity    = 1 - open_referrals / capacity               (1 when capacity is unlimited)
    group       = 1 if the firm is of the referrer's group, else 0 (only with prefer_group)

where `matched` counts the required skills the firm has in any spelling (scoring.text.skill_key:
anodising covers anodizing) or within a longer tag (scoring.text.skill_runs: "hard anodising"
covers anodizing), `text` is the share of the need the profile covers
(scoring.text) and d the geodesic (WGS-84, geopy) distance from the client to an office.
A firm whose skill fit is below the need's min_skill_fit is not proposed. The office a
candidate names is the one that gave its location fit: the nearest office that serves the
client, else the nearest office; offices beyond max_distance_km do not count, and a firm with
none within it is not proposed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from geopy.distance import geodesic

from scoring.model import SKILL_COVERAGE_SHARE, Candidate, Firm, Need, Office, Weights
from scoring.text import TextQuery, profile_vector, skill_key, skill_runs

# Mean Earth radius (IUGG), the one geopy's great_circle uses.
EARTH_RADIUS_KM = 6371.0088
# Distance at which the location fit has halved; a third at 100 km, a tenth at 450 km.
DEFAULT_SCALE_KM = 50.0
# Share of skill fit that coverage of the skills a need without skills names in its own words
# (scoring.text.named_skills) gives; the text similarity gives the rest. Lower than
# SKILL_COVERAGE_SHARE: a trade named in a sentence is weaker evidence than a tag the client
# picked, and a firm of that trade may call itself by another tag, so the need's other words
# keep most of the say (measured: bench/README.md, issue 12).
IMPLIED_SKILL_SHARE = 0.25
# SKILL_COVERAGE_SHARE (scoring.model) is the share of skill fit that comes from exact coverage.
# With DEFAULT_WEIGHTS a firm with every required skill beats one with none, whatever their text
# similarity and distances: skill weight * (0.75 - 0.25) = 0.30 exceeds the whole location
# weight 0.25.
# Bound on |geodesic / spherical distance - 1| for geodetic coordinates taken as spherical:
# the ellipsoid's radii of curvature stay within -0.56% / +0.46% of EARTH_RADIUS_KM.
SPHERE_TOLERANCE = 0.0075

_GEODESIC = geodesic()  # reused: building the underlying geographiclib object costs more


def geodesic_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the WGS-84 geodesic distance in km between two (lat, lon) points in degrees."""
    return float(_GEODESIC.measure(a, b))


def spherical_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the haversine great-circle distance in km between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    # haversine: h = sin^2(dlat/2) + cos(lat1) cos(lat2) sin^2(dlon/2), d = 2 R asin(sqrt h)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def location_fit(distance_km: float, service_radius_km: float) -> float:
    """Return the location fit of an office `distance_km` away that serves `service_radius_km`."""
    if distance_km > service_radius_km:
        return 0.0
    # 1 / (1 + d / scale): 1 at the door, 0.5 at DEFAULT_SCALE_KM, never quite 0 inside the radius
    return 1.0 / (1.0 + distance_km / DEFAULT_SCALE_KM)


def performance_fit(won: int, failed: int) -> float:
    """Return the smoothed conversion rate of the referrals a firm has closed."""
    # Laplace prior (won + 1) / (closed + 2): a newcomer is 0.5, nobody is ever 0 or 1.
    return (won + 1) / (won + failed + 2)


def capacity_fit(capacity: int | None, open_referrals: int) -> float:
    """Return the free share of a firm's capacity (1 when unlimited, 0 when full)."""
    if capacity is None:
        return 1.0
    if capacity <= 0:
        return 0.0
    # 1 - open / capacity, clamped for a firm over its capacity
    return max(0.0, 1.0 - open_referrals / capacity)


def skill_fit(matched: int, required: int, text: float) -> float:
    """Return the skill fit from the count of matched required skills and the text similarity."""
    if required == 0:
        return text
    # coverage share * matched / required + the rest * text similarity
    return SKILL_COVERAGE_SHARE * (matched / required) + (1.0 - SKILL_COVERAGE_SHARE) * text


def group_fit(firm: Firm, need: Need) -> float:
    """Return 1 for a firm of the need's (the referrer's) group, else 0."""
    return 1.0 if firm.group_id is not None and firm.group_id == need.group_id else 0.0


def implied_skill_fit(covered: int, mentioned: int, text: float) -> float:
    """Return the skill fit of a need without skills from the count of the skills its words
    name that the firm has (scoring.text.named_skills) and the text similarity."""
    if mentioned == 0:
        return text
    # implied share * covered / mentioned + the rest * text similarity
    return IMPLIED_SKILL_SHARE * (covered / mentioned) + (1.0 - IMPLIED_SKILL_SHARE) * text


def can_be_proposed(firm: Firm, need: Need) -> bool:
    """Return whether the need's filters and the firm's state allow proposing the firm at all."""
    return (
        firm.active
        and bool(firm.offices)
        and (firm.capacity is None or firm.open_referrals < firm.capacity)
        and firm.id not in need.exclude_ids
        and (need.kinds is None or firm.kind in need.kinds)
        and (not need.same_group_only or firm.group_id == need.group_id)
    )


def serving_office(need: Need, offices: Sequence[Office]) -> tuple[float, Office, float] | None:
    """Return (distance km, office, location fit) of the office that serves the client best.

    That is the office with the highest location fit, each judged against its own radius; of
    equal fits the nearer, then the lower id, so the nearest office when none serves the
    client. Offices beyond the need's max_distance_km do not count; None if no office is left.
    """
    client = (need.latitude, need.longitude)
    best: tuple[tuple[float, float, int], float, Office, float] | None = None
    for office in offices:
        distance_km = geodesic_km(client, (office.latitude, office.longitude))
        if need.max_distance_km is not None and distance_km > need.max_distance_km:
            continue
        fit = location_fit(distance_km, office.service_radius_km)
        key = (-fit, distance_km, office.id)
        if best is None or key < best[0]:
            best = (key, distance_km, office, fit)
    return None if best is None else best[1:]


def score_firm(
    firm: Firm,
    need: Need,
    query: TextQuery,
    weights: Weights,
    profile: Mapping[str, float] | None = None,
    offices: Sequence[Office] | None = None,
    text: float | None = None,
) -> Candidate | None:
    """Score one firm for a need with normalised weights, or None if it cannot be proposed.

    `profile` defaults to the firm's profile vector and `text` to the query's similarity with
    it; `offices` defaults to all the firm's offices and may be narrowed to those that can be
    the nearest or serve the client. The returned rank is 0: ranking assigns it.
    """
    if not can_be_proposed(firm, need):
        return None
    # every skill a tag covers: its own, in any spelling, and those named by runs of its words
    owned = {key for skill in firm.skills for key in skill_runs(skill)}
    # named as the client named them (an alias), counted as the skills they stand for
    named = zip(need.skills, need.skill_names or need.skills, strict=True)
    has = [(skill_key(skill) in owned, name) for skill, name in named]
    matched = tuple(name for owns, name in has if owns)
    missing = tuple(name for owns, name in has if not owns)
    if text is None:
        text = query.similarity(profile_vector(firm) if profile is None else profile)
    if need.skills:
        skill = skill_fit(len(matched), len(need.skills), text)
    else:
        # skills the need's words name (scoring.text.named_skills): any key of a mention
        covered = sum(1 for keys in need.implied_skills if not owned.isdisjoint(keys))
        skill = implied_skill_fit(covered, len(need.implied_skills), text)
    if skill < need.min_skill_fit:
        return None
    served = serving_office(need, firm.offices if offices is None else offices)
    if served is None:
        return None
    distance_km, office, location = served
    breakdown = {
        "skill": skill,
        "location": location,
        "performance": performance_fit(firm.won, firm.failed),
        "capacity": capacity_fit(firm.capacity, firm.open_referrals),
    }
    score = (
        weights.skill * breakdown["skill"]
        + weights.location * breakdown["location"]
        + weights.performance * breakdown["performance"]
        + weights.capacity * breakdown["capacity"]
    )
    if need.prefer_group:
        breakdown["group"] = group_fit(firm, need)
        score += weights.group * breakdown["group"]
    return Candidate(
        rank=0,
        organization_id=firm.id,
        name=firm.name,
        kind=firm.kind,
        score=score,
        breakdown=breakdown,
        distance_km=distance_km,
        office_id=office.id,
        matched_skills=matched,
        missing_skills=missing,
    )


def rank(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """Return the best `limit` candidates by score, ties by organization id, numbered from 1."""
    ordered = sorted(candidates, key=lambda c: (-c.score, c.organization_id))[:limit]
    return [replace(candidate, rank=position) for position, candidate in enumerate(ordered, 1)]
