"""API keys: revocation and the per-worker key cache."""

from __future__ import annotations

from sqlalchemy import select

from referral_service.services import auth

BASE = "/api/v1/organizations"


def _cli(app, *args: str):
    # As `flask --app wsgi ...` runs a command: inside an app context.
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def _create_key(app, role: str = "crm") -> tuple[int, dict[str, str]]:
    result = _cli(app, "create-api-key", "--name", "crm system", "--role", role)
    assert result.exit_code == 0, result.output
    key_id = int(result.output.split("Created API key ")[1].split()[0])
    return key_id, {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


def test_revoked_key_is_refused_with_401(app, client):
    app.extensions["api_key_cache"] = auth.KeyCache(0)
    key_id, headers = _create_key(app)
    assert client.get(BASE, headers=headers).status_code == 200

    result = _cli(app, "revoke-api-key", str(key_id))

    assert result.exit_code == 0, result.output
    assert f"Revoked API key {key_id} (crm system)" in result.output
    response = client.get(BASE, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


class Clock:
    """A monotonic clock the test moves by hand, so expiry never depends on how fast we run."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_revoked_key_keeps_working_in_a_worker_only_until_its_cache_entry_expires(app, client):
    clock = Clock()
    app.extensions["api_key_cache"] = auth.KeyCache(0.5, clock=clock)
    key_id, headers = _create_key(app)
    assert client.get(BASE, headers=headers).status_code == 200  # now cached for 0.5 s

    assert _cli(app, "revoke-api-key", str(key_id)).exit_code == 0

    assert client.get(BASE, headers=headers).status_code == 200  # still the cached entry
    clock.now += 0.25  # (binary fractions: the sums below are exact)
    assert client.get(BASE, headers=headers).status_code == 200
    clock.now += 0.25  # the entry's 0.5 s are over
    assert client.get(BASE, headers=headers).status_code == 401
    assert client.get(BASE, headers=headers).status_code == 401


def test_key_revoked_before_its_first_use_is_refused_at_once(app, client):
    app.extensions["api_key_cache"] = auth.KeyCache(60)
    key_id, headers = _create_key(app)
    assert _cli(app, "revoke-api-key", str(key_id)).exit_code == 0
    assert client.get(BASE, headers=headers).status_code == 401


def test_cache_holds_only_digests_of_valid_keys(app, client):
    cache = app.extensions["api_key_cache"] = auth.KeyCache(60)
    _, headers = _create_key(app)
    raw = headers["Authorization"].removeprefix("Bearer ")
    client.get(BASE, headers=headers)
    client.get(BASE, headers={"Authorization": "Bearer rk_" + "x" * 43})

    assert list(cache._entries) == [auth._digest(raw)]
    assert raw not in repr(cache._entries)


def test_revoking_is_audited_and_an_unknown_key_is_an_error(app, client, session):
    from models import ApiKey, AuditEntry

    key_id, _ = _create_key(app)
    assert _cli(app, "revoke-api-key", str(key_id)).exit_code == 0
    again = _cli(app, "revoke-api-key", str(key_id))  # already revoked: nothing more happens
    assert again.exit_code == 0

    missing = _cli(app, "revoke-api-key", "999999")
    assert missing.exit_code != 0
    assert "API key 999999 does not exist" in missing.output
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "api_key.revoke"))
    assert [(e.object_id, e.changes) for e in entries] == [(str(key_id), {"name": "crm system"})]
    assert session.get(ApiKey, key_id).revoked_at is not None
