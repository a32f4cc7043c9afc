"""Clients being referred: name normalization and race-safe find-or-create.

"The same client" is the one with the same `external_ref` when both sides have one, else the
one with the same normalized name (case, punctuation and company suffixes ignored).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import String, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, utcnow
from referral_service.services.errors import Conflict, ValidationFailed

MAX_ATTEMPTS = 5
NORMALIZED_NAME_LENGTH = 200  # clients.normalized_name

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


@dataclass(frozen=True)
class FoundClient:
    """A client row as the referral service needs it (read with Core, not as an ORM object)."""

    id: int
    name: str
    external_ref: str | None
    latitude: float | None
    longitude: float | None


_TABLE = Client.__table__
_COLUMNS = (_TABLE.c.id, _TABLE.c.name, _TABLE.c.external_ref, _TABLE.c.latitude,
            _TABLE.c.longitude)


def _same_client_query(*, by_ref: bool, lock: bool):
    """Return the SELECT of "the same client" (see the module docstring), built once.

    Parameters: normalized (the normalized name) and, with by_ref, external_ref.
    """
    table = _TABLE
    normalized = bindparam("normalized", type_=String())
    if by_ref:
        external_ref = bindparam("external_ref", type_=String())
        # By CRM id first; else a client of that name that has no CRM id yet.
        where = or_(table.c.external_ref == external_ref,
                    and_(table.c.normalized_name == normalized, table.c.external_ref.is_(None)))
        preference = (table.c.external_ref == external_ref).desc()
    else:
        # A name-only request is the same as any client of that name, name-only ones first.
        where, preference = table.c.normalized_name == normalized, table.c.external_ref.is_not(None)
    query = select(*_COLUMNS).where(where).order_by(preference, table.c.id).limit(1)
    return query.with_for_update() if lock else query


_FIND = {(by_ref, lock): _same_client_query(by_ref=by_ref, lock=lock)
         for by_ref in (False, True) for lock in (False, True)}
# INSERT ... ON CONFLICT DO NOTHING RETURNING: nothing back if the client exists already.
_INSERT = {"postgresql": pg_insert(_TABLE).on_conflict_do_nothing().returning(*_COLUMNS),
           "sqlite": sqlite_insert(_TABLE).on_conflict_do_nothing().returning(*_COLUMNS)}


def _find(session: Session, normalized: str, external_ref: str | None, *, lock: bool
          ) -> FoundClient | None:
    params = {"normalized": normalized}
    if external_ref:
        params["external_ref"] = external_ref
    row = session.execute(_FIND[bool(external_ref), lock], params).first()
    return None if row is None else FoundClient(*row)


def find(*, session: Session, name: str, external_ref: str | None) -> FoundClient | None:
    """Return the existing client that is the same as (name, external_ref), or None."""
    return _find(session, normalize_name(name), external_ref, lock=False)


def find_or_create(
    *, session: Session, name: str, external_ref: str | None = None,
    location: tuple[float, float] | None = None,
) -> tuple[FoundClient, bool]:
    """Return (client, created): the client locked for the rest of the transaction.

    Safe under concurrent requests: the lookup takes the row lock (SELECT ... FOR UPDATE; on
    SQLite, BEGIN IMMEDIATE already serializes writers), and a new client is inserted with ON
    CONFLICT DO NOTHING, so that the loser of an insert race reads the winner's row instead.
    """
    normalized = normalize_name(name)
    if not normalized:
        raise ValidationFailed("The client's name has no letters or digits.",
                               {"client": {"name": ["Give a real name."]}})
    for _ in range(MAX_ATTEMPTS):
        client = _find(session, normalized, external_ref, lock=True)
        if client is None:
            client = _insert(session, {
                "name": name.strip(), "normalized_name": normalized,
                "external_ref": external_ref or None,
                "latitude": location[0] if location else None,
                "longitude": location[1] if location else None, "created_at": utcnow()})
            if client is not None:
                return client, True
            continue  # a concurrent request created it first: read and lock theirs
        if external_ref and client.external_ref is None:
            # Record the CRM id on the name-only client; a clash means another client
            # took that id meanwhile: look again.
            try:
                with session.begin_nested():
                    _update(session, client.id, external_ref=external_ref)
            except IntegrityError:
                continue
            client = replace(client, external_ref=external_ref)
        if location and client.latitude is None:
            _update(session, client.id, latitude=location[0], longitude=location[1])
            client = replace(client, latitude=location[0], longitude=location[1])
        return client, False
    raise Conflict("The client was being changed by concurrent requests; retry.")


def _insert(session: Session, values: dict[str, Any]) -> FoundClient | None:
    """Insert a client; None, writing nothing, if a uniqueness constraint says it exists."""
    statement = _INSERT.get(session.get_bind().dialect.name)
    if statement is not None:
        row = session.execute(statement, values).first()
        return None if row is None else FoundClient(*row)
    try:
        with session.begin_nested():
            client_id = session.execute(insert(_TABLE), values).inserted_primary_key[0]
    except IntegrityError:
        return None
    return FoundClient(client_id, values["name"], values["external_ref"], values["latitude"],
                       values["longitude"])


def _update(session: Session, client_id: int, **values: Any) -> None:
    session.execute(update(_TABLE).where(_TABLE.c.id == client_id).values(**values))


def as_json(client: Client | FoundClient) -> dict[str, Any]:
    """Return the client as the API shows it."""
    location = None
    if client.latitude is not None and client.longitude is not None:
        location = {"latitude": client.latitude, "longitude": client.longitude}
    return {"id": client.id, "name": client.name, "external_ref": client.external_ref,
            "location": location}
