"""The recommender's part of the store, on a real SQLite file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from paperfeed.errors import NotFoundError
from paperfeed.model import new_paper
from paperfeed.recommend.feedback import local_user
from paperfeed.store import IncomingRecord, Store
from paperfeed.store.recommend import MapLayout, PaperTopic, StoredModel


def add_papers(store: Store, *titles: str) -> list[str]:
    papers = [new_paper(title=t, abstract=f"About {t}.", source="jsonl") for t in titles]
    store.write_batch([IncomingRecord(p) for p in papers], [])
    return [p.id for p in papers]


def test_feedback_changes_queue_the_tag_and_the_general_model(store: Store) -> None:
    uid = local_user(store).id
    a, b = add_papers(store, "Paper A", "Paper B")
    assert store.training_jobs() == []
    store.set_feedback(uid, a, "", 1)
    store.set_feedback(uid, b, "reading", 1)
    jobs = {(j.tag, j.version) for j in store.training_jobs()}
    assert jobs == {("", 2), ("reading", 1)}
    # Setting the same label again is no change and queues nothing new.
    store.set_feedback(uid, a, "", 1)
    assert {(j.tag, j.version) for j in store.training_jobs()} == jobs
    items = store.feedback(uid)
    assert {(i.paper_id, i.tag, i.label) for i in items} == {(a, "", 1), (b, "reading", 1)}
    assert store.feedback(uid, "reading")[0].paper_id == b
    store.set_feedback(uid, a, "", None)
    assert {(i.paper_id, i.tag) for i in store.feedback(uid)} == {(b, "reading")}
    assert store.feedback_users() == [uid]
    with pytest.raises(NotFoundError, match="no paper"):
        store.set_feedback(uid, "2401.99999", "", 1)
    with pytest.raises(ValueError, match="label"):
        store.set_feedback(uid, b, "", 2)


def test_models_round_trip_and_mark_their_version_trained(store: Store) -> None:
    uid = local_user(store).id
    (a,) = add_papers(store, "Paper A")
    store.set_feedback(uid, a, "", 1)
    (job,) = store.training_jobs()
    weights = np.linspace(-1, 1, 8, dtype=np.float32)
    model = StoredModel(
        user_id=uid,
        tag="",
        kind="nearest",
        encoder_model_id="fake",
        weights=weights,
        bias=0.5,
        version=job.version,
        trained_at=dt.datetime(2026, 3, 14, tzinfo=dt.UTC),
        metadata={"positives": [1], "metrics": {"fit_seconds": 0.1}},
    )
    store.save_model(model)
    assert store.training_jobs() == []
    (back,) = store.models(uid)
    assert np.array_equal(back.weights, weights)
    assert back.weights.dtype == np.float32
    assert (back.kind, back.bias, back.version, back.metadata) == (
        "nearest",
        0.5,
        job.version,
        {"positives": [1], "metrics": {"fit_seconds": 0.1}},
    )
    # A change made while the model was training leaves the tag queued.
    store.set_feedback(uid, a, "", -1)
    store.save_model(model)
    assert [j.version for j in store.training_jobs()] == [job.version + 1]
    store.delete_model(uid, "", job.version + 1)
    assert store.models(uid) == []
    assert store.training_jobs() == []


def test_topics_labels_and_a_changed_description(store: Store) -> None:
    a, b = add_papers(store, "Paper A", "Paper B")
    pa, pb = store.paper_pk(a), store.paper_pk(b)
    assert pa is not None
    assert pb is not None
    t1 = store.upsert_topic("ml.x", "X", "About x.", "ml")
    t2 = store.upsert_topic("ml.y", "Y", "About y.", "ml")
    store.set_topic_thresholds({t1.id: 0.4})
    store.replace_paper_topics(
        [pa, pb], [t1.id, t2.id], [PaperTopic(pa, t1.id, 0.5), PaperTopic(pa, t2.id, 0.7)]
    )
    labels = store.paper_topics([pa, pb])
    assert [(lt.topic_id, lt.score) for lt in labels[pa]] == [(t2.id, 0.7), (t1.id, 0.5)]
    assert pb not in labels
    assert store.topic_counts() == {t1.id: 1, t2.id: 1}
    assert [lt.paper_pk for lt in store.topic_papers(t2.id)] == [pa]
    # Same description: labels and threshold stay; new description: both are cleared.
    same = store.upsert_topic("ml.x", "X renamed", "About x.", "ml")
    assert same.id == t1.id
    assert same.threshold == 0.4
    assert same.name == "X renamed"
    changed = store.upsert_topic("ml.x", "X", "Something else.", "ml")
    assert changed.threshold is None
    assert store.topic_papers(t1.id) == []
    # Replacing for a subset of topics leaves the others alone.
    store.replace_paper_topics([pa], [t1.id], [])
    assert [lt.topic_id for lt in store.paper_topics([pa])[pa]] == [t2.id]
    # A user's topics are seen by that user only.
    uid = local_user(store).id
    mine = store.upsert_topic("user.1.z", "Z", "About z.", "user", owner_id=uid)
    assert mine.id not in {t.id for t in store.topics()}
    assert mine.id in {t.id for t in store.topics(owner_id=uid)}
    assert store.delete_topic(mine.id)
    assert not store.delete_topic(mine.id)


def test_map_layout_round_trip(store: Store) -> None:
    assert store.map_layout() is None
    keys = np.array([3, 1, 2], dtype=np.int64)
    xy = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]], dtype=np.float32)
    store.save_map_layout(MapLayout(keys, xy, {"method": "pca", "generation": 4}))
    back = store.map_layout()
    assert back is not None
    assert np.array_equal(back.keys, keys)
    assert np.array_equal(back.xy, xy)
    assert back.metadata == {"generation": 4, "method": "pca"}
    store.save_map_layout(MapLayout(keys[:1], xy[:1], {"method": "umap"}))
    again = store.map_layout()
    assert again is not None
    assert len(again.keys) == 1


def test_deleting_a_user_deletes_their_feedback_and_models(store: Store) -> None:
    uid = local_user(store).id
    (a,) = add_papers(store, "Paper A")
    store.set_feedback(uid, a, "t", 1)
    assert store.delete_user(uid)
    assert store.feedback(uid) == []
    assert store.training_jobs() == []
