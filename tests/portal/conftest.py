"""Portal fixtures: firms, users with a cheap password hash, a signed-in test client."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from werkzeug.security import generate_password_hash

PASSWORD = "portal-pass-2026"
# The production hash (scrypt) costs ~0.4 s here; the portal checks any werkzeug hash, so
# test users get a cheap one.
CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
KAOHSIUNG = {"label": "HQ", "latitude": 22.6273, "longitude": 120.3014}
TAINAN = {"label": "HQ", "latitude": 22.9999, "longitude": 120.2270}
# about 3 km north of TAINAN
NEAR_TAINAN = {"label": "Works", "latitude": 23.027, "longitude": 120.227}
TAICHUNG = {"label": "HQ", "latitude": 24.1477, "longitude": 120.6736}


def add_user(app, email: str, role: str, organization_id: int | None = None) -> int:
    """Create a portal user whose password is PASSWORD; return its id."""
    from models import User
    from referral_service.db import session_scope

    with session_scope(app) as session:
        user = User(email=email, password_hash=CHEAP_HASH, role=role,
                    organization_id=organization_id, active=True)
        session.add(user)
        session.commit()
        return user.id


def csrf_token(html: str) -> str:
    """Return the first CSRF token of a page."""
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class Portal:
    """A test client signed in as one user, posting forms with their CSRF token."""

    def __init__(self, client, user_id: int | None = None) -> None:
        self.client = client
        if user_id is not None:
            self.sign_in_as(user_id)

    def sign_in_as(self, user_id: int) -> None:
        """Put a signed-in session in the cookie, as a real sign-in does."""
        from models import User
        from referral_service.portal.auth import password_stamp

        app = self.client.application
        from referral_service.db import session_scope

        with session_scope(app, write=False) as session:
            password_hash = session.get(User, user_id).password_hash
        with self.client.session_transaction() as cookie:
            cookie.update(user_id=user_id, stamp=password_stamp(password_hash),
                          signed_in_at=time.time())

    def get(self, path: str, **kwargs):
        """GET a page (read the body; the response is closed)."""
        response = self.client.get(path, **kwargs)
        response.close()
        return response

    def text(self, path: str, expect: int = 200) -> str:
        """GET a page, check its status and return its HTML."""
        response = self.get(path)
        assert response.status_code == expect, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)

    def post(self, path: str, data: dict, *, token_from: str | None = None, **kwargs):
        """POST a form with the CSRF token of `token_from` (default: the same path)."""
        token = csrf_token(self.text(token_from or path))
        response = self.client.post(path, data={"csrf_token": token, **data}, **kwargs)
        response.close()
        return response


@dataclass
class Network:
    """Three firms: the partner's own (Alpha), and two others."""

    alpha: int
    beta: int
    gamma: int
    partner_user: int
    beta_user: int
    admin_user: int


def add_org(app, name: str, office: dict, **fields) -> int:
    """Create an organization through the service; return its id."""
    from referral_service.db import session_scope
    from referral_service.services import organizations
    from referral_service.services.auth import SYSTEM

    data = {"name": name, "kind": "partner", "skills": [], "description": "",
            "offices": [office], "capacity": None, "active": True, **fields}
    with session_scope(app) as session:
        return organizations.create(session=session, data=data, actor=SYSTEM,
                                    geocoder=app.extensions["geocoder"]).id


@pytest.fixture
def network(app) -> Network:
    """Alpha, Beta and Gamma with their users."""
    return build_network(app)


def build_network(app) -> Network:
    """Create the three firms and a user for Alpha, Beta and head office."""
    alpha = add_org(app, "Alpha Machining", KAOHSIUNG, skills=["CNC machining", "Anodizing"],
                    description="Five-axis machining of aluminium housings.")
    beta = add_org(app, "Beta Finishing", TAINAN, skills=["Anodizing", "Powder coating"],
                   description="Hard anodising and powder coating of aluminium parts.")
    gamma = add_org(app, "Gamma Plastics", TAICHUNG, skills=["Injection molding"],
                    kind="affiliate",
                    description="Plastic injection moulding with in-house mould design.")
    return Network(
        alpha=alpha, beta=beta, gamma=gamma,
        partner_user=add_user(app, "alpha@example.com", "partner", alpha),
        beta_user=add_user(app, "beta@example.com", "partner", beta),
        admin_user=add_user(app, "boss@example.com", "admin"),
    )


@pytest.fixture
def partner(client, network) -> Portal:
    """Alpha's staff, signed in."""
    return Portal(client, network.partner_user)


@pytest.fixture
def admin(app, network) -> Portal:
    """Head office, signed in (its own client)."""
    return Portal(app.test_client(), network.admin_user)


def record_referral(app, referrer: int, receiver: int, client: str = "Acme Co., Ltd.",
                    **extra) -> int:
    """Record a referral through the service; return its id."""
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    data = {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
            "client": {"name": client}, "skills": ["Anodizing"],
            "description": "Anodised aluminium housings", "note": "", **extra}
    with session_scope(app) as session:
        referral = referrals.record_referral(
            session=session, data=data, actor=SYSTEM, geocoder=app.extensions["geocoder"],
            attribution_window_days=365)
        return referral.id


@pytest.fixture
def refer_to(app):
    """Record a referral through the service; return its id."""

    def factory(referrer: int, receiver: int, client: str = "Acme Co., Ltd.", **extra) -> int:
        return record_referral(app, referrer, receiver, client, **extra)

    return factory
