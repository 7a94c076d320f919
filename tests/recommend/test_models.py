"""The per-user models on plain vectors: fallback, classifier, negatives, reasons."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from paperfeed.recommend.models import (
    KIND_LOGISTIC,
    KIND_NEAREST,
    MIN_POSITIVES,
    fit,
    sample_background,
    score_candidates,
    training_seed,
)


def unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clusters(seed: int = 0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """60 vectors around each of 5 directions in 16-d; labels say which."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, 16))
    labels = np.repeat(np.arange(5), 60)
    return unit(centres[labels] + 0.25 * rng.standard_normal((300, 16))), labels


def test_few_positives_fall_back_to_nearest_and_many_train_a_classifier() -> None:
    x, labels = clusters()
    liked = np.flatnonzero(labels == 2)
    background = x[labels != 2][:100]
    few = fit(x[liked[: MIN_POSITIVES - 1]], x[:0], background)
    many = fit(x[liked[:MIN_POSITIVES]], x[:0], background)
    assert few.kind == KIND_NEAREST
    assert many.kind == KIND_LOGISTIC
    assert "train_accuracy" in many.metrics
    with pytest.raises(ValueError, match="at least one positive"):
        fit(x[:0], x[:0], background)
    for parts, n in ((few, MIN_POSITIVES - 1), (many, MIN_POSITIVES)):
        candidates = np.setdiff1d(np.arange(300), liked[:n])
        scored = score_candidates(parts, x[liked[:n]], x[:0], x[candidates])
        top = candidates[np.argsort(-scored.score)[:20]]
        assert (labels[top] == 2).all()
        # Scores are standardized against the background: liked-cluster papers far above 0.
        assert float(np.median(scored.score[labels[candidates] == 2])) > 1.0


def test_reasons_point_at_the_closest_positives() -> None:
    x, _labels = clusters(1)
    positives = x[[0, 60, 120]]  # one of clusters 0, 1 and 2
    parts = fit(positives, x[:0], x[200:])
    scored = score_candidates(parts, positives, x[:0], x[[5, 65, 125]])
    assert scored.nearest[:, 0].tolist() == [0, 1, 2]
    assert scored.nearest.shape == (3, 2)
    assert (np.diff(scored.nearest_similarity, axis=1) <= 0).all()


def test_a_dislike_pushes_its_neighbours_down() -> None:
    x, _labels = clusters(2)
    positives = x[[0, 60]]  # clusters 0 and 1
    candidates = x[[1, 61]]
    plain = fit(positives, x[:0], x[200:])
    before = score_candidates(plain, positives, x[:0], candidates).score
    negatives = x[[62, 63]]  # two disliked papers of cluster 1
    taught = fit(positives, negatives, x[200:])
    after = score_candidates(taught, positives, negatives, candidates).score
    # The cluster-1 candidate loses ground against the cluster-0 one, and falls behind it.
    assert after[1] - after[0] < before[1] - before[0] - 0.1
    assert after[0] > after[1]


def test_background_sampling_excludes_the_users_papers_and_repeats() -> None:
    keys = np.arange(1, 1001, dtype=np.int64)
    a = sample_background(keys, [1, 2, 3], 100, seed=7)
    assert len(a) == 100
    assert not set(a.tolist()) & {1, 2, 3}
    assert np.array_equal(a, sample_background(keys, [1, 2, 3], 100, seed=7))
    assert len(sample_background(keys[:10], [1], 100, seed=7)) == 9
    assert training_seed(1, "", 3) == training_seed(1, "", 3) != training_seed(1, "", 4)


def test_empty_candidates() -> None:
    x, _ = clusters()
    parts = fit(x[:2], x[:0], x[100:])
    scored = score_candidates(parts, x[:2], x[:0], x[:0])
    assert scored.score.shape == (0,)
    assert scored.nearest.shape == (0, 2)
