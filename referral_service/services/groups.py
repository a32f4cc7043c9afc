"""Groups of firms (SPEC section 8): named by organizations' `group`, listed with their members.

A group is made on first use: a profile that names a group no firm named before creates it.
Names are compared as firm names are (models.organization.name_key: case, width and blanks
aside), and a group keeps the spelling it was first given. Groups are not secret between
firms (a firm's public profile shows its group), so every caller may list them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import Group, Organization, utcnow
from models.organization import name_key
from referral_service.adapters import sql


def settle(*, session: Session, profiles: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Give each profile's `group` its group's own spelling, creating the groups not known
    yet; return {group name: id} for the names now in the profiles.

    A blank name is no group (None). Safe under concurrent writers: a new group is inserted
    with ON CONFLICT DO NOTHING on its unique name_key, then read back.
    """
    profiles = list(profiles)
    for profile in profiles:
        name = (profile.get("group") or "").strip()
        profile["group"] = name or None
    keys = {name_key(profile["group"]): profile["group"] for profile in reversed(profiles)
            if profile["group"] is not None}  # reversed: the first spelling given wins
    if not keys:
        return {}
    found = _by_key(session, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        now = utcnow()
        sql.insert_unless_exists(session, Group, [
            {"name": keys[key], "name_key": key, "created_at": now} for key in missing])
        found.update(_by_key(session, {key: keys[key] for key in missing}))
    for profile in profiles:
        if profile["group"] is not None:
            profile["group"] = found[name_key(profile["group"])][1]
    return {name: group_id for group_id, name in found.values()}


def _by_key(session: Session, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    return {key: (group_id, name) for group_id, name, key in session.execute(
        select(Group.id, Group.name, Group.name_key).where(Group.name_key.in_(list(keys))))}


def id_named(*, session: Session, name: str) -> int | None:
    """Return the id of the group with this name (case, width and blanks aside), or None."""
    return session.scalar(select(Group.id).where(Group.name_key == name_key(name.strip())))


@dataclass(frozen=True, slots=True)
class Members:
    """A group and how many organizations belong to it (and how many of them are active)."""

    id: int
    name: str
    organizations: int
    active_organizations: int


def list_(*, session: Session, page: int, page_size: int) -> tuple[list[Members], int]:
    """Return one page of the groups by name, each with how many organizations (active ones
    apart) belong to it, and the total."""
    query = (select(Group.id, Group.name, func.count(Organization.id).label("organizations"),
                    func.count(case((Organization.active.is_(True), 1))).label("active"))
             .outerjoin(Organization, Organization.group_id == Group.id)
             .group_by(Group.id, Group.name))
    total = session.scalar(select(func.count()).select_from(Group)) or 0
    rows = session.execute(query.order_by(func.lower(Group.name), Group.id)
                           .limit(page_size).offset((page - 1) * page_size)).all()
    return [Members(row.id, row.name, row.organizations, row.active) for row in rows], total

