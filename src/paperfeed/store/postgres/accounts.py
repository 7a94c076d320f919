"""PostgreSQL implementation of :class:`paperfeed.store.accounts.AccountStore`.

A mixin of :class:`~paperfeed.store.postgres.store.PostgresStore`, the twin of
:mod:`paperfeed.store.sqlite.accounts`: each method borrows a pooled connection, a write is
one transaction. Unique names are enforced by the database (unique indexes on ``lower()``),
so two web workers creating the same account at once get one account and one clear error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import (
    ApiToken,
    Collection,
    CollectionItem,
    DigestRun,
    Paper,
    Subscription,
    SubscriptionContents,
    User,
)
from paperfeed.store.accounts import AccountStore
from paperfeed.store.rows import (
    api_token_from_row,
    collection_from_row,
    run_from_row,
    subscription_from_row,
    user_from_row,
)

_USER = "id, username, email, is_admin, created_at"
_U_USER = ", ".join("u." + c for c in _USER.split(", "))
_SUBSCRIPTION = (
    "id, user_id, email, frequency, contents, max_items, created_at, confirmed_at, unsubscribed_at"
)
_RUN = (
    "id, subscription_id, period, status, attempts, message_id, items, last_error, "
    "next_attempt_at, sent_at"
)
_COLLECTION = (
    "SELECT c.id, c.user_id, c.name, c.is_public, c.created_at, "
    "(SELECT COUNT(*) FROM collection_items i WHERE i.collection_id = c.id) "
    "FROM collections c "
)
_PAPER_COLUMNS = (
    "pk, id, title, abstract, authors, categories, arxiv_id, doi, published, updated, "
    "links, upvotes, first_seen, content_hash"
)


def _ts(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are UTC, as in the SQLite backend."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PostgresAccounts(AccountStore):
    # Provided by PostgresStore.
    _conn: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
    _resolve_pk: Callable[[psycopg.Connection[Any], str], int | None]
    _rows_to_papers: Callable[[psycopg.Connection[Any], Sequence[Any]], list[Paper]]

    def _paper_pk(self, conn: psycopg.Connection[Any], paper_id: str) -> int:
        pk = self._resolve_pk(conn, paper_id)
        if pk is None:
            raise NotFoundError(f"no paper with id {paper_id!r}")
        return pk

    # -- users -----------------------------------------------------------------------
    def create_user(
        self, username: str, email: str | None, password_hash: str, *, is_admin: bool = False
    ) -> User:
        with self._conn() as conn:
            try:
                with conn.transaction():
                    row = conn.execute(
                        "INSERT INTO users (username, email, password_hash, is_admin, created_at) "
                        f"VALUES (%s, %s, %s, %s, %s) RETURNING {_USER}",
                        (username, email, password_hash, is_admin, _now()),
                    ).fetchone()
            except psycopg.errors.UniqueViolation as exc:
                name = exc.diag.constraint_name or ""
                what = "username" if "username" in name else "e-mail address"
                raise PaperfeedError(f"that {what} is already taken") from None
        assert row is not None
        return user_from_row(row)

    def get_user(self, user_id: int) -> User | None:
        with self._conn() as conn:
            row = conn.execute(f"SELECT {_USER} FROM users WHERE id = %s", (user_id,)).fetchone()
        return None if row is None else user_from_row(row)

    def user_credentials(self, login: str) -> tuple[User, str] | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {_USER}, password_hash FROM users "
                "WHERE lower(username) = lower(%s) OR lower(email) = lower(%s) "
                "ORDER BY lower(username) = lower(%s) DESC LIMIT 1",
                (login, login, login),
            ).fetchone()
        return None if row is None else (user_from_row(row), str(row[5]))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)
            )

    def set_admin(self, user_id: int, is_admin: bool) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE users SET is_admin = %s WHERE id = %s", (is_admin, user_id))

    def delete_user(self, user_id: int) -> bool:
        with self._conn() as conn:
            return conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount > 0

    def list_users(self) -> list[User]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_USER} FROM users ORDER BY id").fetchall()
        return [user_from_row(r) for r in rows]

    def count_users(self) -> int:
        with self._conn() as conn:
            row = conn.execute("SELECT COUNT(*) FROM users").fetchone()
        return int(row[0]) if row else 0

    # -- sessions and API tokens --------------------------------------------------------
    def create_session(
        self, user_id: int, token_hash: str, *, created_at: dt.datetime, expires_at: dt.datetime
    ) -> None:
        with self._conn() as conn, conn.transaction():
            now = _ts(created_at)
            conn.execute("DELETE FROM sessions WHERE expires_at < %s", (now,))
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                (token_hash, user_id, now, _ts(expires_at)),
            )

    def session_user(self, token_hash: str, now: dt.datetime) -> User | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {_U_USER} FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE s.token_hash = %s AND s.expires_at > %s",
                (token_hash, _ts(now)),
            ).fetchone()
        return None if row is None else user_from_row(row)

    def delete_session(self, token_hash: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = %s", (token_hash,))

    def delete_sessions(self, user_id: int) -> int:
        with self._conn() as conn:
            return int(conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,)).rowcount)

    def create_api_token(self, user_id: int, name: str, token_hash: str) -> ApiToken:
        now = _now()
        with self._conn() as conn:
            row = conn.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (user_id, name, token_hash, now),
            ).fetchone()
        assert row is not None
        return ApiToken(int(row[0]), user_id, name, now, None)

    def api_token_user(self, token_hash: str, now: dt.datetime) -> User | None:
        with self._conn() as conn:
            row = conn.execute(
                f"UPDATE api_tokens t SET last_used_at = %s FROM users u "
                f"WHERE u.id = t.user_id AND t.token_hash = %s RETURNING {_U_USER}",
                (_ts(now), token_hash),
            ).fetchone()
        return None if row is None else user_from_row(row)

    def api_tokens(self, user_id: int) -> list[ApiToken]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens "
                "WHERE user_id = %s ORDER BY id",
                (user_id,),
            ).fetchall()
        return [api_token_from_row(r) for r in rows]

    def delete_api_token(self, user_id: int, token_id: int) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "DELETE FROM api_tokens WHERE id = %s AND user_id = %s", (token_id, user_id)
            )
            return cur.rowcount > 0

    # -- login rate limiting --------------------------------------------------------------
    def record_login_failure(self, key: str, at: dt.datetime) -> None:
        with self._conn() as conn, conn.transaction():
            # Old rows are useless to the limiter; trimming here keeps the table small.
            conn.execute(
                "DELETE FROM login_failures WHERE at < %s", (_ts(at) - dt.timedelta(days=1),)
            )
            conn.execute("INSERT INTO login_failures (key, at) VALUES (%s, %s)", (key, _ts(at)))

    def count_login_failures(self, key: str, since: dt.datetime) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM login_failures WHERE key = %s AND at >= %s",
                (key, _ts(since)),
            ).fetchone()
        return int(row[0]) if row else 0

    def clear_login_failures(self, key: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM login_failures WHERE key = %s", (key,))

    # -- votes --------------------------------------------------------------------------
    def set_vote(self, user_id: int, paper_id: str, voted: bool) -> int:
        with self._conn() as conn, conn.transaction():
            pk = self._paper_pk(conn, paper_id)
            if voted:
                conn.execute(
                    "INSERT INTO votes (user_id, paper_pk, created_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (user_id, pk, _now()),
                )
            else:
                conn.execute(
                    "DELETE FROM votes WHERE user_id = %s AND paper_pk = %s", (user_id, pk)
                )
            row = conn.execute("SELECT COUNT(*) FROM votes WHERE paper_pk = %s", (pk,)).fetchone()
        return int(row[0]) if row else 0

    def voted(self, user_id: int, paper_ids: Sequence[str]) -> set[str]:
        if not paper_ids:
            return set()
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT p.id FROM votes v JOIN papers p ON p.pk = v.paper_pk "
                "WHERE v.user_id = %s AND p.id = ANY(%s)",
                (user_id, list(paper_ids)),
            ).fetchall()
        return {r[0] for r in rows}

    def vote_counts(self, paper_ids: Sequence[str]) -> dict[str, int]:
        if not paper_ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT p.id, COUNT(*) FROM votes v JOIN papers p ON p.pk = v.paper_pk "
                "WHERE p.id = ANY(%s) GROUP BY p.id",
                (list(paper_ids),),
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # -- collections ----------------------------------------------------------------------
    def create_collection(self, user_id: int, name: str, *, is_public: bool = False) -> Collection:
        with self._conn() as conn:
            try:
                with conn.transaction():
                    row = conn.execute(
                        "INSERT INTO collections (user_id, name, is_public, created_at) "
                        "VALUES (%s, %s, %s, %s) RETURNING id",
                        (user_id, name, is_public, _now()),
                    ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise PaperfeedError(f"you already have a collection named {name!r}") from None
            assert row is not None
            found = conn.execute(_COLLECTION + "WHERE c.id = %s", (row[0],)).fetchone()
        assert found is not None
        return collection_from_row(found)

    def get_collection(self, collection_id: int) -> Collection | None:
        with self._conn() as conn:
            row = conn.execute(_COLLECTION + "WHERE c.id = %s", (collection_id,)).fetchone()
        return None if row is None else collection_from_row(row)

    def collections(self, user_id: int) -> list[Collection]:
        with self._conn() as conn:
            rows = conn.execute(
                _COLLECTION + "WHERE c.user_id = %s ORDER BY lower(c.name), c.id", (user_id,)
            ).fetchall()
        return [collection_from_row(r) for r in rows]

    def update_collection(
        self, collection_id: int, *, name: str | None = None, is_public: bool | None = None
    ) -> Collection:
        with self._conn() as conn:
            try:
                with conn.transaction():
                    if name is not None:
                        conn.execute(
                            "UPDATE collections SET name = %s WHERE id = %s", (name, collection_id)
                        )
                    if is_public is not None:
                        conn.execute(
                            "UPDATE collections SET is_public = %s WHERE id = %s",
                            (is_public, collection_id),
                        )
            except psycopg.errors.UniqueViolation:
                raise PaperfeedError(f"you already have a collection named {name!r}") from None
            row = conn.execute(_COLLECTION + "WHERE c.id = %s", (collection_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no collection {collection_id}")
        return collection_from_row(row)

    def delete_collection(self, collection_id: int) -> bool:
        with self._conn() as conn:
            cur = conn.execute("DELETE FROM collections WHERE id = %s", (collection_id,))
            return cur.rowcount > 0

    def add_to_collection(self, collection_id: int, paper_id: str, note: str = "") -> None:
        with self._conn() as conn, conn.transaction():
            pk = self._paper_pk(conn, paper_id)
            exists = conn.execute(
                "SELECT 1 FROM collections WHERE id = %s", (collection_id,)
            ).fetchone()
            if exists is None:
                raise NotFoundError(f"no collection {collection_id}")
            conn.execute(
                "INSERT INTO collection_items (collection_id, paper_pk, note, added_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (collection_id, paper_pk) "
                "DO UPDATE SET note = excluded.note",
                (collection_id, pk, note, _now()),
            )

    def remove_from_collection(self, collection_id: int, paper_id: str) -> bool:
        with self._conn() as conn:
            pk = self._resolve_pk(conn, paper_id)
            if pk is None:
                return False
            cur = conn.execute(
                "DELETE FROM collection_items WHERE collection_id = %s AND paper_pk = %s",
                (collection_id, pk),
            )
            return cur.rowcount > 0

    def collection_items(self, collection_id: int) -> list[CollectionItem]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT paper_pk, note, added_at FROM collection_items WHERE collection_id = %s "
                "ORDER BY added_at DESC, paper_pk",
                (collection_id,),
            ).fetchall()
            if not rows:
                return []
            paper_rows = conn.execute(
                f"SELECT {_PAPER_COLUMNS} FROM papers WHERE pk = ANY(%s)",
                ([int(r[0]) for r in rows],),
            ).fetchall()
            papers = {
                int(r[0]): p
                for r, p in zip(paper_rows, self._rows_to_papers(conn, paper_rows), strict=True)
            }
        return [
            CollectionItem(papers[int(pk)], note, _ts(added))
            for pk, note, added in rows
            if int(pk) in papers
        ]

    # -- subscriptions --------------------------------------------------------------------
    def create_subscription(
        self,
        email: str,
        *,
        user_id: int | None,
        frequency: str,
        contents: SubscriptionContents,
        max_items: int,
    ) -> Subscription:
        with self._conn() as conn:
            try:
                with conn.transaction():
                    row = conn.execute(
                        "INSERT INTO subscriptions (user_id, email, frequency, contents, "
                        "max_items, created_at) VALUES (%s, %s, %s, %s, %s, %s) "
                        f"RETURNING {_SUBSCRIPTION}",
                        (user_id, email, frequency, Jsonb(contents.to_json()), max_items, _now()),
                    ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise PaperfeedError(f"{email} is already subscribed") from None
        assert row is not None
        return subscription_from_row(row)

    def get_subscription(self, subscription_id: int) -> Subscription | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = %s", (subscription_id,)
            ).fetchone()
        return None if row is None else subscription_from_row(row)

    def subscription_by_email(self, email: str) -> Subscription | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE lower(email) = lower(%s)",
                (email,),
            ).fetchone()
        return None if row is None else subscription_from_row(row)

    def user_subscriptions(self, user_id: int) -> list[Subscription]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE user_id = %s ORDER BY id",
                (user_id,),
            ).fetchall()
        return [subscription_from_row(r) for r in rows]

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
        changes: list[tuple[str, object]] = []
        if frequency is not None:
            changes.append(("frequency", frequency))
        if contents is not None:
            changes.append(("contents", Jsonb(contents.to_json())))
        if max_items is not None:
            changes.append(("max_items", max_items))
        if confirmed_at is not None:
            changes.append(("confirmed_at", _ts(confirmed_at)))
        if unsubscribed_at is not None:
            changes.append(("unsubscribed_at", _ts(unsubscribed_at)))
        if resubscribe:
            changes.append(("unsubscribed_at", None))
        with self._conn() as conn, conn.transaction():
            for column, value in changes:
                # Column names come from the fixed list above, never from input.
                conn.execute(
                    f"UPDATE subscriptions SET {column} = %s WHERE id = %s",
                    (value, subscription_id),
                )
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = %s", (subscription_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no subscription {subscription_id}")
        return subscription_from_row(row)

    def delete_subscription(self, subscription_id: int) -> bool:
        with self._conn() as conn:
            cur = conn.execute("DELETE FROM subscriptions WHERE id = %s", (subscription_id,))
            return cur.rowcount > 0

    def list_subscriptions(self) -> list[Subscription]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_SUBSCRIPTION} FROM subscriptions ORDER BY id").fetchall()
        return [subscription_from_row(r) for r in rows]

    def active_subscriptions(self, frequency: str | None = None) -> list[Subscription]:
        text = (
            f"SELECT {_SUBSCRIPTION} FROM subscriptions "
            "WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL"
        )
        params: tuple[object, ...] = ()
        if frequency is not None:
            text += " AND frequency = %s"
            params = (frequency,)
        with self._conn() as conn:
            rows = conn.execute(text + " ORDER BY id", params).fetchall()
        return [subscription_from_row(r) for r in rows]

    # -- the digest ledger ----------------------------------------------------------------
    @staticmethod
    def _get_run(conn: psycopg.Connection[Any], run_id: int) -> DigestRun:
        row = conn.execute(f"SELECT {_RUN} FROM digest_runs WHERE id = %s", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no digest run {run_id}")
        return run_from_row(row)

    def claim_digest_run(self, subscription_id: int, period: str, message_id: str) -> DigestRun:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO digest_runs (subscription_id, period, status, message_id, created_at) "
                "VALUES (%s, %s, 'pending', %s, %s) ON CONFLICT (subscription_id, period) "
                "DO NOTHING",
                (subscription_id, period, message_id, _now()),
            )
            row = conn.execute(
                f"SELECT {_RUN} FROM digest_runs WHERE subscription_id = %s AND period = %s",
                (subscription_id, period),
            ).fetchone()
        assert row is not None
        return run_from_row(row)

    def mark_digest_sending(self, run_id: int, items: int) -> DigestRun:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "UPDATE digest_runs SET status = 'sending', attempts = attempts + 1, items = %s "
                "WHERE id = %s AND status != 'sent'",
                (items, run_id),
            )
            return self._get_run(conn, run_id)

    def mark_digest_sent(self, run_id: int, at: dt.datetime) -> DigestRun:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "UPDATE digest_runs SET status = 'sent', sent_at = %s, last_error = NULL, "
                "next_attempt_at = NULL WHERE id = %s",
                (_ts(at), run_id),
            )
            return self._get_run(conn, run_id)

    def mark_digest_failed(
        self, run_id: int, error: str, next_attempt_at: dt.datetime | None
    ) -> DigestRun:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "UPDATE digest_runs SET status = 'failed', last_error = %s, next_attempt_at = %s "
                "WHERE id = %s AND status != 'sent'",
                (error, None if next_attempt_at is None else _ts(next_attempt_at), run_id),
            )
            return self._get_run(conn, run_id)

    def digest_runs(
        self, *, subscription_id: int | None = None, period: str | None = None
    ) -> list[DigestRun]:
        text = f"SELECT {_RUN} FROM digest_runs WHERE true"
        params: list[object] = []
        if subscription_id is not None:
            text += " AND subscription_id = %s"
            params.append(subscription_id)
        if period is not None:
            text += " AND period = %s"
            params.append(period)
        with self._conn() as conn:
            rows = conn.execute(text + " ORDER BY id", params).fetchall()
        return [run_from_row(r) for r in rows]
