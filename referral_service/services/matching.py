"""Matching: rank firms for a client's need and place (SPEC sections 4 and 8).

The index itself is kept in step by adapters/match_index.py; this use case resolves the
client's place, builds scoring's Need from the request and asks the index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from referral_service.adapters.geocoding import Geocoder
from referral_service.adapters.match_index import IndexNotReady
from referral_service.services import places
from referral_service.services.auth import Principal
from referral_service.services.errors import Unavailable, ValidationFailed
from referral_service.services.organizations import normalize_skills
from referral_service.services.places import ResolvedPlace
from scoring import Candidate, Need, Weights, resolve_aliases

if TYPE_CHECKING:
    from scoring import MatchIndex

WEIGHT_NAMES = ("skill", "location", "performance", "capacity")


class IndexSource(Protocol):
    """Where the use case gets the worker's current index (adapters.match_index)."""

    min_skill_fit: float  # the deployment's relevance floor (MATCH_MIN_SKILL_FIT)
    # head office's aliases (alias slug -> skill slug), kept in step with the index
    skill_aliases: Mapping[str, str]

    def current(self) -> MatchIndex: ...


@dataclass(frozen=True)
class Ranking:
    """The ranked firms for one need, the place they were ranked for and the weights used."""

    location: ResolvedPlace
    weights: Weights
    candidates: tuple[Candidate, ...]


def match(
    *, index: IndexSource, request: dict[str, Any], actor: Principal, geocoder: Geocoder,
    default_weights: Weights,
) -> Ranking:
    """Rank organizations for a need (the body of POST /match, loaded by its schema)."""
    place = places.resolve(request["location"], geocoder, field="location")
    weights = _weights(default_weights, request.get("weights"))
    excluded = set(request.get("exclude_organization_ids") or ())
    for own in (request.get("referrer_organization_id"), actor.organization_id):
        if own is not None:
            excluded.add(own)
    need = Need(
        latitude=place.latitude, longitude=place.longitude,
        skills=tuple(normalize_skills(request.get("skills") or ())),
        description=request.get("description") or "", limit=request.get("limit", 5),
        max_distance_km=request.get("max_distance_km"),
        kinds=frozenset(request["kinds"]) if request.get("kinds") else None,
        exclude_ids=frozenset(excluded),
        min_skill_fit=request.get("min_skill_fit", index.min_skill_fit),
    )
    try:
        current = index.current()
    except IndexNotReady as error:
        raise Unavailable(str(error)) from None
    # a skill named by an alias asks for its skill (SPEC section 8), still named as given
    need = resolve_aliases(need, index.skill_aliases)
    return Ranking(location=place, weights=weights.normalized(),
                   candidates=tuple(current.query(need, weights)))


def _weights(default: Weights, override: dict[str, float] | None) -> Weights:
    if not override:
        return default
    merged = {name: override.get(name, getattr(default, name)) for name in WEIGHT_NAMES}
    try:
        return Weights(**merged)
    except ValueError as error:
        raise ValidationFailed(str(error), {"weights": [str(error)]}) from None
