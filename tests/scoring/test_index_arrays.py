"""The index as arrays (a snapshot): written to files and memory-mapped back, it ranks alike."""

from __future__ import annotations

import random

import numpy as np
import pytest

import scoring.index
from scoring import Firm, MatchIndex, Office, rank_naive
from scoring.index import from_arrays, to_arrays
from tests.scoring.test_index import WEIGHTS, random_firm, random_world


def _through_files(index: MatchIndex, folder) -> MatchIndex:
    """Save every array to its own .npy file and map them back copy-on-write."""
    arrays = to_arrays(index)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    return from_arrays({name: np.load(folder / f"{name}.npy", mmap_mode="c")
                        for name in arrays})


@pytest.mark.parametrize("seed", [1, 2])
def test_a_loaded_index_returns_exactly_what_rank_naive_returns(seed: int, tmp_path) -> None:
    firms, needs = random_world(seed, 120)
    index = MatchIndex().fit(firms)
    index.upsert(random_firm(random.Random(seed), 5, [5000]))  # a masked slot and an extra one
    current = {firm.id: firm for firm in firms} | {5: index.get(5)}
    index.remove(7)
    del current[7]
    loaded = _through_files(index, tmp_path)
    assert len(loaded) == len(current)
    assert 7 not in loaded and loaded.get(5) == current[5]
    for i, need in enumerate(needs):
        weights = WEIGHTS[i % len(WEIGHTS)]
        assert loaded.query(need, weights) == rank_naive(list(current.values()), need, weights)


def test_a_loaded_index_takes_upserts_removals_and_compaction(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(scoring.index, "MIN_DEAD_SLOTS", 0)
    firms, needs = random_world(3, 60)
    index = _through_files(MatchIndex(compact_ratio=0.5).fit(firms), tmp_path)
    index.compact_ratio = 0.5
    rng = random.Random(3)
    current = {firm.id: firm for firm in firms}
    office_ids = [20_000]
    for step in range(60):
        if step % 4 == 3:
            firm_id = rng.choice(sorted(current))
            index.remove(firm_id)
            del current[firm_id]
        else:
            firm = random_firm(rng, rng.randint(1, 90), office_ids)
            index.upsert(firm)
            current[firm.id] = firm
    star = Firm(500, "Star", "partner", ("welding",), "welding", (Office(1, 48.14, 11.58),))
    index.upsert(star)
    current[500] = star
    assert index.get(500) == star
    for need in needs:
        assert index.query(need) == rank_naive(list(current.values()), need)


def test_a_loaded_firm_equals_the_indexed_one(tmp_path) -> None:
    firms, _ = random_world(4, 50)
    loaded = _through_files(MatchIndex().fit(firms), tmp_path)
    assert [loaded.get(firm.id) for firm in firms] == firms
    assert loaded.get(999_999) is None
