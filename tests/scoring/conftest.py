"""Fixtures for the pure matching tests: no app, no database."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import pytest

from scoring import DEFAULT_WEIGHTS, Candidate, Firm, MatchIndex, Need, Office, Weights, rank_naive

# Munich, a client's address in most examples
CLIENT = (48.137, 11.575)

Ranker = Callable[..., list[Candidate]]


def _index_rank(
    firms: list[Firm], need: Need, weights: Weights = DEFAULT_WEIGHTS
) -> list[Candidate]:
    return MatchIndex().fit(firms).query(need, weights)


@pytest.fixture(params=["index", "naive"])
def rank(request: pytest.FixtureRequest) -> Ranker:
    """Rank with MatchIndex and with rank_naive: every behaviour must hold for both."""
    return _index_rank if request.param == "index" else rank_naive


@pytest.fixture(scope="session")
def make_firm() -> Callable[..., Firm]:
    """Return a factory of firms with one office at a given place and sensible defaults.

    A firm welds unless told otherwise: the examples ask for welding, and a firm with no
    relation to the need would fall below the relevance floor.
    """
    office_ids = count(1000)

    def factory(
        firm_id: int,
        at: tuple[float, float] = CLIENT,
        *,
        skills: tuple[str, ...] = ("welding",),
        description: str = "",
        radius_km: float = 100.0,
        offices: tuple[Office, ...] | None = None,
        **fields: object,
    ) -> Firm:
        if offices is None:
            offices = (Office(next(office_ids), at[0], at[1], radius_km),)
        return Firm(
            id=firm_id,
            name=f"Firm {firm_id}",
            kind=str(fields.pop("kind", "partner")),
            skills=skills,
            description=description,
            offices=offices,
            **fields,  # type: ignore[arg-type]
        )

    return factory
