"""Per-user, per-tag models on paper embeddings: training, storing, applying.

A model scores a paper by two signals, each standardized against a background sample of
the corpus (mean 0, standard deviation 1) so that they can be added and so that a score
means the same on every day's papers:

- **linear**: with at least :data:`MIN_POSITIVES` positives, a logistic regression
  (scikit-learn, ``C=10``, balanced classes) of the positives against the user's negatives
  plus :data:`BACKGROUND` papers sampled from the corpus (the arxiv-sanity recipe); with
  fewer, the cosine similarity to the centroid of the positives.
- **nearest**: the cosine similarity to the closest positive, minus how much closer the
  paper is to a negative than to any positive (a paper nearer to something disliked than to
  anything liked is pushed down by the difference).

``score = 0.25 · linear + 0.75 · nearest`` (the weights were chosen on simulated users,
see docs/recommend.md). The nearest positives are also the pick's *reason*: "close to papers
you liked: A (0.71), B (0.64)". A user's interest sentences (cold start) are positives too,
kept in the model's metadata as vectors.

Training costs a fraction of a second for one tag (a 2,000 × 384 logistic regression);
applying is two matrix products, so a day's papers are scored per request without any
training. Models are stored through the store as ``.npy`` weights plus JSON metadata.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from paperfeed.store.recommend import StoredModel

Matrix = npt.NDArray[np.float32]

MIN_POSITIVES = 5
BACKGROUND = 2000
C = 10.0
LINEAR_WEIGHT = 0.25
NEGATIVE_SAMPLE_WEIGHT = 2.0  # an explicit dislike is surer than a random background paper
REASONS = 2  # liked papers named per pick

KIND_LOGISTIC = "logistic"
KIND_NEAREST = "nearest"


@dataclass(frozen=True, slots=True)
class Interest:
    """A sentence a user describes an interest with, and its embedding."""

    text: str
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ModelParts:
    """The numbers of a trained model (what :func:`score_candidates` needs)."""

    kind: str
    weights: npt.NDArray[np.float32]  # logistic coefficients, or the positives' centroid
    bias: float
    linear_mean: float
    linear_std: float
    nearest_mean: float
    nearest_std: float
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class Scored:
    """Scores of candidate papers: the ranking score, the model's own score (probability
    for a logistic model, centroid similarity else), and for each candidate its closest
    positives (indexes into the positives, best first) with their similarities."""

    score: npt.NDArray[np.float32]
    model_score: npt.NDArray[np.float32]
    nearest: npt.NDArray[np.int64]  # (n, REASONS)
    nearest_similarity: npt.NDArray[np.float32]  # (n, REASONS)


def _unit(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = float(np.linalg.norm(v))
    out: npt.NDArray[np.float32] = (v / n if n > 0 else v).astype(np.float32)
    return out


def _linear(weights: Matrix, bias: float, x: Matrix) -> npt.NDArray[np.float32]:
    # A logistic model's decision value, or the cosine to the (unit) centroid.
    out: npt.NDArray[np.float32] = (x @ weights + np.float32(bias)).astype(np.float32)
    return out


def _nearest_signal(
    x: Matrix, positives: Matrix, negatives: Matrix
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(nearest-positive signal, similarities to every positive)."""
    sims: npt.NDArray[np.float32] = x @ positives.T
    best = sims.max(axis=1)
    if len(negatives):
        worst = (x @ negatives.T).max(axis=1)
        best = best - np.maximum(0.0, worst - best)
    return best.astype(np.float32), sims


def _std(values: npt.NDArray[np.float32]) -> tuple[float, float]:
    mean = float(values.mean()) if len(values) else 0.0
    std = float(values.std()) if len(values) > 1 else 1.0
    return mean, std if std > 1e-6 else 1.0


def fit(
    positives: Matrix,
    negatives: Matrix,
    background: Matrix,
    *,
    seed: int = 0,
) -> ModelParts:
    """Train on unit vectors: ``positives`` (at least one), explicit ``negatives`` (may be
    empty) and ``background`` papers sampled from the corpus (not the user's own)."""
    if len(positives) == 0:
        raise ValueError("a model needs at least one positive")
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    if len(positives) >= MIN_POSITIVES and len(background) + len(negatives) > 0:
        # scikit-learn has no type information: used through Any.
        linear_model: Any = importlib.import_module("sklearn.linear_model")
        x = np.vstack([positives, negatives, background]).astype(np.float32)
        y = np.r_[np.ones(len(positives)), np.zeros(len(negatives) + len(background))]
        sample_weight = np.r_[
            np.ones(len(positives)),
            np.full(len(negatives), NEGATIVE_SAMPLE_WEIGHT),
            np.ones(len(background)),
        ]
        clf = linear_model.LogisticRegression(
            C=C, class_weight="balanced", max_iter=1000, random_state=seed
        )
        clf.fit(x, y, sample_weight=sample_weight)
        kind = KIND_LOGISTIC
        weights = np.asarray(clf.coef_[0], dtype=np.float32)
        bias = float(clf.intercept_[0])
        metrics["train_accuracy"] = float(clf.score(x, y))
    else:
        kind = KIND_NEAREST
        weights = _unit(positives.mean(axis=0).astype(np.float32))
        bias = 0.0
    reference = background if len(background) else positives
    linear_mean, linear_std = _std(_linear(weights, bias, reference))
    near, _ = _nearest_signal(reference, positives, negatives)
    nearest_mean, nearest_std = _std(near)
    metrics["fit_seconds"] = round(time.perf_counter() - started, 4)
    return ModelParts(
        kind=kind,
        weights=weights,
        bias=bias,
        linear_mean=linear_mean,
        linear_std=linear_std,
        nearest_mean=nearest_mean,
        nearest_std=nearest_std,
        metrics=metrics,
    )


def score_candidates(
    parts: ModelParts, positives: Matrix, negatives: Matrix, candidates: Matrix
) -> Scored:
    """Score unit candidate vectors with a trained model; cheap (two matrix products)."""
    n = len(candidates)
    if n == 0:
        empty = np.zeros(0, dtype=np.float32)
        return Scored(
            empty,
            empty,
            np.zeros((0, REASONS), dtype=np.int64),
            np.zeros((0, REASONS), dtype=np.float32),
        )
    linear = _linear(parts.weights, parts.bias, candidates)
    near, sims = _nearest_signal(candidates, positives, negatives)
    score = (
        LINEAR_WEIGHT * (linear - parts.linear_mean) / parts.linear_std
        + (1 - LINEAR_WEIGHT) * (near - parts.nearest_mean) / parts.nearest_std
    )
    if parts.kind == KIND_LOGISTIC:
        model_score = 1.0 / (1.0 + np.exp(-linear.astype(np.float64)))
    else:
        model_score = linear.astype(np.float64)
    k = min(REASONS, sims.shape[1])
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return Scored(
        score=score.astype(np.float32),
        model_score=model_score.astype(np.float32),
        nearest=order.astype(np.int64),
        nearest_similarity=np.take_along_axis(sims, order, axis=1).astype(np.float32),
    )


def sample_background(
    keys: npt.NDArray[np.int64], exclude: Sequence[int], size: int, seed: int
) -> npt.NDArray[np.int64]:
    """``size`` keys drawn without replacement, leaving out ``exclude`` (the user's own)."""
    pool = np.setdiff1d(keys, np.asarray(exclude, dtype=np.int64), assume_unique=False)
    if len(pool) <= size:
        return pool
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=size, replace=False))


def training_seed(user_id: int, tag: str, version: int) -> int:
    """A seed that repeats for the same training input, so a model can be reproduced."""
    return zlib.crc32(f"{user_id}\0{tag}\0{version}".encode())


# --- stored form ------------------------------------------------------------------------


def to_stored(
    parts: ModelParts,
    *,
    user_id: int,
    tag: str,
    version: int,
    encoder_model_id: str,
    positives: Sequence[int],
    negatives: Sequence[int],
    interests: Sequence[Interest],
    background: int,
    vectors_generation: int | None,
) -> StoredModel:
    metadata: dict[str, Any] = {
        "positives": [int(p) for p in positives],
        "negatives": [int(p) for p in negatives],
        "interests": [
            {"text": i.text, "vector": [round(float(v), 6) for v in i.vector]} for i in interests
        ],
        "background": background,
        "normalization": {
            "linear_mean": parts.linear_mean,
            "linear_std": parts.linear_std,
            "nearest_mean": parts.nearest_mean,
            "nearest_std": parts.nearest_std,
        },
        "parameters": {
            "C": C,
            "min_positives": MIN_POSITIVES,
            "linear_weight": LINEAR_WEIGHT,
            "negative_sample_weight": NEGATIVE_SAMPLE_WEIGHT,
        },
        "metrics": parts.metrics,
        "vectors_generation": vectors_generation,
    }
    return StoredModel(
        user_id=user_id,
        tag=tag,
        kind=parts.kind,
        encoder_model_id=encoder_model_id,
        weights=parts.weights,
        bias=parts.bias,
        version=version,
        trained_at=dt.datetime.now(dt.UTC),
        metadata=metadata,
    )


def parts_of(model: StoredModel) -> ModelParts:
    norm = model.metadata.get("normalization", {})
    return ModelParts(
        kind=model.kind,
        weights=np.asarray(model.weights, dtype=np.float32),
        bias=model.bias,
        linear_mean=float(norm.get("linear_mean", 0.0)),
        linear_std=float(norm.get("linear_std", 1.0)),
        nearest_mean=float(norm.get("nearest_mean", 0.0)),
        nearest_std=float(norm.get("nearest_std", 1.0)),
        metrics=dict(model.metadata.get("metrics", {})),
    )


def interests_of(model: StoredModel) -> list[Interest]:
    return [
        Interest(text=str(i["text"]), vector=np.asarray(i["vector"], dtype=np.float32))
        for i in model.metadata.get("interests", [])
    ]
