"""SQLite implementation of :class:`paperfeed.store.accounts.AccountStore`.

A mixin of :class:`~paperfeed.store.sqlite.store.SQLiteStore`: it uses the store's writer
connection (under its lock) for writes and the per-thread reader for reads, like every other
method of the store.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import (
    ApiToken,
    Collection,
    CollectionItem,
    DigestRun,
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
from paperfeed.store.sqlite.connections import SQLiteConnections

_USER = "id, username, email, is_admin, created_at"
_SUBSCRIPTION = (
    "id, user_id, email, frequency, contents, max_items, created_at, confirmed_at, unsubscribed_at"
)
_RUN = (
    "id, subscription_id, period, status, attempts, message_id, items, last_error, "
    "next_attempt_at, sent_at"
)


def _ts(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _now() -> str:
    return _ts(dt.datetime.now(dt.UTC))


class SQLiteAccounts(SQLiteConnections, AccountStore):
    def _paper_pk(self, conn: sqlite3.Connection, paper_id: str) -> int:
        pk = self._resolve_pk(conn, paper_id)
        if pk is None:
            raise NotFoundError(f"no paper with id {paper_id!r}")
        return pk

    # -- users -----------------------------------------------------------------------
    def create_user(
        self, username: str, email: str | None, password_hash: str, *, is_admin: bool = False
    ) -> User:
        with self._tx() as conn:
            taken = conn.execute(
                "SELECT username = ? COLLATE NOCASE FROM users "
                "WHERE username = ? COLLATE NOCASE OR (email IS NOT NULL AND email = ?) LIMIT 1",
                (username, username, email),
            ).fetchone()
            if taken is not None:
                what = "username" if taken[0] else "e-mail address"
                raise PaperfeedError(f"that {what} is already taken")
            cur = conn.execute(
                "INSERT INTO users (username, email, password_hash, is_admin, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (username, email, password_hash, int(is_admin), _now()),
            )
            row = conn.execute(f"SELECT {_USER} FROM users WHERE id = ?", (cur.lastrowid,))
            return user_from_row(row.fetchone())

    def get_user(self, user_id: int) -> User | None:
        row = self._reader().execute(f"SELECT {_USER} FROM users WHERE id = ?", (user_id,))
        found = row.fetchone()
        return None if found is None else user_from_row(found)

    def user_credentials(self, login: str) -> tuple[User, str] | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {_USER}, password_hash FROM users "
                "WHERE username = ? COLLATE NOCASE OR email = ? COLLATE NOCASE "
                "ORDER BY username = ? COLLATE NOCASE DESC LIMIT 1",
                (login, login, login),
            )
            .fetchone()
        )
        return None if row is None else (user_from_row(row), str(row[5]))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )

    def set_admin(self, user_id: int, is_admin: bool) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE users SET is_admin = ? WHERE id = ?", (int(is_admin), user_id))

    def delete_user(self, user_id: int) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0

    def list_users(self) -> list[User]:
        rows = self._reader().execute(f"SELECT {_USER} FROM users ORDER BY id").fetchall()
        return [user_from_row(r) for r in rows]

    def count_users(self) -> int:
        return int(self._reader().execute("SELECT COUNT(*) FROM users").fetchone()[0])

    # -- sessions and API tokens --------------------------------------------------------
    def create_session(
        self, user_id: int, token_hash: str, *, created_at: dt.datetime, expires_at: dt.datetime
    ) -> None:
        with self._tx() as conn:
            now = _ts(created_at)
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (token_hash, user_id, now, _ts(expires_at)),
            )

    def session_user(self, token_hash: str, now: dt.datetime) -> User | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {', '.join('u.' + c for c in _USER.split(', '))} FROM sessions s "
                "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
                (token_hash, _ts(now)),
            )
            .fetchone()
        )
        return None if row is None else user_from_row(row)

    def delete_session(self, token_hash: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions(self, user_id: int) -> int:
        with self._tx() as conn:
            return conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount

    def create_api_token(self, user_id: int, name: str, token_hash: str) -> ApiToken:
        with self._tx() as conn:
            now = _now()
            cur = conn.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (user_id, name, token_hash, now),
            )
            assert cur.lastrowid is not None
            return ApiToken(cur.lastrowid, user_id, name, dt.datetime.fromisoformat(now), None)

    def api_token_user(self, token_hash: str, now: dt.datetime) -> User | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {', '.join('u.' + c for c in _USER.split(', '))}, t.id FROM api_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                (token_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        with self._tx() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (_ts(now), row[5]))
        return user_from_row(row)

    def api_tokens(self, user_id: int) -> list[ApiToken]:
        rows = self._reader().execute(
            "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens "
            "WHERE user_id = ? ORDER BY id",
            (user_id,),
        )
        return [api_token_from_row(r) for r in rows]

    def delete_api_token(self, user_id: int, token_id: int) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)
            )
            return cur.rowcount > 0

    # -- login rate limiting --------------------------------------------------------------
    def record_login_failure(self, key: str, at: dt.datetime) -> None:
        with self._tx() as conn:
            # Old rows are useless to the limiter; trimming here keeps the table small.
            horizon = _ts(at - dt.timedelta(days=1))
            conn.execute("DELETE FROM login_failures WHERE at < ?", (horizon,))
            conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, _ts(at)))

    def count_login_failures(self, key: str, since: dt.datetime) -> int:
        row = (
            self._reader()
            .execute(
                "SELECT COUNT(*) FROM login_failures WHERE key = ? AND at >= ?", (key, _ts(since))
            )
            .fetchone()
        )
        return int(row[0])

    def clear_login_failures(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    # -- votes --------------------------------------------------------------------------
    def set_vote(self, user_id: int, paper_id: str, voted: bool) -> int:
        with self._tx() as conn:
            pk = self._paper_pk(conn, paper_id)
            if voted:
                conn.execute(
                    "INSERT OR IGNORE INTO votes (user_id, paper_pk, created_at) VALUES (?, ?, ?)",
                    (user_id, pk, _now()),
                )
            else:
                conn.execute("DELETE FROM votes WHERE user_id = ? AND paper_pk = ?", (user_id, pk))
            row = conn.execute("SELECT COUNT(*) FROM votes WHERE paper_pk = ?", (pk,)).fetchone()
            return int(row[0])

    def voted(self, user_id: int, paper_ids: Sequence[str]) -> set[str]:
        if not paper_ids:
            return set()
        marks = ",".join("?" * len(paper_ids))
        rows = self._reader().execute(
            f"SELECT p.id FROM votes v JOIN papers p ON p.pk = v.paper_pk "
            f"WHERE v.user_id = ? AND p.id IN ({marks})",
            (user_id, *paper_ids),
        )
        return {r[0] for r in rows}

    def vote_counts(self, paper_ids: Sequence[str]) -> dict[str, int]:
        if not paper_ids:
            return {}
        marks = ",".join("?" * len(paper_ids))
        rows = self._reader().execute(
            f"SELECT p.id, COUNT(*) FROM votes v JOIN papers p ON p.pk = v.paper_pk "
            f"WHERE p.id IN ({marks}) GROUP BY p.id",
            tuple(paper_ids),
        )
        return {r[0]: int(r[1]) for r in rows}

    # -- collections ----------------------------------------------------------------------
    _COLLECTION = (
        "SELECT c.id, c.user_id, c.name, c.is_public, c.created_at, "
        "(SELECT COUNT(*) FROM collection_items i WHERE i.collection_id = c.id) "
        "FROM collections c "
    )

    def create_collection(self, user_id: int, name: str, *, is_public: bool = False) -> Collection:
        with self._tx() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO collections (user_id, name, is_public, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (user_id, name, int(is_public), _now()),
                )
            except sqlite3.IntegrityError:
                raise PaperfeedError(f"you already have a collection named {name!r}") from None
            row = conn.execute(self._COLLECTION + "WHERE c.id = ?", (cur.lastrowid,)).fetchone()
            return collection_from_row(row)

    def get_collection(self, collection_id: int) -> Collection | None:
        row = self._reader().execute(self._COLLECTION + "WHERE c.id = ?", (collection_id,))
        found = row.fetchone()
        return None if found is None else collection_from_row(found)

    def collections(self, user_id: int) -> list[Collection]:
        rows = self._reader().execute(
            self._COLLECTION + "WHERE c.user_id = ? ORDER BY c.name COLLATE NOCASE, c.id",
            (user_id,),
        )
        return [collection_from_row(r) for r in rows]

    def update_collection(
        self, collection_id: int, *, name: str | None = None, is_public: bool | None = None
    ) -> Collection:
        with self._tx() as conn:
            try:
                if name is not None:
                    conn.execute(
                        "UPDATE collections SET name = ? WHERE id = ?", (name, collection_id)
                    )
            except sqlite3.IntegrityError:
                raise PaperfeedError(f"you already have a collection named {name!r}") from None
            if is_public is not None:
                conn.execute(
                    "UPDATE collections SET is_public = ? WHERE id = ?",
                    (int(is_public), collection_id),
                )
            row = conn.execute(self._COLLECTION + "WHERE c.id = ?", (collection_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no collection {collection_id}")
            return collection_from_row(row)

    def delete_collection(self, collection_id: int) -> bool:
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
            return cur.rowcount > 0

    def add_to_collection(self, collection_id: int, paper_id: str, note: str = "") -> None:
        with self._tx() as conn:
            pk = self._paper_pk(conn, paper_id)
            if conn.execute("SELECT 1 FROM collections WHERE id = ?", (collection_id,)).fetchone():
                conn.execute(
                    "INSERT INTO collection_items (collection_id, paper_pk, note, added_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (collection_id, paper_pk) "
                    "DO UPDATE SET note = excluded.note",
                    (collection_id, pk, note, _now()),
                )
            else:
                raise NotFoundError(f"no collection {collection_id}")

    def remove_from_collection(self, collection_id: int, paper_id: str) -> bool:
        with self._tx() as conn:
            pk = self._resolve_pk(conn, paper_id)
            if pk is None:
                return False
            cur = conn.execute(
                "DELETE FROM collection_items WHERE collection_id = ? AND paper_pk = ?",
                (collection_id, pk),
            )
            return cur.rowcount > 0

    def collection_items(self, collection_id: int) -> list[CollectionItem]:
        conn = self._reader()
        rows = conn.execute(
            "SELECT paper_pk, note, added_at FROM collection_items WHERE collection_id = ? "
            "ORDER BY added_at DESC, paper_pk",
            (collection_id,),
        ).fetchall()
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        paper_rows = conn.execute(
            "SELECT pk, id, title, abstract, authors, categories, arxiv_id, doi, published, "
            f"updated, links, upvotes, first_seen, content_hash FROM papers WHERE pk IN ({marks})",
            [r[0] for r in rows],
        ).fetchall()
        papers = {
            r[0]: p for r, p in zip(paper_rows, self._rows_to_papers(conn, paper_rows), strict=True)
        }
        return [
            CollectionItem(papers[pk], note, dt.datetime.fromisoformat(added))
            for pk, note, added in rows
            if pk in papers
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
        with self._tx() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO subscriptions (user_id, email, frequency, contents, max_items, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, email, frequency, json.dumps(contents.to_json()), max_items, _now()),
                )
            except sqlite3.IntegrityError:
                raise PaperfeedError(f"{email} is already subscribed") from None
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
            return subscription_from_row(row)

    def get_subscription(self, subscription_id: int) -> Subscription | None:
        row = self._reader().execute(
            f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = ?", (subscription_id,)
        )
        found = row.fetchone()
        return None if found is None else subscription_from_row(found)

    def subscription_by_email(self, email: str) -> Subscription | None:
        row = self._reader().execute(
            f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE email = ? COLLATE NOCASE", (email,)
        )
        found = row.fetchone()
        return None if found is None else subscription_from_row(found)

    def user_subscriptions(self, user_id: int) -> list[Subscription]:
        rows = self._reader().execute(
            f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE user_id = ? ORDER BY id", (user_id,)
        )
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
            changes.append(("contents", json.dumps(contents.to_json())))
        if max_items is not None:
            changes.append(("max_items", max_items))
        if confirmed_at is not None:
            changes.append(("confirmed_at", _ts(confirmed_at)))
        if unsubscribed_at is not None:
            changes.append(("unsubscribed_at", _ts(unsubscribed_at)))
        if resubscribe:
            changes.append(("unsubscribed_at", None))
        with self._tx() as conn:
            for column, value in changes:
                conn.execute(
                    f"UPDATE subscriptions SET {column} = ? WHERE id = ?", (value, subscription_id)
                )
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = ?", (subscription_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no subscription {subscription_id}")
            return subscription_from_row(row)

    def delete_subscription(self, subscription_id: int) -> bool:
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
            return cur.rowcount > 0

    def list_subscriptions(self) -> list[Subscription]:
        rows = self._reader().execute(f"SELECT {_SUBSCRIPTION} FROM subscriptions ORDER BY id")
        return [subscription_from_row(r) for r in rows]

    def active_subscriptions(self, frequency: str | None = None) -> list[Subscription]:
        sql = (
            f"SELECT {_SUBSCRIPTION} FROM subscriptions "
            "WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL"
        )
        params: tuple[object, ...] = ()
        if frequency is not None:
            sql += " AND frequency = ?"
            params = (frequency,)
        rows = self._reader().execute(sql + " ORDER BY id", params)
        return [subscription_from_row(r) for r in rows]

    # -- the digest ledger ----------------------------------------------------------------
    def _get_run(self, conn: sqlite3.Connection, run_id: int) -> DigestRun:
        row = conn.execute(f"SELECT {_RUN} FROM digest_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no digest run {run_id}")
        return run_from_row(row)

    def claim_digest_run(self, subscription_id: int, period: str, message_id: str) -> DigestRun:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO digest_runs "
                "(subscription_id, period, status, message_id, created_at) "
                "VALUES (?, ?, 'pending', ?, ?)",
                (subscription_id, period, message_id, _now()),
            )
            row = conn.execute(
                f"SELECT {_RUN} FROM digest_runs WHERE subscription_id = ? AND period = ?",
                (subscription_id, period),
            ).fetchone()
            return run_from_row(row)

    def mark_digest_sending(self, run_id: int, items: int) -> DigestRun:
        with self._tx() as conn:
            conn.execute(
                "UPDATE digest_runs SET status = 'sending', attempts = attempts + 1, items = ? "
                "WHERE id = ? AND status != 'sent'",
                (items, run_id),
            )
            return self._get_run(conn, run_id)

    def mark_digest_sent(self, run_id: int, at: dt.datetime) -> DigestRun:
        with self._tx() as conn:
            conn.execute(
                "UPDATE digest_runs SET status = 'sent', sent_at = ?, last_error = NULL, "
                "next_attempt_at = NULL WHERE id = ?",
                (_ts(at), run_id),
            )
            return self._get_run(conn, run_id)

    def mark_digest_failed(
        self, run_id: int, error: str, next_attempt_at: dt.datetime | None
    ) -> DigestRun:
        with self._tx() as conn:
            conn.execute(
                "UPDATE digest_runs SET status = 'failed', last_error = ?, next_attempt_at = ? "
                "WHERE id = ? AND status != 'sent'",
                (error, None if next_attempt_at is None else _ts(next_attempt_at), run_id),
            )
            return self._get_run(conn, run_id)

    def digest_runs(
        self, *, subscription_id: int | None = None, period: str | None = None
    ) -> list[DigestRun]:
        sql = f"SELECT {_RUN} FROM digest_runs WHERE 1 = 1"
        params: list[object] = []
        if subscription_id is not None:
            sql += " AND subscription_id = ?"
            params.append(subscription_id)
        if period is not None:
            sql += " AND period = ?"
            params.append(period)
        rows = self._reader().execute(sql + " ORDER BY id", params)
        return [run_from_row(r) for r in rows]
