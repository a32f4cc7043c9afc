"""Clients, referrals, their history and the monthly KPI targets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session, relationship

from models.base import Base, UTCDateTime, utcnow

REFERRAL_STATUSES = ("pending", "accepted", "declined", "withdrawn", "expired", "converted", "lost")
OPEN_STATUSES = ("pending", "accepted")


class Client(Base):
    """The firm being referred."""

    __tablename__ = "clients"
    __table_args__ = (
        # Name-only clients are unique by normalized name: two concurrent referrals of
        # "Acme Ltd" and "ACME" land on one client row.
        Index(
            "uq_clients_normalized_name_no_ref",
            "normalized_name",
            unique=True,
            sqlite_where=text("external_ref IS NULL"),
            postgresql_where=text("external_ref IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(String(200), index=True)
    # The CRM's id as it sent it (trimmed), for display; "the same CRM id" is judged on
    # external_ref_key, its case-folded form, which is unique ("CRM-400 " = "crm-400").
    external_ref: Mapped[str | None] = mapped_column(String(100))
    external_ref_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    # The place as given (city, country, address), with the coordinates it resolved to.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When its personal data was erased for good (services/erasure.py; migration 0013):
    # the name is then a placeholder, the CRM id, address and precise place are gone.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def location(self) -> dict[str, Any] | None:
        """The client's place as kept, or None if it was never given."""
        if self.latitude is None or self.longitude is None:
            return None
        return {"latitude": self.latitude, "longitude": self.longitude, "city": self.city,
                "country": self.country, "address": self.address}


class ClientSite(Base):
    """One of a client's work sites (SPEC section 8): a label and a place, as the firm that
    recorded it gave them. A firm uses and sees only the sites it recorded (head office: all);
    the place is personal data, like the client's own."""

    __tablename__ = "client_sites"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        # One site per label (case aside) for each firm's view of a client.
        Index("uq_client_sites_label", "client_id", "organization_id", "label_key",
              unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # The firm that recorded the site, and whose referrals may name it.
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    label_key: Mapped[str] = mapped_column(String(100))  # the label case-folded
    # The place as given (city, country, address), with the coordinates it resolved to.
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def location(self) -> dict[str, Any]:
        """The site's place as kept."""
        return {"latitude": self.latitude, "longitude": self.longitude, "city": self.city,
                "country": self.country, "address": self.address}


@dataclass(frozen=True, slots=True)
class NamedClient:
    """A referral's client as its referrer named it: the client's id, and the name, CRM id
    and place the referral was made with (never another firm's spelling or place of it)."""

    id: int
    name: str | None  # None for a reader the client's identity is withheld from
    external_ref: str | None
    latitude: float | None
    longitude: float | None
    city: str | None
    country: str | None
    address: str | None
    withheld: bool = False
    # The client's consent to being referred, as the referral recorded it (given_at, by).
    consent: dict[str, Any] | None = None

    @property
    def location(self) -> dict[str, Any] | None:
        """The place as the referrer gave it (only its city and country when withheld), or
        None."""
        if self.withheld:
            return {"latitude": None, "longitude": None, "city": self.city,
                    "country": self.country, "address": None}
        if self.latitude is None or self.longitude is None:
            return None
        return {"latitude": self.latitude, "longitude": self.longitude, "city": self.city,
                "country": self.country, "address": self.address}

    def withholding_identity(self) -> NamedClient:
        """The client as a reader who may not know who it is sees it (SPEC section 11): the
        city and country, no name, CRM id, address or coordinates."""
        consent = None if self.consent is None else {**self.consent, "by": None}
        return NamedClient(self.id, None, None, None, None, self.city, self.country, None,
                           withheld=True, consent=consent)


class ClientAsNamed:
    """The client as the one who recorded this row named it (a referral's referrer, a
    visit's salesperson): columns client_name ... client_address beside client_id, so that
    nobody is shown another firm's name, CRM id or place for the same client."""

    client_name: Mapped[str | None] = mapped_column(String(200))
    client_external_ref: Mapped[str | None] = mapped_column(String(100))
    client_latitude: Mapped[float | None] = mapped_column(Float)
    client_longitude: Mapped[float | None] = mapped_column(Float)
    client_city: Mapped[str | None] = mapped_column(String(100))
    client_country: Mapped[str | None] = mapped_column(String(2))
    client_address: Mapped[str | None] = mapped_column(String(300))

    # Set on a loaded row by the use case that hands it to a reader who may not know who the
    # client is (services/referrals.withhold_identities); never stored.
    identity_withheld = False
    # A row that records the client's consent (a referral) says so; others have none.
    client_consent: dict[str, Any] | None = None

    @property
    def named_client(self) -> NamedClient:
        """The client as named here: what the API and the portal show."""
        consent = self.client_consent
        if self.client_name is None:  # a row written before its migration filled them in
            client = self.client
            named = NamedClient(client.id, client.name, client.external_ref, client.latitude,
                                client.longitude, client.city, client.country, client.address,
                                consent=consent)
        else:
            named = NamedClient(self.client_id, self.client_name, self.client_external_ref,
                                self.client_latitude, self.client_longitude, self.client_city,
                                self.client_country, self.client_address, consent=consent)
        return named.withholding_identity() if self.identity_withheld else named


class Referral(ClientAsNamed, Base):
    """One client referred by one organization to another."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(
            "referrer_organization_id <> receiver_organization_id", name="distinct_parties"
        ),
        CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'withdrawn', 'expired',"
            " 'converted', 'lost')",
            name="status",
        ),
        # The database's own guard against double credit: one open referral per client.
        Index(
            "uq_referrals_open_client",
            "client_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'accepted')"),
            postgresql_where=text("status IN ('pending', 'accepted')"),
        ),
        Index("ix_referrals_referrer_created", "referrer_organization_id", "created_at"),
        Index("ix_referrals_receiver_created", "receiver_organization_id", "created_at"),
        Index("ix_referrals_status_created", "status", "created_at"),
        Index("ix_referrals_converted_at", "converted_at"),
        Index("ix_referrals_accepted_at", "accepted_at"),
        Index("ix_referrals_created_at", "created_at"),  # the monthly KPI (migration 0003)
        CheckConstraint("source_kind IN ('organization', 'client', 'acquaintance', 'visit')",
                        name="source_kind"),
        CheckConstraint("source_kind <> 'client' OR source_client_id IS NOT NULL",
                        name="client_source_names_client"),
        CheckConstraint("source_kind <> 'acquaintance' OR source_name IS NOT NULL",
                        name="acquaintance_source_named"),
        CheckConstraint("source_kind <> 'visit' OR (source_visit_id IS NOT NULL"
                        " AND source_lead_id IS NOT NULL)", name="visit_source_names_lead"),
        Index("ix_referrals_source_kind", "source_kind"),
        Index("ix_referrals_referred_by_person_id", "referred_by_person_id"),
        Index("ix_referrals_owner_person_id", "owner_person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    receiver_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    # The client's work site the referral is for, if it named one (SPEC section 8, migration
    # 0017): its place is then the client's place below; its label is copied as named.
    client_site_id: Mapped[int | None] = mapped_column(ForeignKey("client_sites.id"))
    client_site_label: Mapped[str | None] = mapped_column(String(100))
    # The client as the referrer named it (issue 11): a partner naming a client another firm
    # registered learns nothing of how that firm spelt or placed it (migration 0006).
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    match_score: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Where the client came from (SPEC section 9): a firm (the default), a current client,
    # an acquaintance, or a lead brought back from a visit; and who at each side.
    source_kind: Mapped[str] = mapped_column(String(12), default="organization")
    source_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    source_name: Mapped[str | None] = mapped_column(String(200))
    source_contact: Mapped[str | None] = mapped_column(String(300))
    source_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    source_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", use_alter=True))
    referred_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # Re-offer (SPEC section 11): the declined or expired referral this one refers the client
    # on from. Unique: the database's own guard that a referral is re-offered at most once,
    # even when two moves race. chain_root_id is the chain's first referral (None on the
    # first itself), so a page of referrals reads its chains in one indexed query (chains_of).
    previous_referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"),
                                                             unique=True)
    chain_root_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    # Whether a decline or an expiry re-offers the client (AUTO_REOFFER by default; rows
    # written before migration 0011 true, the default).
    auto_reoffer: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The client's consent to being referred (SPEC section 11, migration 0013): when it was
    # given and who gave or recorded it. Kept on the referral, not on the clients row: consent
    # is given to one referrer for one referral (a client another firm also refers gave that
    # firm its own, or none), and the clients row is shared by every firm that names the client,
    # whose data no other firm may see (ClientAsNamed). A re-offer carries its chain's consent.
    client_consent_given_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_consent_by: Mapped[str | None] = mapped_column(String(200))

    @property
    def client_consent(self) -> dict[str, Any] | None:  # type: ignore[override]
        """The consent recorded with this referral ({given_at, by}), or None."""
        if self.client_consent_given_at is None:
            return None
        return {"given_at": self.client_consent_given_at, "by": self.client_consent_by}

    # The chain's ids, first to last, set on loaded rows by the use case that reads them
    # (services/referrals.attach_chains, one query a page); never stored.
    chain_ids = None

    @property
    def chain(self) -> list[int]:
        """The ids of the chain of re-offers this referral belongs to, first to last."""
        if self.chain_ids is None:
            session = object_session(self)
            self.chain_ids = ([self.id] if session is None
                              else chains_of(session, [self])[self.id])
        return self.chain_ids

    client: Mapped[Client] = relationship(lazy="joined", foreign_keys=[client_id])

    @property
    def client_site(self) -> dict[str, Any] | None:
        """The client's site the referral is for ({id, label}), or None; None too for a
        reader the client's identity is withheld from (a label can name the client)."""
        if self.client_site_id is None or self.identity_withheld:
            return None
        return {"id": self.client_site_id, "label": self.client_site_label}

    @property
    def source(self) -> dict[str, Any]:
        """Where the client came from, with the fields of its kind (SPEC section 9)."""
        kind = self.source_kind or "organization"
        if kind == "client":
            return {"kind": kind, "client_id": self.source_client_id}
        if kind == "acquaintance":
            if self.identity_withheld:  # who introduced the client says who it is
                return {"kind": kind, "name": None}
            found = {"kind": kind, "name": self.source_name}
            return found if self.source_contact is None else {
                **found, "contact": self.source_contact}
        if kind == "visit":
            return {"kind": kind, "visit_id": self.source_visit_id,
                    "lead_id": self.source_lead_id}
        return {"kind": kind}

    history: Mapped[list[ReferralEvent]] = relationship(
        order_by="ReferralEvent.id", cascade="all", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}


def chains_of(session: Session, referrals: list[Referral]) -> dict[int, list[int]]:
    """Return each referral's chain (ids, first to last) by referral id, in one query.

    A re-offer is made after the referral it follows, so ids ascend along a chain.
    """
    roots = {referral.chain_root_id or referral.id for referral in referrals}
    if not roots:
        return {}
    root = func.coalesce(Referral.chain_root_id, Referral.id)
    members: dict[int, list[int]] = {}
    for referral_id, root_id in session.execute(
        select(Referral.id, root)
        .where(or_(Referral.id.in_(roots), Referral.chain_root_id.in_(roots)))
        .order_by(Referral.id)
    ):
        members.setdefault(root_id, []).append(referral_id)
    return {referral.id: members.get(referral.chain_root_id or referral.id, [referral.id])
            for referral in referrals}


class ReferralEvent(Base):
    """One step in a referral's append-only history."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)


TARGET_SCOPES = ("organization", "department", "person")
PROPOSAL_STATUSES = ("proposed", "agreed", "countered", "declined", "withdrawn")


class KpiTarget(Base):
    """The agreed number of new-client credits of one organization, department or person for
    one month (SPEC section 10): only an agreed value is a KPI row's target."""

    __tablename__ = "kpi_targets"
    __table_args__ = (
        CheckConstraint("new_clients >= 0", name="non_negative"),
        CheckConstraint("scope IN ('organization', 'department', 'person')", name="scope"),
        Index("ix_kpi_targets_month", "month"),  # the monthly KPI (migration 0003)
    )

    scope: Mapped[str] = mapped_column(String(12), primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "YYYY-MM"
    # The organization the scope belongs to (the scope itself, for an organization).
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    new_clients: Mapped[int] = mapped_column(Integer)
    agreed_by: Mapped[str] = mapped_column(String(200))
    # The proposal agreed; None for head office's direct setting (PUT /kpi/targets).
    proposal_id: Mapped[int | None] = mapped_column(
        ForeignKey("kpi_target_proposals.id", use_alter=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KpiTargetProposal(Base):
    """A target one side proposes and the other agrees to, counters or declines.

    A counter is a new proposal from the other side (`counter_of_id`), so a scope's history
    for a month is its chain of proposals. At most one proposal per scope and month is open.
    """

    __tablename__ = "kpi_target_proposals"
    __table_args__ = (
        CheckConstraint("new_clients >= 0", name="non_negative"),
        CheckConstraint("scope IN ('organization', 'department', 'person')", name="scope"),
        CheckConstraint("status IN ('proposed', 'agreed', 'countered', 'declined',"
                        " 'withdrawn')", name="status"),
        # The database's guard against two open proposals (two counters at once).
        Index("uq_kpi_target_proposals_open", "scope", "scope_id", "month", unique=True,
              sqlite_where=text("status = 'proposed'"),
              postgresql_where=text("status = 'proposed'")),
        Index("ix_kpi_target_proposals_scope", "scope", "scope_id", "month"),
        Index("ix_kpi_target_proposals_organization", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    scope_id: Mapped[int] = mapped_column(Integer)
    month: Mapped[str] = mapped_column(String(7))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    new_clients: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="proposed")
    # Which side proposed: the holder (the person, the department's head, the firm) or the
    # counterpart (the manager, the head's manager, head office).
    side: Mapped[str] = mapped_column(String(12))
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    counter_of_id: Mapped[int | None] = mapped_column(ForeignKey("kpi_target_proposals.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class IdempotencyRecord(Base):
    """The first response to a request sent with an Idempotency-Key, per API key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KpiMonth(Base):
    """A month head office has closed (SPEC section 10): its KPI is frozen from then on."""

    __tablename__ = "kpi_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "YYYY-MM"
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[str] = mapped_column(String(200))


class KpiMonthSnapshot(Base):
    """The KPI rows of one level of a closed month, as computed when it closed: every
    organization's, for the whole month. A closed month's exports are made from them."""

    __tablename__ = "kpi_month_snapshots"

    month: Mapped[str] = mapped_column(ForeignKey("kpi_months.month"), primary_key=True)
    level: Mapped[str] = mapped_column(String(12), primary_key=True)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class KpiCorrection(Base):
    """A later change to a closed month's figures, booked in the first open month: the
    difference for one row (an organization's, a department's or a person's) of that month."""

    __tablename__ = "kpi_corrections"
    __table_args__ = (Index("ix_kpi_corrections_month", "month"),
                      Index("ix_kpi_corrections_correction_of", "correction_of"))

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # the open month it lands in
    correction_of: Mapped[str] = mapped_column(ForeignKey("kpi_months.month"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    # The row corrected: its level, and the department's or person's id (None for a firm's).
    level: Mapped[str] = mapped_column(String(12), server_default="organization")
    row_id: Mapped[int | None] = mapped_column(Integer)
    referral_ids: Mapped[list[int]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    # The figures changed, by column name: {"new_client_credits": -1, ...}.
    deltas: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))


class KpiMonthExport(Base):
    """The export bytes of one level and format of a closed month, for every organization,
    as made when it closed: what head office and the CRM are served (SPEC section 10)."""

    __tablename__ = "kpi_month_exports"

    month: Mapped[str] = mapped_column(ForeignKey("kpi_months.month"), primary_key=True)
    level: Mapped[str] = mapped_column(String(12), primary_key=True)
    format: Mapped[str] = mapped_column(String(4), primary_key=True)
    # The bytes zlib-compressed: a month's JSON of 887 KiB is 43 KiB so, read from
    # PostgreSQL in well under a ms instead of about 8 ms, inflated in 0.7 ms (bench_kpi.py).
    body_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes served (inflated)
