"""The plain-Python reference ranking: score every firm, geodesic to every office, sort."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from scoring.components import rank, score_firm
from scoring.model import DEFAULT_WEIGHTS, Candidate, Firm, Need, Weights
from scoring.text import (
    TextQuery,
    document_frequency,
    named_skills,
    need_terms,
    profile_vector,
    skill_key,
)


def rank_naive(
    firms: Iterable[Firm], need: Need, weights: Weights = DEFAULT_WEIGHTS
) -> list[Candidate]:
    """Rank firms for a need the straightforward way; the baseline and test oracle of MatchIndex."""
    firms = list(firms)
    check_unique_ids(firms)
    if not need.skills and need.description:
        known = {skill_key(skill) for firm in firms for skill in firm.skills}
        need = replace(need, implied_skills=named_skills(need.description, known.__contains__))
    profiles = [profile_vector(firm) for firm in firms]
    query = TextQuery.build(need_terms(need), document_frequency(profiles), len(firms))
    normalized = weights.normalized()
    scored = [
        score_firm(firm, need, query, normalized, profile)
        for firm, profile in zip(firms, profiles, strict=True)
    ]
    return rank([candidate for candidate in scored if candidate is not None], need.limit)


def check_unique_ids(firms: list[Firm]) -> None:
    """Raise ValueError if two firms share an id."""
    seen: set[int] = set()
    for firm in firms:
        if firm.id in seen:
            raise ValueError(f"Firm id {firm.id} appears more than once; ids must be unique.")
        seen.add(firm.id)
