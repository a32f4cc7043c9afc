"""Organization profiles: create, read, list, update, deactivate, and the skills they offer."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from models import Office, Organization, OrganizationSkill, OrganizationStats, utcnow
from referral_service.adapters.geocoding import Geocoder
from referral_service.services import audit
from referral_service.services import places as places_service
from referral_service.services.auth import Principal, require_staff
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.unit_of_work import writes
from scoring.model import slugify_skill

PROFILE_FIELDS = ("name", "kind", "group", "description", "capacity", "active", "external_ref")
# What a partner may change on its own profile; the rest is head office's.
PARTNER_EDITABLE = frozenset({"name", "description", "skills", "offices", "capacity"})
SLUG_MAX_LENGTH = 100  # organization_skills.slug
OFFICE_FIELDS = ("label", "address", "city", "country", "latitude", "longitude",
                 "service_radius_km")
# What a new organization starts from, before its create body applies.
_NEW_PROFILE: dict[str, Any] = {
    "name": None, "kind": None, "group": None, "description": "", "capacity": None,
    "active": True, "external_ref": None, "skills": [], "offices": []}


# Skill names repeat across firms (a CRM's vocabulary): an import slugs each spelling once.
_cached_slug = lru_cache(maxsize=65_536)(slugify_skill)


def normalize_skills(names: Iterable[str]) -> list[str]:
    """Return the unique skill slugs of `names`, in first-seen order; 422 naming a bad one."""
    slugs: list[str] = []
    for index, name in enumerate(names):
        try:
            slug = _cached_slug(name)
        except ValueError:
            raise ValidationFailed("A skill has no letters or digits.", {
                "skills": {str(index): ["Every skill needs letters or digits."]}}) from None
        # Case folding and NFKC can lengthen a name ("ﬃ" -> "ffi"); the column holds 100.
        if len(slug) > SLUG_MAX_LENGTH:
            raise ValidationFailed("A skill name is too long.", {
                "skills": {str(index): [f"At most {SLUG_MAX_LENGTH} characters once "
                                        "normalized."]}})
        if slug not in slugs:
            slugs.append(slug)
    return slugs


def get(*, session: Session, organization_id: int, actor: Principal) -> Organization:
    """Return one organization the caller may see."""
    organization = session.get(
        Organization, organization_id, options=[selectinload(Organization.offices),
                                                selectinload(Organization.skill_rows)]
    )
    if organization is None or not actor.can_see_organization(organization_id):
        raise NotFound(f"Organization {organization_id} does not exist.")
    return organization


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int, kind: str | None = None,
    active: bool | None = None, skill: str | None = None, q: str | None = None,
) -> tuple[list[Organization], int]:
    """Return one page of the organizations the caller may see, and the total."""
    query = select(Organization)
    if actor.is_partner:
        query = query.where(Organization.id == actor.organization_id)
    if kind:
        query = query.where(Organization.kind == kind)
    if active is not None:
        query = query.where(Organization.active.is_(active))
    if skill:
        try:
            slug = slugify_skill(skill)
        except ValueError:
            return [], 0
        query = query.where(
            Organization.id.in_(select(OrganizationSkill.organization_id)
                                .where(OrganizationSkill.slug == slug))
        )
    if q:
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        query = query.where(func.lower(Organization.name).like(pattern, escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Organization.offices), selectinload(Organization.skill_rows))
        .order_by(Organization.id).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return list(rows), total


@writes
def create(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder
) -> Organization:
    """Create an organization with its offices (places resolved) and skills."""
    require_staff(actor)
    organization = Organization(description="", active=True)
    organization.stats = OrganizationStats(open_referrals=0, won=0, failed=0)
    _write_profile(organization, planned_profile(_NEW_PROFILE, data, geocoder))
    session.add(organization)
    _flush_unique(session, data)
    audit.record(session=session, actor=actor, action="organization.create",
                 object_type="organization", object_id=organization.id,
                 changes=snapshot(organization))
    return organization


@writes
def update(
    *, session: Session, organization_id: int, data: dict[str, Any], actor: Principal,
    geocoder: Geocoder, expected_version: int | None = None,
) -> Organization:
    """Apply a partial update; with `expected_version`, refuse if the profile has moved on."""
    organization = get(session=session, organization_id=organization_id, actor=actor)
    if actor.is_partner:
        refused = sorted(set(data) - PARTNER_EDITABLE)
        if refused:
            raise Forbidden(f"A partner may not change {', '.join(refused)}.")
    if expected_version is not None and organization.version != expected_version:
        raise PreconditionFailed("The organization changed since it was read (stale If-Match).")
    before = profile(organization)
    after = planned_profile(before, data, geocoder)
    changes = profile_changes(before, after)
    _write_profile(organization, after)
    if changes:
        # Offices and skills live in their own tables: touch the row so that the version
        # moves (ETag) and every worker's match index sees the change.
        organization.updated_at = utcnow()
        _flush_unique(session, data)
        audit.record(session=session, actor=actor, action="organization.update",
                     object_type="organization", object_id=organization.id, changes=changes)
    return organization


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


def planned_profile(
    current: dict[str, Any], data: dict[str, Any], geocoder: Geocoder
) -> dict[str, Any]:
    """Return the profile `current` (see `profile`) becomes once update `data` is applied.

    The rules of an update, on plain data: `update` writes the result through the ORM,
    the bulk import (services/importing.py) with set-based statements. A field left out of
    `data` keeps its value. Skills are normalized. Offices are resolved; an office given with
    the "id" of one of the firm's offices keeps that office (and the fields it does not give),
    one given without id is a new office ("id" None) even when it equals an old one, and the
    offices not given are gone. Raises ValidationFailed (a bad skill, an unknown place, an
    office id of another organization) or Unavailable (geocoder) as the API answers them.
    """
    after: dict[str, Any] = {field: data[field] if field in data else current[field]
                             for field in PROFILE_FIELDS}
    after["skills"] = (normalize_skills(data["skills"]) if "skills" in data
                       else list(current["skills"]))
    if "offices" not in data:
        after["offices"] = [dict(office) for office in current["offices"]]
        return after
    resolved = resolve_offices(data["offices"], geocoder)
    # One dict per kept office: an id given twice names the same office, as an ORM object would.
    by_id = {office["id"]: dict(office) for office in current["offices"]}
    offices: list[dict[str, Any]] = []
    for given in resolved:
        if given.get("id") is None:
            office: dict[str, Any] = {"id": None, **dict.fromkeys(OFFICE_FIELDS)}
        else:
            office = by_id.get(given["id"])  # type: ignore[assignment]
            if office is None:
                raise ValidationFailed(
                    "An office id does not belong to this organization.",
                    {"offices": {"id": [f"Unknown office id {given['id']}."]}},
                )
        for field in OFFICE_FIELDS:
            if field in given:
                office[field] = given[field]
        if office["service_radius_km"] is None:
            office["service_radius_km"] = 100.0
        offices.append(office)
    after["offices"] = offices
    return after


def profile_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return the audit diff {field: {"from": old, "to": new}} of two profiles.

    Offices compare by their fields, not their ids: offices given again unchanged, although
    new rows, are no change (no audit entry, no new version).
    """
    before, after = _audited(before), _audited(after)
    return {key: {"from": before[key], "to": after[key]}
            for key in after if before[key] != after[key]}


def _audited(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as the audit log shows it: offices without their ids."""
    return {**profile, "offices": [{field: office[field] for field in OFFICE_FIELDS}
                                   for office in profile["offices"]]}


def resolve_offices(
    offices: list[dict[str, Any]], geocoder: Geocoder
) -> list[dict[str, Any]]:
    """Fill in coordinates (and a missing country) from the place names (services/places)."""
    places = places_service.resolve_each(offices, geocoder, field="offices")
    resolved = []
    for office, place in zip(offices, places, strict=True):
        office = {**office, "latitude": place.latitude, "longitude": place.longitude}
        if place.country:
            office["country"] = place.country
        resolved.append(office)
    return resolved


def _write_profile(organization: Organization, profile: dict[str, Any]) -> None:
    """Make the ORM objects hold `profile` (from planned_profile); the flush writes it."""
    for field in PROFILE_FIELDS:
        setattr(organization, field, profile[field])
    _replace_skills(organization, profile["skills"])
    _write_offices(organization, profile["offices"])


def _replace_skills(organization: Organization, slugs: list[str]) -> None:
    by_slug = {row.slug: row for row in organization.skill_rows}
    rows = []
    for position, slug in enumerate(slugs):
        row = by_slug.get(slug) or OrganizationSkill(slug=slug)
        row.position = position
        rows.append(row)
    organization.skill_rows = rows


def _write_offices(organization: Organization, offices: list[dict[str, Any]]) -> None:
    """Keep the offices whose "id" is given (their fields set), add those without, drop the rest."""
    by_id = {office.id: office for office in organization.offices}
    kept: list[Office] = []
    for data in offices:
        office = by_id[data["id"]] if data["id"] is not None else Office()
        for field in OFFICE_FIELDS:
            setattr(office, field, data[field])
        kept.append(office)
    organization.offices = kept


def _flush_unique(session: Session, data: dict[str, Any]) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        if "external_ref" in str(error.orig).lower() or "external_ref" in data:
            raise Conflict(
                f"Another organization already has external_ref {data.get('external_ref')!r}.",
            ) from None
        raise
