"""PostgreSQL implementation of :class:`paperfeed.store.recommend.RecommendStore`.

A mixin of :class:`~paperfeed.store.postgres.store.PostgresStore`, the twin of
:mod:`paperfeed.store.sqlite.recommend`: each method borrows a pooled connection, a write is
one transaction. Arrays are stored as .npy bytes, as in SQLite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from paperfeed.errors import NotFoundError
from paperfeed.store.recommend import (
    GENERAL_TAG,
    FeedbackItem,
    MapLayout,
    PaperTopic,
    RecommendStore,
    StoredModel,
    StoredTopic,
    TrainingJob,
)
from paperfeed.store.sqlite.recommend import from_npy, to_npy

_TOPIC = "id, key, name, description, grp, owner_id, threshold"
_MODEL = "user_id, tag, kind, encoder_model_id, weights, bias, version, trained_at, metadata"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _topic(row: Sequence[Any]) -> StoredTopic:
    return StoredTopic(
        id=int(row[0]),
        key=row[1],
        name=row[2],
        description=row[3],
        group=row[4],
        owner_id=None if row[5] is None else int(row[5]),
        threshold=row[6],
    )


def _model(row: Sequence[Any]) -> StoredModel:
    return StoredModel(
        user_id=int(row[0]),
        tag=row[1],
        kind=row[2],
        encoder_model_id=row[3],
        weights=from_npy(bytes(row[4])).astype(np.float32, copy=False),
        bias=float(row[5]),
        version=int(row[6]),
        trained_at=row[7].astimezone(dt.UTC),
        metadata=row[8],
    )


class PostgresRecommend(RecommendStore):
    # Provided by PostgresStore.
    _conn: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
    _resolve_pk: Callable[[psycopg.Connection[Any], str], int | None]

    # -- feedback -----------------------------------------------------------------------
    def set_feedback(self, user_id: int, paper_id: str, tag: str, label: int | None) -> None:
        if label not in (1, -1, None):
            raise ValueError(f"label must be 1, -1 or None, not {label!r}")
        with self._conn() as conn, conn.transaction():
            pk = self._resolve_pk(conn, paper_id)
            if pk is None:
                raise NotFoundError(f"no paper with id {paper_id!r}")
            if label is None:
                changed = conn.execute(
                    "DELETE FROM feedback WHERE user_id = %s AND tag = %s AND paper_pk = %s",
                    (user_id, tag, pk),
                ).rowcount
            else:
                changed = conn.execute(
                    "INSERT INTO feedback (user_id, tag, paper_pk, label, created_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, tag, paper_pk) "
                    "DO UPDATE SET label = excluded.label, created_at = excluded.created_at "
                    "WHERE feedback.label != excluded.label",
                    (user_id, tag, pk, label, _now()),
                ).rowcount
            if changed:
                # The general model learns from every tag's positives, so it is retrained too.
                for t in sorted({tag, GENERAL_TAG}):
                    self._bump(conn, user_id, t)

    @staticmethod
    def _bump(conn: psycopg.Connection[Any], user_id: int, tag: str) -> None:
        conn.execute(
            "INSERT INTO feedback_versions (user_id, tag, version, changed_at) "
            "VALUES (%s, %s, 1, %s) ON CONFLICT (user_id, tag) DO UPDATE SET "
            "version = feedback_versions.version + 1, changed_at = excluded.changed_at",
            (user_id, tag, _now()),
        )

    def queue_training(self, user_id: int, tag: str) -> None:
        with self._conn() as conn, conn.transaction():
            self._bump(conn, user_id, tag)

    def feedback(self, user_id: int, tag: str | None = None) -> list[FeedbackItem]:
        text = (
            "SELECT f.user_id, f.paper_pk, p.id, f.tag, f.label, f.created_at "
            "FROM feedback f JOIN papers p ON p.pk = f.paper_pk WHERE f.user_id = %s"
        )
        params: list[Any] = [user_id]
        if tag is not None:
            text += " AND f.tag = %s"
            params.append(tag)
        text += " ORDER BY f.created_at DESC, f.tag, f.paper_pk"
        with self._conn() as conn:
            rows = conn.execute(text, params).fetchall()
        return [
            FeedbackItem(
                user_id=int(r[0]),
                paper_pk=int(r[1]),
                paper_id=r[2],
                tag=r[3],
                label=int(r[4]),
                created_at=r[5].astimezone(dt.UTC),
            )
            for r in rows
        ]

    def feedback_users(self) -> list[int]:
        with self._conn() as conn:
            rows = conn.execute("SELECT DISTINCT user_id FROM feedback ORDER BY user_id")
            return [int(r[0]) for r in rows]

    # -- models -------------------------------------------------------------------------
    def training_jobs(self, limit: int = 100) -> list[TrainingJob]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT user_id, tag, version FROM feedback_versions "
                "WHERE version > trained_version ORDER BY changed_at, user_id, tag LIMIT %s",
                (limit,),
            ).fetchall()
        return [TrainingJob(user_id=int(r[0]), tag=r[1], version=int(r[2])) for r in rows]

    @staticmethod
    def _mark_trained(conn: psycopg.Connection[Any], user_id: int, tag: str, version: int) -> None:
        conn.execute(
            "UPDATE feedback_versions SET trained_version = GREATEST(trained_version, %s) "
            "WHERE user_id = %s AND tag = %s",
            (version, user_id, tag),
        )

    def save_model(self, model: StoredModel) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                f"INSERT INTO recommend_models ({_MODEL}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, tag) "
                "DO UPDATE SET kind = excluded.kind, encoder_model_id = excluded.encoder_model_id, "
                "weights = excluded.weights, bias = excluded.bias, version = excluded.version, "
                "trained_at = excluded.trained_at, metadata = excluded.metadata",
                (
                    model.user_id,
                    model.tag,
                    model.kind,
                    model.encoder_model_id,
                    to_npy(np.asarray(model.weights, dtype=np.float32)),
                    float(model.bias),
                    model.version,
                    model.trained_at.astimezone(dt.UTC),
                    Jsonb(dict(model.metadata)),
                ),
            )
            self._mark_trained(conn, model.user_id, model.tag, model.version)

    def delete_model(self, user_id: int, tag: str, version: int) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM recommend_models WHERE user_id = %s AND tag = %s", (user_id, tag)
            )
            self._mark_trained(conn, user_id, tag, version)

    def models(self, user_id: int) -> list[StoredModel]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_MODEL} FROM recommend_models WHERE user_id = %s ORDER BY tag",
                (user_id,),
            ).fetchall()
        return [_model(r) for r in rows]

    # -- topics -------------------------------------------------------------------------
    def upsert_topic(
        self,
        key: str,
        name: str,
        description: str,
        group: str,
        *,
        owner_id: int | None = None,
    ) -> StoredTopic:
        with self._conn() as conn, conn.transaction():
            row = conn.execute(
                "SELECT id, description FROM topics WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO topics (key, name, description, grp, owner_id, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                    (key, name, description, group, owner_id, _now()),
                )
            else:
                if row[1] != description:
                    conn.execute("UPDATE topics SET threshold = NULL WHERE id = %s", (row[0],))
                    conn.execute("DELETE FROM paper_topics WHERE topic_id = %s", (row[0],))
                conn.execute(
                    "UPDATE topics SET name = %s, description = %s, grp = %s WHERE id = %s",
                    (name, description, group, row[0]),
                )
            found = conn.execute(f"SELECT {_TOPIC} FROM topics WHERE key = %s", (key,)).fetchone()
        assert found is not None
        return _topic(found)

    def topics(self, *, owner_id: int | None = None) -> list[StoredTopic]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_TOPIC} FROM topics WHERE owner_id IS NULL OR owner_id = %s ORDER BY key",
                (owner_id,),
            ).fetchall()
        return [_topic(r) for r in rows]

    def delete_topic(self, topic_id: int) -> bool:
        with self._conn() as conn:
            return conn.execute("DELETE FROM topics WHERE id = %s", (topic_id,)).rowcount > 0

    def set_topic_thresholds(self, thresholds: Mapping[int, float]) -> None:
        if not thresholds:
            return
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE topics SET threshold = %s WHERE id = %s",
                [(float(t), int(i)) for i, t in thresholds.items()],
            )

    def replace_paper_topics(
        self, paper_pks: Sequence[int], topic_ids: Sequence[int], rows: Sequence[PaperTopic]
    ) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM paper_topics WHERE paper_pk = ANY(%s) AND topic_id = ANY(%s)",
                ([int(p) for p in paper_pks], [int(t) for t in topic_ids]),
            )
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO paper_topics (paper_pk, topic_id, score) "
                        "VALUES (%s, %s, %s) ON CONFLICT (paper_pk, topic_id) "
                        "DO UPDATE SET score = excluded.score",
                        [(int(r.paper_pk), int(r.topic_id), float(r.score)) for r in rows],
                    )

    def paper_topics(self, paper_pks: Sequence[int]) -> dict[int, list[PaperTopic]]:
        out: dict[int, list[PaperTopic]] = {}
        pks = [int(p) for p in dict.fromkeys(paper_pks)]
        if not pks:
            return out
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT paper_pk, topic_id, score FROM paper_topics WHERE paper_pk = ANY(%s) "
                "ORDER BY paper_pk, score DESC, topic_id",
                (pks,),
            ).fetchall()
        for r in rows:
            out.setdefault(int(r[0]), []).append(PaperTopic(int(r[0]), int(r[1]), float(r[2])))
        return out

    def topic_papers(self, topic_id: int) -> list[PaperTopic]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT paper_pk, topic_id, score FROM paper_topics WHERE topic_id = %s "
                "ORDER BY score DESC, paper_pk",
                (topic_id,),
            ).fetchall()
        return [PaperTopic(int(r[0]), int(r[1]), float(r[2])) for r in rows]

    def topic_counts(self) -> dict[int, int]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT topic_id, COUNT(*) FROM paper_topics GROUP BY topic_id"
            ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    # -- the map --------------------------------------------------------------------------
    def save_map_layout(self, layout: MapLayout) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO map_layout (id, keys, xy, metadata, created_at) "
                "VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET keys = excluded.keys, "
                "xy = excluded.xy, metadata = excluded.metadata, created_at = excluded.created_at",
                (
                    to_npy(np.asarray(layout.keys, dtype=np.int64)),
                    to_npy(np.asarray(layout.xy, dtype=np.float32)),
                    Jsonb(dict(layout.metadata)),
                    _now(),
                ),
            )

    def map_layout(self) -> MapLayout | None:
        with self._conn() as conn:
            row = conn.execute("SELECT keys, xy, metadata FROM map_layout WHERE id = 1").fetchone()
        if row is None:
            return None
        return MapLayout(
            keys=from_npy(bytes(row[0])).astype(np.int64, copy=False),
            xy=from_npy(bytes(row[1])).astype(np.float32, copy=False),
            metadata=row[2],
        )
