"""The text side of skill fit: analyzer, TF-IDF need weights, the share a profile covers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from scoring import Firm, Need
from scoring.text import (
    COMMON_TERM_MIN_PROFILES,
    TextQuery,
    analyze,
    document_frequency,
    need_terms,
    need_text,
    profile_text,
    profile_vector,
    skill_key,
    skill_runs,
)

# The labelled set the stemmer is judged on; bench/bench_stemmer.py counts, on these pairs, how
# many the Snowball stemmer and the hand-written one it replaced get right. Spelling variants
# and inflection groups must meet on the same terms; distinct words must not. The first rows of
# the first two lists are the original tests; the rest add the domain's derived forms and more
# British spellings, and for distinct words the over-stemming traps of both stemmers (final e
# and double l stripped; Porter's experi-, custom-, fabric- families) and neutral look-alikes.
SPELLING_VARIANTS = [
    ("aluminium anodising", "aluminum anodizing"),
    ("anodised", "anodized"),
    ("moulding", "molding"),
    ("colour coloured", "color colored"),
    ("centre centres", "center centers"),
    ("galvanisation", "galvanization"),
    ("analyse", "analyze"),
    ("fibre metre", "fiber meter"),
    ("catalogue", "catalog"),
    ("grey", "gray"),
    ("sulphuric", "sulfuric"),
    ("programme", "program"),
    ("galvanised", "galvanized"),
    ("customised", "customized"),
    ("optimisation", "optimization"),
    ("specialised", "specialized"),
    ("organisation", "organization"),
    ("labour", "labor"),
    ("modelling", "modeling"),
    ("licence", "license"),
    ("tyre", "tire"),
    ("jewellery", "jewelry"),
    ("sulphate", "sulfate"),
    ("defence", "defense"),
    ("litre", "liter"),
    ("dialogue", "dialog"),
    ("analysing", "analyzing"),
    ("ageing", "aging"),
    ("plough", "plow"),
    ("aeroplane", "airplane"),
    ("cheque", "check"),
    ("storey", "story"),
]
INFLECTION_GROUPS = [
    ("anodize", "anodized", "anodizing", "anodizes", "anodization"),
    ("machine", "machines", "machined", "machining"),
    ("cut", "cutting", "cuts"),
    ("drill", "drills", "drilling"),
    ("coating", "coatings", "coated", "coat"),
    ("process", "processes", "processing"),
    ("manufacture", "manufacturer", "manufacturing", "manufactured"),
    ("assemble", "assembled", "assembly", "assemblies"),
    ("fabricate", "fabricated", "fabrication"),
    ("inspect", "inspected", "inspection"),
    ("certify", "certified", "certification"),
    ("automate", "automated", "automation"),
    ("measure", "measured", "measuring", "measurement"),
    ("engineer", "engineers", "engineering", "engineered"),
    ("design", "designs", "designed", "designing"),
    ("weld", "welds", "welded", "welding"),
    ("plate", "plated", "plating"),
    ("wire", "wires", "wiring"),
    ("mill", "mills", "milled", "milling"),
    ("batch", "batches"),
    ("gas", "gases"),
    ("dye", "dyes", "dyed"),
    ("quality", "qualities"),
    ("finish", "finished", "finishes", "finishing"),
    ("harden", "hardened", "hardening"),
    ("press", "presses", "pressing"),
    ("polish", "polished", "polishing"),
    ("tool", "tools", "tooling"),
    ("forge", "forged", "forging"),
    ("cast", "casts", "casting", "castings"),
    ("robot", "robots", "robotic", "robotics"),
    ("electric", "electrical"),
    ("hydraulic", "hydraulics"),
    ("paint", "painted", "painting"),
    ("print", "printed", "printing"),
    ("bend", "bends", "bending"),
    ("stamp", "stamped", "stamping"),
    ("grind", "grinding"),
    ("turn", "turned", "turning"),
    ("extrude", "extruded", "extrusion"),
    ("treat", "treated", "treating"),
    ("heat", "heated", "heating"),
]
DISTINCT_WORDS = [
    ("fire", "fir"),
    ("mill", "mile"),
    ("role", "roll"),
    ("tile", "till"),
    ("tube", "tub"),
    ("tape", "tap"),
    ("plane", "plan"),
    ("rode", "rod"),
    ("tine", "tin"),
    ("news", "new"),
    ("universe", "university"),
    ("experience", "experiment"),
    ("organ", "organization"),
    ("organic", "organization"),
    ("customer", "customs"),
    ("custom", "customer"),
    ("anode", "anodizing"),
    ("fabric", "fabrication"),
    ("animal", "animate"),
    ("ration", "rational"),
    ("paste", "past"),
    ("author", "authority"),
    ("cast", "caste"),
    ("press", "pressure"),
    ("part", "party"),
    ("form", "formal"),
    ("general", "generator"),
    ("die", "dye"),
    ("steel", "steal"),
    ("weld", "wed"),
    ("bolt", "bold"),
    ("polish", "police"),
    ("policy", "police"),
    ("marine", "marina"),
    ("iron", "irony"),
    ("hose", "host"),
    ("communication", "community"),
    ("metal", "mettle"),
    ("cable", "cab"),
    ("plastic", "plaster"),
]
# What Snowball gets wrong in the set above (7 of 189 pairs that must meet, 9 of 40 that must
# not): strict xfails, so that a change fixing one of them shows.
KNOWN_MISSES = {
    ("certify", "certified", "certification"): "certif- vs certifi-",
    ("gas", "gases"): "gases -> gase",
    ("dye", "dyes", "dyed"): "dyed -> dy",
    ("extrude", "extruded", "extrusion"): "extrud- vs extrus-",
    ("experience", "experiment"): "both experi",
    ("customer", "customs"): "both custom",
    ("custom", "customer"): "both custom",
    ("anode", "anodizing"): "both anod",
    ("fabric", "fabrication"): "both fabric",
    ("animal", "animate"): "both anim",
    ("ration", "rational"): "both ration",
    ("author", "authority"): "both author",
    ("cast", "caste"): "both cast",
}


def labelled(cases):
    """Parametrize over `cases`, a known miss marked as a strict xfail."""
    return [pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case]))
            if case in KNOWN_MISSES else case for case in cases]


@pytest.mark.parametrize(("british", "american"), SPELLING_VARIANTS)
def test_british_and_american_spellings_share_terms(british: str, american: str) -> None:
    assert analyze(british) == analyze(american)


@pytest.mark.parametrize("words", labelled(INFLECTION_GROUPS))
def test_inflections_share_a_term(words: tuple[str, ...]) -> None:
    assert len({tuple(analyze(word)) for word in words}) == 1


@pytest.mark.parametrize("words", labelled(DISTINCT_WORDS))
def test_distinct_words_keep_distinct_terms(words: tuple[str, str]) -> None:
    first, second = words
    assert analyze(first) != analyze(second)


def test_function_words_are_dropped_and_domain_words_kept() -> None:
    assert analyze("We offer the finishing of parts for the mill and fire systems") == [
        "offer",
        "finish",
        "part",
        "mill",
        "fire",
        "system",
    ]


def test_chinese_text_is_split_into_character_pairs() -> None:
    assert analyze("陽極處理") == ["陽極", "極處", "處理"]
    assert set(analyze("陽極處理")) <= set(analyze("提供鋁合金陽極處理服務"))


def test_similarity_is_the_idf_weighted_share_of_the_need_a_profile_holds() -> None:
    firms = [
        Firm(1, "A", "partner", ("anodizing",), "surface finishing of aluminum parts", ()),
        Firm(2, "B", "partner", ("welding",), "steel welding and steel assembly", ()),
        Firm(3, "C", "partner", ("cnc-machining",), "precision machining of aluminium", ()),
        Firm(4, "D", "partner", (), "timber joinery", ()),
    ]
    need = Need(0.0, 0.0, skills=("anodizing",), description="aluminium parts, anodised")
    corpus = [profile_text(firm) for firm in firms]
    # the need side: sublinear tf * smooth idf, times the idf again, L1-normalised
    need_side = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, norm=None).fit(corpus)
    need_vector = need_side.transform([need_text(need)]).toarray().ravel() * need_side.idf_
    need_vector /= need_vector.sum()
    # the profile side: 1 for each term the profile holds, whatever its length
    profile_side = CountVectorizer(analyzer=analyze, binary=True,
                                   vocabulary=need_side.vocabulary_)
    expected = profile_side.transform(corpus).toarray() @ need_vector

    profiles = [profile_vector(firm) for firm in firms]
    query = TextQuery.build(need_terms(need), document_frequency(profiles), len(firms))
    actual = [query.similarity(profile) for profile in profiles]
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)
    assert actual[0] == pytest.approx(1.0)
    assert actual[0] > actual[2] > actual[1] == actual[3] == 0.0


def test_common_terms_are_left_out_of_large_corpora() -> None:
    n = 100 * COMMON_TERM_MIN_PROFILES
    counts = {"aluminum": 1, "anodiz": 1}
    query = TextQuery.build(counts, {"aluminum": n // 2, "anodiz": n // 100}, n)
    assert list(query.weights) == ["anodiz"]
    # a need made only of common terms keeps its rarest
    query = TextQuery.build(counts, {"aluminum": n // 2, "anodiz": n // 3}, n)
    assert list(query.weights) == ["anodiz"]
    # small corpora keep every term
    query = TextQuery.build(counts, {"aluminum": 500, "anodiz": 900}, 1000)
    assert list(query.weights) == ["aluminum", "anodiz"]


def test_profile_vector_holds_each_term_once_and_is_empty_for_empty_text() -> None:
    vector = profile_vector(Firm(1, "A", "partner", ("welding",), "welding of steel", ()))
    assert vector == {"weld": 1.0, "steel": 1.0}
    assert profile_vector(Firm(2, "B", "partner", (), "the and of", ())) == {}


@pytest.mark.parametrize(
    "variants",
    [
        ("anodizing", "anodising", "anodized", "anodization"),
        ("translation", "translations"),
        ("injection-molding", "injection-moulding"),
        ("colour-matching", "color-matching"),
    ],
)
def test_spellings_of_a_skill_share_one_key(variants: tuple[str, ...]) -> None:
    assert len({skill_key(slug) for slug in variants}) == 1


def test_skills_with_no_terms_are_their_own_key_and_distinct_skills_stay_apart() -> None:
    assert skill_key("it") == "it"
    assert skill_key("c") == "c"
    assert len({skill_key(s) for s in ("welding", "painting", "cnc-machining", "machining")}) == 4


def test_a_tag_covers_the_skills_named_by_runs_of_its_whole_words() -> None:
    assert set(skill_runs("hard-anodising")) == {"hard anod", "hard", "anod"}
    assert skill_key("anodizing") in skill_runs("hard-anodising")
    assert skill_key("injection-moulding") in skill_runs("plastic-injection-moulded-parts")
    # whole words in their order only
    assert skill_key("moulded-injection") not in skill_runs("plastic-injection-moulded-parts")
    assert skill_key("plastic-parts") not in skill_runs("plastic-injection-moulded-parts")
