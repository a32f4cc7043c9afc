"""Plain data in and out of matching: frozen dataclasses validated on construction.

Coordinates are degrees in (latitude, longitude) order everywhere; distances are kilometres.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

MAX_LIMIT = 100
# Share of skill fit that comes from exact coverage of the required skills (scoring.components).
SKILL_COVERAGE_SHARE = 0.75
# Relevance floor: a firm whose skill fit is below it is not proposed (SPEC section 8). A firm
# with every required skill has a skill fit of at least SKILL_COVERAGE_SHARE, so no floor up
# to that can drop it; 0 turns the floor off.
DEFAULT_MIN_SKILL_FIT = 0.15
MAX_MIN_SKILL_FIT = SKILL_COVERAGE_SHARE


def slugify_skill(name: str) -> str:
    """Return the canonical slug of a skill name: "CNC Machining" -> "cnc-machining"."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    # Letters, digits and combining marks (Unicode categories L, N, M) survive, so words in
    # any script keep their characters; every other run of characters becomes one hyphen.
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text)
    slug = "-".join(kept.split())
    if not slug:
        raise ValueError(f"Skill name {name!r} has no letters or digits to make a slug from.")
    return slug


def _is_slug(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return slugify_skill(value) == value
    except ValueError:
        return False


def _check_coordinates(owner: str, latitude: float, longitude: float) -> None:
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise ValueError(f"{owner} latitude must be between -90 and 90 degrees, got {latitude!r}.")
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise ValueError(
            f"{owner} longitude must be between -180 and 180 degrees, got {longitude!r}."
        )


def _check_count(owner: str, label: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner} {label} must be a whole number of at least 0, got {value!r}.")


@dataclass(frozen=True, slots=True)
class Office:
    """One office of a firm and the radius around it that the firm serves."""

    id: int
    latitude: float
    longitude: float
    service_radius_km: float = 100.0

    def __post_init__(self) -> None:
        _check_coordinates(f"Office {self.id}", self.latitude, self.longitude)
        radius = self.service_radius_km
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(
                f"Office {self.id} service_radius_km must be a positive number of kilometres, "
                f"got {radius!r}."
            )


@dataclass(frozen=True, slots=True)
class Firm:
    """A firm that can receive referrals, with its profile and referral record.

    `skills` are slugs (see `slugify_skill`); `won` counts converted referrals received and
    `failed` those that closed without a win; `capacity` None means unlimited; `group_id` is
    the firm's group (None: no group).
    """

    id: int
    name: str
    kind: str
    skills: tuple[str, ...]
    description: str
    offices: tuple[Office, ...]
    active: bool = True
    capacity: int | None = None
    open_referrals: int = 0
    won: int = 0
    failed: int = 0
    group_id: int | None = None

    def __post_init__(self) -> None:
        # Lists are accepted for convenience; the stored value is always a tuple.
        if not isinstance(self.skills, tuple):
            object.__setattr__(self, "skills", tuple(self.skills))
        if not isinstance(self.offices, tuple):
            object.__setattr__(self, "offices", tuple(self.offices))
        owner = f"Firm {self.id}"
        _check_count(owner, "open_referrals", self.open_referrals)
        _check_count(owner, "won", self.won)
        _check_count(owner, "failed", self.failed)
        if self.capacity is not None:
            _check_count(owner, "capacity", self.capacity)


@dataclass(frozen=True, slots=True)
class Need:
    """What a client needs and where: the input of one match."""

    latitude: float
    longitude: float
    skills: tuple[str, ...] = ()
    description: str = ""
    limit: int = 5
    max_distance_km: float | None = None
    kinds: frozenset[str] | None = None
    exclude_ids: frozenset[int] = field(default_factory=frozenset)
    min_skill_fit: float = DEFAULT_MIN_SKILL_FIT
    # The referrer's group (SPEC section 8): with prefer_group its firms get the group
    # component (1, else 0); with same_group_only no other firm is proposed.
    group_id: int | None = None
    prefer_group: bool = False
    same_group_only: bool = False
    # How the client named each skill, where an alias stood for it (scoring.aliases):
    # matched_skills and missing_skills name these. Empty: the skills themselves.
    skill_names: tuple[str, ...] = ()
    # Skills a need without skills names in its own words: each mention is the skill keys
    # (scoring.text.skill_key) of one run of its words. Set by the ranking from the skills
    # firms have (scoring.text.named_skills), not by callers.
    implied_skills: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.skills, tuple):
            object.__setattr__(self, "skills", tuple(self.skills))
        if self.kinds is not None and not isinstance(self.kinds, frozenset):
            object.__setattr__(self, "kinds", frozenset(self.kinds))
        if not isinstance(self.exclude_ids, frozenset):
            object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        _check_coordinates("Need", self.latitude, self.longitude)
        for skill in self.skills:
            if not _is_slug(skill):
                raise ValueError(
                    f"Need skill {skill!r} is not a slug; pass slugify_skill(name) instead."
                )
        if len(set(self.skills)) != len(self.skills):
            raise ValueError("Need skills must not repeat a slug.")
        if not isinstance(self.skill_names, tuple):
            object.__setattr__(self, "skill_names", tuple(self.skill_names))
        if self.skill_names and len(self.skill_names) != len(self.skills):
            raise ValueError("Need skill_names must name each skill once, in order, or be empty.")
        for name in self.skill_names:
            if not _is_slug(name):
                raise ValueError(f"Need skill name {name!r} is not a slug.")
        if not isinstance(self.description, str):
            raise ValueError("Need description must be a string.")
        if not self.skills and not self.description.strip():
            raise ValueError("A need must name at least one skill or have a description.")
        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(
                f"Need limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}."
            )
        distance = self.max_distance_km
        if distance is not None and not (distance > 0):  # also rejects NaN
            raise ValueError(
                f"Need max_distance_km must be a positive number of kilometres, got {distance!r}."
            )
        if self.kinds is not None and not self.kinds:
            raise ValueError("Need kinds must name at least one kind; pass None to allow any kind.")
        floor = self.min_skill_fit
        if not (0.0 <= floor <= MAX_MIN_SKILL_FIT):  # also rejects NaN
            raise ValueError(
                f"Need min_skill_fit must be from 0 to {MAX_MIN_SKILL_FIT}, got {floor!r}."
            )
        if (self.prefer_group or self.same_group_only) and self.group_id is None:
            raise ValueError("Need prefer_group and same_group_only need the referrer's "
                             "group_id.")


@dataclass(frozen=True, slots=True)
class Weights:
    """Relative weights of the score components; only their ratios matter.

    `group` weighs the group component, which a need has only with prefer_group: leave it 0
    otherwise, or it dilutes the others for nothing.
    """

    skill: float
    location: float
    performance: float
    capacity: float
    group: float = 0.0

    def __post_init__(self) -> None:
        for name in ("skill", "location", "performance", "capacity", "group"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"Weight {name} must be a finite number of at least 0, got {value!r}."
                )
        if self._total() <= 0:
            raise ValueError("At least one weight must be greater than 0.")

    def _total(self) -> float:
        return math.fsum((self.skill, self.location, self.performance, self.capacity,
                          self.group))

    def normalized(self) -> Weights:
        """Return the same weights scaled to sum to 1."""
        total = self._total()
        return Weights(
            skill=self.skill / total,
            location=self.location / total,
            performance=self.performance / total,
            capacity=self.capacity / total,
            group=self.group / total,
        )


# Skill first, then place: the skill weight must exceed the location weight enough that a firm
# with every required skill outranks one with none even when the latter sits at the client's
# door (see SKILL_COVERAGE_SHARE: 0.6 * (2 * 0.75 - 1) = 0.30 > 0.25).
# Performance and capacity only separate firms that are otherwise close.
DEFAULT_WEIGHTS = Weights(skill=0.6, location=0.25, performance=0.1, capacity=0.05)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked firm for a need, with the parts of its score."""

    rank: int
    organization_id: int
    name: str
    kind: str
    score: float
    breakdown: dict[str, float]
    distance_km: float
    office_id: int
    matched_skills: tuple[str, ...]
    missing_skills: tuple[str, ...]
