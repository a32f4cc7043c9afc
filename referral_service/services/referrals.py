"""Referrals: record one, move it through its lifecycle, read, list and expire them.

Double credit and over-capacity are refused by the database, not by a read-then-write in
Python. Recording a referral, in one transaction:

1. the client's row is found or created and locked (SELECT ... FOR UPDATE; INSERT ... ON
   CONFLICT DO NOTHING), so that referrals of one client run one after the other;
2. the attribution check then sees every committed referral of the client (a duplicate client
   is a 409 with the holder's id whatever the receiver's capacity), and the partial unique
   index uq_referrals_open_client backs it up if anything slips past;
3. a referral handing on a visit's lead (source kind `visit`) then locks the lead and checks
   it is still open, so the same lead referred twice at once gives one referral and a 409;
4. the referral's row is inserted only if the receiver has room, in the statement that raises
   the receiver's open count (which also locks that count until commit).

Re-offer (SPEC section 11): a decline or an expiry that the referral allows refers the client
on to the next best firm in the same transaction as the move (`reoffer`), through the same
creation path (`_create`), so no declined or expired referral is ever committed without the
re-offer it was due. The unique previous_referral_id is the database's guard that a referral
is re-offered once; the move's lock on the referral makes a second decline wait and find it
declined (409). A decline that re-offers locks the client before the receiver's count (the
order above), then takes the new receiver's count; two declines taking two firms' counts in
opposite orders can deadlock on PostgreSQL, and the unit of work reruns the loser.

On SQLite, BEGIN IMMEDIATE serializes write transactions anyway. Locks are always taken in
that order (client row, then the lead, then the receiver's count; a move takes its referral,
then the count, then the kpi_months rows of the closed months it corrects; no path takes a
count before a client or a referral, so there is no cycle),
and a deadlock or serialization failure on PostgreSQL reruns the whole transaction.

The webhook payloads are the referral as the API shows it (schemas.referrals.ReferralSchema).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, case, false, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Client,
    ClientSite,
    Lead,
    Organization,
    OrganizationStats,
    Person,
    Referral,
    ReferralEvent,
    chains_of,
    utcnow,
)
from referral_service.adapters import sql
from referral_service.adapters.geocoding import Geocoder
from referral_service.schemas.referrals import dump_referral
from referral_service.services import (
    audit,
    client_sites,
    clients,
    events,
    idempotency,
    matching,
    months,
    places,
    unit_of_work,
)
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.kpi import month_range
from referral_service.services.organizations import normalize_skills
from referral_service.services.pages import page_of
from referral_service.texts import N_
from scoring import Weights

# The lifecycle: every allowed move; the statuses not listed here are final. A conversion made
# by mistake is reversed by head office alone, with a reason (REVERSAL, SPEC section 10).
MOVES: dict[str, tuple[str, ...]] = {
    "pending": ("accepted", "declined", "withdrawn", "expired"),
    "accepted": ("converted", "lost"),
    "converted": ("lost",),
}
REVERSAL = ("converted", "lost")
RECEIVER_MOVES = frozenset({"accepted", "declined", "converted", "lost"})
REFERRER_MOVES = frozenset({"withdrawn"})
STAFF_MOVES = frozenset({"accepted", "declined", "withdrawn", "expired", "converted", "lost"})
TRANSITION_STATUSES = ("accepted", "declined", "withdrawn", "expired", "converted", "lost")
# The orders of list_ (GET /referrals `sort`, the portal's column headers); "-" is descending.
SORTS = {"created_at": Referral.created_at, "updated_at": Referral.updated_at,
         "status": Referral.status, "client": func.lower(Referral.client_name)}
# Closed referrals the performance score counts as failures (withdrawn counts for neither side).
FAILED_STATUSES = frozenset({"declined", "lost", "expired"})

EXPIRY_BATCH = 500
# The moves after which a referral is re-offered (SPEC section 11), and how many of the best
# firms a re-offer tries in rank order when one turns out full or gone since the index saw it.
REOFFER_STATUSES = frozenset({"declined", "expired"})
REOFFER_CANDIDATES = 10
# Who a re-offer is made by, in its history and audit entries.
REOFFERER = Principal(name="re-offer", role="admin")


@dataclass(frozen=True)
class Reoffers:
    """How a decline or expiry re-offers (SPEC section 11): the worker's match index, the
    default weights and geocoder, REOFFER_MAX_HOPS, the attribution window, and a test-only
    fault hook run between the move and its re-offer (extensions.reoffers builds it)."""

    index: matching.IndexSource
    weights: Weights
    geocoder: Geocoder
    max_hops: int
    attribution_window_days: int
    after_move: Callable[[], None] | None = None


def webhook_payload(referral: Referral) -> dict[str, Any]:
    """Return the referral as webhook events carry it: the body of GET /referrals/{id}
    (ReferralSchema's dump, compiled: schemas.referrals.dump_referral)."""
    return dump_referral(referral)


# ---------------------------------------------------------------------------------- create


@dataclass(frozen=True, slots=True)
class Recorded:
    """What record_referral stands for: the referral, and its body: the referral as
    ReferralSchema shows it, made once for the referral.created event (webhook_payload) and
    answered as it is; on an idempotent repeat, the body the first request was answered with
    (SPEC section 3: the repeat gets it again)."""

    referral: Referral
    body: dict[str, Any]

    @property
    def id(self) -> int:
        """The referral's id."""
        return self.referral.id


def record_referral(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder,
    attribution_window_days: int, idempotency_key: str | None = None,
    auto_reoffer_default: bool = True, require_consent: bool = False,
) -> Recorded:
    """Record a referral; 409 if the client is already attributed or the receiver is full.

    `auto_reoffer` not given is `auto_reoffer_default` (AUTO_REOFFER). With
    `require_consent` (REQUIRE_CLIENT_CONSENT), a client without `consent` is a 422.

    With an Idempotency-Key (per API key), a repeat with the same body creates nothing and
    gets the first response; the same key with another body is a 422. Only a success is
    kept: a refused request (409, 422) may be sent again with its key.
    """
    if require_consent and not (data.get("client") or {}).get("consent"):
        raise ValidationFailed(CONSENT_REQUIRED, {"client": {"consent": [CONSENT_REQUIRED]}})
    place = _client_place(data, geocoder)
    site = _named_site(session, data)
    if site is not None:
        place = client_sites.place_of(site)
    new_site = _new_site(data, geocoder)
    if new_site is not None:
        place = new_site.place
    referral, body = idempotency.once(
        session=session, actor=actor, key=idempotency_key,
        digest=lambda: idempotency.request_hash(data),
        create=lambda: _create(session, {"auto_reoffer": auto_reoffer_default, **data},
                               actor, place, attribution_window_days, site=site,
                               new_site=new_site),
        load=lambda referral_id: session.get(Referral, referral_id))
    return Recorded(referral, body)


def _create(
    session: Session, data: dict[str, Any], actor: Principal,
    place: places.ResolvedPlace | None, window_days: int, previous: Referral | None = None,
    site: ClientSite | None = None, new_site: NewSite | None = None,
) -> tuple[Referral, dict[str, Any]]:
    """Write the referral, its first history entry, audit entry and event.

    Return the referral and its JSON (the event's payload, and what a repeat of an idempotent
    request gets). A re-offer names the `previous` referral: its client, as named, its source,
    client site and who referred it are copied from it, and it joins its chain. A `site`
    (the referrer's, named by client_site_id) must be the client's; a `new_site` is recorded
    for the referrer and the client found or created here, in the same transaction.
    """
    referrer_id = data["referrer_organization_id"]
    receiver_id = data["receiver_organization_id"]
    if actor.is_partner and referrer_id != actor.organization_id:
        raise Forbidden(N_("A partner may record referrals only with itself as the referrer."))
    if referrer_id == receiver_id:
        raise ValidationFailed(N_("A firm cannot refer a client to itself."), {
            "receiver_organization_id": [N_("Must differ from referrer_organization_id.")]})
    skills = _skills(data.get("skills") or [])
    now = utcnow()
    client_data = data["client"]
    # Lock order: the client's row, then the lead, then the receiver's count (module
    # docstring).
    if previous is None:
        client, created = clients.find_or_create(session=session, name=client_data["name"],
                                                 external_ref=client_data.get("external_ref"),
                                                 place=place)
    else:
        client, created = _locked_client(session, previous.client_id), False
    if site is not None:
        client_sites.check_client(site, client.id)
    # A client created in this transaction has no referral anyone could see yet.
    holder = None if created else _attributed_referral_id(session, client.id, now, window_days)
    if holder is not None:
        raise _attribution_conflict(client, holder)
    if new_site is not None:
        site = client_sites.record_for_referral(
            session=session, client_id=client.id, organization_id=referrer_id,
            label=new_site.label, place=new_site.place)
    if previous is None:
        source, lead = _source(session, data.get("source"), referrer_id, client)
        named = {**clients.as_named(client_data, place), **_consent_columns(client_data)}
        referred_by = _referred_by(session, data, actor, referrer_id, lead)
        chain: dict[str, Any] = {"previous_referral_id": None, "chain_root_id": None}
    else:
        source = {column: getattr(previous, column) for column in _NO_SOURCE}
        named, lead, referred_by = _named_of(previous), None, previous.referred_by_person_id
        chain = {"previous_referral_id": previous.id,
                 "chain_root_id": previous.chain_root_id or previous.id}
    values = {
        "referrer_organization_id": referrer_id, "receiver_organization_id": receiver_id,
        "client_id": client.id, **named, "skills": skills,
        "description": data.get("description") or "",
        "note": data.get("note") or "", "match_score": data.get("match_score"),
        "status": "pending", "created_at": now, "updated_at": now, "version": 1, **source,
        "referred_by_person_id": referred_by, "owner_person_id": None, **chain,
        "auto_reoffer": data.get("auto_reoffer", True),
    }
    values.update(_site_columns(site, previous))
    referral_id = _insert(session, values, client, window_days, created=created)
    if referral_id is None:
        _no_room(session, referrer_id, receiver_id, now)
        referral_id = _insert(session, values, client, window_days, created=created)
        if referral_id is None:
            raise _at_capacity(receiver_id)
    # The object as a read would give it, without reading: the row's values, its client and
    # its history, which starts with "pending".
    first_values = {"referral_id": referral_id, "status": "pending", "at": now,
                    "actor": actor.name, "reason": None if previous is None else
                    f"Re-offered: referral {previous.id} was {previous.status}."}
    first = sql.built(ReferralEvent, first_values)
    referral = sql.built(Referral, {"id": referral_id, **values, **_NOT_YET}, client=client,
                         history=[first])
    referral.chain_ids = [referral_id] if previous is None else [*previous.chain, referral_id]
    body = webhook_payload(referral)
    # The history entry, the audit entry and the event go in together (one statement on
    # PostgreSQL); the entry goes last so that its id comes back.
    first.id = sql.insert_rows(session, [
        audit.entry(actor=actor, action="referral.create", object_type="referral",
                    object_id=referral_id,
                    changes={"referrer_organization_id": referrer_id,
                             "receiver_organization_id": receiver_id, "client_id": client.id,
                             "status": "pending", **({} if previous is None else {
                                 "previous_referral_id": previous.id})}),
        events.outbox_row(type_="referral.created", payload=body),
        (ReferralEvent, first_values),
    ])
    sql.as_loaded(session, first, referral)
    if lead is not None:
        # The lead is handed on: it holds the referral's id from now on (SPEC section 9).
        lead.status, lead.referral_id, lead.updated_at = "referred", referral_id, now
        session.flush()
    return referral, body


_NO_SOURCE = {"source_kind": "organization", "source_client_id": None, "source_name": None,
              "source_contact": None, "source_visit_id": None, "source_lead_id": None}
_NAMED_COLUMNS = ("name", "external_ref", "latitude", "longitude", "city", "country",
                  "address")
CONSENT_REQUIRED = N_("The client's consent to being referred is required here "
                      "(REQUIRE_CLIENT_CONSENT): give %(field)s with given_at and by.",
                      field="client.consent")


def _consent_columns(client_data: dict[str, Any]) -> dict[str, Any]:
    """The referral's columns of the client's consent, as given, in UTC (none: null)."""
    consent = client_data.get("consent") or {}
    given_at = consent.get("given_at")
    return {"client_consent_given_at": given_at and given_at.astimezone(UTC),
            "client_consent_by": (consent.get("by") or "").strip() or None}


def _named_of(referral: Referral) -> dict[str, Any]:
    """The client-as-named columns of a referral, for its re-offer (a row older than them:
    the client's own), with the consent it recorded."""
    consent = {"client_consent_given_at": referral.client_consent_given_at,
               "client_consent_by": referral.client_consent_by}
    if referral.client_name is None:
        return {**consent, **{f"client_{name}": getattr(referral.client, name)
                              for name in _NAMED_COLUMNS}}
    return {**consent, **{f"client_{name}": getattr(referral, f"client_{name}")
                          for name in _NAMED_COLUMNS}}


def _locked_client(session: Session, client_id: int) -> Client:
    """Return the client, locked for the rest of the transaction (the module's lock order)."""
    return session.scalars(
        select(Client).where(Client.id == client_id).with_for_update()
        .execution_options(populate_existing=True)).one()


def _source(
    session: Session, source: dict[str, Any] | None, referrer_id: int, client: Client
) -> tuple[dict[str, Any], Lead | None]:
    """Return the referral's source columns, checked, and the lead it hands on (locked)."""
    kind = (source or {}).get("kind", "organization")
    if kind == "client":
        introducer = source["client_id"]
        if introducer == client.id:
            raise ValidationFailed(N_("A client cannot introduce itself."), {
                "source": {"client_id": [N_("Name the current client who introduced them.")]}})
        if session.get(Client, introducer) is None:
            raise ValidationFailed(N_("The introducing client does not exist."), {
                "source": {"client_id": [N_("No client %(introducer)s.", introducer=introducer)]}})
        return {**_NO_SOURCE, "source_kind": kind, "source_client_id": introducer}, None
    if kind == "acquaintance":
        return {**_NO_SOURCE, "source_kind": kind, "source_name": source["name"].strip(),
                "source_contact": source.get("contact")}, None
    if kind == "visit":
        lead = _lead_to_hand_on(session, source["visit_id"], source["lead_id"], referrer_id,
                                client)
        return {**_NO_SOURCE, "source_kind": kind, "source_visit_id": lead.visit_id,
                "source_lead_id": lead.id}, lead
    return dict(_NO_SOURCE), None


def _lead_to_hand_on(
    session: Session, visit_id: int, lead_id: int, referrer_id: int, client: Client
) -> Lead:
    """Lock and return an open lead of the referrer's visit for this client.

    Locked after the client (the module's lock order), so that two referrals of one lead run
    one after the other and the second finds it referred.
    """
    lead = session.scalars(
        select(Lead).where(Lead.id == lead_id).with_for_update()
        .execution_options(populate_existing=True)).one_or_none()
    if lead is None or lead.visit_id != visit_id or lead.organization_id != referrer_id:
        raise ValidationFailed(N_("The source names no lead of the referrer's visit."), {
            "source": {"lead_id": [N_("No lead %(lead_id)s of visit %(visit_id)s at the referrer.",
                                      lead_id=lead_id, visit_id=visit_id)]}})
    if lead.status != "open":
        raise lead_not_open(lead)
    if lead.client_id != client.id:
        raise ValidationFailed(N_("The referral's client is not the lead's."), {
            "client": {"name": [N_("Lead %(lead_id)s is %(name)r.",
                                   lead_id=lead_id, name=lead.name)]}})
    return lead


def lead_not_open(lead: Lead) -> Conflict:
    """The 409 of referring a lead that is no longer open (won, lost or referred already)."""
    return Conflict(N_("Lead %(id)s is %(status)s: only an open lead is referred.",
                       id=lead.id, status=lead.status),
                    current_status=lead.status, existing_referral_id=lead.referral_id)


def _referred_by(
    session: Session, data: dict[str, Any], actor: Principal, referrer_id: int,
    lead: Lead | None,
) -> int | None:
    """Return who at the referrer refers: as given, else the lead's salesperson, else the
    person acting in the portal."""
    person_id = data.get("referred_by_person_id")
    if person_id is None:
        if lead is not None:
            return lead.person_id
        return actor.person_id if actor.organization_id == referrer_id else None
    _check_staff_of(session, person_id, referrer_id, "referred_by_person_id", "referrer")
    return person_id


def _check_staff_of(
    session: Session, person_id: int, organization_id: int, field: str, side: str
) -> None:
    person = session.get(Person, person_id)
    if person is None or person.organization_id != organization_id:
        raise ValidationFailed(N_("The person is not one of the %(side)s's staff.", side=side), {
            field: [N_("No person %(person_id)s at the %(side)s.",
                       person_id=person_id, side=side)]})


_NOT_YET = {f"{status}_at": None for status in TRANSITION_STATUSES}


def _check_parties(session: Session, referrer_id: int, receiver_id: int) -> None:
    """Refuse a referral naming an unknown firm or an inactive receiver (422)."""
    active = dict(session.execute(
        select(Organization.id, Organization.active)
        .where(Organization.id.in_((referrer_id, receiver_id)))
    ).all())
    errors: dict[str, list[str]] = {}
    if referrer_id not in active:
        errors["referrer_organization_id"] = [N_("No organization %(referrer_id)s.",
                                                 referrer_id=referrer_id)]
    if receiver_id not in active:
        errors["receiver_organization_id"] = [N_("No organization %(receiver_id)s.",
                                                 receiver_id=receiver_id)]
    elif not active[receiver_id]:
        errors["receiver_organization_id"] = [N_("The receiver is inactive.")]
    if errors:
        raise ValidationFailed(N_("The referral names an organization it cannot use."), errors)


def _skills(names: list[str]) -> list[str]:
    try:
        return normalize_skills(names)
    except ValueError:
        raise ValidationFailed(N_("A skill has no letters or digits."),
                               {"skills": [N_("Every skill needs letters or digits.")]}) from None


def _named_site(session: Session, data: dict[str, Any]) -> ClientSite | None:
    """The client site a referral names (client_site_id): the referrer's (422 otherwise),
    whose place is then the client's; naming client.location too is a 422."""
    site_id = data.get("client_site_id")
    if site_id is None:
        return None
    if (data.get("client") or {}).get("location"):
        raise ValidationFailed(N_("Give the client's location or a client site, not both."), {
            "client_site_id": [N_("The site's place is the client's: leave client.location "
                                  "out.")]})
    return client_sites.for_referral(session=session, site_id=site_id,
                                     referrer_id=data["referrer_organization_id"])


@dataclass(frozen=True)
class NewSite:
    """A site of the client that a referral records with it (new_client_site), resolved."""

    label: str
    place: places.ResolvedPlace


def _new_site(data: dict[str, Any], geocoder: Geocoder) -> NewSite | None:
    """The new client site a referral carries, its place resolved; its place is the client's
    of the referral, so naming client.location or client_site_id too is a 422."""
    given = data.get("new_client_site")
    if given is None:
        return None
    if data.get("client_site_id") is not None:
        raise ValidationFailed(N_("Name a recorded client site or a new one, not both."), {
            "new_client_site": [N_("Leave client_site_id out, or this.")]})
    if (data.get("client") or {}).get("location"):
        raise ValidationFailed(N_("Give the client's location or a new client site, not "
                                  "both."), {
            "new_client_site": [N_("The new site's place is the client's: leave "
                                   "client.location out.")]})
    place = places.resolve(given["location"], geocoder, field="new_client_site.location")
    return NewSite(given["label"].strip(), place)


def _site_columns(site: ClientSite | None, previous: Referral | None) -> dict[str, Any]:
    """The referral's client site columns: the site named, else its previous referral's."""
    if site is not None:
        return {"client_site_id": site.id, "client_site_label": site.label}
    if previous is not None:
        return {"client_site_id": previous.client_site_id,
                "client_site_label": previous.client_site_label}
    return {"client_site_id": None, "client_site_label": None}


def _client_place(data: dict[str, Any], geocoder: Geocoder) -> places.ResolvedPlace | None:
    """Return the client's place as given, with its coordinates (services/places)."""
    place = (data.get("client") or {}).get("location")
    if not place:
        return None
    return places.resolve(place, geocoder, field="client.location")


def _attributed_referral_id(
    session: Session, client_id: int, now: datetime, window_days: int
) -> int | None:
    holder = attributed_referral(session, client_id, now, window_days)
    return None if holder is None else holder.id


def attributed_referral(session: Session, client_id: int, now: datetime, window_days: int
                        ) -> Row[Any] | None:
    """Return (id, client_id, referrer_organization_id, receiver_organization_id) of the
    referral holding the client's credit: open, or converted within the window; None if none
    does."""
    return attributed_referrals(session, [client_id], now, window_days).get(client_id)


def attributed_referrals(session: Session, client_ids: list[int], now: datetime,
                         window_days: int) -> dict[int, Row[Any]]:
    """attributed_referral of several clients in one query, by client id (only those held)."""
    cutoff = now - timedelta(days=window_days)
    open_first = Referral.status.in_(OPEN_STATUSES).desc()
    rows = session.execute(
        select(Referral.id, Referral.client_id, Referral.referrer_organization_id,
               Referral.receiver_organization_id)
        .where(Referral.client_id.in_(client_ids),
               or_(Referral.status.in_(OPEN_STATUSES),
                   and_(Referral.status == "converted", Referral.converted_at >= cutoff)))
        .order_by(Referral.client_id, open_first, Referral.id.desc())
    ).all()
    held: dict[int, Row[Any]] = {}
    for row in rows:
        held.setdefault(row.client_id, row)  # the first of each client's: open, then newest
    return held


def _attribution_conflict(client: Client, referral_id: int) -> Conflict:
    # Never the client's stored name: the caller may be a partner naming, by a guessed CRM
    # id, a client another firm registered (issue 11); the id is what it needs.
    return Conflict(
        N_("The client is already attributed to referral "
           "%(referral_id)s; the first firm to register the client "
           "keeps the credit.", referral_id=referral_id),
        existing_referral_id=referral_id,
    )


def _insert(session: Session, values: dict[str, Any], client: Client, window_days: int, *,
            created: bool) -> int | None:
    """Insert the referral, counted as one more open referral of its receiver; None, writing
    nothing, when the conditions of that count fail (_no_room says which). The receiver is
    active and has room, the referrer exists: one statement checks and writes at once.

    A client that existed before may hold an open referral that a concurrent request just
    made: the partial unique index refuses the second, a 409 naming the first."""
    if created:
        # A client created in this transaction has no referral anyone could see yet.
        return sql.insert_referral(session, values)
    try:
        with session.begin_nested():
            return sql.insert_referral(session, values)
    except IntegrityError:
        holder = _attributed_referral_id(session, client.id, values["created_at"], window_days)
        if holder is None:
            raise
        raise _attribution_conflict(client, holder) from None


def _no_room(session: Session, referrer_id: int, receiver_id: int, now: datetime) -> None:
    """Say why a referral could not be counted: an unknown or inactive firm (422), or a full
    receiver (409); return only for a receiver written without its counts (older data),
    which it starts, so that the referral can be counted now."""
    _check_parties(session, referrer_id, receiver_id)
    if session.get(OrganizationStats, receiver_id) is not None:
        raise _at_capacity(receiver_id)
    session.add(OrganizationStats(organization_id=receiver_id, open_referrals=0, won=0,
                                  failed=0, updated_at=now))
    session.flush()


def _at_capacity(receiver_id: int) -> Conflict:
    return Conflict(N_("The receiver is at capacity: it has as many open referrals as it "
                       "accepts; choose another firm."), receiver_organization_id=receiver_id)


# ------------------------------------------------------------------------------ lifecycle


def allowed_moves(referral: Referral, actor: Principal) -> list[str]:
    """Return the statuses this actor may move the referral to now."""
    mine = _role_moves(referral, actor)
    return [status for status in MOVES.get(referral.status, ()) if status in mine
            and ((referral.status, status) != REVERSAL or actor.role == "admin")]


def _role_moves(referral: Referral, actor: Principal) -> frozenset[str]:
    if actor.is_staff:
        return STAFF_MOVES
    if actor.organization_id == referral.receiver_organization_id:
        return RECEIVER_MOVES
    if actor.organization_id == referral.referrer_organization_id:
        return REFERRER_MOVES
    return frozenset()


def move_referral(
    *, session: Session, referral_id: int, status: str, reason: str | None, actor: Principal,
    expected_version: int | None = None, owner_person_id: int | None = None,
    reoffers: Reoffers | None = None,
) -> Referral:
    """Move a referral to `status`; 409 if the lifecycle forbids it, 403 if the role does.

    With `reoffers`, a decline or expiry the referral allows re-offers the client in the same
    transaction (`reoffer`); a match index still warming up is then a 503, nothing moved.

    Reversing a conversion (converted -> lost) is head office's alone and needs a reason
    (422 without one). A move that alters a closed month's figures books its corrections
    in the same transaction (months.book_corrections).

    On acceptance the receiver names who owns the client (`owner_person_id`, a person of the
    receiver; by default the person accepting in the portal).
    """

    def work() -> Referral:
        referral = _locked(session, referral_id, actor)
        if expected_version is not None and referral.version != expected_version:
            raise PreconditionFailed(N_("The referral changed since it was read (stale If-Match)."))
        if (referral.status, status) == REVERSAL:
            if actor.role != "admin":
                raise Forbidden(N_("Only head office may reverse a conversion."))
            if not (reason or "").strip():
                raise ValidationFailed(N_("Reversing a conversion needs a reason."), {
                    "reason": [N_("Say why the conversion is reversed.")]})
        elif status in STAFF_MOVES and status not in _role_moves(referral, actor):
            raise Forbidden(N_("As %(role)s you may not move a referral to %(status)r.",
                               role=_role_name(referral, actor), status=status))
        if status not in MOVES.get(referral.status, ()):
            raise InvalidTransition(
                N_("A %(current)s referral cannot become %(status)s; allowed: %(allowed)s.",
                   current=referral.status, status=status,
                   allowed=", ".join(MOVES.get(referral.status, ())) or N_("none (final)")),
                current_status=referral.status,
            )
        if status == "accepted":
            referral.owner_person_id = _owner(session, referral, actor, owner_person_id)
        reoffering = (reoffers is not None and status in REOFFER_STATUSES
                      and referral.auto_reoffer)
        if reoffering:
            _locked_client(session, referral.client_id)  # before the count: the lock order
        previous = referral.status
        referral.chain_ids = None  # read afresh: another transaction may have grown it
        _apply_move(session, referral, status, reason, actor, utcnow())
        months.book_corrections(session=session, referrals=[referral],
                                reason=_correction_reason(previous, status, reason),
                                actor=actor)
        if reoffering:
            reoffer(session=session, referral=referral, reoffers=reoffers)
        return referral

    moved = unit_of_work.run(session, work)
    withhold_identities([moved], actor)
    return moved


def reason_required(referral: Referral, status: str) -> bool:
    """Return whether moving the referral to `status` needs a reason (a reversal does)."""
    return (referral.status, status) == REVERSAL


def _correction_reason(previous: str, status: str, reason: str | None) -> str:
    """The reason a closed month's correction carries: the reversal's own, a fixed text for
    an expiry, else the move's reason or the move itself."""
    if status == "expired":
        return months.EXPIRED_AFTER_CLOSE
    if (previous, status) == REVERSAL:
        return (reason or "").strip()
    return (reason or "").strip() or f"Moved from {previous} to {status} after the month closed."


def _owner(
    session: Session, referral: Referral, actor: Principal, owner_person_id: int | None
) -> int | None:
    receiver = referral.receiver_organization_id
    if owner_person_id is None:
        return actor.person_id if actor.organization_id == receiver else None
    _check_staff_of(session, owner_person_id, receiver, "owner_person_id", "receiver")
    return owner_person_id


def _role_name(referral: Referral, actor: Principal) -> str:
    if actor.organization_id == referral.receiver_organization_id:
        return N_("the receiver")
    return N_("the referrer")


def _apply_move(
    session: Session, referral: Referral, status: str, reason: str | None, actor: Principal,
    now: datetime,
) -> None:
    previous = referral.status
    referral.status = status
    setattr(referral, f"{status}_at", now)
    referral.updated_at = now
    referral.history.append(ReferralEvent(status=status, at=now, actor=actor.name,
                                          reason=reason))
    _count_move(session, referral.receiver_organization_id, previous, status, now)
    session.flush()
    audit.record(session=session, actor=actor, action="referral.move", object_type="referral",
                 object_id=referral.id,
                 changes={"status": {"from": previous, "to": status}, "reason": reason})
    events.emit(session=session, type_="referral.status_changed",
                payload=webhook_payload(referral))


def _count_move(
    session: Session, receiver_id: int, previous: str, status: str, now: datetime
) -> None:
    """Keep the receiver's running counts (read by matching) in step with one move."""
    values: dict[str, Any] = {"updated_at": now}
    if previous in OPEN_STATUSES and status not in OPEN_STATUSES:
        values["open_referrals"] = case(
            (OrganizationStats.open_referrals > 0, OrganizationStats.open_referrals - 1),
            else_=0,
        )
    if status == "converted":
        values["won"] = OrganizationStats.won + 1
    elif status in FAILED_STATUSES:
        values["failed"] = OrganizationStats.failed + 1
    if previous == "converted":  # a reversal: the win was none
        values["won"] = case((OrganizationStats.won > 0, OrganizationStats.won - 1), else_=0)
    session.execute(
        update(OrganizationStats).where(OrganizationStats.organization_id == receiver_id)
        .values(**values).execution_options(synchronize_session=False)
    )


def expire_pending(*, session: Session, older_than_days: int, now: datetime | None = None,
                   reoffers: Reoffers | None = None) -> int:
    """Expire pending referrals created more than `older_than_days` ago; return how many.

    With `reoffers`, each one that allows it is re-offered in the same transaction.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=older_than_days)
    reason = f"No answer within {older_than_days} days."

    def batch() -> int:
        rows = session.scalars(
            select(Referral)
            .where(Referral.status == "pending", Referral.created_at < cutoff)
            .order_by(Referral.id).limit(EXPIRY_BATCH)
            .with_for_update(of=Referral, skip_locked=True)
            .execution_options(populate_existing=True)
        ).unique().all()
        attach_chains(session, rows)
        # By receiver: two runs at once then lock the receivers' counts in the same order.
        for referral in sorted(rows, key=lambda r: (r.receiver_organization_id, r.id)):
            _apply_move(session, referral, "expired", reason, SYSTEM, now)
        # A referral made in a month closed since: its month's figures, corrected if changed.
        months.book_corrections(session=session, referrals=rows,
                                reason=months.EXPIRED_AFTER_CLOSE, actor=SYSTEM)
        if reoffers is not None:
            for referral in rows:
                if referral.auto_reoffer:
                    reoffer(session=session, referral=referral, reoffers=reoffers)
        return len(rows)

    total = 0
    while True:
        done = unit_of_work.run(session, batch)
        total += done
        if done < EXPIRY_BATCH:
            return total


def reoffer(*, session: Session, referral: Referral, reoffers: Reoffers) -> Referral | None:
    """Refer the client of a referral just declined or expired on to the next best firm not
    yet tried (SPEC section 11), inside the caller's unit of work; return the new referral.

    The match runs for the stored need (skills, description) and the client's place as
    named, leaving out the referrer and every firm of the chain, best first; a firm full or
    gone since the index saw it is passed over (its capacity is taken exactly as for any
    referral). The new referral has the same referrer, source, referred_by_person_id and
    client, the chain's previous_referral_id and chain_root_id, and emits referral.created
    and referral.reoffered. None, with nothing written, when the chain ends: REOFFER_MAX_HOPS
    re-offers made, no place or no need to match on, no firm left, or the client held by
    another referral.
    """
    chain = chains_of(session, [referral])[referral.id]
    referral.chain_ids = chain
    if chain[-1] != referral.id or len(chain) - 1 >= reoffers.max_hops:
        return None
    if reoffers.after_move is not None:
        reoffers.after_move()
    place = _stored_place(referral)
    if place is None or not (referral.skills or (referral.description or "").strip()):
        return None  # nothing to match on
    tried = set(session.scalars(select(Referral.receiver_organization_id)
                                .where(Referral.id.in_(chain))))
    ranking = matching.match(
        index=reoffers.index, actor=REOFFERER, geocoder=reoffers.geocoder,
        default_weights=reoffers.weights, request={
            "location": place.as_dict(), "skills": list(referral.skills or ()),
            "description": referral.description or "", "limit": REOFFER_CANDIDATES,
            "exclude_organization_ids": sorted(tried),
            "referrer_organization_id": referral.referrer_organization_id})
    data: dict[str, Any] = {
        "referrer_organization_id": referral.referrer_organization_id, "client": {},
        "skills": list(referral.skills or ()), "description": referral.description,
        "note": referral.note, "auto_reoffer": True}
    for candidate in ranking.candidates:
        data.update(receiver_organization_id=candidate.organization_id,
                    match_score=candidate.score)
        try:
            with session.begin_nested():
                new, body = _create(session, data, REOFFERER, place,
                                    reoffers.attribution_window_days, previous=referral)
        except Conflict as error:
            if "existing_referral_id" in error.extra:  # another referral holds the client
                return None
            continue  # full since the index looked
        except ValidationFailed:
            continue  # deactivated or removed since the index looked
        events.emit(session=session, type_="referral.reoffered", payload=body)
        referral.chain_ids = [*chain, new.id]
        return new
    return None


def _stored_place(referral: Referral) -> places.ResolvedPlace | None:
    """The client's place as the referral named it (else as the client row holds it)."""
    if referral.client_latitude is not None and referral.client_longitude is not None:
        return places.ResolvedPlace(referral.client_latitude, referral.client_longitude,
                                    referral.client_city, referral.client_country,
                                    referral.client_address)
    client = referral.client
    if client.latitude is None or client.longitude is None:
        return None
    return places.ResolvedPlace(client.latitude, client.longitude, client.city, client.country,
                                client.address)


def attach_chains(session: Session, referrals: list[Referral]) -> None:
    """Set each referral's chain (ids, first to last) for its body, in one query."""
    chains = chains_of(session, referrals)
    for referral in referrals:
        referral.chain_ids = chains[referral.id]


# ---------------------------------------------------------------------------------- reads


def get(*, session: Session, referral_id: int, actor: Principal) -> Referral:
    """Return one referral the caller is a party to (staff: any)."""
    referral = session.get(Referral, referral_id)
    if referral is None or not _visible(referral, actor):
        raise NotFound(N_("Referral %(referral_id)s does not exist.", referral_id=referral_id))
    attach_chains(session, [referral])
    withhold_identities([referral], actor)
    return referral


def withhold_identities(referrals: Iterable[Referral], actor: Principal) -> None:
    """Need to know (SPEC section 11): a receiver that has not accepted a referral sees the
    need, the skills and the client's city and country, not who the client is (name, CRM id,
    address, coordinates, the acquaintance who introduced them); once it accepts, all. The
    referrer and head office always see all. Marks the loaded rows (named_client, source)."""
    if not actor.is_partner:
        return
    for referral in referrals:
        if (referral.receiver_organization_id == actor.organization_id
                and referral.referrer_organization_id != actor.organization_id
                and referral.accepted_at is None):
            referral.identity_withheld = True


def _withheld_sql(actor: Principal):
    """withhold_identities's rule as SQL: true for the rows whose client the actor may not
    know (never for staff)."""
    if not actor.is_partner:
        return false()
    return and_(Referral.receiver_organization_id == actor.organization_id,
                Referral.referrer_organization_id != actor.organization_id,
                Referral.accepted_at.is_(None))


def _locked(session: Session, referral_id: int, actor: Principal) -> Referral:
    referral = session.scalars(
        select(Referral).where(Referral.id == referral_id)
        .with_for_update(of=Referral).execution_options(populate_existing=True)
    ).unique().one_or_none()
    if referral is None or not _visible(referral, actor):
        raise NotFound(N_("Referral %(referral_id)s does not exist.", referral_id=referral_id))
    return referral


def _visible(referral: Referral, actor: Principal) -> bool:
    return actor.is_staff or actor.organization_id in (
        referral.referrer_organization_id, referral.receiver_organization_id)


def list_(
    *, session: Session, actor: Principal, page: int, page_size: int,
    organization_id: int | None = None, role: str | None = None, status: str | None = None,
    month: str | None = None, source_kind: str | None = None, person_id: int | None = None,
    client: str | None = None, sort: str = "-created_at",
) -> tuple[list[Referral], int]:
    """Return one page of the referrals the caller may see, in `sort` order (SORTS; newest
    first by default), and the total; `client` finds the client's name as named, in any case."""
    query = select(Referral)
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            return [], 0
        organization_id = actor.organization_id
    # `role` says which side organization_id is matched on (a partner's is its own); with no
    # organization there is no side to narrow: every referral has a referrer and a receiver.
    # (Refusing it instead was a cross-parameter rule OpenAPI 3.0 cannot state.)
    if organization_id is not None:
        as_referrer = Referral.referrer_organization_id == organization_id
        as_receiver = Referral.receiver_organization_id == organization_id
        query = query.where({"referrer": as_referrer, "receiver": as_receiver}.get(
            role or "", or_(as_referrer, as_receiver)))
    if status is not None:
        query = query.where(Referral.status == status)
    if source_kind is not None:
        query = query.where(Referral.source_kind == source_kind)
    if person_id is not None:
        query = query.where(or_(Referral.referred_by_person_id == person_id,
                                Referral.owner_person_id == person_id))
    if month is not None:
        start, end = month_range(month)
        query = query.where(Referral.created_at >= start, Referral.created_at < end)
    withheld = _withheld_sql(actor)
    if client:  # never found by a name the caller may not know
        query = query.where(func.lower(Referral.client_name).contains(
            client.lower(), autoescape=True), not_(withheld))
    key = sort.removeprefix("-")
    # A withheld name sorts as no name (last either way), so the order gives nothing away.
    column = (case((withheld, None), else_=SORTS[key]) if key == "client" else SORTS[key])
    descending = sort.startswith("-")
    order = column.desc() if descending else column.asc()
    if key == "client":  # dates and statuses are never null: keep their indexes' order
        order = order.nulls_last()
    found, total = page_of(session, query, order,
                           Referral.id.desc() if descending else Referral.id.asc(),
                           page=page, page_size=page_size)
    attach_chains(session, found)
    withhold_identities(found, actor)
    return found, total
