"""Pure matching of a client's need to partner firms: frozen dataclasses in, ranked results out.

Every component is in [0, 1] and the score is their weighted sum, the weights normalised to 1
(DEFAULT_WEIGHTS: skill 0.6, location 0.25, performance 0.1, capacity 0.05):

- skill = 0.75 * (required skills the firm has / required skills) + 0.25 * text similarity,
  or the text similarity alone when the need names no skill. A required skill counts when the
  firm has it in any spelling (anodising covers anodizing; plurals and inflections too) or
  has a tag that names it with more words ("hard anodising" covers anodizing, "plastic
  injection moulded parts" covers injection moulding: scoring.text.skill_runs); a skill
  named by one of head office's aliases is first replaced by the skill it stands for
  (`resolve_aliases`), and matched_skills / missing_skills still name it as the client did.
  A need without skills whose words name skills firms have ("aluminium anodising for bicycle
  parts" names anodizing: scoring.text.named_skills) gets 0.25 * (those the firm has / those
  named) + 0.75 * text similarity.
  Text similarity is the idf-weighted share of the need's terms (skills + description) found
  in the firm's profile, on terms that map British to American spelling and are stemmed; it
  is not divided by the profile's length, so a longer profile never scores lower (scoring.text).
- location = the best over the firm's offices of 1 / (1 + d / 50 km), d the geodesic distance
  to that office, 0 for an office whose own service radius does not reach the client.
- performance = (won + 1) / (won + failed + 2): 0.5 for a newcomer, never 0 or 1.
- capacity = 1 - open_referrals / capacity, 1 when unlimited.
- group = 1 for a firm of the referrer's group, else 0: only for a need with prefer_group,
  weighed by Weights.group (0 by default). A need with same_group_only proposes only the
  firms of the referrer's group.

Inactive firms, firms at capacity, firms without an office, excluded ids, kinds not asked for,
firms with no office within max_distance_km and firms whose skill fit is below the need's
min_skill_fit (the relevance floor, default 0.15) are never proposed. Ranking is by score
descending, then organization id ascending.

With DEFAULT_WEIGHTS a firm with every required skill beats one with none even at the
client's door: 0.6 * (0.75 - 0.25) > 0.25. A heavier location weight can break that.

`rank_naive` is the plain reference; `MatchIndex` returns the same lists in milliseconds and
takes updates one firm at a time.
"""

from typing import TYPE_CHECKING

from scoring.aliases import NO_ALIASES, SkillAliases, resolve_aliases
from scoring.components import DEFAULT_SCALE_KM, EARTH_RADIUS_KM
from scoring.model import (
    DEFAULT_MIN_SKILL_FIT,
    DEFAULT_WEIGHTS,
    MAX_MIN_SKILL_FIT,
    Candidate,
    Firm,
    Need,
    Office,
    Weights,
    slugify_skill,
)
from scoring.naive import rank_naive

if TYPE_CHECKING:
    from scoring.index import MatchIndex

# The index needs numpy and scikit-learn (most of a second to import): it is loaded on first
# use of scoring.MatchIndex, so that code needing only the model or slugs (the CLI's import of
# organizations, say) does not pay for it.
def __getattr__(name: str) -> object:
    if name == "MatchIndex":
        from scoring.index import MatchIndex

        globals()["MatchIndex"] = MatchIndex
        return MatchIndex
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "MatchIndex"})


__all__ = [
    "DEFAULT_MIN_SKILL_FIT",
    "DEFAULT_SCALE_KM",
    "DEFAULT_WEIGHTS",
    "MAX_MIN_SKILL_FIT",
    "NO_ALIASES",
    "EARTH_RADIUS_KM",
    "Candidate",
    "Firm",
    "MatchIndex",
    "Need",
    "Office",
    "SkillAliases",
    "Weights",
    "rank_naive",
    "resolve_aliases",
    "slugify_skill",
]
