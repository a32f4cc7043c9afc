"""Head office's aliases of skills (SPEC section 8): a need's skill named by an alias asks for
the skill it stands for, and is still named as the client named it.

An alias is found by its slug or by any spelling of it (scoring.text.skill_key: "CNC milled"
finds the alias "cnc-milling"), as a variant of a tag counts as the tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from scoring.model import Need
from scoring.text import MAX_SKILL_TERMS, analyze, skill_key


@dataclass(frozen=True, slots=True)
class SkillAliases:
    """Aliases by slug and by spelling key: alias -> the skill slug it stands for."""

    by_slug: Mapping[str, str]
    by_key: Mapping[str, str]

    @classmethod
    def of(cls, aliases: Mapping[str, str]) -> SkillAliases:
        """Index `aliases` (alias slug -> skill slug) for lookups by any spelling."""
        by_key: dict[str, str] = {}
        for alias in sorted(aliases):  # of two spellings with one key, the first alias wins
            by_key.setdefault(skill_key(alias), aliases[alias])
        return cls(dict(aliases), by_key)

    def skill_of(self, slug: str) -> str:
        """Return the skill a slug stands for: its alias's skill, else the slug itself."""
        found = self.by_slug.get(slug)
        if found is None and self.by_key:
            found = self.by_key.get(skill_key(slug))
        return slug if found is None else found


NO_ALIASES = SkillAliases({}, {})


def resolve_aliases(need: Need, aliases: SkillAliases) -> Need:
    """Return the need with each skill that is an alias replaced by the skill it stands for,
    still named as the client named it (two names of one skill count once, the first); and
    its description followed by the name of each skill an alias in it stands for."""
    if not aliases.by_slug:
        return need
    named = alias_phrases(need.description, aliases) if need.description else []
    if named:
        # "特許出願の相談" with the alias 特許出願 -> patent-filing reads "... patent filing":
        # the sentence names the skill as its firms' tags do (scoring.text.named_skills)
        need = replace(need, description=need.description + " "
                       + " ".join(skill.replace("-", " ") for skill in named))
    skills = [aliases.skill_of(skill) for skill in need.skills]
    if skills == list(need.skills):
        return need
    names = need.skill_names or need.skills
    resolved: dict[str, str] = {}  # skill -> the name it was first given under
    for skill, name in zip(skills, names, strict=True):
        resolved.setdefault(skill, name)
    return replace(need, skills=tuple(resolved), skill_names=tuple(resolved.values()))


def alias_phrases(description: str, aliases: SkillAliases) -> list[str]:
    """Return the skills that aliases found in a text stand for, in order, each once: runs of
    its terms that are an alias's spelling key."""
    terms = analyze(description)
    found: dict[str, None] = {}
    for start in range(len(terms)):
        for end in range(start + 1, min(len(terms), start + MAX_SKILL_TERMS) + 1):
            skill = aliases.by_key.get(" ".join(terms[start:end]))
            if skill is not None:
                found.setdefault(skill)
    return list(found)
