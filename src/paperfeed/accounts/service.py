"""Accounts: sign up, log in (rate limited), sessions, passwords, API tokens, deletion.

The web app and the CLI call this class; it holds no state of its own besides the store
and a clock, so any number of web workers can share one store.

- Passwords: argon2id (:mod:`paperfeed.accounts.passwords`).
- Sessions and API tokens: 32 random bytes handed to the client once; only their SHA-256
  is stored, so a leaked database opens no session.
- Log-in rate limit: at most ``MAX_FAILURES`` failed attempts per login name and per client
  address within ``FAILURE_WINDOW``; past that, attempts are refused (HTTP 429) without
  even checking the password, until the window has moved on.
- The first account of an instance is its administrator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from paperfeed.accounts.passwords import (
    DUMMY_HASH,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import ApiToken, User
from paperfeed.store import Store

LOCAL_USERNAME = "local"
# Not an argon2 hash: verifying any password against it fails, so the local user can never
# log in on a shared instance (until an administrator gives it a password).
NO_LOGIN_HASH = "!no-login:local-user"
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(days=30)
TOKEN_PREFIX = "pf_"

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,38}$")
# Deliberately loose: the confirmation mail is the real test of an address.
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


class AuthError(PaperfeedError):
    """Wrong credentials or no valid session / token."""

    status = 401


class ForbiddenError(PaperfeedError):
    """Authenticated, but not allowed to do this."""

    status = 403


class RateLimitedError(PaperfeedError):
    """Too many failed attempts."""

    status = 429


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    session_token: str  # for the cookie; the store only keeps its hash
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_email(email: str) -> str:
    address = email.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise PaperfeedError(f"{email!r} is not an e-mail address")
    return address


def check_username(username: str) -> str:
    name = username.strip()
    if not _USERNAME.match(name):
        raise PaperfeedError(
            "a username has 2 to 39 characters: letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Accounts:
    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.store = store
        self.clock = clock

    # -- sign up / delete ---------------------------------------------------------------
    def sign_up(
        self, username: str, password: str, *, email: str | None = None, admin: bool = False
    ) -> User:
        """A new account; the instance's first account is always an administrator."""
        name = check_username(username)
        address = check_email(email) if email else None
        check_new_password(password)
        # The local user of a laptop install does not count: the first person to sign up
        # on an instance is its administrator.
        first = all(u.username == LOCAL_USERNAME for u in self.store.list_users())
        return self.store.create_user(
            name, address, hash_password(password), is_admin=admin or first
        )

    def delete_account(self, user: User, password: str) -> None:
        """Delete the account and all its data (votes, collections, tokens, subscriptions)."""
        self._check_password(user, password)
        self.store.delete_user(user.id)

    def delete_user(self, user_id: int) -> None:
        """An administrator's deletion (no password)."""
        if not self.store.delete_user(user_id):
            raise NotFoundError(f"no user {user_id}")

    # -- log in / out ------------------------------------------------------------------------
    def _limit_keys(self, login: str, client: str | None) -> list[str]:
        keys = [f"login:{login.strip().lower()}"]
        if client:
            keys.append(f"client:{client}")
        return keys

    def check_rate_limit(self, login: str, client: str | None = None) -> None:
        since = self.clock() - FAILURE_WINDOW
        for key in self._limit_keys(login, client):
            if self.store.count_login_failures(key, since) >= MAX_FAILURES:
                minutes = int(FAILURE_WINDOW.total_seconds() // 60)
                raise RateLimitedError(
                    f"too many failed log-ins; wait {minutes} minutes and try again"
                )

    def authenticate(self, login: str, password: str, *, client: str | None = None) -> User:
        """The user with these credentials; AuthError (or RateLimitedError) otherwise."""
        self.check_rate_limit(login, client)
        found = self.store.user_credentials(login.strip())
        if found is None:
            verify_password(DUMMY_HASH, password)  # same time as a wrong password
            ok = False
        else:
            ok = verify_password(found[1], password)
        if not ok or found is None:
            now = self.clock()
            for key in self._limit_keys(login, client):
                self.store.record_login_failure(key, now)
            raise AuthError("wrong username or password")
        user, stored = found
        self.store.clear_login_failures(self._limit_keys(login, None)[0])
        if needs_rehash(stored):
            self.store.set_password_hash(user.id, hash_password(password))
        return user

    def log_in(self, login: str, password: str, *, client: str | None = None) -> LoginResult:
        user = self.authenticate(login, password, client=client)
        return self.start_session(user)

    def start_session(self, user: User) -> LoginResult:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + SESSION_LIFETIME
        self.store.create_session(user.id, secret_hash(token), created_at=now, expires_at=expires)
        return LoginResult(user, token, expires)

    def session_user(self, session_token: str | None) -> User | None:
        if not session_token:
            return None
        return self.store.session_user(secret_hash(session_token), self.clock())

    def log_out(self, session_token: str) -> None:
        self.store.delete_session(secret_hash(session_token))

    # -- passwords ---------------------------------------------------------------------------
    def _check_password(self, user: User, password: str) -> None:
        found = self.store.user_credentials(user.username)
        if found is None or found[0].id != user.id or not verify_password(found[1], password):
            raise AuthError("wrong password")

    def change_password(self, user: User, old: str, new: str) -> LoginResult:
        """Change the password and end every other session; returns a fresh session."""
        self._check_password(user, old)
        self.store.set_password_hash(user.id, hash_password(new))
        self.store.delete_sessions(user.id)
        return self.start_session(user)

    def set_password(self, user_id: int, new: str) -> None:
        """An administrator's reset (no old password); ends the user's sessions."""
        if self.store.get_user(user_id) is None:
            raise NotFoundError(f"no user {user_id}")
        self.store.set_password_hash(user_id, hash_password(new))
        self.store.delete_sessions(user_id)

    # -- API tokens --------------------------------------------------------------------------
    def create_api_token(self, user: User, name: str) -> NewToken:
        label = name.strip()
        if not label or len(label) > 100:
            raise PaperfeedError("a token needs a name of 1 to 100 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self.store.create_api_token(user.id, label, secret_hash(secret))
        return NewToken(token, secret)

    def api_token_user(self, secret: str | None) -> User | None:
        if not secret or not secret.startswith(TOKEN_PREFIX):
            return None
        return self.store.api_token_user(secret_hash(secret), self.clock())

    def revoke_api_token(self, user: User, token_id: int) -> None:
        if not self.store.delete_api_token(user.id, token_id):
            raise NotFoundError(f"you have no API token {token_id}")


def local_user(store: Store) -> User:
    """The account of single-user mode (a laptop install: no log-in), made on first use.

    The CLI acts for it when no user is named, and the web app when accounts are off. It is
    an administrator (the laptop's owner) and has no password anyone can log in with.
    """
    found = store.user_credentials(LOCAL_USERNAME)
    if found is not None:
        return found[0]
    try:
        return store.create_user(LOCAL_USERNAME, None, NO_LOGIN_HASH, is_admin=True)
    except PaperfeedError:  # created meanwhile by another process
        again = store.user_credentials(LOCAL_USERNAME)
        if again is None:
            raise
        return again[0]
