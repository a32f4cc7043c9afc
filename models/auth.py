"""API keys for machine clients and users for the portal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

API_KEY_ROLES = ("admin", "crm", "partner")
USER_ROLES = ("admin", "partner")


class ApiKey(Base):
    """A bearer key; only its SHA-256 digest is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'crm', 'partner')", name="role"),
        CheckConstraint(
            "(role = 'partner') = (organization_id IS NOT NULL)", name="partner_has_organization"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(10))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the portal."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'partner')", name="role"),
        CheckConstraint(
            "(role = 'partner') = (organization_id IS NOT NULL)", name="partner_has_organization"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(10))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The member of staff this sign-in belongs to (SPEC section 9); admins may have none.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), unique=True)
    # A portal session carries the epoch it began in; signing out, a new password or
    # deactivation raises it, which ends every session of the user at once (migration 0006).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The portal's language and time zone the user chose (SPEC section 12; migration 0012):
    # kept here so that they follow the user to any browser. None: not chosen.
    language: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str | None] = mapped_column(String(40))
