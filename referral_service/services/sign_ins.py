"""Head office manages who signs in to the portal: invitations and new passwords by one-time
link, deactivation, the list of sign-ins (issue 16).

No e-mail leaves the service: head office sends the link itself. A link is signed with the
application's secret and carries the user's id and a fingerprint of the password hash it was
made for, so it works once (setting the password changes the hash) and only until a newer
password or link replaces it; it also expires (`LINK_MAX_AGE`). Nothing about links is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import Organization, Person, User
from referral_service.services import audit, auth
from referral_service.services.auth import Principal
from referral_service.services.errors import Forbidden, NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_

# How long a link works: an invitation may wait over a weekend.
LINK_MAX_AGE = 7 * 24 * 3600
_SALT = "portal-password-link"
USED = N_("This link has been used or replaced: ask head office for a new one.")


@dataclass(frozen=True)
class SignIn:
    """A sign-in as head office's list shows it."""

    user: User
    organization_name: str | None
    person_name: str | None


def _require_admin(actor: Principal) -> None:
    if actor.role != "admin":
        raise Forbidden(N_("Only head office manages sign-ins."))


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:20]


def password_link_token(user: User, *, secret: str) -> str:
    """Return the token of a one-time link that lets `user` choose a new password."""
    return URLSafeTimedSerializer(secret, salt=_SALT).dumps(
        {"user": user.id, "fingerprint": _fingerprint(user)})


def list_(*, session: Session, actor: Principal, page: int, page_size: int,
          q: str | None = None) -> tuple[list[SignIn], int]:
    """Return one page of the sign-ins (head office only), by e-mail, with firm and person."""
    _require_admin(actor)
    query = (select(User, Organization.name, Person.name)
             .outerjoin(Organization, Organization.id == User.organization_id)
             .outerjoin(Person, Person.id == User.person_id))
    if q:
        query = query.where(func.lower(User.email).contains(q.strip().lower(), autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(User.email).offset((page - 1) * page_size)
                           .limit(page_size)).all()
    return [SignIn(user, organization, person) for user, organization, person in rows], total


@writes
def invite(*, session: Session, actor: Principal, email: str, role: str,
           organization_id: int | None = None, name: str | None = None,
           person_id: int | None = None) -> User:
    """Create a sign-in nobody can use until its person follows their link (head office)."""
    _require_admin(actor)
    # A password nobody knows; the link sets the real one.
    return auth.create_user(session=session, email=email, password=secrets.token_urlsafe(32),
                            role=role, organization_id=organization_id, actor=actor,
                            person_id=person_id, name=name)


@writes
def reset(*, session: Session, actor: Principal, user_id: int) -> User:
    """Make the user's password unusable and end their sessions, so that only a new link
    lets them in (head office); return the user, whose link the caller then makes."""
    _require_admin(actor)
    user = _user(session, user_id)
    user.password_hash = generate_password_hash(secrets.token_urlsafe(32))
    auth.end_sessions(session=session, user_id=user.id, actor=actor, reason="password reset")
    audit.record(session=session, actor=actor, action="user.password_reset",
                 object_type="user", object_id=user.id, changes={})
    return user


@writes
def deactivate(*, session: Session, actor: Principal, user_id: int) -> User:
    """Stop a user signing in (head office); not oneself."""
    _require_admin(actor)
    if user_id == actor.user_id:
        raise ValidationFailed(N_("You cannot deactivate your own sign-in."),
                               {"user_id": [N_("Your own sign-in.")]})
    user = _user(session, user_id)
    auth.deactivate_user(session=session, user_id=user.id, actor=actor)
    audit.record(session=session, actor=actor, action="user.deactivate", object_type="user",
                 object_id=user.id, changes={"active": {"from": True, "to": False}})
    return user


def user_for_link(*, session: Session, token: str, secret: str) -> User:
    """Return the active user a link is for; 404 for a link that is not valid (any more)."""
    user, _fingerprint_of_link = _linked(session, token, secret)
    return user


@writes
def use_link(*, session: Session, token: str, secret: str, password: str) -> User:
    """Set the password a link was made for; the link then stops working."""
    user, fingerprint = _linked(session, token, secret)
    # Two tabs sending the same link at once: the row lock makes the second see the new hash.
    session.refresh(user, with_for_update=True)
    if _fingerprint(user) != fingerprint:
        raise NotFound(USED)
    return auth.set_password(session=session, user_id=user.id, password=password,
                             actor=auth.principal_for_user(user))


def _linked(session: Session, token: str, secret: str) -> tuple[User, str]:
    """Return the active user a link is for and the fingerprint it carries (404 if none)."""
    try:
        payload = URLSafeTimedSerializer(secret, salt=_SALT).loads(token, max_age=LINK_MAX_AGE)
    except SignatureExpired:
        raise NotFound(N_("This link has expired: ask head office for a new one.")) from None
    except BadSignature:
        raise NotFound(N_("This link is not valid: ask head office for a new one.")) from None
    user = session.get(User, payload.get("user")) if isinstance(payload, dict) else None
    if user is None or not user.active or payload.get("fingerprint") != _fingerprint(user):
        raise NotFound(USED)
    return user, payload["fingerprint"]


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("User %(user_id)s does not exist.", user_id=user_id))
    return user

