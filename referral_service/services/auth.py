"""API keys, portal users and the principal every service checks permissions against."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models import API_KEY_ROLES, USER_ROLES, ApiKey, Organization, Person, User, utcnow
from referral_service.schemas.base import text_problem
from referral_service.services import audit
from referral_service.services.errors import Forbidden, NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_

KEY_PREFIX_LENGTH = 8
# What create_api_key hands out: "rk_" and URL-safe base64 (43 characters for 32 bytes).
_KEY_SHAPE = re.compile(r"rk_[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key or a portal user, with a role and, for partners, a firm."""

    name: str
    role: str
    organization_id: int | None = None
    api_key_id: int | None = None
    user_id: int | None = None
    # The member of staff a portal user is (SPEC section 9); None for keys and most admins.
    person_id: int | None = None

    @property
    def is_partner(self) -> bool:
        """Return whether the caller is bound to one organization."""
        return self.role == "partner"

    @property
    def is_staff(self) -> bool:
        """Return whether the caller sees every organization (admin, crm)."""
        return self.role in ("admin", "crm")

    def can_see_organization(self, organization_id: int) -> bool:
        """Return whether the caller may read this organization's own data."""
        return self.is_staff or self.organization_id == organization_id


SYSTEM = Principal(name="system", role="admin")


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@writes
def create_api_key(
    *, session: Session, name: str, role: str, organization_id: int | None = None,
    actor: Principal = SYSTEM,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored."""
    _check_role_binding(session, role, organization_id, API_KEY_ROLES)
    raw = "rk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name, role=role, organization_id=organization_id,
        prefix=raw[:KEY_PREFIX_LENGTH + 3], key_hash=_digest(raw),
    )
    session.add(key)
    session.flush()
    audit.record(session=session, actor=actor, action="api_key.create", object_type="api_key",
                 object_id=key.id, changes={"name": name, "role": role,
                                            "organization_id": organization_id})
    return key, raw


class KeyCache:
    """Principals of recently seen keys, by SHA-256 digest, for a few seconds per worker.

    Every API request names its key; looking it up costs a database round trip, about a sixth
    of a referral's creation. A revoked key therefore keeps working for at most `seconds` in a
    worker that has just seen it. Only valid keys are kept, never the raw key. `clock` gives
    the time in seconds (monotonic); tests pass their own to cross the expiry without sleeping.
    """

    def __init__(self, seconds: float, max_entries: int = 4096, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        """Return the cached principal of a digest, or None if absent or stale."""
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        """Remember a valid key's principal; forget everything when full (rarely happens)."""
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (self.clock() + self.seconds, principal)


_KEY_COLUMNS = select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.organization_id,
                      ApiKey.key_hash, ApiKey.revoked_at)


def authenticate_key(
    *, session: Session, raw_key: str, cache: KeyCache | None = None
) -> Principal | None:
    """Return the principal of a valid, unrevoked key, else None."""
    if not _KEY_SHAPE.fullmatch(raw_key):
        # Not one of ours (and maybe text the database refuses, such as NUL): no query.
        return None
    digest = _digest(raw_key)
    if cache is not None and (cached := cache.get(digest)) is not None:
        return cached
    candidates = session.execute(
        _KEY_COLUMNS.where(ApiKey.prefix == raw_key[:KEY_PREFIX_LENGTH + 3])
    ).all()
    match = None
    for key in candidates:
        # Compare every candidate in constant time; never stop early on a partial match.
        if hmac.compare_digest(key.key_hash, digest) and key.revoked_at is None:
            match = key
    if match is None:
        return None
    principal = Principal(name=f"key:{match.name}", role=match.role,
                          organization_id=match.organization_id, api_key_id=match.id)
    if cache is not None:
        cache.put(digest, principal)
    return principal


@writes
def revoke_api_key(*, session: Session, key_id: int, actor: Principal = SYSTEM) -> ApiKey:
    """Revoke a key for good: requests with it get 401 (after API_KEY_CACHE_SECONDS at most)."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(N_("API key %(key_id)s does not exist.", key_id=key_id))
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session=session, actor=actor, action="api_key.revoke",
                     object_type="api_key", object_id=key.id, changes={"name": key.name})
    return key


@writes
def create_user(
    *, session: Session, email: str, password: str, role: str,
    organization_id: int | None = None, actor: Principal = SYSTEM,
    person_id: int | None = None, name: str | None = None,
) -> User:
    """Create a portal user with a hashed password.

    A partner user is a person of its organization: `person_id` names an existing one (not yet
    able to sign in), else a person is made with `name` (or the e-mail's local part).
    """
    _check_role_binding(session, role, organization_id, USER_ROLES)
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationFailed(N_("The email address is not "
                                  "valid."), {"email": [N_("Not an email.")]})
    if len(password) < 8:
        raise ValidationFailed(N_("The password is too short."),
                               {"password": [N_("Use at least 8 characters.")]})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ValidationFailed(N_("That email is taken."), {"email": [N_("Already registered.")]})
    person = _person_for_user(session, role, organization_id, person_id, name, email)
    user = User(email=email, password_hash=generate_password_hash(password), role=role,
                organization_id=organization_id, person_id=person.id if person else None)
    session.add(user)
    session.flush()
    audit.record(session=session, actor=actor, action="user.create", object_type="user",
                 object_id=user.id, changes={"email": email, "role": role,
                                             "organization_id": organization_id})
    return user


def _person_for_user(
    session: Session, role: str, organization_id: int | None, person_id: int | None,
    name: str | None, email: str,
) -> Person | None:
    if person_id is not None:
        person = session.get(Person, person_id)
        if person is None or (organization_id is not None
                              and person.organization_id != organization_id):
            raise ValidationFailed(N_("The person is not one of the organization's staff."),
                                   {"person_id": [N_("No person %(person_id)s in this "
                                                     "organization.", person_id=person_id)]})
        if session.scalar(select(User.id).where(User.person_id == person_id)) is not None:
            raise ValidationFailed(N_("That person can already sign in."),
                                   {"person_id": [N_("Already has a sign-in.")]})
        return person
    if role != "partner":
        return None
    person = Person(organization_id=organization_id, name=(name or email.split("@")[0])[:200],
                    email=email, active=True)
    session.add(person)
    session.flush()
    return person


def authenticate_user(*, session: Session, email: str, password: str) -> Principal | None:
    """Return the principal of an active user whose password matches, else None."""
    # An address the database cannot even compare (NUL, lone surrogates) is no user's.
    user = None if text_problem(email) else session.scalar(
        select(User).where(User.email == email.strip().lower()))
    if user is None or not _may_sign_in(session, user):
        # Hash anyway so a missing user takes as long as a wrong password.
        check_password_hash(generate_password_hash("x"), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return principal_for_user(user)


@writes
def end_sessions(*, session: Session, user_id: int, actor: Principal = SYSTEM,
                 reason: str = "sign-out") -> None:
    """End every portal session of a user at once (sign-out, new password, deactivation).

    Raises the user's session_epoch: a session cookie carries the epoch it began in, and the
    portal refuses one from an earlier epoch, copied or not (docs/SECURITY.md).
    """
    user = session.get(User, user_id)
    if user is None:
        return
    user.session_epoch = (user.session_epoch or 0) + 1
    audit.record(session=session, actor=actor, action="user.sessions_ended",
                 object_type="user", object_id=user.id, changes={"reason": reason})


def user_id_by_email(*, session: Session, email: str) -> int:
    """Return the id of the user signing in with `email` (404 if none)."""
    user_id = session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if user_id is None:
        raise NotFound(N_("No user signs in as %(email)r.", email=email))
    return user_id


@writes
def set_password(*, session: Session, user_id: int, password: str,
                 actor: Principal = SYSTEM) -> User:
    """Give a user a new password; every session they had ends."""
    if len(password) < 8:
        raise ValidationFailed(N_("The password is too short."),
                               {"password": [N_("Use at least 8 characters.")]})
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("User %(user_id)s does not exist.", user_id=user_id))
    user.password_hash = generate_password_hash(password)
    end_sessions(session=session, user_id=user.id, actor=actor, reason="password changed")
    return user


@writes
def deactivate_user(*, session: Session, user_id: int, actor: Principal = SYSTEM) -> User:
    """Stop a user signing in; every session they had ends."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("User %(user_id)s does not exist.", user_id=user_id))
    user.active = False
    end_sessions(session=session, user_id=user.id, actor=actor, reason="deactivated")
    return user


@writes
def set_preferences(*, session: Session, user_id: int, language: str,
                    time_zone: str) -> None:
    """Keep the portal language and time zone a user chose in their profile."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("User %(user_id)s does not exist.", user_id=user_id))
    user.language, user.time_zone = language, time_zone


def principal_for_user(user: User) -> Principal:
    """Return the principal acting for a portal user."""
    return Principal(name=f"user:{user.email}", role=user.role,
                     organization_id=user.organization_id, user_id=user.id,
                     person_id=user.person_id)


def get_user(*, session: Session, user_id: int) -> User | None:
    """Return an active user by id whose person (if any) is active too, or None."""
    user = session.get(User, user_id)
    return user if user is not None and _may_sign_in(session, user) else None


def _may_sign_in(session: Session, user: User) -> bool:
    # A deactivated person's sign-in ends with them (SPEC section 9: a portal user is a
    # person), checked on every request so that no session of theirs outlives it.
    if not user.active:
        return False
    return user.person_id is None or bool(
        session.scalar(select(Person.active).where(Person.id == user.person_id)))


def _check_role_binding(
    session: Session, role: str, organization_id: int | None, roles: tuple[str, ...]
) -> None:
    if role not in roles:
        raise ValidationFailed(N_("Unknown role %(role)r.", role=role),
                               {"role": [N_("One of %(roles)s.", roles=", ".join(roles))]})
    if role == "partner" and organization_id is None:
        raise ValidationFailed(N_("A partner is bound to one organization."),
                               {"organization_id": [N_("Required for the partner role.")]})
    if role != "partner" and organization_id is not None:
        raise ValidationFailed(N_("Only partners are bound to an organization."),
                               {"organization_id": [N_("Only for the partner role.")]})
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise NotFound(N_("Organization %(organization_id)s does not exist.",
                          organization_id=organization_id))


def require_staff(actor: Principal) -> None:
    """Refuse a partner where only head office or the CRM may act."""
    if not actor.is_staff:
        raise Forbidden(N_("Only head office or the CRM may do this."))
