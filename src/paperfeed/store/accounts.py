"""The part of the storage interface that holds people: accounts, sessions, API tokens,
votes, collections, subscriptions and the digest-run ledger.

:class:`paperfeed.store.Store` includes it, so every backend implements it. Secrets never
reach the store in clear: sessions and API tokens are stored as SHA-256 hashes, passwords
as argon2id hashes (made by :mod:`paperfeed.accounts`). Papers are named by their id; a
vote or a collection entry for an unknown paper is a :class:`~paperfeed.errors.NotFoundError`.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence

from paperfeed.model import (
    ApiToken,
    Collection,
    CollectionItem,
    DigestRun,
    Subscription,
    SubscriptionContents,
    User,
)


class AccountStore(abc.ABC):
    # -- users -----------------------------------------------------------------------
    @abc.abstractmethod
    def create_user(
        self, username: str, email: str | None, password_hash: str, *, is_admin: bool = False
    ) -> User:
        """A new user; a taken username or e-mail address is a PaperfeedError."""

    @abc.abstractmethod
    def get_user(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    def user_credentials(self, login: str) -> tuple[User, str] | None:
        """The user whose username or e-mail address is ``login``, with the password hash."""

    @abc.abstractmethod
    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    @abc.abstractmethod
    def set_admin(self, user_id: int, is_admin: bool) -> None: ...

    @abc.abstractmethod
    def delete_user(self, user_id: int) -> bool:
        """Delete a user and everything theirs; False when there was no such user."""

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def count_users(self) -> int: ...

    # -- sessions and API tokens --------------------------------------------------------
    @abc.abstractmethod
    def create_session(
        self, user_id: int, token_hash: str, *, created_at: dt.datetime, expires_at: dt.datetime
    ) -> None:
        """A new session (sessions expired by ``created_at`` are purged on the way)."""

    @abc.abstractmethod
    def session_user(self, token_hash: str, now: dt.datetime) -> User | None:
        """The user of an unexpired session, else None."""

    @abc.abstractmethod
    def delete_session(self, token_hash: str) -> None: ...

    @abc.abstractmethod
    def delete_sessions(self, user_id: int) -> int:
        """Log a user out everywhere (e.g. after a password change)."""

    @abc.abstractmethod
    def create_api_token(self, user_id: int, name: str, token_hash: str) -> ApiToken: ...

    @abc.abstractmethod
    def api_token_user(self, token_hash: str, now: dt.datetime) -> User | None:
        """The owner of a token (and notes the token as used), else None."""

    @abc.abstractmethod
    def api_tokens(self, user_id: int) -> list[ApiToken]: ...

    @abc.abstractmethod
    def delete_api_token(self, user_id: int, token_id: int) -> bool:
        """Only the owner's own token can be deleted; False otherwise."""

    # -- login rate limiting --------------------------------------------------------------
    @abc.abstractmethod
    def record_login_failure(self, key: str, at: dt.datetime) -> None: ...

    @abc.abstractmethod
    def count_login_failures(self, key: str, since: dt.datetime) -> int: ...

    @abc.abstractmethod
    def clear_login_failures(self, key: str) -> None: ...

    # -- votes --------------------------------------------------------------------------
    @abc.abstractmethod
    def set_vote(self, user_id: int, paper_id: str, voted: bool) -> int:
        """Vote (or undo); returns the paper's local vote count afterwards."""

    @abc.abstractmethod
    def voted(self, user_id: int, paper_ids: Sequence[str]) -> set[str]:
        """Which of these papers the user has voted for."""

    @abc.abstractmethod
    def vote_counts(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """Local votes per paper (papers without votes are left out)."""

    # -- collections ----------------------------------------------------------------------
    @abc.abstractmethod
    def create_collection(self, user_id: int, name: str, *, is_public: bool = False) -> Collection:
        """A new collection; a name the user already uses is a PaperfeedError."""

    @abc.abstractmethod
    def get_collection(self, collection_id: int) -> Collection | None: ...

    @abc.abstractmethod
    def collections(self, user_id: int) -> list[Collection]: ...

    @abc.abstractmethod
    def update_collection(
        self, collection_id: int, *, name: str | None = None, is_public: bool | None = None
    ) -> Collection: ...

    @abc.abstractmethod
    def delete_collection(self, collection_id: int) -> bool: ...

    @abc.abstractmethod
    def add_to_collection(self, collection_id: int, paper_id: str, note: str = "") -> None:
        """Add a paper (or update its note when it is already there)."""

    @abc.abstractmethod
    def remove_from_collection(self, collection_id: int, paper_id: str) -> bool: ...

    @abc.abstractmethod
    def collection_items(self, collection_id: int) -> list[CollectionItem]:
        """The entries, most recently added first."""

    # -- subscriptions --------------------------------------------------------------------
    @abc.abstractmethod
    def create_subscription(
        self,
        email: str,
        *,
        user_id: int | None,
        frequency: str,
        contents: SubscriptionContents,
        max_items: int,
    ) -> Subscription:
        """A new, unconfirmed subscription; an address already subscribed is a
        PaperfeedError."""

    @abc.abstractmethod
    def get_subscription(self, subscription_id: int) -> Subscription | None: ...

    @abc.abstractmethod
    def subscription_by_email(self, email: str) -> Subscription | None: ...

    @abc.abstractmethod
    def user_subscriptions(self, user_id: int) -> list[Subscription]: ...

    @abc.abstractmethod
    def update_subscription(
        self,
        subscription_id: int,
        *,
        frequency: str | None = None,
        contents: SubscriptionContents | None = None,
        max_items: int | None = None,
        confirmed_at: dt.datetime | None = None,
        unsubscribed_at: dt.datetime | None = None,
        resubscribe: bool = False,
    ) -> Subscription:
        """Change fields given (``resubscribe`` clears ``unsubscribed_at``)."""

    @abc.abstractmethod
    def delete_subscription(self, subscription_id: int) -> bool: ...

    @abc.abstractmethod
    def list_subscriptions(self) -> list[Subscription]:
        """Every subscription, active or not, by id."""

    @abc.abstractmethod
    def active_subscriptions(self, frequency: str | None = None) -> list[Subscription]:
        """Confirmed and not unsubscribed, by id."""

    # -- the digest ledger ----------------------------------------------------------------
    @abc.abstractmethod
    def claim_digest_run(self, subscription_id: int, period: str, message_id: str) -> DigestRun:
        """The run of this subscription and period, created ``pending`` if new.

        Creating it is idempotent: a second call returns the existing row unchanged, so a
        digest already ``sent`` is seen as such and never sent again.
        """

    @abc.abstractmethod
    def mark_digest_sending(self, run_id: int, items: int) -> DigestRun: ...

    @abc.abstractmethod
    def mark_digest_sent(self, run_id: int, at: dt.datetime) -> DigestRun: ...

    @abc.abstractmethod
    def mark_digest_failed(
        self, run_id: int, error: str, next_attempt_at: dt.datetime | None
    ) -> DigestRun:
        """Record a failed attempt; ``next_attempt_at`` None means: give up."""

    @abc.abstractmethod
    def digest_runs(
        self, *, subscription_id: int | None = None, period: str | None = None
    ) -> list[DigestRun]: ...
