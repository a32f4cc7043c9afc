"""Clients being referred: name normalization and race-safe find-or-create.

"The same client" is the one with the same `external_ref` when both sides have one (compared
trimmed and case-folded), else the one with the same normalized name (case, punctuation and
company suffixes ignored).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, utcnow
from referral_service.adapters import sql
from referral_service.services.errors import Conflict, ValidationFailed
from referral_service.services.places import ResolvedPlace, columns_of
from referral_service.texts import N_

MAX_ATTEMPTS = 5
NORMALIZED_NAME_LENGTH = 200  # clients.normalized_name
EXTERNAL_REF_LENGTH = 100  # clients.external_ref_key

# Legal-form words dropped from the end of a name, compared after case folding and with
# punctuation removed ("Co., Ltd." -> "co", "ltd"; "L.L.C." -> "llc").
LEGAL_SUFFIX_WORDS = frozenset({
    "ltd", "limited", "inc", "incorporated", "co", "company", "corp", "corporation", "gmbh",
    "llc", "llp", "lp", "plc", "ag", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab",
    "as", "kk", "pte", "pty", "bhd", "sdn", "tbk", "jsc", "pvt", "kg", "mbh",
})
# CJK legal forms, written without spaces: longest first so that 股份有限公司 goes whole.
CJK_SUFFIXES = ("股份有限公司", "有限責任公司", "有限责任公司", "有限公司", "株式会社",
                "有限会社", "合同会社", "(股)公司", "（股）公司", "公司")
CJK_PREFIXES = ("株式会社", "有限会社", "合同会社")
# A period after a single letter joins an initialism: "A.B.C." -> "ABC".
_INITIAL_DOT = re.compile(r"(?<!\w)(\w)\.")
_WORD = re.compile(r"\w+")


def normalize_name(name: str) -> str:
    """Return the comparable form of a client's name."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _INITIAL_DOT.sub(r"\1", text)
    words = [w.replace("_", "") for w in _WORD.findall(text)]
    words = [w for w in words if w]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIX_WORDS:
        words.pop()
    joined = "".join(words)
    stripped = _strip_cjk(joined)
    # Case folding and NFKC can lengthen a name ("ß" -> "ss"); keep what the column holds.
    return (stripped or joined)[:NORMALIZED_NAME_LENGTH]


def _strip_cjk(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for suffix in CJK_SUFFIXES:
            bare = suffix.replace("(", "").replace(")", "").replace("（", "").replace("）", "")
            for form in {suffix, bare}:
                if text.endswith(form) and len(text) > len(form):
                    text = text[: -len(form)]
                    changed = True
        for prefix in CJK_PREFIXES:
            if text.startswith(prefix) and len(text) > len(prefix):
                text = text[len(prefix):]
                changed = True
    return text


def ref_key(external_ref: str | None) -> str | None:
    """Return the comparable form of a CRM id: trimmed and case-folded ("CRM-400 " = "crm-400")."""
    trimmed = (external_ref or "").strip()
    return trimmed.casefold()[:EXTERNAL_REF_LENGTH] or None


def find(*, session: Session, name: str, external_ref: str | None) -> Client | None:
    """Return the existing client that is the same as (name, external_ref), or None."""
    # The SELECT lives with the fast paths (adapters/sql.py): a plain row, made a Client.
    return sql.same_client(session, normalize_name(name), ref_key(external_ref), lock=False)


def find_or_create(
    *, session: Session, name: str, external_ref: str | None = None,
    place: ResolvedPlace | None = None,
) -> tuple[Client, bool]:
    """Return (client, created): the client locked for the rest of the transaction.

    Safe under concurrent requests: the lookup takes the row lock (SELECT ... FOR UPDATE; on
    SQLite, BEGIN IMMEDIATE already serializes writers), and a new client is inserted with ON
    CONFLICT DO NOTHING (on PostgreSQL in the lookup's statement), so that the loser of an
    insert race reads the winner's row instead.
    The CRM id is kept as sent, trimmed; the place as given, with its coordinates.
    """
    normalized = normalize_name(name)
    if not normalized:
        raise ValidationFailed(N_("The client's name has no letters or digits."),
                               {"client": {"name": [N_("Give a real name.")]}})
    external_ref = (external_ref or "").strip() or None
    key = ref_key(external_ref)
    located = place.as_dict() if place else {}
    for _ in range(MAX_ATTEMPTS):
        client, created = sql.find_or_insert_client(session, normalized, key, {
            "name": name.strip(), "normalized_name": normalized, "external_ref": external_ref,
            "external_ref_key": key, "created_at": utcnow(), **located})
        if client is None:
            continue  # a concurrent request created it first: read and lock theirs
        if created:
            return client, True
        if key and client.external_ref_key is None:
            # Record the CRM id on the name-only client; a clash means another client
            # took that id meanwhile: look again.
            try:
                with session.begin_nested():
                    client.external_ref, client.external_ref_key = external_ref, key
            except IntegrityError:
                continue
        if located and client.latitude is None:
            for column, value in located.items():
                setattr(client, column, value)
        return client, False
    raise Conflict(N_("The client was being changed by concurrent requests; retry."))


@dataclass(frozen=True)
class Wanted:
    """One client to find or create: as named, with its CRM id and place if given."""

    name: str
    external_ref: str | None = None
    place: ResolvedPlace | None = None


def find_or_create_many(*, session: Session, wanted: list[Wanted]) -> list[tuple[Client, bool]]:
    """find_or_create for several clients at once (a visit's client and its leads), in about
    two statements instead of two each; the result is what calling find_or_create for each in
    turn would give, each client locked.

    One SELECT ... FOR UPDATE finds every candidate (sql.clients_for_update); the missing
    ones go in one INSERT ... ON CONFLICT DO NOTHING. Anything less simple (a CRM id to record
    on a name-only client, a place to add, a row a concurrent request created first) goes
    through find_or_create itself.
    """
    prepared = [_prepared(item) for item in wanted]
    candidates: list[_Candidate] = [
        _Candidate(client.normalized_name, client.external_ref_key, client.id, client)
        for client in sql.clients_for_update(
            session, sorted({p.normalized for p in prepared}),
            sorted({p.key for p in prepared if p.key}))]
    picked: list[_Candidate | None] = []
    pending: dict[tuple[str, str | None], dict] = {}
    for item in prepared:
        found = _pick(candidates, item.normalized, item.key)
        if found is None:
            row = {"name": item.name, "normalized_name": item.normalized,
                   "external_ref": item.external_ref, "external_ref_key": item.key,
                   "created_at": utcnow(), **columns_of(item.place)}
            pending[item.normalized, item.key] = row
            found = _Candidate(item.normalized, item.key, _NOT_YET_STORED + len(pending), None)
            candidates.append(found)
        elif _needs_change(found, pending, item):
            found = None
        picked.append(found)
    created = sql.insert_clients(session, list(pending.values())) if pending else {}
    results: list[tuple[Client, bool]] = []
    named: set[tuple[str, str | None]] = set()
    for item, found in zip(prepared, picked, strict=True):
        identity = None if found is None else (found.normalized, found.key)
        if found is not None and found.client is not None:
            results.append((found.client, False))
        elif identity in created:
            # Created for the first that names it; the others find it, as one by one.
            results.append((created[identity], identity not in named))
            named.add(identity)
        else:
            results.append(find_or_create(session=session, name=item.name,
                                          external_ref=item.external_ref, place=item.place))
    return results


# Clients about to be inserted sort after every stored one, as they would be once stored.
_NOT_YET_STORED = 2**62


@dataclass(frozen=True)
class _Prepared:
    name: str
    normalized: str
    external_ref: str | None
    key: str | None
    place: ResolvedPlace | None
    located: dict


@dataclass(frozen=True)
class _Candidate:
    normalized: str
    key: str | None
    order: int
    client: Client | None


def _prepared(item: Wanted) -> _Prepared:
    normalized = normalize_name(item.name)
    if not normalized:
        raise ValidationFailed(N_("The client's name has no letters or digits."),
                               {"client": {"name": [N_("Give a real name.")]}})
    external_ref = (item.external_ref or "").strip() or None
    return _Prepared(item.name.strip(), normalized, external_ref, ref_key(external_ref),
                     item.place, item.place.as_dict() if item.place else {})


def _pick(candidates: list[_Candidate], normalized: str, key: str | None) -> _Candidate | None:
    """The candidate same_client's query would return (adapters/sql._same_client_query)."""
    if key:
        matches = [c for c in candidates
                   if c.key == key or (c.normalized == normalized and c.key is None)]
        return min(matches, key=lambda c: (c.key != key, c.order), default=None)
    matches = [c for c in candidates if c.normalized == normalized]
    return min(matches, key=lambda c: (c.key is not None, c.order), default=None)


def _needs_change(found: _Candidate, pending: dict[tuple[str, str | None], dict],
                  item: _Prepared) -> bool:
    """Whether find_or_create would change the found client (record a CRM id or a place)."""
    if found.client is not None:
        key, latitude = found.client.external_ref_key, found.client.latitude
    else:
        row = pending[found.normalized, found.key]
        key, latitude = row["external_ref_key"], row.get("latitude")
    return bool((item.key and key is None) or (item.located and latitude is None))


def as_named(client_data: dict[str, Any], place: ResolvedPlace | None) -> dict[str, Any]:
    """The columns of a row's own copy of its client as its author named it (models'
    ClientAsNamed: a referral's referrer, a visit's salesperson): what the API and the portal
    show, never another firm's name or place for the client."""
    ref = client_data.get("external_ref")
    located = columns_of(place)
    return {"client_name": client_data["name"].strip(),
            "client_external_ref": ref.strip() or None if ref else None,
            **{f"client_{field}": value for field, value in located.items()}}
