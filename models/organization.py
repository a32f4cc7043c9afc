"""Organizations (affiliates and partners), their offices, skills and running referral counts."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow

ORGANIZATION_KINDS = ("affiliate", "partner")


def name_key(name: str) -> str:
    """Return the key two firm names share when they are "the same name": NFKC, case-folded,
    blanks collapsed ("ACME  Ltd" = "acme ltd" = "ＡＣＭＥ Ltd"), as a SHA-256 hex digest."""
    # A digest: folding can lengthen a name past any column width ("ﷺ" is 18 letters).
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()


class Group(Base):
    """A corporate group: the firms that belong together, such as affiliates of one holding
    (SPEC section 8). One group per name whatever its case or width (name_key, unique)."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # name_key(name): set by the one writer (services/groups.settle).
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Organization(Base):
    """A firm that refers clients or receives them."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("kind IN ('affiliate', 'partner')", name="kind"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_non_negative"),
        # The business contact referrers see (issue 16, migration 0015); the schema checks the
        # full rules (schemas/organizations.ContactSchema), these hold the shape on any write.
        CheckConstraint("contact_name IS NULL OR length(contact_name) BETWEEN 1 AND 200",
                        name="contact_name_length"),
        CheckConstraint("contact_email IS NULL OR (length(contact_email) <= 254 "
                        "AND contact_email LIKE '%_@_%')", name="contact_email_format"),
        CheckConstraint("contact_phone IS NULL OR length(contact_phone) BETWEEN 5 AND 40",
                        name="contact_phone_length"),
        # No two active firms share a name, whatever the case (issue 11, migration 0006).
        Index("uq_organizations_active_name_key", "name_key", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # name_key(name): set by the one writer (services/organizations.write_profiles).
    name_key: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    # The firm's group (migration 0017; the profile's `group` is its name).
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)

    offices: Mapped[list[Office]] = relationship(
        back_populates="organization",
        cascade="all, delete-orphan",
        order_by="Office.id",
    )
    skill_rows: Mapped[list[OrganizationSkill]] = relationship(
        cascade="all, delete-orphan", order_by="OrganizationSkill.position"
    )
    stats: Mapped[OrganizationStats] = relationship(
        cascade="all, delete-orphan", uselist=False, lazy="joined"
    )
    group_row: Mapped[Group | None] = relationship(lazy="joined")

    # Optimistic locking: every UPDATE checks and bumps `version`, so two concurrent
    # profile edits cannot silently overwrite each other.
    __mapper_args__ = {"version_id_col": version}

    @property
    def skills(self) -> list[str]:
        """Return the skill slugs in the order they were given."""
        return [row.slug for row in self.skill_rows]

    @property
    def group(self) -> str | None:
        """Return the name of the firm's group, or None."""
        return None if self.group_row is None else self.group_row.name

    @property
    def contact(self) -> dict[str, str | None] | None:
        """Return the firm's business contact ({name, email, phone}), None if it gave none."""
        if not (self.contact_name or self.contact_email or self.contact_phone):
            return None
        return {"name": self.contact_name, "email": self.contact_email,
                "phone": self.contact_phone}


class OrganizationSkill(Base):
    """One skill slug offered by one organization."""

    __tablename__ = "organization_skills"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class SkillAlias(Base):
    """Head office's other name for a skill (SPEC section 8): a need that names `alias` asks
    for `skill`. Both are slugs (scoring.slugify_skill); an alias is never a skill that firms
    offer (a merge re-points their tags and leaves the old slug here)."""

    __tablename__ = "skill_aliases"
    __table_args__ = (CheckConstraint("alias <> skill", name="not_itself"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), unique=True)
    skill: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every worker's match index reloads the aliases when this (or their count) moves.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Office(Base):
    """A place where an organization serves clients."""

    __tablename__ = "offices"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("service_radius_km > 0", name="radius_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    service_radius_km: Mapped[float] = mapped_column(Float, default=100.0)

    organization: Mapped[Organization] = relationship(back_populates="offices")


class OrganizationStats(Base):
    """Running referral counts of a receiving organization, kept apart from the profile row.

    They change with every referral move; keeping them here keeps the profile's `version`
    (and so the CRM's ETag) stable while referrals flow.
    """

    __tablename__ = "organization_stats"
    __table_args__ = (
        CheckConstraint("open_referrals >= 0", name="open_non_negative"),
        Index("ix_organization_stats_updated_at", "updated_at"),
    )

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    open_referrals: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
