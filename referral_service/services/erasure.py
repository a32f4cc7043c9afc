"""Erasing a client's personal data for good (SPEC section 11): DELETE /clients/{id},
`flask erase-client`, `flask purge-personal-data`.

What goes: the client's name (a placeholder "erased client #ID" takes its place, so lists
still render), its CRM id (and the key "the same client" is judged on, so a later referral
with that id makes a new client), its address and its precise place (coordinates are rounded
to COORDINATE_DECIMALS, a city's precision, never a street's), and every copy of them: each
referral's and visit's own copy of the client as named (ClientAsNamed), the leads that are
this client (name, CRM id, contact, how the visited client knows them, address), the
consent's `by`, and the values wherever a text or a JSON document repeats them: referral
notes, descriptions and history reasons, visit notes, the audit log's diffs, the webhook
outbox's payloads (pending and delivered) and the idempotency records' stored answers, and
the geocoder's cache of the address. The rows themselves stay, with their ids, statuses,
dates, city and country: every count and KPI figure is the same after as before.

Not touched: a closed month's KPI rows and export bytes (they hold no client data: the KPI
rows are firms', departments' and people's), and a KPI correction's reason, which head office
types and a closed month's export may carry byte for byte; an erasure reports the
corrections whose reason repeats a value (`Erasure.kpi_reasons_kept`) instead.

Each erasure is an audit entry (`client.erase`: who, when, the client's id and creation time,
no personal value). Those entries are the erasure register: `register` lists them and
`replay` erases them again in a database restored from a backup taken before them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Text, cast, exists, false, func, or_, select, update
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    AuditEntry,
    Client,
    ClientSite,
    GeocodeCacheEntry,
    IdempotencyRecord,
    KpiCorrection,
    Lead,
    OutboxEvent,
    Referral,
    ReferralEvent,
    Visit,
    utcnow,
)
from referral_service.services import audit, unit_of_work
from referral_service.services.auth import Principal
from referral_service.services.errors import Forbidden, NotFound
from referral_service.texts import N_

PLACEHOLDER = "erased client #{id}"
ERASED = "erased"  # the consent's `by` once erased
# Coordinates keep one decimal (about 11 km): the client's city for KPI and matching, never
# its street.
COORDINATE_DECIMALS = 1
# A value shorter than this is replaced in a text only where the whole text is the value:
# "AB" inside other words is not the client.
MIN_SUBSTRING_LENGTH = 4
ACTION = "client.erase"
PURGE_BATCH = 200  # clients listed at a time; each is erased in its own transaction
# The free texts people type, where a client's name or contact may be repeated.
FREE_TEXTS = (Referral.description, Referral.note, ReferralEvent.reason, Visit.notes,
              Visit.commitment_description, Visit.empty_handed_reason, Lead.description,
              Lead.relationship, Lead.status_reason)


@dataclass(frozen=True)
class Erasure:
    """What one erasure did: the client, whether it was erased already (nothing done), the
    rows it changed, and the KPI corrections whose reason repeats an erased value (kept)."""

    client_id: int
    already_erased: bool
    rows_changed: int = 0
    kpi_reasons_kept: tuple[int, ...] = ()


def placeholder(client_id: int) -> str:
    """The name an erased client shows."""
    return PLACEHOLDER.format(id=client_id)


def erase(*, session: Session, client_id: int, actor: Principal) -> Erasure:
    """Erase one client's personal data for good (head office only; 404 if no such client).

    Idempotent: a client erased already is left as it is (`already_erased`).
    """
    if actor.role != "admin":
        raise Forbidden(N_("Only head office (admin) may erase a client's personal data."))

    def work() -> Erasure:
        client = _locked(session, client_id)
        if client is None:
            raise NotFound(N_("Client %(client_id)s does not exist.", client_id=client_id))
        return _erase(session, client, actor)

    return unit_of_work.run(session, work)


def purge(*, session: Session, older_than_days: int, actor: Principal,
          now: datetime | None = None) -> int:
    """Erase every client with nothing open (no pending or accepted referral, no open lead)
    and no activity (a referral made or moved, a visit, a lead) for `older_than_days`; return
    how many were erased. Idempotent: an erased client is not counted again."""
    if actor.role != "admin":
        raise Forbidden(N_("Only head office (admin) may erase clients' personal data."))
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    total, after = 0, 0

    def candidates() -> list[int]:
        return list(session.scalars(select(Client.id).where(Client.id > after, _idle(cutoff))
                                    .order_by(Client.id).limit(PURGE_BATCH)))

    def erase_if_idle(client_id: int) -> int:
        client = _locked(session, client_id)
        # Asked again under the client's lock: a referral made meanwhile keeps it.
        if client is None or session.scalar(
                select(Client.id).where(Client.id == client_id, _idle(cutoff))) is None:
            return 0
        _erase(session, client, actor)
        return 1

    while True:
        ids = unit_of_work.run(session, candidates)
        # One transaction a client: an erasure scans the audit log and the outbox (about
        # 0.5-1 s at 100k rows each), and SQLite's writers wait for the write lock meanwhile.
        for client_id in ids:
            total += unit_of_work.run(session, lambda client_id=client_id:
                                      erase_if_idle(client_id))
        if len(ids) < PURGE_BATCH:
            return total
        after = ids[-1]


@dataclass(frozen=True)
class Registered:
    """One line of the erasure register: the client's id and creation time (so a replay
    never erases another client that got the same id), and when it was erased."""

    client_id: int
    client_created_at: str
    erased_at: str

    def line(self) -> str:
        """The register's text line: three tab-separated fields."""
        return f"{self.client_id}\t{self.client_created_at}\t{self.erased_at}"

    @classmethod
    def parse(cls, line: str) -> Registered:
        """Read a line written by `line` (ValueError if it is not one)."""
        client_id, created, erased = line.rstrip("\n").split("\t")
        return cls(int(client_id), created, erased)


def register(*, session: Session) -> list[Registered]:
    """Return the erasure register: every erasure the audit log holds, oldest first."""
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)
                              .order_by(AuditEntry.id))
    return [Registered(int(entry.object_id), entry.changes.get("client_created_at", ""),
                       entry.at.isoformat()) for entry in entries]


def replay(*, session: Session, entries: Iterable[Registered], actor: Principal
           ) -> tuple[int, int]:
    """Erase again each registered client this database holds unerased (after a restore);
    return (erased, skipped). A client whose creation time differs is another client with
    the same id: skipped."""
    erased = skipped = 0
    for entry in entries:
        client = session.get(Client, entry.client_id)
        if (client is None or client.erased_at is not None
                or client.created_at.isoformat() != entry.client_created_at):
            skipped += 1
            continue
        erase(session=session, client_id=entry.client_id, actor=actor)
        erased += 1
    return erased, skipped


# ------------------------------------------------------------------------------- the work


def _locked(session: Session, client_id: int) -> Client | None:
    # Lock order: the client's row first, as every referral of the client does.
    return session.scalars(
        select(Client).where(Client.id == client_id).with_for_update()
        .execution_options(populate_existing=True)).one_or_none()


def _idle(cutoff: datetime) -> Any:
    """Whether a client (the row of the outer query) is unerased, holds nothing open and saw
    no activity since `cutoff`."""
    return (Client.erased_at.is_(None) & (Client.created_at < cutoff)
            & ~exists().where(Referral.client_id == Client.id, or_(
                Referral.status.in_(OPEN_STATUSES), Referral.updated_at >= cutoff))
            & ~exists().where(Visit.client_id == Client.id, or_(
                Visit.visited_at >= cutoff, Visit.created_at >= cutoff))
            & ~exists().where(Lead.client_id == Client.id, or_(
                Lead.status == "open", Lead.updated_at >= cutoff)))


def _erase(session: Session, client: Client, actor: Principal) -> Erasure:
    if client.erased_at is not None:
        return Erasure(client.id, already_erased=True)
    now = utcnow()
    name = placeholder(client.id)
    referrals = list(session.scalars(select(Referral).where(Referral.client_id == client.id)
                                     .execution_options(populate_existing=True)).unique())
    visits = list(session.scalars(select(Visit).where(Visit.client_id == client.id)
                                  .execution_options(populate_existing=True)).unique())
    leads = list(session.scalars(select(Lead).where(Lead.client_id == client.id)
                                 .execution_options(populate_existing=True)))
    sites = list(session.scalars(select(ClientSite).where(ClientSite.client_id == client.id)
                                 .order_by(ClientSite.id)))
    scrub = _Scrubber(name, client.id, _personal_values(client, referrals, visits, leads)
                      | {site.address for site in sites if site.address})
    addresses = {a for a in [client.address, *(r.client_address for r in referrals),
                             *(v.client_address for v in visits), *(lead.address for lead in leads),
                             *(site.address for site in sites)]
                 if a}
    changed = 0

    client.name, client.normalized_name = name, f"#erased-{client.id}"  # never a typed name's
    client.external_ref = client.external_ref_key = client.address = None
    client.latitude, client.longitude = _rounded(client.latitude), _rounded(client.longitude)
    client.erased_at = now
    for referral in referrals:
        _update(session, Referral, referral.id, {
            **_named_columns(referral, name),
            "client_consent_by": None if referral.client_consent_by is None else ERASED})
        changed += 1
    for visit in visits:
        _update(session, Visit, visit.id, _named_columns(visit, name))
        changed += 1
    for lead in leads:
        _update(session, Lead, lead.id, {
            "name": name, "external_ref": None, "contact": "", "relationship": "",
            "address": None, "latitude": _rounded(lead.latitude),
            "longitude": _rounded(lead.longitude)})
        changed += 1
    # The client's work sites keep their city, country and a city-precise place; a label
    # that repeats a value ("Acme North plant") becomes the site's number, in the referrals
    # that copied it too.
    for site in sites:
        label = site.label if scrub.text(site.label) == site.label else f"site #{site.id}"
        site.address, site.label, site.label_key = None, label, label.casefold()
        site.latitude, site.longitude = _rounded(site.latitude), _rounded(site.longitude)
        changed += 1
        session.execute(update(Referral).where(Referral.client_site_id == site.id).values(
            client_site_label=label, updated_at=Referral.updated_at)
            .execution_options(synchronize_session=False))
    # Every free text that repeats a value, whoever's row it is (a visit's notes naming the
    # lead it brought back, another referral's note).
    for column in FREE_TEXTS:
        model = column.class_
        for row_id, value in session.execute(
                select(model.id, column).where(scrub.found_in(column, as_json=False))).all():
            scrubbed = scrub.text(value)
            if scrubbed != value:
                _update(session, model, row_id, {column.key: scrubbed})
                changed += 1
    for model, column in ((AuditEntry, AuditEntry.changes), (OutboxEvent, OutboxEvent.payload),
                          (IdempotencyRecord, IdempotencyRecord.response_body)):
        for row in session.scalars(select(model).where(scrub.found_in(cast(column, Text)))):
            scrubbed = scrub.document(getattr(row, column.key))
            if scrubbed != getattr(row, column.key):  # a LIKE finds "Acme" in "Acmeco" too
                setattr(row, column.key, scrubbed)
                changed += 1
    if addresses:
        for entry in session.scalars(select(GeocodeCacheEntry).where(or_(*(
                func.lower(GeocodeCacheEntry.key).contains(a.lower(), autoescape=True)
                for a in addresses)))):
            session.delete(entry)
            changed += 1
    kept = tuple(session.scalars(select(KpiCorrection.id).where(
        scrub.found_in(KpiCorrection.reason, as_json=False)).order_by(KpiCorrection.id)))
    session.flush()
    audit.record(session=session, actor=actor, action=ACTION, object_type="client",
                 object_id=client.id, changes={
                     "client_created_at": client.created_at.isoformat(),
                     "rows_changed": changed, "kpi_reasons_kept": list(kept)})
    return Erasure(client.id, already_erased=False, rows_changed=changed,
                   kpi_reasons_kept=kept)


def _update(session: Session, model: type, row_id: int, values: dict[str, Any]) -> None:
    """An ORM-enabled UPDATE of one row: its dates stay as they were (no onupdate), and a
    versioned row's version moves on, so an ETag read before is stale."""
    kept = {"updated_at": model.updated_at} if hasattr(model, "updated_at") else {}
    if hasattr(model, "version"):
        kept["version"] = model.version + 1
    session.execute(update(model).where(model.id == row_id).values(**values, **kept)
                    .execution_options(synchronize_session=False))


def _named_columns(row: Referral | Visit, name: str) -> dict[str, Any]:
    """A referral's or visit's copy of the client as named, erased (city, country kept)."""
    return {"client_name": name, "client_external_ref": None, "client_address": None,
            "client_latitude": _rounded(row.client_latitude),
            "client_longitude": _rounded(row.client_longitude)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, COORDINATE_DECIMALS)


def _personal_values(client: Client, referrals: list[Referral], visits: list[Visit],
                     leads: list[Lead]) -> set[str]:
    """Every text that says who the client is, as stored anywhere: names, CRM ids, contacts,
    addresses and the consent's `by`."""
    found = [client.name, client.external_ref, _street(client.address, client.city)]
    for row in (*referrals, *visits):
        found += [row.client_name, row.client_external_ref,
                  _street(row.client_address, row.client_city)]
    for referral in referrals:
        found.append(referral.client_consent_by)
    for lead in leads:
        found += [lead.name, lead.external_ref, lead.contact, _street(lead.address, lead.city)]
    return {value.strip() for value in found if value and value.strip()}


def _street(address: str | None, city: str | None) -> str | None:
    """The address, unless it only names the city ("Kaohsiung", "Kaohsiung, TW"): a city kept
    by the erasure is no value to replace in every other text that names it."""
    if not address or not city:
        return address
    folded, town = address.strip().casefold(), city.strip().casefold()
    return None if folded == town or folded.startswith(town + ",") else address


class _Scrubber:
    """Replaces the client's personal values in texts and JSON documents."""

    def __init__(self, name: str, client_id: int, values: set[str]) -> None:
        self.name = name
        self.client_id = client_id
        # Longest first, so that "Acme Ltd" goes before "Acme". A value shorter than
        # MIN_SUBSTRING_LENGTH ("AB", a CRM id "42") is too common to replace in other texts:
        # it goes from the client's own rows and bodies only.
        self.values = sorted(values, key=len, reverse=True)
        self.searched = [value for value in self.values if len(value) >= MIN_SUBSTRING_LENGTH]
        self.folded = {value.casefold() for value in self.searched}
        self.pattern = _pattern(self.searched)

    def found_in(self, column: Any, *, as_json: bool = True) -> Any:
        """SQL: the column's text (a JSON document's as stored) holds one of the values (a
        short one in a JSON document: as a whole string, so the client's bodies are found)."""
        wanted = [_as_json_text(value) if len(value) >= MIN_SUBSTRING_LENGTH
                  else f'"{_as_json_text(value)}"' for value in self.values] if as_json \
            else self.searched
        return or_(false(), *(func.lower(column).contains(text.lower(), autoescape=True)
                              for text in wanted))

    def text(self, value: str | None) -> str | None:
        """The text with every value in it replaced by the placeholder."""
        if not value:
            return value
        if value.strip().casefold() in self.folded:
            return self.name
        return value if self.pattern is None else self.pattern.sub(self.name, value)

    def document(self, value: Any) -> Any:
        """The JSON document with every value replaced, and a body of this client (a dict
        under "client" with its id) stripped of its CRM id, address, coordinates and consent
        `by`. Another client's body (a dict under "client" with another id, a lead's with
        another client_id) is left whole: "Acme" erased leaves "Acme Industries" as it is."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.document(item) for item in value]
        if not isinstance(value, dict) or self._another(value.get("client_id")):
            return value
        scrubbed = {key: item if key == "client" and isinstance(item, dict)
                    and self._another(item.get("id")) else self.document(item)
                    for key, item in value.items()}
        client = scrubbed.get("client")
        if isinstance(client, dict) and client.get("id") == self.client_id:
            scrubbed["client"] = self._client_body(client)
        if scrubbed.get("client_id") == self.client_id and "name" in scrubbed:
            scrubbed = self._lead_body(scrubbed)  # a lead that is this client
        return scrubbed

    def _lead_body(self, lead: dict[str, Any]) -> dict[str, Any]:
        body = {**lead, "name": self.name}
        for key, erased in (("external_ref", None), ("contact", ""), ("relationship", "")):
            if key in body:
                body[key] = erased
        if isinstance(body.get("location"), dict):
            body["location"] = _erased_place(body["location"])
        return body

    def _another(self, client_id: Any) -> bool:
        """Whether an id found in a document names another client."""
        return (isinstance(client_id, int) and not isinstance(client_id, bool)
                and client_id != self.client_id)

    def _client_body(self, client: dict[str, Any]) -> dict[str, Any]:
        body = {**client, "name": self.name}
        if "external_ref" in body:
            body["external_ref"] = None
        if isinstance(body.get("location"), dict):
            body["location"] = _erased_place(body["location"])
        if isinstance(body.get("consent"), dict) and body["consent"].get("by") is not None:
            body["consent"] = {**body["consent"], "by": ERASED}
        return body


def _erased_place(location: dict[str, Any]) -> dict[str, Any]:
    """A place in a document as the erasure leaves it: no address, a city's precision."""
    return {**location, "address": None, **{
        key: _rounded(location[key]) for key in ("latitude", "longitude")
        if isinstance(location.get(key), int | float)}}


def _as_json_text(value: str) -> str:
    """The value as a JSON document stores it inside a string (escapes, no quotes)."""
    return orjson.dumps(value).decode()[1:-1]


def _pattern(values: list[str]) -> re.Pattern[str] | None:
    """A pattern finding any of the values (at least MIN_SUBSTRING_LENGTH long) in a text,
    in any case, never inside a longer Latin word or number: "Acme" is found in "Acme's buyer"
    and "Acme Industries", not in "Acmeco". A CJK name, written without spaces, is found
    wherever it stands."""
    alternatives = []
    for value in values:
        if len(value) < MIN_SUBSTRING_LENGTH:
            continue
        before = r"(?<![A-Za-z0-9])" if _LATIN.match(value[0]) else ""
        after = r"(?![A-Za-z0-9])" if _LATIN.match(value[-1]) else ""
        alternatives.append(before + re.escape(value) + after)
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


_LATIN = re.compile(r"[A-Za-z0-9]")
