"""Text side of skill fit: one analyzer for profiles and needs, TF-IDF need weights, coverage.

Terms: NFKC + casefold, words of letters and digits, function words dropped, British spellings
mapped to American ones (aluminium -> aluminum, anodising -> anodizing, colour -> color,
centre -> center, moulding -> molding), then the Snowball English stemmer (PyStemmer:
anodizing, anodized, anodization -> anod; manufacturer, manufacturing -> manufactur), so both
spellings and inflections of a word meet on one term. Snowball does not fold spellings itself
(anodising -> anodis), hence the mapping first. Runs of Chinese, Japanese or Korean characters
become overlapping character pairs.

Snowball replaced a hand-written suffix stripper, measured on the labelled pairs of
tests/scoring/test_text.py (bench/bench_stemmer.py): pairs that must meet 182 of 189 right
against 161, distinct words that must stay apart 31 of 40 against 28; stemming 0.6 us a word
against 1.2 us (the spelling map, shared, costs about 9 us a word; _token_terms caches both).

Similarity: the share of the need that the profile covers. The need vector is (1 + ln tf) *
idf^2 with scikit-learn's smooth idf = ln((1 + n) / (1 + df)) + 1 (squared, as a TF-IDF dot
product with the idf on both sides weighs a term: the words that tell firms apart, "tax",
"anodizing", count far more than "small" or "parts"), L1 normalised; a firm's profile vector
is 1 for every term it contains. Their dot product, in [0, 1], is the
idf-weighted share of the need's terms found in the profile: 1 when the profile has them all,
whatever else it says. The profile side is not divided by its length, as a cosine would (SPEC
section 8, no length bias): under a cosine a profile of one word had all its weight on that
word and outranked a full profile with the same tags; here adding words to a profile never
lowers its similarity to any need. The idf is applied on the need side only (as Lucene's
classic similarity does): a firm's vector then depends on its own profile alone, which lets an
index add or replace one firm without touching the others and still give exactly what a fresh
build would. `sklearn.feature_extraction.text.TfidfVectorizer(analyzer=analyze,
sublinear_tf=True, norm=None)` times its idf_ once more, L1 normalised, gives the same need
vector and `CountVectorizer(binary=True)` the profile's; the tests check they agree. In
corpora of over COMMON_TERM_MIN_PROFILES profiles, need terms found in more than
COMMON_TERM_SHARE of them are left out of the need vector.

Skill tags meet by their terms too (`skill_key`): anodising, anodizing, Anodized and
"anodization" are one skill for exact-tag coverage; and a tag covers every skill whose name is
a run of its whole words (`skill_runs`: "hard anodising" covers anodizing).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import Stemmer

from scoring.model import Firm, Need

# Function words only: a broader list (scikit-learn's) also drops "part", "mill", "fire" and
# "system", which mean something in a firm's profile.
_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    either etc few for from further had has have having he her here hers him his how i if in
    into is it its itself just may me might more most much must my no nor not now of off on
    once only or other our ours out over own per same she should so some such than that the
    their theirs them then there these they this those through to too under until up upon us
    very via was we were what when where which while who whom why will with within without
    would yet you your yours
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD_RE = re.compile(r"[^\W_]+")
_HAS_CJK_RE = re.compile(f"[{_CJK}]")
_SCRIPT_RUN_RE = re.compile(f"[{_CJK}]+|[^{_CJK}]+")

# Whole words whose British form is not a prefix rule's business.
_WORD_SPELLINGS = {
    "programme": "program",
    "programmes": "programs",
    "manoeuvre": "maneuver",
    "manoeuvres": "maneuvers",
    "aeroplane": "airplane",
    "aeroplanes": "airplanes",
    "fulfil": "fulfill",
    "fulfils": "fulfills",
    "practise": "practice",
    "practised": "practiced",
    "practising": "practicing",
}
# British prefix -> American prefix; none of the American forms starts with its British one.
_PREFIX_SPELLINGS = (
    ("aluminium", "aluminum"),
    ("sulph", "sulf"),
    ("mould", "mold"),
    ("grey", "gray"),
    ("tyre", "tire"),
    ("licence", "license"),
    ("defence", "defense"),
    ("jewellery", "jewelry"),
    ("plough", "plow"),
    ("storey", "story"),
    ("draught", "draft"),
    ("kerb", "curb"),
    ("cheque", "check"),
)
# Suffix rules, each applied at most once; the same rule runs on need and profile, so a rule
# that also rewrites an American word ("precise" -> "precize") is harmless.
_SUFFIX_SPELLINGS = (
    (
        re.compile(r"^(\w{2,})our(s|ed|ing|er|ers|ful|ite|ites|able|ably|less|ist|ists)?$"),
        r"\1or\2",
    ),
    (re.compile(r"^(\w{3,})is(e|es|ed|ing|er|ers|ation|ations|able)$"), r"\1iz\2"),
    (re.compile(r"^(\w{2,})ys(e|es|ed|ing|er|ers)$"), r"\1yz\2"),
    (re.compile(r"^(\w{2,})([tb])re(s)?$"), r"\1\2er\3"),
    (re.compile(r"^(\w{3,})ogue(s)?$"), r"\1og\2"),
)


def americanize(word: str) -> str:
    """Return the American spelling of a lower-case British word (unknown words unchanged)."""
    if word in _WORD_SPELLINGS:
        return _WORD_SPELLINGS[word]
    for british, american in _PREFIX_SPELLINGS:
        if word.startswith(british):
            word = american + word[len(british) :]
            break
    for pattern, replacement in _SUFFIX_SPELLINGS:
        word, count = pattern.subn(replacement, word)
        if count:
            break
    return word


# A PyStemmer object keeps state while it stems a word, so each thread gets its own (request
# threads and the index warm-up thread analyze text at once).
_stemmers = threading.local()


def stem(word: str) -> str:
    """Return the Snowball English stem of a lower-case word."""
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        # No cache of its own (size 0): _token_terms already caches whole tokens in front.
        stemmer = _stemmers.english = Stemmer.Stemmer("english", 0)
    return stemmer.stemWord(word)


def _normalize_word(word: str) -> str:
    if len(word) < 2 or word in STOP_WORDS:
        return ""
    return stem(americanize(word))


def _cjk_pairs(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


@lru_cache(maxsize=1 << 16)
def _token_terms(token: str) -> tuple[str, ...]:
    if _HAS_CJK_RE.search(token) is None:
        term = _normalize_word(token)
        return (term,) if term else ()
    terms: list[str] = []
    for run in _SCRIPT_RUN_RE.findall(token):
        if _HAS_CJK_RE.match(run):
            terms.extend(_cjk_pairs(run))
        elif term := _normalize_word(run):
            terms.append(term)
    return tuple(terms)


def analyze(text: str) -> list[str]:
    """Return the terms of a text, in order, as profiles and needs are indexed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return list(chain.from_iterable(map(_token_terms, _WORD_RE.findall(folded))))


def profile_text(firm: Firm) -> str:
    """Return the text a firm is matched on: its skills and its description."""
    return " ".join(firm.skills) + " " + firm.description


def need_text(need: Need) -> str:
    """Return the text a need is matched on: its skills and its description."""
    return " ".join(need.skills) + " " + need.description


@lru_cache(maxsize=1 << 12)
def _skill_terms(slug: str) -> tuple[str, ...]:
    return tuple(analyze(slug))


@lru_cache(maxsize=1 << 14)
def skill_key(slug: str) -> str:
    """Return the key two spellings of one skill share: "anodising" and "anodized" -> "anod".

    The slug's terms (British spelling folded, Snowball stem) in order; a slug with no terms
    (only function words or single letters: "it", "c") is its own key.
    """
    return " ".join(_skill_terms(slug)) or slug


@lru_cache(maxsize=1 << 14)
def skill_runs(slug: str) -> tuple[str, ...]:
    """Return the keys of the skills a tag covers: its own key and the key of every run of
    whole words in it ("hard anodising" covers "hard anod", "hard" and "anod").

    A firm that does hard anodizing does anodizing, and one that makes "plastic injection
    moulded parts" does injection moulding: its tag names the skill, with more words. Only
    whole words count ("anodizing" does not cover "an"), in their order.
    """
    return key_runs(skill_key(slug))


@lru_cache(maxsize=1 << 14)
def key_runs(key: str) -> tuple[str, ...]:
    """Return the keys of the skills a tag of this key covers (see skill_runs): the key and
    every run of its terms. A key without terms is a slug, which has no spaces: itself."""
    terms = key.split(" ")
    return tuple(dict.fromkeys(" ".join(terms[start:end])
                               for start in range(len(terms))
                               for end in range(start + 1, len(terms) + 1)))


# The longest skill name, in terms, that a need's words are searched for.
MAX_SKILL_TERMS = 6


def named_skills(
    description: str, known: Callable[[str], bool]
) -> tuple[tuple[str, ...], ...]:
    """Return the skills a need's words name: runs of its terms that are the whole key of a
    skill some firm has (`known`), each mention with the keys of its overlapping runs.

    "aluminium anodising for bicycle parts" names anodizing (its key "anod" is a tag's), not
    bicycle components (no firm's tag is "bicycle"); "TIG welding" is one mention whose keys
    "tig weld" and "weld" each cover it. A client who names a trade in a sentence asks for it
    as surely as one who picks its tag.
    """
    terms = analyze(description)
    runs = [(start, end, key)
            for start in range(len(terms))
            for end in range(start + 1, min(len(terms), start + MAX_SKILL_TERMS) + 1)
            if known(key := " ".join(terms[start:end]))]
    mentions: list[list[str]] = []
    reach = -1
    for start, end, key in runs:  # in order of start: overlapping runs are one mention
        if start < reach:
            mentions[-1].append(key)
            reach = max(reach, end)
        else:
            mentions.append([key])
            reach = end
    return tuple(tuple(dict.fromkeys(keys)) for keys in mentions)


def profile_terms(firm: Firm) -> list[str]:
    """Return the terms of a firm's profile: those of its skills, then its description's."""
    # the same terms as analyze(profile_text(firm)); skill slugs repeat across firms, so cache
    terms = list(chain.from_iterable(map(_skill_terms, firm.skills)))
    terms += analyze(firm.description)
    return terms


def profile_vector(firm: Firm) -> dict[str, float]:
    """Return the firm's profile vector: 1 for every term of its skills and description."""
    return dict.fromkeys(profile_terms(firm), 1.0)


_SUBLINEAR = [0.0] + [1.0 + math.log(count) for count in range(1, 64)]


def _sublinear(count: int) -> float:
    """Return 1 + ln(count), the sublinear term frequency."""
    return _SUBLINEAR[count] if count < len(_SUBLINEAR) else 1.0 + math.log(count)


def need_terms(need: Need) -> Counter[str]:
    """Return the need's term counts."""
    return Counter(analyze(need_text(need)))


# A need term found in more than this share of the profiles is left out of the need's vector
# (as scikit-learn's max_df leaves it out of a vocabulary): its idf is near 1, so it barely
# moves a ranking, yet its postings are the longest to add up. Corpora of up to
# COMMON_TERM_MIN_PROFILES profiles keep every term; a need whose terms are all common keeps
# its rarest one.
COMMON_TERM_SHARE = 0.05
COMMON_TERM_MIN_PROFILES = 1000


def common_term_threshold(n_documents: int) -> float:
    """Return the document frequency above which a need term counts as common."""
    return max(COMMON_TERM_SHARE * n_documents, COMMON_TERM_MIN_PROFILES)


@dataclass(frozen=True, slots=True)
class TextQuery:
    """The need's TF-IDF vector over the corpus it is matched against."""

    weights: dict[str, float]

    @classmethod
    def build(
        cls, counts: Mapping[str, int], document_frequency: Mapping[str, int], n_documents: int
    ) -> TextQuery:
        """Weigh the need's term counts by the corpus's document frequencies.

        Terms no profile has are left out, as a fitted vocabulary would; so are common terms
        (see COMMON_TERM_SHARE) unless all the need's terms are common.
        """
        known = sorted((df, term) for term in counts if (df := document_frequency.get(term, 0)) > 0)
        threshold = common_term_threshold(n_documents)
        kept = {term: df for df, term in known if df <= threshold}
        if not kept:
            kept = {term: df for df, term in known[:1]}
        raw: dict[str, float] = {}
        for term in sorted(kept):
            # (1 + ln tf) * idf^2, scikit-learn's smooth idf ln((1 + n) / (1 + df)) + 1
            idf = math.log((1 + n_documents) / (1 + kept[term])) + 1.0
            raw[term] = _sublinear(counts[term]) * idf * idf
        # L1: the weights sum to 1, so a profile holding every term scores 1
        norm = math.fsum(raw.values())
        return cls({term: value / norm for term, value in raw.items()} if norm > 0 else {})

    def similarity(self, profile: Mapping[str, float]) -> float:
        """Return the share in [0, 1] of the need's weight that a profile vector holds."""
        # A plain left-to-right sum in the need's (sorted) term order: MatchIndex adds the same
        # float64 products in the same order, so both get the same bits.
        total = 0.0
        for term, weight in self.weights.items():
            total += weight * profile.get(term, 0.0)
        return clamp_similarity(total)


def clamp_similarity(total: float) -> float:
    """Return a similarity sum clamped to [0, 1]; the need's weights sum to 1, so only rounding."""
    return min(1.0, max(0.0, total))


def document_frequency(profiles: Iterable[Mapping[str, float]]) -> Counter[str]:
    """Return in how many of the profiles each term occurs."""
    return Counter(term for profile in profiles for term in profile)
