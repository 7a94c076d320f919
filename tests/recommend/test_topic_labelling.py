"""Topic labels follow embedding: new papers are labelled where embedding finishes (the
library's watermark, ``paperfeed index`` / ``ingest``, the server's trainer), and a user's
new topic labels the corpus at once."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from paperfeed.cli import main
from paperfeed.index import semantic
from paperfeed.ingest import ingest_file
from paperfeed.recommend.topics import (
    add_user_topic,
    label_new_papers,
    label_topic,
    topic_labels,
    topic_paper_pks,
    unlabelled_keys,
)
from paperfeed.recommend.trainer import Trainer
from paperfeed.recommend.vectors import open_active_vectors
from paperfeed.sample import sample_path
from paperfeed.settings import Settings
from paperfeed.store import open_store
from tests.recommend.conftest import Embedded
from tests.web.conftest import HF_DAILY


def test_only_papers_embedded_since_the_last_labelling_are_labelled(embedded: Embedded) -> None:
    e = embedded
    encoder = semantic.load_encoder(e.settings, "fake")
    first = label_new_papers(e.store, e.vectors, encoder)
    assert first is not None
    assert first.papers == len(e.papers)
    assert first.labels > 0
    assert label_new_papers(e.store, e.vectors, encoder) is None  # nothing new
    before = e.store.paper_topics(e.vectors.index.keys().tolist())

    ingest_file(e.store, HF_DAILY)
    semantic.build(e.settings, e.store)
    vectors = open_active_vectors(e.settings, e.store)
    assert vectors is not None
    new_keys = unlabelled_keys(e.store, vectors)
    assert 0 < len(new_keys) <= 5
    second = label_new_papers(e.store, vectors, encoder)
    assert second is not None
    assert second.papers == len(new_keys)
    labelled = topic_labels(e.store, [int(k) for k in new_keys])
    assert labelled  # the new papers have chips
    # The earlier papers' labels were left as they were.
    assert e.store.paper_topics(list(before)) == before


def test_a_user_topic_labels_the_corpus_when_added(embedded: Embedded) -> None:
    e = embedded
    encoder = semantic.load_encoder(e.settings, "fake")
    topic = add_user_topic(e.store, e.user.id, "diffusion models for image generation")
    n = label_topic(e.store, e.vectors, encoder, topic)
    pks = topic_paper_pks(e.store, topic.key, user_id=e.user.id)
    assert n == len(pks) > 0
    scores = [pt.score for pt in e.store.topic_papers(topic.id)]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 0.30


def test_index_and_ingest_label_the_papers_they_embed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    run("ingest", str(sample_path()), "--no-embed")
    json.loads(run("index", "--model", "fake", "--json"))
    settings = Settings.resolve(data)
    with open_store(settings) as store:
        vectors = open_active_vectors(settings, store)
        assert vectors is not None
        keys = vectors.index.keys().tolist()
        assert len(topic_labels(store, keys)) > 0.9 * len(keys)
        assert len(unlabelled_keys(store, vectors)) == 0
    run("ingest", str(HF_DAILY))  # embeds its new papers with the active (fake) model
    with open_store(settings) as store:
        vectors = open_active_vectors(settings, store)
        assert vectors is not None
        assert len(vectors.index.keys()) > len(keys)
        assert len(unlabelled_keys(store, vectors)) == 0


def test_the_trainer_labels_what_others_embedded(embedded: Embedded) -> None:
    e = embedded
    trainer = Trainer(e.settings, e.store)
    report = trainer.label_once()
    assert report is not None
    assert report.papers == len(e.papers)
    assert trainer.label_once() is None  # nothing embedded since: the index is not reopened
    assert trainer.labelled == len(e.papers)
