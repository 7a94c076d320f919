"""SQLite implementation of :class:`paperfeed.store.recommend.RecommendStore`.

A mixin of :class:`~paperfeed.store.sqlite.store.SQLiteStore`: writes go through the store's
writer connection under its lock, reads through the per-thread reader.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

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
from paperfeed.store.sqlite.connections import SQLiteConnections

_TOPIC = "id, key, name, description, grp, owner_id, threshold"
_MODEL = "user_id, tag, kind, encoder_model_id, weights, bias, version, trained_at, metadata"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def to_npy(array: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def from_npy(data: bytes) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.load(io.BytesIO(data), allow_pickle=False)
    return array


def _topic(row: Sequence[Any]) -> StoredTopic:
    return StoredTopic(
        id=row[0],
        key=row[1],
        name=row[2],
        description=row[3],
        group=row[4],
        owner_id=row[5],
        threshold=row[6],
    )


def _model(row: Sequence[Any]) -> StoredModel:
    return StoredModel(
        user_id=row[0],
        tag=row[1],
        kind=row[2],
        encoder_model_id=row[3],
        weights=from_npy(row[4]).astype(np.float32, copy=False),
        bias=float(row[5]),
        version=int(row[6]),
        trained_at=dt.datetime.fromisoformat(row[7]),
        metadata=json.loads(row[8]),
    )


class SQLiteRecommend(SQLiteConnections, RecommendStore):
    # -- feedback -----------------------------------------------------------------------
    def set_feedback(self, user_id: int, paper_id: str, tag: str, label: int | None) -> None:
        if label not in (1, -1, None):
            raise ValueError(f"label must be 1, -1 or None, not {label!r}")
        with self._tx() as conn:
            pk = self._resolve_pk(conn, paper_id)
            if pk is None:
                raise NotFoundError(f"no paper with id {paper_id!r}")
            if label is None:
                changed = conn.execute(
                    "DELETE FROM feedback WHERE user_id = ? AND tag = ? AND paper_pk = ?",
                    (user_id, tag, pk),
                ).rowcount
            else:
                changed = conn.execute(
                    "INSERT INTO feedback (user_id, tag, paper_pk, label, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, tag, paper_pk) "
                    "DO UPDATE SET label = excluded.label, created_at = excluded.created_at "
                    "WHERE label != excluded.label",
                    (user_id, tag, pk, label, _now()),
                ).rowcount
            if changed:
                # The general model learns from every tag's positives, so it is retrained too.
                for t in sorted({tag, GENERAL_TAG}):
                    self._bump(conn, user_id, t)

    def _bump(self, conn: sqlite3.Connection, user_id: int, tag: str) -> None:
        conn.execute(
            "INSERT INTO feedback_versions (user_id, tag, version, changed_at) "
            "VALUES (?, ?, 1, ?) ON CONFLICT (user_id, tag) DO UPDATE SET "
            "version = version + 1, changed_at = excluded.changed_at",
            (user_id, tag, _now()),
        )

    def queue_training(self, user_id: int, tag: str) -> None:
        with self._tx() as conn:
            self._bump(conn, user_id, tag)

    def feedback(self, user_id: int, tag: str | None = None) -> list[FeedbackItem]:
        sql = (
            "SELECT f.user_id, f.paper_pk, p.id, f.tag, f.label, f.created_at "
            "FROM feedback f JOIN papers p ON p.pk = f.paper_pk WHERE f.user_id = ?"
        )
        params: list[Any] = [user_id]
        if tag is not None:
            sql += " AND f.tag = ?"
            params.append(tag)
        sql += " ORDER BY f.created_at DESC, f.tag, f.paper_pk"
        return [
            FeedbackItem(
                user_id=r[0],
                paper_pk=r[1],
                paper_id=r[2],
                tag=r[3],
                label=r[4],
                created_at=dt.datetime.fromisoformat(r[5]),
            )
            for r in self._reader().execute(sql, params)
        ]

    def feedback_users(self) -> list[int]:
        rows = self._reader().execute("SELECT DISTINCT user_id FROM feedback ORDER BY user_id")
        return [int(r[0]) for r in rows]

    # -- models -------------------------------------------------------------------------
    def training_jobs(self, limit: int = 100) -> list[TrainingJob]:
        rows = self._reader().execute(
            "SELECT user_id, tag, version FROM feedback_versions "
            "WHERE version > trained_version ORDER BY changed_at, user_id, tag LIMIT ?",
            (limit,),
        )
        return [TrainingJob(user_id=r[0], tag=r[1], version=r[2]) for r in rows]

    def _mark_trained(self, conn: sqlite3.Connection, user_id: int, tag: str, version: int) -> None:
        conn.execute(
            "UPDATE feedback_versions SET trained_version = MAX(trained_version, ?) "
            "WHERE user_id = ? AND tag = ?",
            (version, user_id, tag),
        )

    def save_model(self, model: StoredModel) -> None:
        with self._tx() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO recommend_models ({_MODEL}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model.user_id,
                    model.tag,
                    model.kind,
                    model.encoder_model_id,
                    to_npy(np.asarray(model.weights, dtype=np.float32)),
                    float(model.bias),
                    model.version,
                    model.trained_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                    json.dumps(dict(model.metadata), sort_keys=True),
                ),
            )
            self._mark_trained(conn, model.user_id, model.tag, model.version)

    def delete_model(self, user_id: int, tag: str, version: int) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM recommend_models WHERE user_id = ? AND tag = ?", (user_id, tag)
            )
            self._mark_trained(conn, user_id, tag, version)

    def models(self, user_id: int) -> list[StoredModel]:
        rows = self._reader().execute(
            f"SELECT {_MODEL} FROM recommend_models WHERE user_id = ? ORDER BY tag", (user_id,)
        )
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
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id, description FROM topics WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO topics (key, name, description, grp, owner_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, name, description, group, owner_id, _now()),
                )
            else:
                if row[1] != description:
                    conn.execute("UPDATE topics SET threshold = NULL WHERE id = ?", (row[0],))
                    conn.execute("DELETE FROM paper_topics WHERE topic_id = ?", (row[0],))
                conn.execute(
                    "UPDATE topics SET name = ?, description = ?, grp = ? WHERE id = ?",
                    (name, description, group, row[0]),
                )
            found = conn.execute(f"SELECT {_TOPIC} FROM topics WHERE key = ?", (key,))
            return _topic(found.fetchone())

    def topics(self, *, owner_id: int | None = None) -> list[StoredTopic]:
        rows = self._reader().execute(
            f"SELECT {_TOPIC} FROM topics WHERE owner_id IS NULL OR owner_id = ? ORDER BY key",
            (owner_id,),
        )
        return [_topic(r) for r in rows]

    def delete_topic(self, topic_id: int) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM topics WHERE id = ?", (topic_id,)).rowcount > 0

    def set_topic_thresholds(self, thresholds: Mapping[int, float]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "UPDATE topics SET threshold = ? WHERE id = ?",
                [(float(t), int(i)) for i, t in thresholds.items()],
            )

    def replace_paper_topics(
        self, paper_pks: Sequence[int], topic_ids: Sequence[int], rows: Sequence[PaperTopic]
    ) -> None:
        with self._tx() as conn:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pt_pks (pk INTEGER PRIMARY KEY)")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pt_topics (id INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM _pt_pks")
            conn.execute("DELETE FROM _pt_topics")
            conn.executemany("INSERT OR IGNORE INTO _pt_pks VALUES (?)", ((p,) for p in paper_pks))
            conn.executemany(
                "INSERT OR IGNORE INTO _pt_topics VALUES (?)", ((t,) for t in topic_ids)
            )
            conn.execute(
                "DELETE FROM paper_topics WHERE paper_pk IN (SELECT pk FROM _pt_pks) "
                "AND topic_id IN (SELECT id FROM _pt_topics)"
            )
            conn.executemany(
                "INSERT OR REPLACE INTO paper_topics (paper_pk, topic_id, score) VALUES (?, ?, ?)",
                ((r.paper_pk, r.topic_id, float(r.score)) for r in rows),
            )

    def paper_topics(self, paper_pks: Sequence[int]) -> dict[int, list[PaperTopic]]:
        out: dict[int, list[PaperTopic]] = {}
        pks = list(dict.fromkeys(paper_pks))
        conn = self._reader()
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT paper_pk, topic_id, score FROM paper_topics WHERE paper_pk IN ({marks}) "
                "ORDER BY paper_pk, score DESC, topic_id",
                chunk,
            )
            for r in rows:
                out.setdefault(r[0], []).append(PaperTopic(r[0], r[1], r[2]))
        return out

    def topic_papers(self, topic_id: int) -> list[PaperTopic]:
        rows = self._reader().execute(
            "SELECT paper_pk, topic_id, score FROM paper_topics WHERE topic_id = ? "
            "ORDER BY score DESC, paper_pk",
            (topic_id,),
        )
        return [PaperTopic(r[0], r[1], r[2]) for r in rows]

    def topic_counts(self) -> dict[int, int]:
        rows = self._reader().execute(
            "SELECT topic_id, COUNT(*) FROM paper_topics GROUP BY topic_id"
        )
        return {int(r[0]): int(r[1]) for r in rows}

    # -- the map --------------------------------------------------------------------------
    def save_map_layout(self, layout: MapLayout) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO map_layout (id, keys, xy, metadata, created_at) "
                "VALUES (1, ?, ?, ?, ?)",
                (
                    to_npy(np.asarray(layout.keys, dtype=np.int64)),
                    to_npy(np.asarray(layout.xy, dtype=np.float32)),
                    json.dumps(dict(layout.metadata), sort_keys=True),
                    _now(),
                ),
            )

    def map_layout(self) -> MapLayout | None:
        row = (
            self._reader()
            .execute("SELECT keys, xy, metadata FROM map_layout WHERE id = 1")
            .fetchone()
        )
        if row is None:
            return None
        return MapLayout(
            keys=from_npy(row[0]).astype(np.int64, copy=False),
            xy=from_npy(row[1]).astype(np.float32, copy=False),
            metadata=json.loads(row[2]),
        )
