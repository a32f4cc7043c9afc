"""The skill vocabulary (SPEC section 8): the skills firms offer, head office's aliases of
them, and the merge of two slugs into one.

An alias ("cnc-milling" -> "cnc-machining") is never a skill that some firm offers: a firm's
tag given as an alias is stored as its skill (organizations.write_profiles), and a merge
re-points every firm's tags in its one transaction and leaves the old slug as an alias of the
new one, so that old requests still match. Every worker's match index reloads the aliases
when their count or latest `updated_at` moves (adapters/match_index.py).

Declaring an alias and merging close the skill vocabulary's gate (adapters/sql.gate), which
every profile write passes shared before it reads the aliases: a write in flight finishes
first (and the alias is refused, or the merge moves its tag too), a later one waits and then
stores the skill the alias stands for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from models import Organization, OrganizationSkill, SkillAlias, utcnow
from referral_service.adapters import sql
from referral_service.services import audit
from referral_service.services import organizations as organizations_service
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_
from scoring.aliases import SkillAliases
from scoring.model import slugify_skill
from scoring.text import skill_key


@dataclass(frozen=True)
class Skill:
    """A skill offered by active organizations: how many, and head office's aliases of it."""

    skill: str
    organizations: int
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Merge:
    """What a merge did: the slug merged, the one kept, and how many firms' tags it moved."""

    from_: str
    into: str
    organizations: int


def require_head_office(actor: Principal) -> None:
    """Refuse anyone but head office (admin): the vocabulary is the whole network's."""
    if actor.role != "admin":
        raise Forbidden(N_("Only head office manages skill aliases and merges."))


def list_(*, session: Session) -> list[Skill]:
    """Return every skill offered by an active organization, most offered first, with its
    aliases (alphabetical)."""
    aliases: defaultdict[str, list[str]] = defaultdict(list)
    for alias, skill in session.execute(
            select(SkillAlias.alias, SkillAlias.skill).order_by(SkillAlias.alias)):
        aliases[skill].append(alias)
    return [Skill(slug, count, tuple(aliases.get(slug, ())))
            for slug, count in organizations_service.list_skills(session=session)]


@writes
def create_alias(*, session: Session, actor: Principal, alias: str, skill: str) -> SkillAlias:
    """Declare `alias` another name of `skill` (a skill some organization offers)."""
    require_head_office(actor)
    alias_slug, skill_slug = _slug(alias, "alias"), _slug(skill, "skill")
    if alias_slug == skill_slug:
        raise ValidationFailed(N_("An alias must differ from its skill."),
                               {"alias": [N_("An alias must differ from its skill.")]})
    # Profile writes wait behind the gate until this commits (and read the alias then), and
    # the checks below see every tag committed before it.
    sql.gate(session, "skill_vocabulary", exclusive=True)
    if not _offered(session, skill_slug):
        stands_for = session.scalar(select(SkillAlias.skill)
                                    .where(SkillAlias.alias == skill_slug))
        if stands_for is not None:
            raise ValidationFailed(
                N_("%(skill_slug)r is itself an alias of %(stands_for)r.",
                   skill_slug=skill_slug, stands_for=stands_for),
                {"skill": [N_("'%(skill_slug)s' is an alias of '%(stands_for)s': name that "
                              "skill.", skill_slug=skill_slug, stands_for=stands_for)]})
        raise NotFound(N_("No organization offers the skill %(skill_slug)r.",
                          skill_slug=skill_slug))
    offered_by = _offered(session, alias_slug)
    if offered_by:
        raise Conflict(
            N_("%(offered_by)s organizations offer %(alias_slug)r; merge it "
               "into %(skill_slug)r instead (POST /skills/merge), which "
               "re-points their tags.", offered_by=offered_by, alias_slug=alias_slug,
               skill_slug=skill_slug),
            errors={"alias": [N_("Organizations offer '%(alias_slug)s': merge it instead.",
                                 alias_slug=alias_slug)]})
    known = SkillAliases.of(dict(session.execute(select(SkillAlias.alias,
                                                       SkillAlias.skill)).all()))
    taken = known.skill_of(alias_slug)
    if taken != alias_slug and taken != skill_slug or alias_slug in known.by_slug:
        # the alias, or a spelling of it, already stands for a skill
        raise Conflict(N_("%(alias_slug)r is already an alias of %(taken)r.",
                          alias_slug=alias_slug, taken=taken),
                       errors={"alias": [N_("Already an alias of '%(taken)s'.", taken=taken)]})
    if session.scalar(select(SkillAlias.id).where(SkillAlias.skill == alias_slug).limit(1)):
        raise Conflict(N_("%(alias_slug)r has aliases of its own; remove them first.",
                          alias_slug=alias_slug),
                       errors={"alias": [N_("'%(alias_slug)s' has aliases of its own.",
                                            alias_slug=alias_slug)]})
    # A spelling of a skill firms offer already counts as that skill (SPEC section 8): as an
    # alias of another one it would take the need away from them.
    key = skill_key(alias_slug)
    twin = next((slug for slug in _offered_slugs(session)
                 if slug != skill_slug and skill_key(slug) == key), None)
    if twin is not None:
        raise Conflict(N_("%(alias_slug)r is a spelling of %(twin)r, which "
                          "organizations offer; merge %(twin)r into %(skill_slug)r "
                          "instead.", alias_slug=alias_slug, twin=twin, skill_slug=skill_slug),
                       errors={"alias": [N_("'%(alias_slug)s' already counts as '%(twin)s'.",
                                            alias_slug=alias_slug, twin=twin)]})
    row = SkillAlias(alias=alias_slug, skill=skill_slug)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request declared the same alias first
        raise Conflict(N_("%(alias_slug)r is already an alias.", alias_slug=alias_slug),
                       errors={"alias": [N_("Already an alias.")]}) from None
    audit.record(session=session, actor=actor, action="skill.alias.create",
                 object_type="skill", object_id=skill_slug, changes={"alias": alias_slug})
    return row


@writes
def delete_alias(*, session: Session, actor: Principal, alias: str) -> None:
    """Remove an alias; needs that name it then ask for it as a skill of its own."""
    require_head_office(actor)
    try:
        alias_slug = _slug(alias, "alias")
    except ValidationFailed:  # no name of a skill, so no alias: as any unknown one
        raise NotFound(N_("%(alias)r is not an alias.", alias=alias)) from None
    row = session.scalar(select(SkillAlias).where(SkillAlias.alias == alias_slug)
                         .with_for_update())
    if row is None:
        raise NotFound(N_("%(alias_slug)r is not an alias.", alias_slug=alias_slug))
    session.delete(row)
    audit.record(session=session, actor=actor, action="skill.alias.delete",
                 object_type="skill", object_id=row.skill, changes={"alias": alias_slug})


@writes
def merge(*, session: Session, actor: Principal, from_: str, into: str) -> Merge:
    """Merge the skill `from_` into `into` in one transaction.

    Every organization's tag `from_`, in any spelling (scoring.text.skill_key), becomes
    `into` (dropped where it had both), each such
    profile written as a profile change is (version + 1, so a new ETag; updated_at, so every
    worker's match index; an audit entry); aliases of `from_` now stand for `into`; and
    `from_` (each spelling moved) stays as an alias of `into`, so that requests naming it
    still match.
    """
    require_head_office(actor)
    old, new = _slug(from_, "from"), _slug(into, "into")
    if old == new:
        raise ValidationFailed(N_("A skill cannot be merged into itself."),
                               {"into": [N_("A skill cannot be merged into itself.")]})
    if not _offered(session, new):
        raise NotFound(N_("No organization offers the skill %(new)r (into).", new=new))
    # Every spelling of the skill merged goes (SPEC section 8: they are one skill): else
    # "anodised" would stay a skill of its own beside the alias "anodising" of another one.
    key = skill_key(old)

    def spellings() -> list[str]:
        return sorted(slug for slug in _offered_slugs(session)
                      if slug != new and skill_key(slug) == key)

    def firms_offering(slugs: list[str]) -> list[Organization]:
        # Locked in id order (as every multi-firm write here), so that two merges cannot
        # deadlock and a concurrent profile edit waits for this one, or this one for it.
        return list(session.scalars(
            select(Organization)
            .where(Organization.id.in_(select(OrganizationSkill.organization_id)
                                       .where(OrganizationSkill.slug.in_(slugs))))
            .order_by(Organization.id)
            .options(selectinload(Organization.offices), selectinload(Organization.skill_rows))
            .with_for_update(of=Organization)))

    moved = spellings()
    if not moved:
        raise NotFound(N_("No organization offers the skill %(old)r (from).", old=old))
    firms_offering(moved)
    # Then the gate (after the firms: a profile write takes its firm's lock, then the gate):
    # profile writes wait until this commits, and the firms offering the slug merged, read
    # again, are all there are.
    sql.gate(session, "skill_vocabulary", exclusive=True)
    moved = spellings()
    firms = firms_offering(moved)
    plans = []
    for firm in firms:
        before = {**organizations_service.profile(firm), "version": firm.version}
        skills = list(dict.fromkeys(new if slug in moved else slug
                                    for slug in before["skills"]))
        after = {**organizations_service.profile(firm), "skills": skills}
        plans.append(organizations_service.Plan(firm.id, before, after))
    organizations_service.write_profiles(session=session, plans=plans, actor=actor)
    now = utcnow()
    session.execute(delete(SkillAlias).where(SkillAlias.alias.in_([*moved, new])))
    session.execute(update(SkillAlias).where(SkillAlias.skill.in_(moved))
                    .values(skill=new, updated_at=now))
    session.add_all([SkillAlias(alias=slug, skill=new, created_at=now, updated_at=now)
                     for slug in moved])
    audit.record(session=session, actor=actor, action="skill.merge", object_type="skill",
                 object_id=new, changes={"from": moved, "into": new,
                                         "organizations": len(plans)})
    session.flush()
    return Merge(old, new, len(plans))


def _slug(name: str, field: str) -> str:
    try:
        slug = slugify_skill(name)
    except ValueError:
        raise ValidationFailed(N_("A skill needs letters or digits."),
                               {field: [N_("A skill needs letters or digits.")]}) from None
    if len(slug) > organizations_service.SLUG_MAX_LENGTH:
        raise ValidationFailed(N_("A skill name is too long."), {field: [
            N_("At most %(limit)s characters once normalized.",
               limit=organizations_service.SLUG_MAX_LENGTH)]})
    return slug


def _offered(session: Session, slug: str) -> int:
    """Return how many organizations (active or not) have the tag."""
    return session.scalar(select(func.count()).select_from(OrganizationSkill)
                          .where(OrganizationSkill.slug == slug)) or 0


def _offered_slugs(session: Session) -> list[str]:
    return list(session.scalars(select(OrganizationSkill.slug).distinct()))
