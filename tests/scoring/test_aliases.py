"""Head office's aliases (SPEC section 8): an alias of a tag scores as the tag (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from scoring import NO_ALIASES, Need, SkillAliases, resolve_aliases
from tests.scoring.conftest import CLIENT
from tests.scoring.test_properties import SETTINGS, both, needs, worlds

# skill -> aliases head office declared for it, each with a spelling of it a client may type
# (found by its spelling key, as a variant of a tag is)
ALIASES = {
    "anodizing": (("alumite", "alumites"),),
    "welding": (("tig-work", "tig-works"), ("joining", "joined")),
    "cnc-machining": (("cnc-milling", "cnc-milled"),),
    "painting": (("lacquering", "lacquered"),),
    "laser-cutting": (("laser-profiling", "laser-profiled"),),
    "bending": (("press-braking", "press-brake"),),
}
TABLE = SkillAliases.of({alias: skill for skill, pairs in ALIASES.items()
                         for alias, _ in pairs})


@SETTINGS
@given(firms=worlds, need=needs(), data=st.data())
def test_an_alias_of_a_tag_scores_as_the_tag(firms, need, data) -> None:
    named = {}  # skill -> how the client names it
    for skill in need.skills:
        alias, spelling = data.draw(st.sampled_from(ALIASES[skill]))
        named[skill] = data.draw(st.sampled_from((skill, alias, spelling)))
    asked = replace(need, skills=tuple(named[skill] for skill in need.skills))
    resolved = resolve_aliases(asked, TABLE)

    assert resolved.skills == need.skills
    as_tags = both(firms, need)
    as_named = both(firms, resolved)
    # the same firms, scores and breakdowns; the skills named as the client named them
    assert [replace(c, matched_skills=(), missing_skills=()) for c in as_named] == [
        replace(c, matched_skills=(), missing_skills=()) for c in as_tags]
    for tag, by_name in zip(as_tags, as_named, strict=True):
        assert by_name.matched_skills == tuple(named[s] for s in tag.matched_skills)
        assert by_name.missing_skills == tuple(named[s] for s in tag.missing_skills)


def test_two_names_of_one_skill_count_once_under_the_first_name() -> None:
    need = Need(latitude=48.0, longitude=9.0, skills=("alumite", "anodizing", "welding"))
    resolved = resolve_aliases(need, TABLE)
    assert resolved.skills == ("anodizing", "welding")
    assert resolved.skill_names == ("alumite", "welding")
    assert resolve_aliases(need, NO_ALIASES) is need


def test_an_alias_in_the_needs_own_words_names_its_skill(rank, make_firm) -> None:
    # 特許出願の相談 ("advice on filing a patent"): a tax adviser shares only 相談 ("advice")
    aliases = SkillAliases.of({"特許出願": "patent-filing"})
    need = Need(latitude=CLIENT[0], longitude=CLIENT[1], description="特許出願の相談")
    resolved = resolve_aliases(need, aliases)
    assert resolved.description == "特許出願の相談 patent filing"
    firms = [make_firm(1, skills=("tax-advice",), description="税務相談・記帳代行。"),
             make_firm(2, (CLIENT[0] + 0.5, CLIENT[1]), skills=("patent-filing",),
                       description="特許出願・商標登録。"),
             make_firm(3, skills=("translation",), description="翻訳・通訳。")]
    # the adviser is listed on 相談 alone; once the sentence names patent filing, it is not
    assert 1 in [c.organization_id for c in rank(firms, need)]
    assert [c.organization_id for c in rank(firms, resolved)] == [2]
