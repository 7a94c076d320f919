"""Zero-shot topics: the taxonomy, the calibration rule, user topics; the real model on
the sample."""

from __future__ import annotations

import numpy as np
import pytest

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index import semantic
from paperfeed.recommend.feedback import local_user
from paperfeed.recommend.topics import (
    ARXIV_GROUP,
    ML_GROUP,
    USER_GROUP,
    add_user_topic,
    assign_topics,
    choose_topics,
    default_taxonomy,
    find_topic,
    install_taxonomy,
    topic_labels,
    topic_paper_pks,
)
from paperfeed.recommend.vectors import open_active_vectors
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery
from tests.recommend.conftest import Embedded, embed_sample


def test_the_default_taxonomy_has_arxiv_cs_and_ml_topics_with_descriptions() -> None:
    topics = default_taxonomy()
    keys = [t.key for t in topics]
    assert len(keys) == len(set(keys))
    arxiv = [t for t in topics if t.group == ARXIV_GROUP]
    ml = [t for t in topics if t.group == ML_GROUP]
    assert len(arxiv) >= 35
    assert {"cs.CL", "cs.CV", "cs.LG", "cs.AI", "cs.RO"} <= {t.key for t in arxiv}
    assert len(ml) >= 30
    assert all(len(t.description.split()) >= 6 for t in topics)


def test_the_calibration_rule() -> None:
    groups = [ARXIV_GROUP, ARXIV_GROUP, ML_GROUP, ML_GROUP, ML_GROUP, USER_GROUP]
    thresholds = np.full(6, 0.3, dtype=np.float32)
    means = np.array([0.0, 0.0, 0.0, 0.25, 0.0, 0.0], dtype=np.float32)
    sims = np.array(
        [
            [0.50, 0.40, 0.60, 0.62, 0.58, 0.31],  # ML topic 3 is a hub: corrected 0.37
            [0.20, 0.10, 0.29, 0.25, 0.10, 0.29],  # nothing clears the floor
            [0.35, 0.34, 0.50, 0.10, 0.20, 0.10],  # only one ML topic near the best
        ],
        dtype=np.float32,
    )
    chosen = choose_topics(sims, groups, thresholds, means, margin=0.05)
    assert chosen == [[0, 2, 4, 5], [], [0, 2]]


def test_user_topics_and_assignment_with_the_fake_encoder(embedded: Embedded) -> None:
    e = embedded
    assert install_taxonomy(e.store) == len(default_taxonomy())
    topic = add_user_topic(e.store, e.user.id, "text-to-image personalization", name="T2I")
    assert topic.key == f"user.{e.user.id}.t2i"
    with pytest.raises(PaperfeedError, match="sentence"):
        add_user_topic(e.store, e.user.id, "   ")
    encoder = semantic.load_encoder(e.settings, "fake")
    report = assign_topics(e.store, e.vectors, encoder, threshold=0.35)
    assert report.papers == len(e.papers)
    assert report.labels > 0
    mine = topic_paper_pks(e.store, "T2I", user_id=e.user.id)
    assert mine
    labels = topic_labels(e.store, mine[:3], user_id=e.user.id)
    assert all(any(c.key == topic.key for c in chips) for chips in labels.values())
    # Another user does not see the topic.
    other = e.store.create_user("bob", None, "!")
    assert all(
        c.key != topic.key
        for chips in topic_labels(e.store, mine, user_id=other.id).values()
        for c in chips
    )
    with pytest.raises(NotFoundError):
        find_topic(e.store, "T2I", user_id=other.id)
    assert find_topic(e.store, "cs.cl").key == "cs.CL"
    fast = semantic.load_encoder(e.settings, "fake:48")
    with pytest.raises(PaperfeedError, match="not the model"):
        assign_topics(e.store, e.vectors, fast)


@pytest.mark.slow
def test_topic_chips_on_the_sample_with_the_real_model(settings: Settings) -> None:
    pytest.importorskip("sentence_transformers")
    store = embed_sample(settings, "minilm")
    try:
        vectors = open_active_vectors(settings, store)
        assert vectors is not None
        encoder = semantic.load_encoder(settings, "minilm")
        report = assign_topics(store, vectors, encoder)
        assert report.threshold == pytest.approx(0.30)
        # Every paper of the sample (all machine learning) gets a topic.
        assert report.papers == 162
        assert report.papers_without_topic == 0
        user = local_user(store)

        def chips(title_word: str) -> set[str]:
            pk = next(
                store.paper_pk(p.id)
                for p in store.query_papers(PaperQuery())
                if title_word in p.title
            )
            assert pk is not None
            return {c.key for c in topic_labels(store, [pk], user_id=user.id).get(pk, [])}

        assert "ml.text-to-image" in chips("DreamBooth")
        assert "ml.3d-generation" in chips("SpaRP")
        assert "ml.medical-ai" in chips("Contrastive Learning of Medical Visual")
    finally:
        store.close()
