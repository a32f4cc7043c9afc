"""A need without skills that names a trade in its own words asks for that trade (issue 12)."""

from __future__ import annotations

from scoring import Need
from scoring.text import named_skills
from tests.scoring.conftest import CLIENT


def test_runs_of_the_needs_words_that_are_a_firms_tag_are_the_skills_it_names() -> None:
    known = {"anod", "bicycl compon", "tig weld", "weld"}.__contains__
    assert named_skills("aluminium anodising for bicycle parts", known) == (("anod",),)
    # one mention, either key covers it
    assert named_skills("TIG welding of aluminium frames", known) == (("tig weld", "weld"),)
    assert named_skills("tax advice for a small exporter", known) == ()


def test_a_firm_with_the_trade_the_sentence_names_beats_a_nearer_one_sharing_more_words(
        rank, make_firm) -> None:
    # issue 12: "aluminium anodising for bicycle parts" near Kaohsiung ranked a die-caster
    # 1.7 km away (its profile shares aluminium, bicycle and parts) above the hard anodiser
    near = (CLIENT[0] + 0.015, CLIENT[1])  # 1.7 km
    farther = (CLIENT[0] + 0.15, CLIENT[1])  # 17 km
    firms = [
        make_firm(1, near, skills=("aluminium-die-casting",),
                  description="Aluminium die casting of bicycle parts."),
        make_firm(2, farther, skills=("anodizing",), description="Hard anodising of aluminium."),
        *(make_firm(10 + i, (CLIENT[0] + 5, CLIENT[1]), skills=(skill,),
                    description="Parts for the automotive industry.")
          for i, skill in enumerate(("welding", "painting", "bicycle-components", "tax-advice",
                                     "translation", "logistics")))]
    need = Need(latitude=CLIENT[0], longitude=CLIENT[1],
                description="aluminium anodising for bicycle parts")
    assert [c.organization_id for c in rank(firms, need)][:2] == [2, 1]
