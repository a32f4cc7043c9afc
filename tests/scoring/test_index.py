"""MatchIndex: estimator contract, incremental updates, threads, and agreement with rank_naive."""

from __future__ import annotations

import ast
import random
import sys
import threading
from pathlib import Path

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import scoring.index
import scoring.text
from scoring import DEFAULT_WEIGHTS, Firm, MatchIndex, Need, Office, Weights, rank_naive

SKILLS = ("anodizing", "cnc-machining", "welding", "powder-coating", "laser-cutting", "陽極處理")
_WORDS_TEXT = (
    "aluminium aluminum anodising anodizing steel welding welded precision parts colour color "
    "moulding molding centre center laser cutting powder coating cnc machining timber bakery "
    "and of the for fast small series"
)
WORDS = _WORDS_TEXT.split()
CENTRES = ((48.14, 11.58), (48.37, 10.90), (52.52, 13.40), (-33.87, 151.21), (0.0, 179.9))


def random_firm(rng: random.Random, firm_id: int, office_ids: list[int]) -> Firm:
    offices = []
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3, 5))):
        lat, lon = rng.choice(CENTRES)
        office_ids[0] += 1
        offices.append(
            Office(
                office_ids[0],
                max(-90.0, min(90.0, lat + rng.gauss(0, 0.5))),
                max(-180.0, min(180.0, lon + rng.gauss(0, 0.5))),
                rng.choice((5.0, 30.0, 100.0, 400.0, 20_000.0)),
            )
        )
    capacity = rng.choice((None, None, 0, 2, 5))
    return Firm(
        id=firm_id,
        name=f"Firm {firm_id}",
        kind=rng.choice(("partner", "partner", "affiliate")),
        skills=tuple(rng.sample(SKILLS, rng.randint(0, 3))),
        description=" ".join(rng.choices(WORDS, k=rng.randint(0, 8))),
        offices=tuple(offices),
        active=rng.random() < 0.9,
        capacity=capacity,
        open_referrals=rng.randint(0, 6),
        won=rng.randint(0, 5),
        failed=rng.randint(0, 5),
    )


def random_need(rng: random.Random) -> Need:
    lat, lon = rng.choice(CENTRES)
    skills = tuple(rng.sample(SKILLS, rng.randint(0, 3)))
    return Need(
        latitude=max(-90.0, min(90.0, lat + rng.gauss(0, 0.5))),
        longitude=max(-180.0, min(180.0, lon + rng.gauss(0, 0.5))),
        skills=skills,
        description=" ".join(rng.choices(WORDS, k=rng.randint(0 if skills else 1, 5))),
        limit=rng.randint(1, 12),
        max_distance_km=rng.choice((None, None, 20.0, 150.0)),
        kinds=rng.choice((None, None, frozenset({"partner"}), frozenset({"affiliate", "x"}))),
        exclude_ids=frozenset(rng.sample(range(1, 60), 3)),
    )


def random_world(seed: int, n_firms: int) -> tuple[list[Firm], list[Need]]:
    rng = random.Random(seed)
    office_ids = [0]
    firms = [random_firm(rng, firm_id, office_ids) for firm_id in range(1, n_firms + 1)]
    # exact duplicates of profiles, to have ties broken by id
    firms += [Firm(**{**_fields(firm), "id": firm.id + 1000}) for firm in firms[:10]]
    return firms, [random_need(rng) for _ in range(16)]


def _fields(firm: Firm) -> dict:
    return {name: getattr(firm, name) for name in Firm.__dataclass_fields__}


WEIGHTS = (DEFAULT_WEIGHTS, Weights(0.1, 1.0, 0.2, 0.0), Weights(0, 0, 1, 1), Weights(1, 0, 0, 0))


@pytest.mark.parametrize("seed", [1, 2])
def test_index_returns_exactly_what_rank_naive_returns(seed: int) -> None:
    firms, needs = random_world(seed, 120)
    index = MatchIndex().fit(firms)
    for i, need in enumerate(needs):
        weights = WEIGHTS[i % len(WEIGHTS)]
        assert index.query(need, weights) == rank_naive(firms, need, weights)


def test_index_leaves_out_common_terms_as_rank_naive_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # shrink "large corpus" to a few profiles so that common terms are left out here
    monkeypatch.setattr(scoring.text, "COMMON_TERM_MIN_PROFILES", 4)
    monkeypatch.setattr(scoring.text, "COMMON_TERM_SHARE", 0.1)
    firms, needs = random_world(9, 120)
    index = MatchIndex().fit(firms)
    for firm_id in range(1, 40, 3):  # masked slots must not be counted as profiles
        index.remove(firm_id)
    rest = [firm for firm in firms if firm.id not in range(1, 40, 3)]
    for need in needs:
        assert index.query(need) == rank_naive(rest, need)
    everything_common = Need(48.14, 11.58, description="steel welding aluminium", limit=5)
    assert index.query(everything_common) == rank_naive(rest, everything_common)


def test_index_follows_the_scikit_learn_estimator_contract() -> None:
    index = MatchIndex(compact_ratio=0.5)
    assert vars(index) == {"compact_ratio": 0.5}  # __init__ only stores parameters
    assert index.get_params() == {"compact_ratio": 0.5}
    assert clone(index).get_params() == {"compact_ratio": 0.5}
    firms, _ = random_world(4, 5)
    assert index.fit(firms) is index
    assert [name for name in vars(index) if not name.startswith("_")] == ["compact_ratio", "state_"]


def test_query_before_fit_raises_not_fitted() -> None:
    index = MatchIndex()
    with pytest.raises(NotFittedError):
        index.query(Need(48.0, 11.0, description="welding"))
    with pytest.raises(NotFittedError):
        index.upsert(Firm(1, "A", "partner", (), "", ()))
    assert len(index) == 0 and 1 not in index


def test_fit_rejects_duplicate_ids() -> None:
    firm = Firm(1, "A", "partner", (), "welding", (Office(1, 48.0, 11.0),))
    with pytest.raises(ValueError, match="more than once"):
        MatchIndex().fit([firm, firm])
    with pytest.raises(ValueError, match="more than once"):
        rank_naive([firm, firm], Need(48.0, 11.0, description="welding"))


def test_empty_index_returns_no_candidates_and_takes_upserts() -> None:
    index = MatchIndex().fit([])
    need = Need(48.0, 11.0, skills=("welding",))
    assert index.query(need) == []
    firm = Firm(7, "A", "partner", ("welding",), "", (Office(1, 48.0, 11.0),))
    index.upsert(firm)
    assert len(index) == 1 and 7 in index
    assert [c.organization_id for c in index.query(need)] == [7]


def test_upsert_replaces_the_firm_with_the_same_id() -> None:
    firms, _ = random_world(5, 30)
    index = MatchIndex().fit(firms)
    need = Need(48.14, 11.58, skills=("welding",), description="welding", limit=3)
    star = Firm(17, "Star", "partner", ("welding",), "welding", (Office(1, 48.14, 11.58),))
    index.upsert(star)
    assert len(index) == len(firms)
    result = index.query(need)
    assert result[0].organization_id == 17 and result[0].name == "Star"
    index.upsert(
        Firm(17, "Star", "partner", (), "bakery", (Office(1, 48.14, 11.58),), active=False)
    )
    assert 17 not in [c.organization_id for c in index.query(need)]
    assert 17 in index


def test_remove_drops_the_firm_and_ignores_unknown_ids() -> None:
    firms, needs = random_world(6, 40)
    index = MatchIndex().fit(firms)
    index.remove(3)
    index.remove(3)
    index.remove(99_999)
    assert 3 not in index and len(index) == len(firms) - 1
    rest = [firm for firm in firms if firm.id != 3]
    for need in needs:
        assert index.query(need) == rank_naive(rest, need)


def test_compaction_keeps_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring.index, "MIN_DEAD_SLOTS", 0)
    firms, needs = random_world(7, 60)
    rng = random.Random(7)
    index = MatchIndex(compact_ratio=0.1).fit(firms)
    current = {firm.id: firm for firm in firms}
    office_ids = [10_000]
    for step in range(80):
        if step % 3 == 2:
            firm_id = rng.choice(sorted(current))
            index.remove(firm_id)
            del current[firm_id]
        else:
            firm = random_firm(rng, rng.randint(1, 90), office_ids)
            index.upsert(firm)
            current[firm.id] = firm
    state = index.state_
    assert state.n_slots - state.n_live <= 0.1 * state.n_live + 1  # compaction ran
    for need in needs:
        assert index.query(need) == rank_naive(list(current.values()), need)


def test_queries_are_safe_while_another_thread_upserts() -> None:
    firms, needs = random_world(8, 150)
    index = MatchIndex(compact_ratio=0.05).fit(firms)
    rng = random.Random(8)
    updates = [random_firm(rng, rng.randint(1, 200), [50_000]) for _ in range(300)]
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i, firm in enumerate(updates):
                index.upsert(firm)
                if i % 7 == 0:
                    index.remove(rng.randint(1, 200))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                for need in needs:
                    result = index.query(need)
                    assert [c.rank for c in result] == list(range(1, len(result) + 1))
                    assert len({c.organization_id for c in result}) == len(result)
                    keys = [(-c.score, c.organization_id) for c in result]
                    assert keys == sorted(keys)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    final = MatchIndex().fit(index.state_.store.firms[slot] for slot in _live_slots(index))
    for need in needs:
        assert index.query(need) == final.query(need)


def _live_slots(index: MatchIndex) -> list[int]:
    return [int(slot) for slot in index.state_.live.nonzero()[0]]


ALLOWED_IMPORTS = {"numpy", "scipy", "sklearn", "geopy", "Stemmer", "scoring", "__future__"}


def test_scoring_imports_only_the_standard_library_and_numeric_packages() -> None:
    package = Path(scoring.index.__file__).parent
    stdlib = set(sys.stdlib_module_names)
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS | stdlib, f"{path.name}: {name}"
