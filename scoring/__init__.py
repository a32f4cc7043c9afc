"""Pure matching of a client's need to partner firms: frozen dataclasses in, ranked results out.

Every component is in [0, 1] and the score is their weighted sum, the weights normalised to 1
(DEFAULT_WEIGHTS: skill 0.6, location 0.25, performance 0.1, capacity 0.05):

- skill = 0.75 * (required skills the firm has / required skills) + 0.25 * text similarity,
  or the text similarity alone when the need names no skill. Text similarity is the cosine
  between the need's TF-IDF vector and the firm's profile (skills + description), on terms
  that map British to American spelling and strip common suffixes; in large corpora, need
  terms found in over 5% of the profiles are left out (scoring.text).
- location = 1 / (1 + d / 50 km), d the geodesic distance to the firm's nearest office; 0 when
  that office's service radius does not reach the client.
- performance = (won + 1) / (won + failed + 2): 0.5 for a newcomer, never 0 or 1.
- capacity = 1 - open_referrals / capacity, 1 when unlimited.

Inactive firms, firms at capacity, firms without an office, excluded ids, kinds not asked for
and firms whose nearest office is beyond max_distance_km are never proposed. Ranking is by
score descending, then organization id ascending.

With DEFAULT_WEIGHTS a firm with every required skill beats one with none even at the
client's door: 0.6 * (0.75 - 0.25) > 0.25. A heavier location weight can break that.

`rank_naive` is the plain reference; `MatchIndex` returns the same lists in milliseconds and
takes updates one firm at a time.
"""

from typing import TYPE_CHECKING

from scoring.components import DEFAULT_SCALE_KM, EARTH_RADIUS_KM
from scoring.model import (
    DEFAULT_WEIGHTS,
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
    "DEFAULT_SCALE_KM",
    "DEFAULT_WEIGHTS",
    "EARTH_RADIUS_KM",
    "Candidate",
    "Firm",
    "MatchIndex",
    "Need",
    "Office",
    "Weights",
    "rank_naive",
    "slugify_skill",
]
