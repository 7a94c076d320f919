"""Signed, expiring tokens for links in e-mails (confirm, unsubscribe) and for forms.

A token is ``<payload>.<timestamp>.<signature>`` in URL-safe base64, the signature an
HMAC-SHA256 over the purpose, payload and timestamp with the instance's secret key. The
purpose is part of what is signed, so an unsubscribe token can never confirm anything.
The key is made on first use and kept in the store's settings (``secret_key``), or given
with ``PAPERFEED_SECRET_KEY`` (e.g. shared by several servers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from paperfeed.errors import PaperfeedError
from paperfeed.store import Store

SECRET_SETTING = "secret_key"


class SignatureError(PaperfeedError):
    """A token that is malformed, forged, for another purpose, or expired."""

    status = 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def instance_secret(store: Store) -> bytes:
    env = os.environ.get("PAPERFEED_SECRET_KEY")
    if env:
        return env.encode("utf-8")
    key = store.get_setting(SECRET_SETTING)
    if key is None:
        store.set_setting(SECRET_SETTING, secrets.token_hex(32))
        key = store.get_setting(SECRET_SETTING)
        assert key is not None
    return key.encode("ascii")


class Signer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise PaperfeedError("the secret key must have at least 16 bytes")
        self._secret = secret

    @classmethod
    def for_store(cls, store: Store) -> Signer:
        return cls(instance_secret(store))

    def _mac(self, purpose: str, body: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}\n{body}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def sign(self, purpose: str, payload: str, *, now: float | None = None) -> str:
        stamp = int(time.time() if now is None else now)
        body = f"{_b64(payload.encode('utf-8'))}.{stamp}"
        return f"{body}.{self._mac(purpose, body)}"

    def verify(
        self, purpose: str, token: str, *, max_age: float | None, now: float | None = None
    ) -> str:
        """The payload of a valid token; SignatureError otherwise."""
        parts = token.strip().split(".")
        if len(parts) != 3:
            raise SignatureError("this link is incomplete or damaged")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(purpose, body), parts[2]):
            raise SignatureError("this link is not valid (damaged, or not for this purpose)")
        try:
            stamp = int(parts[1])
            payload = _unb64(parts[0]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise SignatureError("this link is damaged") from None
        age = (time.time() if now is None else now) - stamp
        if max_age is not None and age > max_age:
            raise SignatureError("this link has expired")
        return payload
