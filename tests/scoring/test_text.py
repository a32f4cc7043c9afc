"""The text side of skill fit: analyzer, TF-IDF weights and cosine."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

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
)


@pytest.mark.parametrize(
    ("british", "american"),
    [
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
    ],
)
def test_british_and_american_spellings_share_terms(british: str, american: str) -> None:
    assert analyze(british) == analyze(american)


@pytest.mark.parametrize(
    "words",
    [
        ("anodize", "anodized", "anodizing", "anodizes", "anodization"),
        ("machine", "machines", "machined", "machining"),
        ("cut", "cutting", "cuts"),
        ("drill", "drills", "drilling"),
        ("coating", "coatings", "coated", "coat"),
        ("process", "processes", "processing"),
    ],
)
def test_inflections_share_a_term(words: tuple[str, ...]) -> None:
    assert len({tuple(analyze(word)) for word in words}) == 1


def test_function_words_are_dropped_and_domain_words_kept() -> None:
    assert analyze("We offer the finishing of parts for the mill and fire systems") == [
        "offer",
        "finish",
        "part",
        "mil",
        "fir",
        "system",
    ]


def test_chinese_text_is_split_into_character_pairs() -> None:
    assert analyze("陽極處理") == ["陽極", "極處", "處理"]
    assert set(analyze("陽極處理")) <= set(analyze("提供鋁合金陽極處理服務"))


def test_similarity_is_the_cosine_of_scikit_learn_tfidf_vectors() -> None:
    firms = [
        Firm(1, "A", "partner", ("anodizing",), "surface finishing of aluminum parts", ()),
        Firm(2, "B", "partner", ("welding",), "steel welding and steel assembly", ()),
        Firm(3, "C", "partner", ("cnc-machining",), "precision machining of aluminium", ()),
        Firm(4, "D", "partner", (), "timber joinery", ()),
    ]
    need = Need(0.0, 0.0, skills=("anodizing",), description="aluminium parts, anodised")
    corpus = [profile_text(firm) for firm in firms]
    # the need side: sublinear tf * smooth idf, L2-normalised, over the corpus vocabulary
    need_side = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit(corpus)
    # the profile side: sublinear tf, L2-normalised, no idf
    profile_side = TfidfVectorizer(
        analyzer=analyze, sublinear_tf=True, use_idf=False, vocabulary=need_side.vocabulary_
    ).fit(corpus)
    expected = (profile_side.transform(corpus) @ need_side.transform([need_text(need)]).T).toarray()

    profiles = [profile_vector(firm) for firm in firms]
    query = TextQuery.build(need_terms(need), document_frequency(profiles), len(firms))
    actual = [query.similarity(profile) for profile in profiles]
    np.testing.assert_allclose(actual, expected.ravel(), rtol=1e-12, atol=1e-12)
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


def test_profile_vector_is_unit_length_and_empty_for_empty_text() -> None:
    vector = profile_vector(Firm(1, "A", "partner", ("welding",), "welding of steel", ()))
    assert sum(value * value for value in vector.values()) == pytest.approx(1.0)
    assert profile_vector(Firm(2, "B", "partner", (), "the and of", ())) == {}
