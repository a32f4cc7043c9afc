"""MatchIndex: the ranking of rank_naive, answered in milliseconds over an in-memory index.

A query runs in two steps.

1. Bound (vectorised over every firm slot, float32): an upper bound of each firm's score
   from its performance and capacity fits, its skill fit (coverage counted from the
   postings of every key the firms' tags cover, `covers`: "hard anodizing" is posted under
   "anod" too; the tags' own keys, `skills`, decide which words of a need name a skill; text
   similarity summed from term postings in float64, in the very order
   TextQuery.similarity sums it, so the exact value comes for free) and a location fit from
   the chord to each office that may serve the client (a chord is never longer than the
   great circle, which SPHERE_TOLERANCE relates to the geodesic).
2. Refine: firms are scored exactly, in decreasing order of their bound, with the function
   rank_naive uses (geodesic only to the offices that can be the nearest or serve the client)
   until the next bound falls below the `limit`-th exact score. The result is therefore
   exactly rank_naive's. Firms whose skill fit is below the need's floor are left out before.

Updates never rebuild: slots are append-only, so upsert writes the firm into a new slot and
masks the one it replaces, then publishes a new immutable snapshot. Queries read one snapshot
and take no lock; postings entries past a snapshot's slot count are invisible to it. The
idf is computed at query time from the live postings, so a firm's own vector never changes
and the index after any sequence of updates ranks exactly as one fitted on the final firms.
When masked slots outnumber live ones (`compact_ratio`), the slots are compacted without
re-analysing any text.
"""

from __future__ import annotations

import heapq
import json
import math
import threading
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import count

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from scoring.columns import Rows, encode
from scoring.components import (
    DEFAULT_SCALE_KM,
    EARTH_RADIUS_KM,
    IMPLIED_SKILL_SHARE,
    SPHERE_TOLERANCE,
    capacity_fit,
    performance_fit,
    rank,
    score_firm,
    spherical_km,
)
from scoring.model import (
    DEFAULT_WEIGHTS,
    SKILL_COVERAGE_SHARE,
    Candidate,
    Firm,
    Need,
    Office,
    Weights,
)
from scoring.naive import check_unique_ids
from scoring.text import (
    TextQuery,
    clamp_similarity,
    common_term_threshold,
    key_runs,
    named_skills,
    need_terms,
    profile_vector,
    skill_key,
)

# The first PLANES offices of every firm sit in dense per-slot arrays (a firm with fewer repeats
# its first office); the rest go to a side list. Most firms have one to three offices.
PLANES = 2
# Bounds are float32 (half the memory traffic of float64); this covers their rounding, plus
# SCORE_SLACK_PER_SKILL for each required skill (one float32 addition each).
SCORE_SLACK = 1e-6
SCORE_SLACK_PER_SKILL = 2e-7
# A firm is left out before refinement only if its skill fit is below the floor by more than
# this (float64 sums in another order than skill_fit's); score_firm applies the floor exactly.
FIT_SLACK = 1e-9
# Chords come from float32 unit vectors: off by at most ~4e-7 of the unit sphere (2.5 m)
# absolute and 1e-6 relative, covered by these two slacks.
DISTANCE_SLACK_KM = 0.005
CHORD_RELATIVE_SLACK = 1e-6
# Geodesic km per unit of (float32) chord, at least: geodesic >= (1 - tolerance) * great
# circle >= (1 - tolerance) * R * chord.
_KM_PER_CHORD = EARTH_RADIUS_KM * (1.0 - SPHERE_TOLERANCE) * (1.0 - CHORD_RELATIVE_SLACK)
# Added to the squared chord of an office that cannot serve the client: its location bound ~ 0.
UNCOVERED = np.float32(1e12)
# Subtracted from the bound of a firm that cannot be proposed; real bounds are in [0, 1].
EXCLUDED = np.float32(8.0)
# The group id of a firm of no group (ids are positive).
NO_GROUP = -1
# Compaction waits for at least this many masked slots, whatever compact_ratio says.
MIN_DEAD_SLOTS = 1024
_MIN_CAPACITY = 16

# (slots ascending, weights or None, count): entries past `count` belong to no reader yet.
_Posting = tuple[np.ndarray, "np.ndarray | None", int]
_EMPTY_SLOTS = np.empty(0, np.int32)
_EMPTY_VALUES = np.empty(0, np.float64)


def unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    """Return the (3, k) unit vectors of (lat, lon) points given in degrees."""
    lat, lon = np.radians(latitudes), np.radians(longitudes)
    return np.stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


def _float32_up(values: np.ndarray) -> np.ndarray:
    """Return float32 values rounded up, never below the float64 ones."""
    rounded = values.astype(np.float32)
    return np.where(rounded < values, np.nextafter(rounded, np.float32(np.inf)), rounded)


def _chord_limit(distance_km: np.ndarray) -> np.ndarray:
    """Return the float32 squared chord beyond which a geodesic surely exceeds distance_km."""
    chord = (distance_km + DISTANCE_SLACK_KM) / _KM_PER_CHORD
    return _float32_up(np.minimum(chord, 2.0 + CHORD_RELATIVE_SLACK) ** 2)


def _offices_columns(offices: list[Office | None]) -> tuple[np.ndarray, np.ndarray]:
    """Return float32 unit vectors and cover limits of offices; None stands for "no office"."""
    present = [o for o in offices if o is not None]
    xyz = np.zeros((3, len(offices)), np.float32)
    cover = np.full(len(offices), -1.0, np.float32)  # no office can serve anyone
    if present:
        rows = np.array([o is not None for o in offices])
        lat = np.array([o.latitude for o in present])
        lon = np.array([o.longitude for o in present])
        xyz[:, rows] = unit_vectors(lat, lon)
        cover[rows] = _chord_limit(np.array([o.service_radius_km for o in present]))
    return xyz, cover


def _plane_office(offices: tuple[Office, ...], plane: int) -> Office | None:
    """Return the office a firm keeps in a plane: its plane-th, else its first, else None."""
    if len(offices) > plane:
        return offices[plane]
    return offices[0] if offices else None


def _is_proposable(firm: Firm) -> bool:
    """Return whether the firm's own state lets it be proposed (need filters aside)."""
    return (
        firm.active
        and bool(firm.offices)
        and (firm.capacity is None or firm.open_referrals < firm.capacity)
    )


def _postings(keys: list[str], per_slot: array, values: array | None) -> dict[str, _Posting]:
    """Group each slot's keys (per_slot[i] of them for slot i, in slot order) into postings.

    The postings share two large arrays; each key's segment has an eighth of spare room, so
    that later appends write in place.
    """
    # key -> id in order of first appearance, assigned by C-level dict lookups
    key_ids: defaultdict[str, int] = defaultdict(count().__next__)
    ids = np.fromiter(map(key_ids.__getitem__, keys), np.int32, len(keys))
    slots = np.repeat(np.arange(len(per_slot), dtype=np.int32), np.frombuffer(per_slot, np.int32))
    # stable, so slots stay ascending within a key; 16-bit keys get numpy's radix sort
    order = np.argsort(ids.astype(np.uint16) if len(key_ids) <= 1 << 16 else ids, kind="stable")
    counts = np.bincount(ids, minlength=len(key_ids))
    capacities = counts + counts // 8 + 2
    room = np.cumsum(capacities) - capacities  # where each key's segment starts
    first = np.cumsum(counts) - counts  # where each key's entries start in `order`
    sorted_ids = ids[order]
    destination = room[sorted_ids] + (np.arange(len(ids)) - first[sorted_ids])
    all_slots = np.zeros(int(capacities.sum()), np.int32)
    all_slots[destination] = slots[order]
    all_values = None
    if values is not None:
        all_values = np.zeros(len(all_slots), np.float64)
        if len(values):
            all_values[destination] = np.frombuffer(values, np.float64)[order]
    result: dict[str, _Posting] = {}
    for key, start, size, capacity in zip(
        key_ids, room.tolist(), counts.tolist(), capacities.tolist(), strict=True
    ):
        result[key] = (
            all_slots[start : start + capacity],
            None if all_values is None else all_values[start : start + capacity],
            size,
        )
    return result


def _covers_postings(skills: dict[str, _Posting]) -> dict[str, _Posting]:
    """Return the postings of every key the tags cover (scoring.text.key_runs), from the
    postings of the tags' keys: per distinct tag rather than per firm (a firm's tags cover
    30-odd keys; at 100k firms this is ~0.3 s against ~3 s of Python per firm)."""
    sources: defaultdict[str, list[np.ndarray]] = defaultdict(list)
    for key, (slots, _, size) in skills.items():
        for run in key_runs(key):
            sources[run].append(slots[:size])
    # a slot once per key, ascending: two tags of one firm may cover the same key
    merged = {run: parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
              for run, parts in sources.items()}
    counts = np.fromiter((len(slots) for slots in merged.values()), np.int64, len(merged))
    capacities = counts + counts // 8 + 2  # room for appends, as _postings leaves
    room = np.cumsum(capacities) - capacities
    all_slots = np.zeros(int(capacities.sum()), np.int32)
    result: dict[str, _Posting] = {}
    for (run, slots), start, size, capacity in zip(
        merged.items(), room.tolist(), counts.tolist(), capacities.tolist(), strict=True
    ):
        all_slots[start : start + size] = slots
        result[run] = (all_slots[start : start + capacity], None, size)
    return result


def _append_posting(
    postings: dict[str, _Posting], key: str, slot: int, value: float | None
) -> None:
    """Append one entry, writing only past every published count (readers are never locked)."""
    entry = postings.get(key)
    if entry is None:
        slots, values, count = _EMPTY_SLOTS, (None if value is None else _EMPTY_VALUES), 0
    else:
        slots, values, count = entry
    if count == len(slots):
        size = max(4, 2 * count)
        grown = np.empty(size, np.int32)
        grown[:count] = slots[:count]
        slots = grown
        if values is not None:
            grown_values = np.empty(size, np.float64)
            grown_values[:count] = values[:count]
            values = grown_values
    slots[count] = slot
    if values is not None:
        values[count] = value
    postings[key] = (slots, values, count + 1)


def _visible(entry: _Posting | None, n_slots: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the slots (and values) of a posting that a snapshot of n_slots can see."""
    if entry is None:
        return _EMPTY_SLOTS, _EMPTY_VALUES
    slots, values, count = entry
    end = count
    if count and slots[count - 1] >= n_slots:
        end = int(np.searchsorted(slots[:count], n_slots))
    return slots[:end], None if values is None else values[:end]


def _compact_postings(
    postings: dict[str, _Posting], live: np.ndarray, remap: np.ndarray
) -> dict[str, _Posting]:
    result: dict[str, _Posting] = {}
    for key, (slots, values, size) in postings.items():
        keep = live[slots[:size]]
        kept = int(np.count_nonzero(keep))
        if kept:
            result[key] = (
                remap[slots[:size][keep]],
                None if values is None else values[:size][keep],
                kept,
            )
    return result


class _Store:
    """Append-only storage of one generation of slots: per-slot arrays, offices, postings."""

    def __init__(self, capacity: int, extra_capacity: int) -> None:
        capacity = max(capacity, _MIN_CAPACITY)
        extra_capacity = max(extra_capacity, _MIN_CAPACITY)
        self.firms: list[Firm] = []
        self.slot_of: dict[int, int] = {}
        self.kind_codes: dict[str, int] = {}
        self.terms: dict[str, _Posting] = {}
        self.skills: dict[str, _Posting] = {}  # by tag key: the skills firms name
        self.covers: dict[str, _Posting] = {}  # by every key a tag covers (skill_runs)
        self.n_slots = 0
        self.n_extra = 0
        self.kind = np.zeros(capacity, np.int32)
        self.group = np.full(capacity, NO_GROUP, np.int64)  # each firm's group id
        self.performance = np.zeros(capacity)
        self.free = np.zeros(capacity)
        self.xyz = np.zeros((PLANES, 3, capacity), np.float32)
        self.cover = np.zeros((PLANES, capacity), np.float32)
        self.extra_owner = np.zeros(extra_capacity, np.int32)
        self.extra_xyz = np.zeros((3, extra_capacity), np.float32)
        self.extra_cover = np.zeros(extra_capacity, np.float32)

    @classmethod
    def build(cls, firms: list[Firm]) -> _Store:
        """Return a store holding `firms` in slots 0..n-1, built in bulk."""
        n = len(firms)
        extras = [(slot, o) for slot, f in enumerate(firms) for o in f.offices[PLANES:]]
        # room for an eighth more before the first upserts have to grow the arrays
        store = cls(n + n // 8, len(extras) + len(extras) // 8)
        terms: list[str] = []
        term_values, term_counts = array("d"), array("i")
        skills: list[str] = []
        skill_counts = array("i")
        for firm in firms:
            vector = profile_vector(firm)
            terms += vector
            term_values.extend(vector.values())
            term_counts.append(len(vector))
            unique_skills = dict.fromkeys(map(skill_key, firm.skills))
            skills += unique_skills
            skill_counts.append(len(unique_skills))
        store.terms = _postings(terms, term_counts, term_values)
        store.skills = _postings(skills, skill_counts, None)
        store.covers = _covers_postings(store.skills)

        store.firms = list(firms)
        store.slot_of = {firm.id: slot for slot, firm in enumerate(firms)}
        codes = [store.kind_codes.setdefault(firm.kind, len(store.kind_codes)) for firm in firms]
        store.kind[:n] = codes
        store.group[:n] = [NO_GROUP if f.group_id is None else f.group_id for f in firms]
        store.performance[:n] = [performance_fit(f.won, f.failed) for f in firms]
        store.free[:n] = [capacity_fit(f.capacity, f.open_referrals) for f in firms]
        for p in range(PLANES):
            plane = [_plane_office(firm.offices, p) for firm in firms]
            xyz, cover = _offices_columns(plane)
            store.xyz[p, :, :n] = xyz
            store.cover[p, :n] = cover
        if extras:
            xyz, cover = _offices_columns([office for _, office in extras])
            store.extra_owner[: len(extras)] = [slot for slot, _ in extras]
            store.extra_xyz[:, : len(extras)] = xyz
            store.extra_cover[: len(extras)] = cover
        store.n_slots, store.n_extra = n, len(extras)
        return store

    def append(self, firm: Firm, vector: dict[str, float]) -> int:
        """Write a firm into the next slot and return the slot; publishing is the caller's."""
        slot = self.n_slots
        extras = firm.offices[PLANES:]
        self._reserve(slot + 1, self.n_extra + len(extras))
        self.kind[slot] = self.kind_codes.setdefault(firm.kind, len(self.kind_codes))
        self.group[slot] = NO_GROUP if firm.group_id is None else firm.group_id
        self.performance[slot] = performance_fit(firm.won, firm.failed)
        self.free[slot] = capacity_fit(firm.capacity, firm.open_referrals)
        xyz, cover = _offices_columns([_plane_office(firm.offices, p) for p in range(PLANES)])
        self.xyz[:, :, slot] = xyz.T
        self.cover[:, slot] = cover
        if extras:
            xyz, cover = _offices_columns(list(extras))
            end = self.n_extra + len(extras)
            self.extra_owner[self.n_extra : end] = slot
            self.extra_xyz[:, self.n_extra : end] = xyz
            self.extra_cover[self.n_extra : end] = cover
            self.n_extra = end
        for term, weight in vector.items():
            _append_posting(self.terms, term, slot, weight)
        for key in dict.fromkeys(map(skill_key, firm.skills)):
            _append_posting(self.skills, key, slot, None)
        for key in _covered_keys(firm):
            _append_posting(self.covers, key, slot, None)
        self.firms.append(firm)
        self.n_slots = slot + 1
        return slot

    def _reserve(self, slots: int, extras: int) -> None:
        # Grown arrays are filled before they replace the old ones, so a reader holding either
        # sees the same values for every slot it knows.
        if slots > len(self.kind):
            size, n = max(slots, 2 * len(self.kind)), self.n_slots
            for name in ("kind", "group", "performance", "free", "xyz", "cover"):
                old = getattr(self, name)
                grown = np.zeros((*old.shape[:-1], size), old.dtype)
                grown[..., :n] = old[..., :n]
                setattr(self, name, grown)
        if extras > len(self.extra_owner):
            size, e = max(extras, 2 * len(self.extra_owner)), self.n_extra
            for name in ("extra_owner", "extra_xyz", "extra_cover"):
                old = getattr(self, name)
                grown = np.zeros((*old.shape[:-1], size), old.dtype)
                grown[..., :e] = old[..., :e]
                setattr(self, name, grown)

    def compacted(self, live: np.ndarray) -> _Store:
        """Return a new store holding only the live slots, in the same order."""
        keep = np.flatnonzero(live)
        k = len(keep)
        remap = np.full(self.n_slots, -1, np.int32)
        remap[keep] = np.arange(k, dtype=np.int32)
        extra_keep = np.flatnonzero(live[self.extra_owner[: self.n_extra]])
        e = len(extra_keep)
        store = _Store(k, e)
        store.firms = [self.firms[slot] for slot in keep.tolist()]
        store.slot_of = {firm.id: slot for slot, firm in enumerate(store.firms)}
        store.kind_codes = dict(self.kind_codes)
        store.kind[:k] = self.kind[keep]
        store.group[:k] = self.group[keep]
        store.performance[:k] = self.performance[keep]
        store.free[:k] = self.free[keep]
        store.xyz[:, :, :k] = self.xyz[:, :, keep]
        store.cover[:, :k] = self.cover[:, keep]
        store.extra_owner[:e] = remap[self.extra_owner[extra_keep]]
        store.extra_xyz[:, :e] = self.extra_xyz[:, extra_keep]
        store.extra_cover[:e] = self.extra_cover[extra_keep]
        store.terms = _compact_postings(self.terms, live, remap)
        store.skills = _compact_postings(self.skills, live, remap)
        store.covers = _compact_postings(self.covers, live, remap)
        store.n_slots, store.n_extra = k, e
        return store


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What one query reads: a store, how much of it is published, and who is live."""

    store: _Store
    n_slots: int
    n_extra: int
    n_live: int
    live: np.ndarray  # current version of a firm, proposable or not: the text corpus
    proposable: np.ndarray  # live, active, with an office and free capacity
    # performance and capacity parts of the bound, per (performance, capacity) weights
    static: dict[tuple[float, float], np.ndarray] = field(default_factory=dict, compare=False)

    def static_part(self, weights: Weights) -> np.ndarray:
        """Return w_performance * performance + w_capacity * capacity of every slot (float32)."""
        key = (weights.performance, weights.capacity)
        part = self.static.get(key)
        if part is None:
            n = self.n_slots
            part = (
                weights.performance * self.store.performance[:n]
                + weights.capacity * self.store.free[:n]
            ).astype(np.float32)
            if len(self.static) >= 4:
                self.static.clear()
            self.static[key] = part
        return part


class _Scratch(threading.local):
    """Per-thread reusable buffers, zeroed when made: fresh large arrays cost page faults."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype: type = np.float64) -> np.ndarray:
        buffer = self.arrays.get(name)
        if buffer is None or len(buffer) < size:
            buffer = np.zeros(size + size // 4 + _MIN_CAPACITY, dtype)
            self.arrays[name] = buffer
        return buffer[:size]


def _grown_mask(mask: np.ndarray, value: bool, masked_slot: int | None) -> np.ndarray:
    grown = np.empty(len(mask) + 1, bool)
    grown[:-1] = mask
    grown[-1] = value
    if masked_slot is not None:
        grown[masked_slot] = False
    return grown


class MatchIndex(BaseEstimator):
    """Rank firms for a need, as rank_naive does, from an index kept current by upsert/remove.

    compact_ratio: slots of replaced or removed firms are compacted away once they outnumber
    compact_ratio times the live firms (and MIN_DEAD_SLOTS).
    """

    def __init__(self, compact_ratio: float = 1.0) -> None:
        self.compact_ratio = compact_ratio

    def fit(self, firms: Iterable[Firm]) -> MatchIndex:
        """Index the firms, replacing anything indexed before; return self."""
        if not (self.compact_ratio > 0):
            raise ValueError(f"compact_ratio must be greater than 0, got {self.compact_ratio!r}.")
        firms = list(firms)
        check_unique_ids(firms)
        store = _Store.build(firms)
        n = len(firms)
        proposable = np.fromiter((_is_proposable(f) for f in firms), bool, n)
        if not hasattr(self, "_lock"):
            self._lock = threading.RLock()
            self._scratch = _Scratch()
        with self._lock:
            self.state_ = _Snapshot(store, n, store.n_extra, n, np.ones(n, bool), proposable)
        return self

    def __len__(self) -> int:
        """Return the number of firms indexed (0 before fit)."""
        state = getattr(self, "state_", None)
        return 0 if state is None else state.n_live

    def __contains__(self, firm_id: object) -> bool:
        """Return whether a firm with this id is indexed."""
        state = getattr(self, "state_", None)
        return state is not None and firm_id in state.store.slot_of

    def group_of(self, firm_id: int) -> int | None:
        """Return the group id of an indexed firm (None: no group); KeyError if not indexed."""
        check_is_fitted(self, "state_")
        state = self.state_
        return state.store.firms[state.store.slot_of[firm_id]].group_id

    def get(self, firm_id: int) -> Firm | None:
        """Return the indexed firm with this id, or None."""
        state = getattr(self, "state_", None)
        slot = None if state is None else state.store.slot_of.get(firm_id)
        return None if slot is None else state.store.firms[slot]

    def upsert(self, firm: Firm) -> None:
        """Add a firm, or replace the indexed firm with the same id, without a rebuild."""
        check_is_fitted(self, "state_")
        vector = profile_vector(firm)  # the slow part, pure: outside the lock
        with self._lock:
            state = self.state_
            store = state.store
            old = store.slot_of.get(firm.id)
            slot = store.append(firm, vector)
            store.slot_of[firm.id] = slot
            self.state_ = _Snapshot(
                store,
                slot + 1,
                store.n_extra,
                state.n_live + (old is None),
                _grown_mask(state.live, True, old),
                _grown_mask(state.proposable, _is_proposable(firm), old),
            )
            self._compact_if_worth_it()

    def remove(self, firm_id: int) -> None:
        """Remove the firm with this id from the index; nothing happens if it is not there."""
        check_is_fitted(self, "state_")
        with self._lock:
            state = self.state_
            slot = state.store.slot_of.pop(firm_id, None)
            if slot is None:
                return
            live, proposable = state.live.copy(), state.proposable.copy()
            live[slot] = proposable[slot] = False
            self.state_ = replace(state, n_live=state.n_live - 1, live=live, proposable=proposable)
            self._compact_if_worth_it()

    def _compact_if_worth_it(self) -> None:
        state = self.state_
        dead = state.n_slots - state.n_live
        if dead < MIN_DEAD_SLOTS or dead <= self.compact_ratio * state.n_live:
            return
        self.compact()

    def compact(self) -> None:
        """Drop the slots of replaced and removed firms now (upsert and remove do it as needed)."""
        check_is_fitted(self, "state_")
        with self._lock:
            state = self.state_
            store = state.store.compacted(state.live)
            n = store.n_slots
            self.state_ = _Snapshot(
                store, n, store.n_extra, n, np.ones(n, bool), state.proposable[state.live]
            )

    def query(self, need: Need, weights: Weights = DEFAULT_WEIGHTS) -> list[Candidate]:
        """Return the best firms for a need, best first: the same list rank_naive returns."""
        check_is_fitted(self, "state_")
        state = self.state_  # one consistent snapshot for the whole query
        if state.n_live == 0:
            return []
        normalized = weights.normalized()
        if not need.skills and need.description:
            need = replace(need, implied_skills=named_skills(
                need.description, lambda key: _has_live(state, key)))
        text_query, rows = _text_query(state, need)
        text = self._scratch.get("text", state.n_slots)  # all zeros between queries
        try:
            bound, n_candidates, chosen = self._upper_bounds(state, need, normalized, rows, text)
            return _refine(state, need, normalized, text_query, bound, n_candidates, text,
                           chosen)
        finally:
            for _, slots, _ in rows:
                text[slots] = 0.0

    def _upper_bounds(
        self,
        state: _Snapshot,
        need: Need,
        weights: Weights,
        rows: list[tuple[float, np.ndarray, np.ndarray]],
        text: np.ndarray,
    ) -> tuple[np.ndarray, int, np.ndarray | None]:
        """Return a float32 bound of the slots' scores, how many can be proposed, and which
        slots the bounds are of (None: every slot, in order).

        Slots that cannot be proposed get a bound below -1 (or none). `text` (all zeros)
        receives the exact text similarity of every slot the need's terms reach.
        """
        store, n, scratch = state.store, state.n_slots, self._scratch

        # skill: text similarity summed exactly as TextQuery.similarity sums it (float64
        # products added term by term in the same order) into `text`; coverage exact, counted
        # by the keys the firms' tags cover (a variant spelling or a longer tag covers the skill)
        for weight, slots, values in rows:
            text[slots] += weight * values
        covered = scratch.get("covered", n)  # all zeros between queries
        mark = scratch.get("mark", n, bool)  # all False between queries
        for _, slots, _ in rows:
            mark[slots] = True
        for slug in need.skills:
            slots = _visible(store.covers.get(skill_key(slug)), n)[0]
            covered[slots] += 1.0
            mark[slots] = True
        for keys in need.implied_skills:  # a mention counts once, whichever key covers it
            postings = [_visible(store.covers.get(key), n)[0] for key in keys]
            if len(postings) == 1:  # a posting holds each slot once
                slots = postings[0]
            else:
                # the union by a scan of n booleans: np.unique of postings tens of thousands
                # long (a tag's single words cover many firms) cost ~8 ms at 100k slots
                once = scratch.get("once", n, bool)  # all False between queries
                for posting in postings:
                    once[posting] = True
                slots = np.flatnonzero(once)
                once[slots] = False
            covered[slots] += 1.0
            mark[slots] = True
        required = len(need.skills) or len(need.implied_skills)
        share = SKILL_COVERAGE_SHARE if need.skills else IMPLIED_SKILL_SHARE
        # the slots some term or skill of the need reaches, ascending: a scan of n booleans
        # costs ~0.05 ms at 100k slots, np.unique of the postings ~1.4 ms
        related = np.flatnonzero(mark)
        mark[related] = False
        if required:
            # skill_fit: share * matched / required + (1 - share) * text
            fit = share * (covered[related] / required) + (1.0 - share) * text[related]
        else:
            fit = text[related]
        covered[related] = 0.0

        # Below the relevance floor no slot can be proposed, and a slot no term or skill
        # reaches has a skill fit of 0: with a floor, the rest of the bound is computed for the
        # related slots that reach it alone (about a tenth of the slots at 100k firms and 3
        # skills), the same values as over every slot. `chosen` holds them (ascending) and
        # entry i of every array below stands for slot chosen[i]; None: every slot.
        chosen: np.ndarray | None = None
        if need.min_skill_fit > 0:
            reach = np.flatnonzero(fit >= need.min_skill_fit - FIT_SLACK)
            chosen, fit = related[reach], fit[reach]
        m = n if chosen is None else len(chosen)

        def per_slot(values: np.ndarray) -> np.ndarray:
            """The entries of a per-slot array (last axis) for the slots computed here."""
            return values[..., :n] if chosen is None else np.take(values, chosen, axis=-1)

        bound = scratch.get("bound", m, np.float32)
        chord2 = scratch.get("chord2", m, np.float32)
        tmp = scratch.get("tmp", m, np.float32)
        best = scratch.get("best", m, np.float32)
        flag = scratch.get("flag", m, bool)
        excluded = scratch.get("excluded", m, bool)

        # location: squared chord to the nearest office that may serve the client
        lat, lon = math.radians(need.latitude), math.radians(need.longitude)
        client = np.array(
            [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)],
            np.float32,
        )
        nearest = scratch.get("nearest", m, np.float32) if need.max_distance_km else None
        xyz, cover = per_slot(store.xyz), per_slot(store.cover)
        for p in range(PLANES):
            # |office - client|^2 by differences: no cancellation near the client
            np.subtract(xyz[p, 0], client[0], out=tmp)
            np.multiply(tmp, tmp, out=chord2)
            for axis in (1, 2):
                np.subtract(xyz[p, axis], client[axis], out=tmp)
                np.multiply(tmp, tmp, out=tmp)
                chord2 += tmp
            if nearest is not None:
                if p == 0:
                    nearest[:] = chord2
                else:
                    np.minimum(nearest, chord2, out=nearest)
            np.greater(chord2, cover[p], out=flag)
            np.multiply(flag, UNCOVERED, out=tmp)
            chord2 += tmp
            if p == 0:
                best[:] = chord2
            else:
                np.minimum(best, chord2, out=best)
        if state.n_extra:
            e = state.n_extra
            owner = store.extra_owner[:e]
            extra_xyz, extra_cover = store.extra_xyz[:, :e], store.extra_cover[:e]
            if chosen is not None:
                mark[chosen] = True
                of_chosen = np.flatnonzero(mark[owner])
                mark[chosen] = False
                owner = np.searchsorted(chosen, owner[of_chosen])
                extra_xyz, extra_cover = extra_xyz[:, of_chosen], extra_cover[of_chosen]
            extra = ((extra_xyz - client[:, None]) ** 2).sum(axis=0)
            if nearest is not None:
                np.minimum.at(nearest, owner, extra)
            extra += (extra > extra_cover) * UNCOVERED
            np.minimum.at(best, owner, extra)
        # location_fit's 1 / (1 + d / scale) at the shortest geodesic the chord allows:
        # d >= (1 - tolerance) * R * chord, less the float32 slacks
        np.sqrt(best, out=best)
        best *= _KM_PER_CHORD / DEFAULT_SCALE_KM
        best += 1.0 - DISTANCE_SLACK_KM / DEFAULT_SCALE_KM
        np.maximum(best, 1.0, out=best)
        np.divide(weights.location, best, out=bound)

        # performance and capacity: exact
        bound += per_slot(state.static_part(weights))
        if need.prefer_group:
            # group: exact, the weight for the firms of the referrer's group
            np.equal(per_slot(store.group), need.group_id, out=flag)
            np.multiply(flag, np.float32(weights.group), out=tmp)
            bound += tmp

        if chosen is None:
            bound[related] += weights.skill * fit
        else:
            bound += weights.skill * fit

        # who cannot be proposed (the slots below the floor are not here: see above)
        np.logical_not(per_slot(state.proposable), out=excluded)
        if need.kinds is not None:
            refused = scratch.get("refused", m, bool)
            refused.fill(True)
            kinds = per_slot(store.kind)
            for kind in need.kinds:
                if kind in store.kind_codes:
                    np.not_equal(kinds, store.kind_codes[kind], out=flag)
                    refused &= flag
            excluded |= refused
        if need.same_group_only:
            np.not_equal(per_slot(store.group), need.group_id, out=flag)
            excluded |= flag
        if nearest is not None:
            # the nearest office is surely beyond max_distance_km
            np.greater(nearest, _chord_limit(np.array(need.max_distance_km)), out=flag)
            excluded |= flag
        for firm_id in need.exclude_ids:
            slot = store.slot_of.get(firm_id)
            if slot is None or slot >= n:
                continue
            if chosen is not None:
                at = int(np.searchsorted(chosen, slot))
                if at == m or chosen[at] != slot:
                    continue
                slot = at
            excluded[slot] = True  # best effort: score_firm checks exclude_ids again
        np.multiply(excluded, EXCLUDED, out=tmp)
        bound -= tmp
        return bound, m - int(np.count_nonzero(excluded)), chosen


def _covered_keys(firm: Firm) -> dict[str, None]:
    """Return the keys of every skill the firm's tags cover (scoring.text.skill_runs), once."""
    return dict.fromkeys(key for skill in firm.skills for key in key_runs(skill_key(skill)))


def _has_live(state: _Snapshot, key: str) -> bool:
    """Return whether a live firm of the snapshot has a skill with this key."""
    slots = _visible(state.store.skills.get(key), state.n_slots)[0]
    return bool(len(slots)) and bool(state.live[slots].any())


def _text_query(
    state: _Snapshot, need: Need
) -> tuple[TextQuery, list[tuple[float, np.ndarray, np.ndarray]]]:
    """Return the need's TF-IDF query over the live corpus and its postings to add up."""
    counts = need_terms(need)
    store, n = state.store, state.n_slots
    dead = n - state.n_live
    threshold = common_term_threshold(state.n_live)
    frequency: dict[str, int] = {}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    common: list[str] = []
    for term in counts:
        slots, values = _visible(store.terms.get(term), n)
        found[term] = (slots, values)
        if len(slots) - dead > threshold:
            # surely common whatever the masked entries: skip counting a long posting
            common.append(term)
            frequency[term] = len(slots) - dead
        elif len(slots):
            frequency[term] = int(np.count_nonzero(state.live[slots]))
    if common and not any(0 < frequency[t] <= threshold for t in frequency if t not in common):
        # every term is common: TextQuery keeps the rarest, so count them exactly
        for term in common:
            frequency[term] = int(np.count_nonzero(state.live[found[term][0]]))
    query = TextQuery.build(counts, frequency, state.n_live)
    return query, [(weight, *found[term]) for term, weight in query.weights.items()]


def _exact(
    firm: Firm, need: Need, query: TextQuery, weights: Weights, text: float
) -> Candidate | None:
    """Score one firm exactly, measuring geodesics only to offices that can be the nearest or
    serve the client."""
    offices = firm.offices
    if len(offices) > 1:
        client = (need.latitude, need.longitude)
        spherical = [spherical_km(client, (o.latitude, o.longitude)) for o in offices]
        # an office farther than this on the sphere is farther on the ellipsoid too
        reach = min(spherical) * (1 + SPHERE_TOLERANCE) / (1 - SPHERE_TOLERANCE) + DISTANCE_SLACK_KM
        # the geodesic is at least (1 - tolerance) times the spherical distance
        offices = tuple(
            o for o, d in zip(offices, spherical, strict=True)
            if d <= reach or d * (1 - SPHERE_TOLERANCE) - DISTANCE_SLACK_KM <= o.service_radius_km
        )
    return score_firm(firm, need, query, weights, None, offices, clamp_similarity(text))


def _refine(
    state: _Snapshot,
    need: Need,
    weights: Weights,
    query: TextQuery,
    bound: np.ndarray,
    n_candidates: int,
    text: np.ndarray,
    chosen: np.ndarray | None = None,
) -> list[Candidate]:
    """Score slots exactly in decreasing order of bound until no bound can reach the top.

    bound[i] is slot i's bound, or slot chosen[i]'s when `chosen` is given.
    """
    n = len(bound)
    slack = SCORE_SLACK + SCORE_SLACK_PER_SKILL * (len(need.skills)
                                                   + len(need.implied_skills))
    kept: list[tuple[float, int, Candidate]] = []  # min-heap: the worst kept firm first
    seen: set[int] = set()
    batch = min(n_candidates, max(4 * need.limit, 32))
    # Select the `batch` smallest of -bound rather than the largest of bound: numpy's
    # introselect crawls when most values tie far below the kth (the excluded slots), 10-15 ms
    # against 0.6 ms at 100k slots. Which of tied slots come first does not change the result.
    negated = np.negative(bound)
    while batch:
        top = np.argpartition(negated, batch - 1)[:batch] if batch < n else np.arange(n)
        order = top[np.argsort(negated[top], kind="stable")]
        for at in order.tolist():
            upper = float(bound[at])
            if upper < -1.0:  # cannot be proposed, nor can any slot after it
                return rank([item[2] for item in kept], need.limit)
            if len(kept) == need.limit and upper + slack < kept[0][0]:
                return rank([item[2] for item in kept], need.limit)
            if at in seen:
                continue
            seen.add(at)
            slot = at if chosen is None else int(chosen[at])
            candidate = _exact(state.store.firms[slot], need, query, weights, float(text[slot]))
            if candidate is None:
                continue
            item = (candidate.score, -candidate.organization_id, candidate)
            if len(kept) < need.limit:
                heapq.heappush(kept, item)
            elif item[:2] > kept[0][:2]:
                heapq.heapreplace(kept, item)
        if batch >= n_candidates:
            break
        batch = min(n_candidates, batch * 4)
    return rank([item[2] for item in kept], need.limit)


# ------------------------------------------------------------------------- as arrays
# A snapshot of the index is a dict of named numpy arrays, so that it can be written to files
# and memory-mapped back: loading makes no Python object per firm. The firms themselves are
# columns (scoring.columns), decoded one at a time when a query refines them.

_FIRM = "firm."


class _LoadedFirms(Sequence):
    """A loaded store's firms: decoded from columns, then those appended since."""

    def __init__(self, rows: Rows) -> None:
        self.rows, self.appended = rows, []

    def __len__(self) -> int:
        return len(self.rows) + len(self.appended)

    def __getitem__(self, slot: int) -> Firm:  # type: ignore[override]
        base = len(self.rows)
        return self.rows[slot] if slot < base else self.appended[slot - base]

    def append(self, firm: Firm) -> None:
        """Add the firm of the next slot."""
        self.appended.append(firm)


def _pack_postings(postings: dict[str, _Posting], name: str) -> dict[str, np.ndarray]:
    keys = list(postings)
    counts = [postings[key][2] for key in keys]
    at = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(counts, out=at[1:])
    slots = [postings[key][0][: postings[key][2]] for key in keys]
    arrays = {
        f"postings.{name}.keys": np.frombuffer(json.dumps(keys).encode(), np.uint8).copy(),
        f"postings.{name}.at": at,
        f"postings.{name}.slots": np.concatenate(slots) if slots else _EMPTY_SLOTS,
    }
    if any(postings[key][1] is not None for key in keys):
        values = [postings[key][1][: postings[key][2]] for key in keys]
        arrays[f"postings.{name}.values"] = np.concatenate(values)
    return arrays


def _unpack_postings(arrays: Mapping[str, np.ndarray], name: str) -> dict[str, _Posting]:
    keys = json.loads(arrays[f"postings.{name}.keys"].tobytes())
    at = arrays[f"postings.{name}.at"].tolist()
    slots = arrays[f"postings.{name}.slots"]
    values = arrays.get(f"postings.{name}.values")
    # Views of exactly `count` entries: the first append to one copies it (a loaded snapshot
    # may be read-only or shared).
    return {
        key: (slots[start:end], None if values is None else values[start:end], end - start)
        for key, start, end in zip(keys, at[:-1], at[1:], strict=True)
    }


def to_arrays(index: MatchIndex) -> dict[str, np.ndarray]:
    """Return the fitted index as named arrays, which `from_arrays` turns back into it.

    Every attribute of the store is kept, whatever arrays it grows: numpy arrays as they are,
    postings packed, codes as JSON; a store attribute of another kind raises TypeError.
    """
    check_is_fitted(index, "state_")
    state = index.state_
    store = state.store
    arrays: dict[str, np.ndarray] = {
        "state.counts": np.array([state.n_slots, state.n_extra, state.n_live], np.int64),
        "state.live": state.live,
        "state.proposable": state.proposable,
    }
    for name, value in vars(store).items():
        if name in ("firms", "slot_of"):
            continue
        if isinstance(value, np.ndarray):
            arrays[f"store.{name}"] = value
        elif isinstance(value, int):
            arrays[f"int.{name}"] = np.array(value, np.int64)
        elif isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
            arrays[f"codes.{name}"] = np.frombuffer(json.dumps(value).encode(), np.uint8).copy()
        elif isinstance(value, dict) and all(isinstance(v, tuple) for v in value.values()):
            arrays.update(_pack_postings(value, name))
        else:
            raise TypeError(f"The store's {name!r} has no array form.")
    firms = [store.firms[slot] for slot in range(state.n_slots)]
    arrays.update(encode(firms, Firm, _FIRM))
    return arrays


def from_arrays(arrays: Mapping[str, np.ndarray], compact_ratio: float = 1.0) -> MatchIndex:
    """Return the index that `to_arrays` made these arrays of (they may be memory-mapped).

    Per-slot arrays are used as given: writes to spare room copy only the pages they touch
    when they are mapped copy-on-write (numpy's mmap_mode="c").
    """
    store = _Store.__new__(_Store)
    for key, value in arrays.items():
        kind, _, name = key.partition(".")
        if kind == "store":
            setattr(store, name, value)
        elif kind == "int":
            setattr(store, name, int(value))
        elif kind == "codes":
            setattr(store, name, json.loads(value.tobytes()))
        elif kind == "postings" and key.endswith(".keys"):
            name = name.removesuffix(".keys")
            setattr(store, name, _unpack_postings(arrays, name))
    n_slots, n_extra, n_live = arrays["state.counts"].tolist()
    columns = {key: value for key, value in arrays.items() if key.startswith(_FIRM)}
    store.firms = _LoadedFirms(Rows(columns, Firm, _FIRM, nested={"Office": Office}))
    live = np.array(arrays["state.live"], bool)
    ids = columns[_FIRM + "id"]
    store.slot_of = dict(zip(ids[live].tolist(), np.flatnonzero(live).tolist(), strict=True))
    index = MatchIndex(compact_ratio)
    index._lock = threading.RLock()
    index._scratch = _Scratch()
    index.state_ = _Snapshot(store, n_slots, n_extra, n_live, live,
                             np.array(arrays["state.proposable"], bool))
    return index
