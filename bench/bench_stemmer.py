"""Compare the Snowball stemmer (PyStemmer, what scoring/text.py uses) with the hand-written
suffix stripper it replaced, on the labelled pairs of tests/scoring/test_text.py.

    python bench/bench_stemmer.py [--words 100000] [--repeat 5]

Both get the same British-to-American spelling map first (scoring.text.americanize); Snowball
without it is printed as a third row, to show what the map is for. For each: how many of the
pairs that must meet (spelling variants, and every two words of an inflection group) share
their terms, how many distinct-word pairs keep different terms, and the misses. Then the time
per 100,000 words (best of --repeat), stem alone and spelling map + stem, over the words of
synthetic profiles from bench_scoring.py (seeded; a stream with repeats, as real text is).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterable
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import Stemmer  # noqa: E402

from bench.bench_scoring import make_world  # noqa: E402
from scoring.text import STOP_WORDS, americanize, stem  # noqa: E402
from tests.scoring.test_text import (  # noqa: E402
    DISTINCT_WORDS,
    INFLECTION_GROUPS,
    SPELLING_VARIANTS,
)

_VOWEL_RE = re.compile("[aeiouy]")
_WORD_RE = re.compile(r"[^\W_]+")


def hand_stem(word: str) -> str:
    """The hand-written stemmer scoring/text.py used before Snowball, kept as the baseline."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            root = word[: -len(suffix)]
            # "speed" and "agreed" keep their e; "string" has no vowel left to be a stem.
            keeps_e = suffix == "ed" and root[-1] == "e"
            if len(root) >= 3 and _VOWEL_RE.search(root) and not keeps_e:
                word = root
                if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                    word = word[:-1]  # cutting -> cutt -> cut
            break
    if word.endswith("ization"):
        word = word[:-5]
    elif word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if word.endswith("ll"):
        word = word[:-1]  # drilling -> drill -> dril, like drill
    return word


_snowball = Stemmer.Stemmer("english", 0)
STEMMERS: dict[str, tuple[Callable[[str], str], bool]] = {
    # name: (stem, whether the spelling map runs first)
    "hand-written + spelling map": (hand_stem, True),
    "Snowball + spelling map (now)": (stem, True),
    "Snowball alone": (_snowball.stemWord, False),
}


def meet_pairs() -> list[tuple[str, str]]:
    """Return every labelled pair that must share its terms."""
    pairs = list(SPELLING_VARIANTS)
    for group in INFLECTION_GROUPS:
        pairs.extend(combinations(group, 2))
    return pairs


def terms(text: str, stem_word: Callable[[str], str], fold: bool) -> tuple[str, ...]:
    """Return the stems of a text's words, spelling map first if `fold`."""
    return tuple(stem_word(americanize(word) if fold else word) for word in text.split())


def judge(stem_word: Callable[[str], str], fold: bool) -> tuple[list, list]:
    """Return the missed must-meet pairs and the missed must-stay-apart pairs."""
    missed_meet = [pair for pair in meet_pairs()
                   if terms(pair[0], stem_word, fold) != terms(pair[1], stem_word, fold)]
    missed_apart = [pair for pair in DISTINCT_WORDS
                    if terms(pair[0], stem_word, fold) == terms(pair[1], stem_word, fold)]
    return missed_meet, missed_apart


def word_stream(count: int) -> list[str]:
    """Return `count` words of synthetic profiles, as the analyzer would see them."""
    words: list[str] = []
    n_firms = 1000
    while len(words) < count:
        firms, _needs = make_world(n_firms, 1, seed=7)
        words = [word for firm in firms
                 for word in _WORD_RE.findall((" ".join(firm.skills) + " "
                                               + firm.description).casefold())
                 if len(word) >= 2 and word not in STOP_WORDS]
        n_firms *= 2
    return words[:count]


def best_ms(run: Callable[[], object], repeat: int) -> float:
    """Return the best wall time of `repeat` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def timings(words: Iterable[str], repeat: int) -> dict[str, tuple[float, float]]:
    """Return, per stemmer, (stem alone, spelling map + stem) in ms for the words."""
    words = list(words)
    folded = [americanize(word) for word in words]
    found = {}
    for name, (stem_word, fold) in STEMMERS.items():
        source = folded if fold else words
        alone = best_ms(lambda stem_word=stem_word, source=source: [stem_word(w) for w in source],
                        repeat)
        whole = best_ms(lambda stem_word=stem_word, fold=fold: [
            stem_word(americanize(w) if fold else w) for w in words], repeat)
        found[name] = (alone, whole)
    return found


def main() -> None:
    """Print the accuracy table, the misses and the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    n_meet, n_apart = len(meet_pairs()), len(DISTINCT_WORDS)
    print(f"labelled pairs: {n_meet} must meet, {n_apart} must stay apart "
          "(tests/scoring/test_text.py)\n")
    print(f"{'stemmer':32} {'meet':>9} {'apart':>9} {'total':>9}")
    misses = {}
    for name, (stem_word, fold) in STEMMERS.items():
        missed_meet, missed_apart = judge(stem_word, fold)
        misses[name] = (missed_meet, missed_apart)
        right_meet, right_apart = n_meet - len(missed_meet), n_apart - len(missed_apart)
        print(f"{name:32} {right_meet:>4}/{n_meet:<4} {right_apart:>4}/{n_apart:<4} "
              f"{right_meet + right_apart:>4}/{n_meet + n_apart}")
    for name, (missed_meet, missed_apart) in misses.items():
        if name == "Snowball alone":
            continue  # its misses are the spelling variants the map is there for
        print(f"\n{name} misses")
        print("  should meet:", ", ".join("/".join(pair) for pair in missed_meet) or "none")
        print("  should stay apart:", ", ".join("/".join(pair) for pair in missed_apart) or "none")

    words = word_stream(args.words)
    scale = 100_000 / len(words)
    print(f"\ntime per 100,000 words ({len(words):,} words, {len(set(words)):,} distinct; "
          f"best of {args.repeat})")
    print(f"{'stemmer':32} {'stem':>10} {'map+stem':>10}")
    for name, (alone, whole) in timings(words, args.repeat).items():
        print(f"{name:32} {alone * scale:>7.1f} ms {whole * scale:>7.1f} ms")


if __name__ == "__main__":
    main()
