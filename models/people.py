"""The company's own sales force: departments, people, client visits and the leads they bring.

A person, a department, a visit and a lead each belong to one organization, and everything
they point at belongs to the same one: the composite foreign keys on (organization_id, id)
make the database refuse a manager, a department or a visit of another firm.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow
from models.referral import Client, ClientAsNamed

LEAD_STATUSES = ("open", "won", "lost", "referred")
REFERRAL_SOURCE_KINDS = ("organization", "client", "acquaintance", "visit")


class Department(Base):
    """A department of one organization, under an optional parent, with an optional head."""

    __tablename__ = "departments"
    __table_args__ = (
        UniqueConstraint("organization_id", "id", name="uq_departments_organization_id_id"),
        UniqueConstraint("organization_id", "name", name="uq_departments_organization_id_name"),
        UniqueConstraint("organization_id", "external_ref_key",
                         name="uq_departments_organization_id_external_ref_key"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        ForeignKeyConstraint(["organization_id", "parent_id"],
                             ["departments.organization_id", "departments.id"],
                             name="fk_departments_parent_same_organization"),
        ForeignKeyConstraint(["organization_id", "head_person_id"],
                             ["people.organization_id", "people.id"],
                             name="fk_departments_head_same_organization", use_alter=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(Integer)
    head_person_id: Mapped[int | None] = mapped_column(Integer)
    external_ref: Mapped[str | None] = mapped_column(String(100))
    external_ref_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Person(Base):
    """A member of staff of one organization; a portal user is a person who can sign in."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("organization_id", "id", name="uq_people_organization_id_id"),
        UniqueConstraint("organization_id", "external_ref_key",
                         name="uq_people_organization_id_external_ref_key"),
        CheckConstraint("manager_id IS NULL OR manager_id <> id", name="not_own_manager"),
        ForeignKeyConstraint(["organization_id", "department_id"],
                             ["departments.organization_id", "departments.id"],
                             name="fk_people_department_same_organization"),
        ForeignKeyConstraint(["organization_id", "manager_id"],
                             ["people.organization_id", "people.id"],
                             name="fk_people_manager_same_organization"),
        Index("ix_people_manager_id", "manager_id"),
        Index("ix_people_department_id", "department_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    # The CRM's id as sent (trimmed); "the same person" is judged on its case-folded key.
    external_ref: Mapped[str | None] = mapped_column(String(100))
    external_ref_key: Mapped[str | None] = mapped_column(String(100))
    department_id: Mapped[int | None] = mapped_column(Integer)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Visit(ClientAsNamed, Base):
    """One client visit by one salesperson: an order commitment, leads, or a stated reason."""

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("organization_id", "id", name="uq_visits_organization_id_id"),
        ForeignKeyConstraint(["organization_id", "person_id"],
                             ["people.organization_id", "people.id"],
                             name="fk_visits_person_same_organization"),
        # Empty-handed is allowed only with its reason (SPEC section 9).
        CheckConstraint("NOT empty_handed OR empty_handed_reason IS NOT NULL",
                        name="empty_handed_has_reason"),
        CheckConstraint("commitment_amount IS NULL OR commitment_amount >= 0",
                        name="commitment_amount_non_negative"),
        Index("ix_visits_person_visited", "person_id", "visited_at"),
        Index("ix_visits_organization_visited", "organization_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    person_id: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    commitment_description: Mapped[str | None] = mapped_column(Text)
    commitment_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    commitment_currency: Mapped[str | None] = mapped_column(String(3))
    commitment_expected_on: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    empty_handed: Mapped[bool] = mapped_column(Boolean, default=False)
    empty_handed_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(lazy="joined")
    leads: Mapped[list[Lead]] = relationship(
        primaryjoin="Lead.visit_id == Visit.id", foreign_keys="Lead.visit_id",
        order_by="Lead.id", viewonly=True)

    @property
    def commitment(self) -> dict | None:
        """The order commitment brought back, or None."""
        if self.commitment_description is None:
            return None
        return {"description": self.commitment_description, "amount": self.commitment_amount,
                "currency": self.commitment_currency, "expected_on": self.commitment_expected_on}


class Lead(Base):
    """A potential client a visited client named: open until won, lost or referred on."""

    __tablename__ = "leads"
    __table_args__ = (
        ForeignKeyConstraint(["organization_id", "visit_id"],
                             ["visits.organization_id", "visits.id"],
                             name="fk_leads_visit_same_organization"),
        ForeignKeyConstraint(["organization_id", "person_id"],
                             ["people.organization_id", "people.id"],
                             name="fk_leads_person_same_organization"),
        CheckConstraint("status IN ('open', 'won', 'lost', 'referred')", name="status"),
        CheckConstraint("(status = 'referred') = (referral_id IS NOT NULL)",
                        name="referred_has_referral"),
        UniqueConstraint("referral_id", name="uq_leads_referral_id"),
        Index("ix_leads_person_status", "person_id", "status"),
        Index("ix_leads_organization_status", "organization_id", "status"),
        Index("ix_leads_visit_id", "visit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    visit_id: Mapped[int] = mapped_column(Integer)
    # The salesperson who brought it back and follows it up.
    person_id: Mapped[int] = mapped_column(Integer)
    # A lead is a client for attribution.
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    external_ref: Mapped[str | None] = mapped_column(String(100))
    contact: Mapped[str] = mapped_column(String(300), default="")
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    relationship: Mapped[str] = mapped_column(String(300), default="")
    # The place of the need, as typed, with the coordinates it resolved to.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="open")
    status_reason: Mapped[str | None] = mapped_column(Text)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def location(self) -> dict | None:
        """The lead's place as kept, or None if none was given."""
        if self.latitude is None or self.longitude is None:
            return None
        return {"latitude": self.latitude, "longitude": self.longitude, "city": self.city,
                "country": self.country, "address": self.address}
