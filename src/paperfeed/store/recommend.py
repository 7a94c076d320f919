"""The part of the storage interface that holds what the recommender learns and shows:
feedback (like / dislike / saved to a tag), the per-user models and their training queue,
topics and the papers' topic labels, and the 2-D map of the corpus.

:class:`paperfeed.store.Store` includes it, so every backend implements it. Arrays (model
weights, map coordinates) cross this interface as numpy arrays and are kept as ``.npy``
bytes (never pickles); their metadata as JSON.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

GENERAL_TAG = ""
"""The tag of a user's general taste: likes and dislikes without a tag ("for you")."""


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One judgement of a paper by a user, under one tag (``""``: the general model).

    ``label`` is +1 (liked, or saved to the tag) or -1 (disliked, "not interested").
    """

    user_id: int
    paper_pk: int
    paper_id: str
    tag: str
    label: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """A user's tag whose feedback changed since its model was last trained."""

    user_id: int
    tag: str
    version: int  # the feedback version to train on (bumped by every change)


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A trained per-user, per-tag model as the store keeps it.

    ``weights`` is the linear model's coefficient vector (or the centroid, for a fallback
    model); ``metadata`` holds everything needed to apply and explain it (positives,
    negatives, normalization statistics, training parameters and metrics) as JSON values.
    """

    user_id: int
    tag: str
    kind: str  # "logistic" | "nearest"
    encoder_model_id: str
    weights: npt.NDArray[np.float32]
    bias: float
    version: int
    trained_at: dt.datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredTopic:
    """A topic: a label with a written description, from the default taxonomy (no owner)
    or defined by a user with one sentence."""

    id: int
    key: str  # "cs.CL", "ml.diffusion-models", "user.3.quantum-error-correction"
    name: str
    description: str
    group: str  # "arxiv-cs" | "ml" | "user"
    owner_id: int | None
    threshold: float | None  # calibrated cosine threshold (None: not calibrated yet)


@dataclass(frozen=True, slots=True)
class PaperTopic:
    paper_pk: int
    topic_id: int
    score: float  # cosine similarity of the paper to the topic's description


@dataclass(frozen=True, slots=True)
class MapLayout:
    """2-D coordinates of the embedded papers, with how and from what they were computed."""

    keys: npt.NDArray[np.int64]
    xy: npt.NDArray[np.float32]
    metadata: Mapping[str, Any]


class RecommendStore(abc.ABC):
    # -- feedback -----------------------------------------------------------------------
    @abc.abstractmethod
    def set_feedback(self, user_id: int, paper_id: str, tag: str, label: int | None) -> None:
        """Record +1 / -1 for a paper under a tag, or remove it (``None``); bumps the tag's
        feedback version so the trainer retrains it. Unknown paper: NotFoundError."""

    @abc.abstractmethod
    def feedback(self, user_id: int, tag: str | None = None) -> list[FeedbackItem]:
        """The user's feedback (of one tag, or all), newest first."""

    @abc.abstractmethod
    def feedback_users(self) -> list[int]:
        """Users who have given any feedback, ascending."""

    # -- models and their training queue --------------------------------------------------
    @abc.abstractmethod
    def queue_training(self, user_id: int, tag: str) -> None:
        """Bump a tag's feedback version (e.g. its interests changed) so it is retrained."""

    @abc.abstractmethod
    def training_jobs(self, limit: int = 100) -> list[TrainingJob]:
        """Tags whose feedback version is ahead of their stored model, oldest change first."""

    @abc.abstractmethod
    def save_model(self, model: StoredModel) -> None:
        """Store (replace) the model of ``(user_id, tag)``."""

    @abc.abstractmethod
    def delete_model(self, user_id: int, tag: str, version: int) -> None:
        """Remove a tag's model (its feedback is gone) and mark ``version`` as handled."""

    @abc.abstractmethod
    def models(self, user_id: int) -> list[StoredModel]:
        """The user's trained models, by tag."""

    # -- topics -------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_topic(
        self,
        key: str,
        name: str,
        description: str,
        group: str,
        *,
        owner_id: int | None = None,
    ) -> StoredTopic:
        """Create a topic, or update the name and description of the one with this key
        (a changed description clears its threshold and its papers)."""

    @abc.abstractmethod
    def topics(self, *, owner_id: int | None = None) -> list[StoredTopic]:
        """The default topics, plus the topics of ``owner_id`` when given; by key."""

    @abc.abstractmethod
    def delete_topic(self, topic_id: int) -> bool: ...

    @abc.abstractmethod
    def set_topic_thresholds(self, thresholds: Mapping[int, float]) -> None: ...

    @abc.abstractmethod
    def replace_paper_topics(
        self, paper_pks: Sequence[int], topic_ids: Sequence[int], rows: Sequence[PaperTopic]
    ) -> None:
        """Replace the labels of these papers for these topics by ``rows``, atomically."""

    @abc.abstractmethod
    def paper_topics(self, paper_pks: Sequence[int]) -> dict[int, list[PaperTopic]]:
        """Each paper's topics, best score first (papers without any are left out)."""

    @abc.abstractmethod
    def topic_papers(self, topic_id: int) -> list[PaperTopic]:
        """The papers labelled with a topic, best score first."""

    @abc.abstractmethod
    def topic_counts(self) -> dict[int, int]:
        """Papers per topic id (topics without papers are left out)."""

    # -- the map --------------------------------------------------------------------------
    @abc.abstractmethod
    def save_map_layout(self, layout: MapLayout) -> None:
        """Replace the stored map."""

    @abc.abstractmethod
    def map_layout(self) -> MapLayout | None: ...
