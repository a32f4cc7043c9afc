"""Matching: rank firms for a client's need and place (SPEC sections 4 and 8).

The index itself is kept in step by adapters/match_index.py; this use case resolves the
client's place, builds scoring's Need from the request and asks the index.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from referral_service.adapters.geocoding import Geocoder
from referral_service.adapters.match_index import IndexNotReady
from referral_service.services import client_sites, places
from referral_service.services.auth import Principal
from referral_service.services.errors import Unavailable, ValidationFailed
from referral_service.services.organizations import normalize_skills
from referral_service.services.places import ResolvedPlace
from referral_service.texts import N_
from scoring import Candidate, Need, SkillAliases, Weights, resolve_aliases

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from scoring import MatchIndex

WEIGHT_NAMES = ("skill", "location", "performance", "capacity", "group")


class IndexSource(Protocol):
    """Where the use case gets the worker's current index (adapters.match_index)."""

    min_skill_fit: float  # the deployment's relevance floor (MATCH_MIN_SKILL_FIT)
    # head office's aliases (alias slug -> skill slug), kept in step with the index
    skill_aliases: SkillAliases

    def current(self) -> MatchIndex: ...


@dataclass(frozen=True)
class Ranking:
    """The ranked firms for one need, the place they were ranked for and the weights used."""

    location: ResolvedPlace
    weights: Weights
    candidates: tuple[Candidate, ...]


def match(
    *, index: IndexSource, request: dict[str, Any], actor: Principal, geocoder: Geocoder,
    default_weights: Weights, session: Session | None = None,
) -> Ranking:
    """Rank organizations for a need (the body of POST /match, loaded by its schema).

    A `client_site_id` (one of the caller's client sites: needs `session`) is the place
    instead of `location`. `prefer_group` and `same_group_only` are about the referrer's
    group: the caller's firm for a partner key, else `referrer_organization_id` (422 without
    one, or when the referrer belongs to no group). The group weight counts only with
    prefer_group.
    """
    if request.get("client_site_id") is not None:
        assert session is not None, "a client site is read from the database"
        place = client_sites.place_for_match(session=session, actor=actor,
                                             site_id=request["client_site_id"])
    else:
        place = places.resolve(request["location"], geocoder, field="location")
    weights = _weights(default_weights, request.get("weights"),
                       with_group=bool(request.get("prefer_group")))
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
    need = _with_group(need, current, request, actor)
    return Ranking(location=place, weights=weights.normalized(),
                   candidates=tuple(current.query(need, weights)))


def _weights(default: Weights, override: dict[str, float] | None, *, with_group: bool
             ) -> Weights:
    """The weights of one match: the defaults, overridden; the group weight only when the
    match prefers the referrer's group (else it would dilute the others for nothing)."""
    merged = {name: (override or {}).get(name, getattr(default, name)) for name in WEIGHT_NAMES}
    if not with_group:
        merged["group"] = 0.0
    try:
        return Weights(**merged)
    except ValueError as error:
        raise ValidationFailed(str(error), {"weights": [str(error)]}) from None


def _with_group(need: Need, current: MatchIndex, request: dict[str, Any], actor: Principal
                ) -> Need:
    """The need with the referrer's group, when the request prefers it or keeps to it."""
    prefer, same = bool(request.get("prefer_group")), bool(request.get("same_group_only"))
    if not (prefer or same):
        return need
    asked = "prefer_group" if prefer else "same_group_only"
    referrer = (actor.organization_id if actor.is_partner
                else request.get("referrer_organization_id"))
    if referrer is None:
        raise ValidationFailed(N_("%(asked)s is about the referrer's group: name the referrer.",
                                  asked=asked), {
            "referrer_organization_id": [N_("Required with %(asked)s.", asked=asked)]})
    try:
        group_id = current.group_of(referrer)
    except KeyError:
        raise ValidationFailed(N_("Organization %(referrer)s does not exist.", referrer=referrer), {
            "referrer_organization_id": [N_("No organization %(referrer)s.",
                                            referrer=referrer)]}) from None
    if group_id is None:
        raise ValidationFailed(N_("Organization %(referrer)s, the referrer, belongs to no "
                                  "group.", referrer=referrer), {
            asked: [N_("The referrer (organization %(referrer)s) belongs to no "
                       "group.", referrer=referrer)]})
    return replace(need, group_id=group_id, prefer_group=prefer, same_group_only=same)
