"""Webhooks on the wire: the signed request (Standard Webhooks) and an HTTP client that reaches
only vetted addresses.

A request carries the Standard Webhooks headers `webhook-id`, `webhook-timestamp` and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, made by the
`standardwebhooks` library), so a CRM verifies it with any library made for that
specification. For one release it also carries the old `X-Webhook-Id`, `X-Webhook-Timestamp`
and `X-Webhook-Signature` (`sha256=<hex HMAC-SHA256 of "timestamp.body">`), deprecated: see
docs/OPERATIONS.md, "Moving to the Standard Webhooks headers".

Targets are checked before every request: http(s) only, no credentials in the URL, and every
address the host resolves to must be public unless private targets are allowed. The connection
then goes to an address that passed the check, never through a second DNS lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

# The prefix of a secret written in the Standard Webhooks form: "whsec_" + base64 of the key.
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 -- a prefix, not a secret
# The old signature header's prefix (deprecated, sent for one more release).
LEGACY_SIGNATURE_PREFIX = "sha256="
# How much of a failed response's body is kept in the attempt log.
ERROR_BODY_BYTES = 500
USER_AGENT = "referral-service-webhooks/1"

Resolver = Callable[..., list[tuple[Any, ...]]]


class WebhookConfigError(ValueError):
    """The webhook settings cannot be used (bad URL, refused target, missing secret)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (the vetted addresses) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Message:
    """One delivery attempt of an event: the body is the same bytes on every attempt."""

    event_id: str
    type: str
    attempt: int
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """The result of one HTTP delivery to one URL."""

    url: str
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int


# --- the signed request ----------------------------------------------------------------------


def body_of(*, event_id: str, type_: str, created_at: datetime, payload: Any) -> bytes:
    """Return the JSON body sent for an event; the same bytes on every attempt."""
    # The Standard Webhooks payload ({"type", "timestamp", "data"}: when the event happened),
    # plus the "id" and "created_at" (the same moment) that CRMs read before it.
    moment = created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    envelope = {"id": event_id, "type": type_, "timestamp": moment, "created_at": moment,
                "data": payload}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True).encode()


def standard_secret(secret: str) -> str:
    """Return WEBHOOK_SECRET in the Standard Webhooks form, as a CRM's library takes it."""
    # A secret already in that form is used as it is; any other string is its UTF-8 bytes,
    # the very key the old header is signed with, so one setting serves both headers.
    if secret.startswith(STANDARD_SECRET_PREFIX):
        return secret
    return STANDARD_SECRET_PREFIX + base64.b64encode(secret.encode()).decode()


def signer(secret: str) -> Webhook:
    """Return the Standard Webhooks signer for WEBHOOK_SECRET, or refuse an unusable secret."""
    if not secret:
        raise WebhookConfigError("WEBHOOK_SECRET is empty: the CRM could not verify any event.")
    try:
        return Webhook(standard_secret(secret))
    except (ValueError, EmptyWebhookSecretError):  # binascii.Error is a ValueError
        raise WebhookConfigError(
            "WEBHOOK_SECRET starts with whsec_ but the rest is not a base64 key.") from None


def headers_for(message: Message, *, secret: str, sent_at: datetime) -> dict[str, str]:
    """Return the request headers of one attempt, signed at `sent_at` (an aware datetime)."""
    # Whole seconds, as the specification's timestamp header and signature both use.
    timestamp = str(int(sent_at.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message.event_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signer(secret).sign(message.event_id, sent_at.astimezone(UTC),
                                                 message.body.decode()),
        "X-Webhook-Type": message.type,
        "X-Webhook-Attempt": str(message.attempt),
        # Deprecated (docs/OPERATIONS.md): the same id and time, and the old signature.
        "X-Webhook-Id": message.event_id,
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": legacy_signature(secret, timestamp, message.body),
    }


def legacy_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return the deprecated X-Webhook-Signature: sha256=hex HMAC-SHA256("<timestamp>." + body)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return LEGACY_SIGNATURE_PREFIX + digest.hexdigest()


# --- target checks -----------------------------------------------------------------------------


def check_target(url: str, *, allow_private: bool,
                 resolve: Resolver = socket.getaddrinfo) -> Target:
    """Parse `url`, resolve its host and refuse non-public addresses unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookConfigError(f"Webhook URL {url!r} must use http or https.")
    if not parts.hostname:
        raise WebhookConfigError(f"Webhook URL {url!r} has no host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookConfigError(f"Webhook URL {_redact(url)!r} must not carry credentials; "
                                 "the HMAC signature authenticates the sender.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookConfigError(f"Webhook URL {url!r} has a bad port.") from None
    host = parts.hostname
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise WebhookConfigError(f"Webhook host {host!r} does not resolve: {error}.") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookConfigError(f"Webhook host {host!r} does not resolve.")
    if not allow_private:
        # Every address must be public: a host answering with one private address among
        # public ones could still be steered to the private one.
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise WebhookConfigError(
                f"Webhook URL {url!r} resolves to a private, loopback, link-local or reserved "
                f"address ({', '.join(refused)}); set WEBHOOK_ALLOW_PRIVATE_TARGETS=true only "
                "for a receiver on a trusted network.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=parts.scheme, host=host, port=port, path=path,
                  addresses=addresses)


def is_public_address(address: str) -> bool:
    """Return whether `address` is a globally routable unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_private or ip.is_loopback
                                 or ip.is_link_local or ip.is_reserved or ip.is_unspecified)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc="***@" + netloc).geturl()


# --- sending -----------------------------------------------------------------------------------


def send(url: str, message: Message, *, secret: str, timeout_seconds: float,
         allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> Outcome:
    """POST the signed message to one URL; any 2xx is success, anything else a failure."""
    started = time.monotonic()

    def outcome(succeeded: bool, status: int | None, error: str | None) -> Outcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(url=url, succeeded=succeeded, status_code=status, error=error,
                       duration_ms=elapsed)

    try:
        # Checked again at every delivery: DNS may have changed since the deliverer started.
        target = check_target(url, allow_private=allow_private, resolve=resolve)
    except WebhookConfigError as error:
        return outcome(False, None, f"refused: {error}")
    headers = headers_for(message, secret=secret, sent_at=datetime.now(UTC))
    connection = _connection(target, timeout_seconds)
    try:
        connection.request("POST", target.path, body=message.body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(ERROR_BODY_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        return outcome(False, None, f"{type(error).__name__}: {error}".rstrip(": "))
    finally:
        connection.close()
    if 200 <= status < 300:
        return outcome(True, status, None)
    text = excerpt.decode("utf-8", "replace").strip()
    return outcome(False, status, f"HTTP {status}" + (f": {text}" if text else ""))


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    """Open a connection that reaches only the vetted addresses (no second DNS lookup)."""
    if target.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def connect_vetted(_address, timeout=None, source_address=None):
        # http.client would resolve the name again, and DNS could answer differently
        # (rebinding); connect to the addresses that passed the check instead. TLS still
        # verifies the certificate against the host name.
        last_error: OSError | None = None
        for address in target.addresses:
            try:
                return socket.create_connection((address, target.port), timeout,
                                                source_address)
            except OSError as error:
                last_error = error
        raise last_error or OSError("no address to connect to")

    connection._create_connection = connect_vetted  # type: ignore[attr-defined]
    return connection
