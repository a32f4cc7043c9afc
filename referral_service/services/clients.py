"""Clients being referred: name normalization and race-safe find-or-create.

"The same client" is the one with the same `external_ref` when both sides have one, else the
one with the same normalized name (case, punctuation and company suffixes ignored).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client
from referral_service.services.errors import Conflict, ValidationFailed

MAX_ATTEMPTS = 5

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
    return stripped or joined


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


def find(*, session: Session, name: str, external_ref: str | None) -> Client | None:
    """Return the existing client that is the same as (name, external_ref), or None."""
    if external_ref:
        client = session.scalar(select(Client).where(Client.external_ref == external_ref))
        if client is not None:
            return client
    normalized = normalize_name(name)
    # A client known only by name is the same as any name-only or referenced one of that name;
    # two clients that both carry refs are the same only if the refs are.
    query = select(Client).where(Client.normalized_name == normalized)
    if external_ref:
        query = query.where(Client.external_ref.is_(None))
    return session.scalars(
        query.order_by(Client.external_ref.is_not(None), Client.id).limit(1)
    ).first()


def find_or_create(
    *, session: Session, name: str, external_ref: str | None = None,
    location: tuple[float, float] | None = None,
) -> Client:
    """Return the client, created if new, and locked for the rest of the transaction.

    Safe under concurrent requests: a lost insert race (unique external_ref, or unique name
    among clients without one) is undone by its savepoint and the winner's row is read instead.
    """
    if not normalize_name(name):
        raise ValidationFailed("The client's name has no letters or digits.",
                               {"client": {"name": ["Give a real name."]}})
    for _ in range(MAX_ATTEMPTS):
        found = find(session=session, name=name, external_ref=external_ref)
        if found is None:
            client = Client(name=name.strip(), normalized_name=normalize_name(name),
                            external_ref=external_ref or None,
                            latitude=location[0] if location else None,
                            longitude=location[1] if location else None)
            if _flushed(session, client):
                return client
            continue
        # The row lock serializes every referral of this client (no-op on SQLite, whose write
        # transactions are already serialized by BEGIN IMMEDIATE).
        client = session.get(Client, found.id, with_for_update=True, populate_existing=True)
        if external_ref and client.external_ref not in (None, external_ref):
            continue  # another CRM id claimed this name-only client meanwhile: look again
        if external_ref and client.external_ref is None:
            client.external_ref = external_ref
            if not _flushed(session, client):
                continue
        if location and client.latitude is None:
            client.latitude, client.longitude = location
        return client
    raise Conflict("The client was being changed by concurrent requests; retry.")


def _flushed(session: Session, client: Client) -> bool:
    """Write the client in a savepoint; False (and nothing written) on a uniqueness clash."""
    try:
        with session.begin_nested():
            session.add(client)
    except IntegrityError:
        return False
    return True


def as_json(client: Client) -> dict[str, Any]:
    """Return the client as the API shows it."""
    location = None
    if client.latitude is not None and client.longitude is not None:
        location = {"latitude": client.latitude, "longitude": client.longitude}
    return {"id": client.id, "name": client.name, "external_ref": client.external_ref,
            "location": location}
