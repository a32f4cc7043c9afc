"""Organization profiles: create, read, list, update, deactivate, and the skills they offer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import func, literal_column, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from models import (
    Office,
    Organization,
    OrganizationSkill,
    OrganizationStats,
    OutboxEvent,
    SkillAlias,
    utcnow,
)
from models.organization import name_key
from referral_service.adapters import sql
from referral_service.adapters.geocoding import Geocoder
from referral_service.schemas.places import DEFAULT_SERVICE_RADIUS_KM
from referral_service.services import audit, events, groups
from referral_service.services import places as places_service
from referral_service.services.auth import Principal, require_staff
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.pages import page_of
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_
from scoring.aliases import SkillAliases
from scoring.model import slugify_skill

PROFILE_FIELDS = ("name", "kind", "group", "description", "capacity", "active", "external_ref",
                  "contact_name", "contact_email", "contact_phone")
# A body's "contact" ({name, email, phone}) is stored as these profile fields.
CONTACT_FIELDS = {"name": "contact_name", "email": "contact_email", "phone": "contact_phone"}
# What a partner may change on its own profile; the rest is head office's.
PARTNER_EDITABLE = frozenset({"name", "description", "skills", "offices", "capacity",
                              "contact"})
SLUG_MAX_LENGTH = 100  # organization_skills.slug
# The webhook event of every profile written (created, updated, deactivated).
CHANGED = "organization.changed"
# What a created firm's event names: every field of the profile.
_EVERY_FIELD = (*PROFILE_FIELDS, "skills", "offices")
OFFICE_FIELDS = ("label", "address", "city", "country", "latitude", "longitude",
                 "service_radius_km")
# An office kept by id is placed anew when one of these changes without new coordinates.
PLACE_FIELDS = ("city", "country", "address")
# What a new organization starts from, before its create body applies.
_NEW_PROFILE: dict[str, Any] = {
    "name": None, "kind": None, "group": None, "description": "", "capacity": None,
    "active": True, "external_ref": None, "contact_name": None, "contact_email": None,
    "contact_phone": None, "skills": [], "offices": []}


# Skill names repeat across firms (a CRM's vocabulary): an import slugs each spelling once.
_cached_slug = lru_cache(maxsize=65_536)(slugify_skill)


def normalize_skills(names: Iterable[str]) -> list[str]:
    """Return the unique skill slugs of `names`, in first-seen order; 422 naming a bad one."""
    names = list(names)
    try:
        slugs = [_cached_slug(name) for name in names]
    except ValueError:
        slugs = []
    if len(slugs) == len(names) and (not slugs or max(map(len, slugs)) <= SLUG_MAX_LENGTH):
        return list(dict.fromkeys(slugs))  # the import's case: one pass, no error to word
    slugs = []
    for index, name in enumerate(names):
        try:
            slug = _cached_slug(name)
        except ValueError:
            raise ValidationFailed(N_("A skill has no letters or digits."), {
                "skills": {str(index): [N_("Every skill needs letters or digits.")]}}) from None
        # Case folding and NFKC can lengthen a name ("ﬃ" -> "ffi"); the column holds 100.
        if len(slug) > SLUG_MAX_LENGTH:
            raise ValidationFailed(N_("A skill name is too long."), {
                "skills": {str(index): [N_("At most %(limit)s characters once "
                                           "normalized.", limit=SLUG_MAX_LENGTH)]}})
        if slug not in slugs:
            slugs.append(slug)
    return slugs


def get(
    *, session: Session, organization_id: int, actor: Principal, for_update: bool = False
) -> Organization:
    """Return one organization the caller may see (`for_update`: locked until the commit)."""
    organization = session.get(
        Organization, organization_id,
        # of=: PostgreSQL locks no row on the nullable side of the stats outer join.
        with_for_update={"of": Organization} if for_update else None,
        options=[selectinload(Organization.offices), selectinload(Organization.skill_rows)],
    )
    if organization is None or not actor.can_see_organization(organization_id):
        raise NotFound(N_("Organization %(organization_id)s does not exist.",
                          organization_id=organization_id))
    return organization


def public_profile(*, session: Session, organization_id: int, actor: Principal) -> Organization:
    """Return the profile any signed-in firm may read of an active firm it might refer a
    client to (what the match list ranks it on: name, kind, group, skills, description,
    offices); its referrals, figures and people stay its own (get)."""
    organization = session.get(
        Organization, organization_id,
        options=[selectinload(Organization.offices), selectinload(Organization.skill_rows)])
    if organization is None or not (organization.active
                                    or actor.can_see_organization(organization_id)):
        raise NotFound(N_("Organization %(organization_id)s does not exist.",
                          organization_id=organization_id))
    return organization


def contact(*, session: Session, organization_id: int, actor: Principal) -> dict[str, Any]:
    """Return the business contact ({name, email, phone}, each may be None) of a firm the
    caller may read the public profile of: any key, any active firm (README: a firm's
    business contact is not need-to-know); an inactive one only for its own or staff."""
    organization = public_profile(session=session, organization_id=organization_id,
                                  actor=actor)
    return organization.contact or dict.fromkeys(CONTACT_FIELDS)


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int, kind: str | None = None,
    active: bool | None = None, skill: str | None = None, q: str | None = None,
    group: str | None = None,
) -> tuple[list[Organization], int]:
    """Return one page of the organizations the caller may see, and the total; `group` names
    a group as groups compare names (case aside)."""
    query = select(Organization)
    if actor.is_partner:
        query = query.where(Organization.id == actor.organization_id)
    if group:
        group_id = groups.id_named(session=session, name=group)
        if group_id is None:
            return [], 0
        query = query.where(Organization.group_id == group_id)
    if kind:
        query = query.where(Organization.kind == kind)
    if active is not None:
        query = query.where(Organization.active.is_(active))
    if skill:
        try:
            slug = slugify_skill(skill)
        except ValueError:
            return [], 0
        # an alias lists the firms offering its skill
        slug = session.scalar(select(SkillAlias.skill).where(SkillAlias.alias == slug)) or slug
        query = query.where(
            Organization.id.in_(select(OrganizationSkill.organization_id)
                                .where(OrganizationSkill.slug == slug))
        )
    if q:
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        query = query.where(func.lower(Organization.name).like(pattern, escape="\\"))
    return page_of(session, query.options(selectinload(Organization.offices),
                                          selectinload(Organization.skill_rows)),
                   Organization.id, page=page, page_size=page_size)


@writes
def create(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder
) -> Organization:
    """Create an organization with its offices (places resolved) and skills."""
    require_staff(actor)
    plan = Plan(None, None, planned_profile(new_profile(), data, geocoder))
    [organization_id] = _write_unique(session, [plan], actor, data)
    return _reloaded(session, organization_id)


@writes
def update(
    *, session: Session, organization_id: int, data: dict[str, Any], actor: Principal,
    geocoder: Geocoder, expected_version: int | None = None,
) -> Organization:
    """Apply a partial update; with `expected_version`, refuse if the profile has moved on."""
    organization = get(session=session, organization_id=organization_id, actor=actor,
                       for_update=True)
    if actor.is_partner:
        refused = sorted(set(data) - PARTNER_EDITABLE)
        if refused:
            raise Forbidden(N_("A partner may not change %(fields)s.",
                               fields=", ".join(refused)))
    if expected_version is not None and organization.version != expected_version:
        raise PreconditionFailed(N_("The organization changed since it was read (stale If-Match)."))
    before = {**profile(organization), "version": organization.version}
    plan = Plan(organization_id, before, planned_profile(before, data, geocoder))
    _write_unique(session, [plan], actor, data)
    return _reloaded(session, organization_id)


@writes
def deactivate(*, session: Session, organization_id: int, actor: Principal) -> None:
    """Mark an organization inactive; its history and KPI rows stay."""
    require_staff(actor)
    organization = get(session=session, organization_id=organization_id, actor=actor)
    if organization.active:
        organization.active = False
        organization.updated_at = utcnow()
        audit.record(session=session, actor=actor, action="organization.deactivate",
                     object_type="organization", object_id=organization.id,
                     changes={"active": {"from": True, "to": False}})
        session.flush()  # the mapper's version counter moves on here
        events.emit(session=session, type_=CHANGED, payload=changed(
            organization.id, organization.version, "deactivated", ["active"]))


def names(*, session: Session, organization_ids: Iterable[int]) -> dict[int, str]:
    """Return the names of these organizations in one query.

    Names are not secret inside the network (match results show them to partners), so anyone
    may read the name of the other party of a referral they can see.
    """
    ids = sorted(set(organization_ids))
    if not ids:
        return {}
    rows = session.execute(select(Organization.id, Organization.name)
                           .where(Organization.id.in_(ids))).all()
    return dict(rows)


def list_skills(*, session: Session) -> list[tuple[str, int]]:
    """Return every skill offered by an active organization with how many offer it."""
    rows = session.execute(
        select(OrganizationSkill.slug, func.count())
        .join(Organization, Organization.id == OrganizationSkill.organization_id)
        .where(Organization.active.is_(True))
        .group_by(OrganizationSkill.slug)
        .order_by(func.count().desc(), OrganizationSkill.slug)
    ).all()
    return [(slug, count) for slug, count in rows]


def snapshot(organization: Organization) -> dict[str, Any]:
    """Return the profile as plain data, for audit diffs."""
    return _audited(profile(organization))


def profile(organization: Organization) -> dict[str, Any]:
    """Return the profile as plain data whose offices also carry their "id"."""
    return {
        **{field: getattr(organization, field) for field in PROFILE_FIELDS},
        "skills": list(organization.skills),
        "offices": [{"id": office.id, **{field: getattr(office, field) for field in OFFICE_FIELDS}}
                    for office in organization.offices],
    }


def new_profile() -> dict[str, Any]:
    """Return what a new organization starts from, before its create body applies."""
    return {**_NEW_PROFILE, "skills": [], "offices": []}


def planned_profile(
    current: dict[str, Any], data: dict[str, Any], geocoder: Geocoder
) -> dict[str, Any]:
    """Return the profile `current` (see `profile`) becomes once `data` is applied.

    The one planning rule of POST (from `_NEW_PROFILE`), PATCH and the import; `write_profiles`
    writes the result. A field left out of `data` keeps its value; skills are normalized;
    a "contact" given replaces the whole contact (null or {} clears it).
    Offices, when given, are merged before anything is resolved:
    - one given with the "id" of one of the firm's offices keeps that office and the fields
      it does not give (coordinates, radius...); it is resolved again only when its city,
      country or address changed without new coordinates;
    - one given without "id" is a new office (radius 100 unless given), resolved; if it
      equals an office of the firm not otherwise kept, it keeps that office's id;
    - the offices not given are removed.
    Offices are listed as they will be read back: kept ones by id, then the new ones.
    Raises ValidationFailed (a bad skill, an unknown place, an office id of another
    organization) or Unavailable (geocoder) as the API answers them.
    """
    after: dict[str, Any] = {field: data[field] if field in data else current[field]
                             for field in PROFILE_FIELDS}
    if "contact" in data:
        contact = data["contact"] or {}
        after.update({field: contact.get(part) for part, field in CONTACT_FIELDS.items()})
    after["skills"] = (normalize_skills(data["skills"]) if "skills" in data
                       else list(current["skills"]))
    if "offices" in data:
        after["offices"] = _planned_offices(current["offices"], data["offices"], geocoder)
    else:
        after["offices"] = [dict(office) for office in current["offices"]]
    return after


def _planned_offices(
    current: list[dict[str, Any]], given: list[dict[str, Any]], geocoder: Geocoder
) -> list[dict[str, Any]]:
    old = {office["id"]: office for office in current}
    merged: list[dict[str, Any]] = []
    kept: dict[int, dict[str, Any]] = {}  # an id given twice names the same office
    for index, office in enumerate(given):
        office_id = office.get("id")
        fields = {field: office[field] for field in OFFICE_FIELDS if field in office}
        if office_id is None:
            merged.append({**dict.fromkeys(OFFICE_FIELDS), "id": None,
                           "service_radius_km": DEFAULT_SERVICE_RADIUS_KM, **fields})
            continue
        if office_id not in old:
            raise ValidationFailed(
                N_("An office id does not belong to this organization."),
                {"offices": {str(index): {"id": [N_("Unknown office id %(office_id)s.",
                                                    office_id=office_id)]}}})
        target = kept.get(office_id)
        if target is None:
            target = kept[office_id] = dict(old[office_id])
            merged.append(target)
        coordinates_given = fields.get("latitude") is not None
        moved = any(field in fields and fields[field] != target[field]
                    for field in PLACE_FIELDS)
        if not coordinates_given:
            # A null coordinate counts as not given (LocationSchema): keep the stored ones.
            fields.pop("latitude", None)
            fields.pop("longitude", None)
        target.update(fields)
        if moved and not coordinates_given:
            target["latitude"] = target["longitude"] = None  # place it anew
    resolved = resolve_offices(merged, geocoder)
    # An office given again without id, unchanged, keeps its id (and its row).
    free = [office for office_id, office in old.items() if office_id not in kept]
    for office in resolved:
        if office["id"] is None:
            twin = next((candidate for candidate in free if _same_office(candidate, office)),
                        None)
            if twin is not None:
                free.remove(twin)
                office["id"] = twin["id"]
    return (sorted((office for office in resolved if office["id"] is not None),
                   key=lambda office: office["id"])
            + [office for office in resolved if office["id"] is None])


def _same_office(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return all(one[field] == other[field] for field in OFFICE_FIELDS)


def profile_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return the audit diff {field: {"from": old, "to": new}} of two profiles.

    Offices compare by their fields; only if nothing else differs do their ids count
    (offices given again unchanged keep their ids: then there is no change at all).
    """
    audited_before, audited_after = _audited(before), _audited(after)
    changes = {key: {"from": audited_before[key], "to": audited_after[key]}
               for key in audited_after if audited_before[key] != audited_after[key]}
    if "offices" not in changes and ([o["id"] for o in before["offices"]]
                                     != [o["id"] for o in after["offices"]]):
        changes["offices"] = {"from": before["offices"], "to": after["offices"]}
    return changes


def _audited(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as the audit log shows it: offices without their ids."""
    return {**{field: profile[field] for field in PROFILE_FIELDS}, "skills": profile["skills"],
            "offices": [{field: office[field] for field in OFFICE_FIELDS}
                        for office in profile["offices"]]}


def resolve_offices(
    offices: list[dict[str, Any]], geocoder: Geocoder
) -> list[dict[str, Any]]:
    """Fill in coordinates (and a missing country) from the place names (services/places)."""
    if all(map(_placed, offices)):
        # What the resolver makes of each (coordinates as given), without asking it: 36k
        # offices of an import cost it 0.5 s a 20k-firm batch (bench/bench_import.py profile).
        return [dict(office) for office in offices]
    places = places_service.resolve_each(offices, geocoder, field="offices")
    resolved = []
    for office, place in zip(offices, places, strict=True):
        office = {**office, "latitude": place.latitude, "longitude": place.longitude}
        if place.country:
            office["country"] = place.country
        resolved.append(office)
    return resolved


def _placed(office: dict[str, Any]) -> bool:
    """Whether resolving leaves the office as it is: float coordinates given (kept as given)
    and its country, if any, upper case."""
    country = office.get("country")
    return (type(office.get("latitude")) is float and type(office.get("longitude")) is float
            and (not country or country == country.upper()))


# ------------------------------------------------------------------------------ the writer


@dataclass(frozen=True, slots=True)
class Plan:
    """One profile to write: a new firm (no id, no `before`) or an existing one."""

    organization_id: int | None
    before: dict[str, Any] | None  # profile() with "version"
    after: dict[str, Any]  # planned_profile()


def write_profiles(
    *, session: Session, plans: list[Plan], actor: Principal,
    created_action: str = "organization.create", names_checked: bool = False,
) -> list[int]:
    """Write planned profiles in the caller's unit of work; return their ids, in order.

    The one writer of POST, PATCH and the import (a batch). A new firm gets its row, stats,
    skills, offices and a `created_action` audit entry; an existing one whose profile
    changes gets its row with `version` + 1 and `updated_at` now (the ETag and every
    worker's match index follow them), the skill and office rows that changed (offices kept
    keep their ids) and an organization.update entry with the changes; an unchanged one
    gets nothing written. Raises Conflict (409 on `name`) when an active firm would take
    another active firm's name, whatever its case (name_clashes; the unique index
    uq_organizations_active_name_key holds it under concurrency), and IntegrityError on a
    taken external_ref or a name taken by a concurrent write. `names_checked`: the caller
    left out, in this unit of work, the plans name_clashes refuses (the import, which reports
    them; asking again cost 0.8 s of client and 1.0 s of server CPU a 100k-firm import on
    PostgreSQL, 7%).
    """
    # Aliases are read, and the tags written, behind the skill vocabulary's gate, which a new
    # alias or a merge closes (services/skills.py): no tag is stored as a slug that has just
    # become an alias.
    sql.gate(session, "skill_vocabulary", exclusive=False)
    _skills_for_aliases(session, plans)
    clashes = {} if names_checked else name_clashes(session=session, plans=plans)
    if clashes:
        raise _name_taken(plans[min(clashes)].after["name"])
    # Each group named is settled first (created if new, spelt as the group is), so that a
    # group named in another case is no change.
    group_ids = groups.settle(session=session, profiles=[plan.after for plan in plans])
    now = utcnow()
    new = [plan for plan in plans if plan.organization_id is None]
    # the rows to insert, table by table (in the order first given), each table's in order
    rows: dict[type, list[dict[str, Any]]] = {}
    updated: list[dict[str, Any]] = []
    skills_gone: list[int] = []
    offices_gone: list[int] = []
    offices_changed: list[dict[str, Any]] = []
    announced: list[dict[str, Any]] = []  # the organization.changed events' data
    for plan in plans:
        if plan.organization_id is None:
            continue
        assert plan.before is not None
        org_id, before, after = plan.organization_id, plan.before, plan.after
        changes = profile_changes(before, after)
        if not changes:
            continue
        updated.append({"id": org_id, "expected_version": before["version"],
                        "version": before["version"] + 1, "updated_at": now,
                        **_columns(after, group_ids),
                        "name_key": name_key(after["name"])})
        if "skills" in changes:
            skills_gone.append(org_id)
            _add_skill_rows(rows, org_id, after["skills"])
        old = {office["id"]: office for office in before["offices"]}
        kept = {office["id"] for office in after["offices"]}
        offices_gone += [office_id for office_id in old if office_id not in kept]
        for office in after["offices"]:
            if office["id"] is None:
                rows.setdefault(Office, []).append(_office_row(org_id, office))
            elif office != old[office["id"]]:
                offices_changed.append(office)
        _add(rows, audit.entry(actor=actor, action="organization.update",
                               object_type="organization", object_id=org_id,
                               changes=changes, at=now))
        announced.append(changed(org_id, before["version"] + 1, "updated", changes))
    try:
        sql.update_organizations(session, updated)
    except sql.StaleProfile as error:
        raise PreconditionFailed(str(error)) from None
    sql.delete_by(session, OrganizationSkill.organization_id, skills_gone)
    sql.delete_by(session, Office.id, offices_gone)
    sql.update_offices(session, offices_changed)
    new_ids = sql.insert_organizations(session, [
        {**_columns(plan.after, group_ids),
         "name_key": name_key(plan.after["name"]), "created_at": now, "updated_at": now,
         "version": 1} for plan in new]) if new else []
    if new:
        for table in (OrganizationStats, OrganizationSkill, Office):
            rows.setdefault(table, [])
    for org_id, plan in zip(new_ids, new, strict=True):
        rows[OrganizationStats].append({"organization_id": org_id, "open_referrals": 0,
                                        "won": 0, "failed": 0, "updated_at": now})
        _add_skill_rows(rows, org_id, plan.after["skills"])
        rows[Office] += [_office_row(org_id, office) for office in plan.after["offices"]]
        _add(rows, audit.entry(actor=actor, action=created_action,
                               object_type="organization", object_id=org_id,
                               changes=_creation_changes(created_action, plan.after), at=now))
        announced.append(changed(org_id, 1, "created", _EVERY_FIELD))
    if announced:
        rows.setdefault(OutboxEvent, []).extend(
            row for _, row in events.outbox_rows(type_=CHANGED, payloads=announced))
    sql.insert_many(session, rows)
    ids = iter(new_ids)
    return [plan.organization_id if plan.organization_id is not None else next(ids)
            for plan in plans]


def _skills_for_aliases(session: Session, plans: list[Plan]) -> None:
    """Store a tag given as one of head office's aliases as the skill it stands for (SPEC
    section 8: one skill, one slug), once per firm; the plans are changed in place."""
    if not any(plan.after["skills"] for plan in plans):
        return
    # the whole table (head office's few hundred at most): an alias is found by any spelling
    aliases = SkillAliases.of(dict(session.execute(select(SkillAlias.alias,
                                                          SkillAlias.skill)).all()))
    if aliases.by_slug:
        for plan in plans:
            plan.after["skills"] = list(dict.fromkeys(map(aliases.skill_of,
                                                          plan.after["skills"])))


def name_clashes(*, session: Session, plans: list[Plan]) -> dict[int, str]:
    """Return, by index in `plans`, why a plan may not be written: it leaves its firm active
    under the name (models.organization.name_key: case, width and blanks aside) of another
    active firm, or of an earlier plan."""
    keys = {index: name_key(plan.after["name"]) for index, plan in enumerate(plans)
            if plan.after["active"]}
    if not keys:
        return {}
    written = {plan.organization_id for plan in plans if plan.organization_id is not None}
    taken: set[str] = set()
    wanted = sorted(set(keys.values()))
    for start in range(0, len(wanted), sql.PROFILE_CHUNK):  # bounded bind parameters
        taken.update(session.scalars(
            select(Organization.name_key)
            .where(_ACTIVE_AS_INDEXED,
                   Organization.name_key.in_(wanted[start:start + sql.PROFILE_CHUNK]),
                   Organization.id.not_in(written) if written else true())))
    clashes: dict[int, str] = {}
    for index, key in keys.items():
        if key in taken:
            clashes[index] = "name: another active organization already has this name"
        taken.add(key)  # a later plan with the same name clashes with this one
    return clashes


# The partial unique index's own predicate ("active"), written as the index has it: SQLite
# uses a partial index only for a WHERE that contains its predicate, and SQLAlchemy writes
# `active IS 1` / `active = 1` there, for which SQLite's planner took ix_organizations_active
# and read every active firm for each chunk of names: 23% of an import's time at 100k firms,
# growing with the table.
_ACTIVE_AS_INDEXED = literal_column("organizations.active")


def _name_taken(name: str) -> Conflict:
    return Conflict(N_("Another active organization is already named %(name)r "
                       "(names are compared without regard to case).", name=name),
                    errors={"name": [N_("Another active organization already has this name.")]})


# profile field -> organizations column ("group", a name, is written as group_id: _columns)
_COLUMNS = {field: getattr(Organization, field).expression.name for field in PROFILE_FIELDS
            if field != "group"}


def _columns(profile: dict[str, Any], group_ids: dict[str, int]) -> dict[str, Any]:
    """The organizations columns of a planned profile, its group settled (groups.settle)."""
    return {**{column: profile[field] for field, column in _COLUMNS.items()},
            "group_id": None if profile["group"] is None else group_ids[profile["group"]]}


def changed(organization_id: int, version: int, change: str,
            fields: Iterable[str]) -> dict[str, Any]:
    """Return the organization.changed event's data: which firm, its version, what changed.

    The fields are named, not copied: the CRM reads the profile (GET /organizations/{id}) when
    it cares, and a 100k-firm import writes 100k small events, not 100k profiles.
    """
    return {"id": organization_id, "version": version, "change": change,
            "fields": sorted(fields)}


def _add(rows: dict[type, list[dict[str, Any]]], row: tuple[type, dict[str, Any]]) -> None:
    rows.setdefault(row[0], []).append(row[1])


def _add_skill_rows(rows: dict[type, list[dict[str, Any]]], org_id: int,
                    slugs: list[str]) -> None:
    rows.setdefault(OrganizationSkill, []).extend(
        [{"organization_id": org_id, "slug": slug, "position": position}
         for position, slug in enumerate(slugs)])


def _office_row(org_id: int, office: dict[str, Any]) -> dict[str, Any]:
    return {"organization_id": org_id, **{field: office[field] for field in OFFICE_FIELDS}}


def _creation_changes(action: str, after: dict[str, Any]) -> dict[str, Any]:
    """What the audit entry of a new firm holds: the whole profile, or (an import's
    thousands of entries) its name and external_ref."""
    if action == "organization.import":
        return {"name": after["name"], "external_ref": after["external_ref"]}
    return _audited(after)


def _write_unique(
    session: Session, plans: list[Plan], actor: Principal, data: dict[str, Any]
) -> list[int]:
    """write_profiles, a taken external_ref answered as a Conflict."""
    try:
        return write_profiles(session=session, plans=plans, actor=actor)
    except IntegrityError as error:
        if "name_key" in str(error.orig).lower():  # a concurrent write took the name first
            raise _name_taken(plans[0].after["name"]) from None
        if "external_ref" in str(error.orig).lower() or "external_ref" in data:
            raise Conflict(
                N_("Another organization already has external_ref %(external_ref)r.",
                   external_ref=data.get("external_ref")),
            ) from None
        raise


def _reloaded(session: Session, organization_id: int) -> Organization:
    """The organization as written (the writer's statements bypass the session's objects)."""
    return session.get(Organization, organization_id, populate_existing=True, options=[
        selectinload(Organization.offices), selectinload(Organization.skill_rows)])
