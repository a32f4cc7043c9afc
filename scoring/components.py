"""The four score components and the exact score of one firm for one need.

Every component is in [0, 1]; the score is their weighted sum with weights summing to 1:

    skill       = 0.75 * matched / required + 0.25 * text    (need with skills)
                = text                                       (need without skills)
    location    = 1 / (1 + d / 50 km) if d <= radius of the nearest office, else 0
    performance = (won + 1) / (won + failed + 2)
    capacity    = 1 - open_referrals / capacity               (1 when capacity is unlimited)

where `text` is the TF-IDF cosine of scoring.text and d the geodesic (WGS-84, geopy) distance
from the client to the firm's nearest office.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from geopy.distance import geodesic

from scoring.model import Candidate, Firm, Need, Office, Weights
from scoring.text import TextQuery, profile_vector

# Mean Earth radius (IUGG), the one geopy's great_circle uses.
EARTH_RADIUS_KM = 6371.0088
# Distance at which the location fit has halved; a third at 100 km, a tenth at 450 km.
DEFAULT_SCALE_KM = 50.0
# Share of skill fit that comes from exact slug coverage. With DEFAULT_WEIGHTS a firm with every
# required skill beats one with none, whatever their text similarity and distances:
# skill weight * (0.75 - 0.25) = 0.30 exceeds the whole location weight 0.25.
SKILL_COVERAGE_SHARE = 0.75
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


def can_be_proposed(firm: Firm, need: Need) -> bool:
    """Return whether the need's filters and the firm's state allow proposing the firm at all."""
    return (
        firm.active
        and bool(firm.offices)
        and (firm.capacity is None or firm.open_referrals < firm.capacity)
        and firm.id not in need.exclude_ids
        and (need.kinds is None or firm.kind in need.kinds)
    )


def nearest_office(need: Need, offices: Sequence[Office]) -> tuple[float, Office]:
    """Return the geodesic distance in km to the nearest office and that office (ties: lower id)."""
    client = (need.latitude, need.longitude)
    measured = [(geodesic_km(client, (o.latitude, o.longitude)), o) for o in offices]
    return min(measured, key=lambda pair: (pair[0], pair[1].id))


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
    the nearest. The returned rank is 0: ranking assigns it.
    """
    if not can_be_proposed(firm, need):
        return None
    distance_km, office = nearest_office(need, firm.offices if offices is None else offices)
    if need.max_distance_km is not None and distance_km > need.max_distance_km:
        return None
    owned = set(firm.skills)
    matched = tuple(skill for skill in need.skills if skill in owned)
    missing = tuple(skill for skill in need.skills if skill not in owned)
    if text is None:
        text = query.similarity(profile_vector(firm) if profile is None else profile)
    breakdown = {
        "skill": skill_fit(len(matched), len(need.skills), text),
        "location": location_fit(distance_km, office.service_radius_km),
        "performance": performance_fit(firm.won, firm.failed),
        "capacity": capacity_fit(firm.capacity, firm.open_referrals),
    }
    score = (
        weights.skill * breakdown["skill"]
        + weights.location * breakdown["location"]
        + weights.performance * breakdown["performance"]
        + weights.capacity * breakdown["capacity"]
    )
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
