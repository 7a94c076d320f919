"""The "for you" list: new papers ranked by a user's model, each pick with its reason.

One function, :func:`for_you`, serves the page, the API, the RSS feed and the digest (via
:func:`digest_recommender`), so the list never differs between them. It only *applies* a
stored model (two matrix products over the candidates); models are trained by
:mod:`paperfeed.recommend.trainer` when feedback changes, never here.

A pick's reason names the liked papers (or the interest sentences) it is closest to, with
their cosine similarities, and the model's own score: the probability of the logistic
model, or the similarity to the centroid of the likes while there are fewer than five.
Papers the user already judged (liked, disliked, "not interested", saved) are never
picked; "not interested" is a dislike, so it also teaches the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from paperfeed.digest.compose import DigestPick, Recommender
from paperfeed.feeds import Period, range_period
from paperfeed.model import Paper, Subscription
from paperfeed.recommend.models import (
    KIND_LOGISTIC,
    interests_of,
    parts_of,
    score_candidates,
)
from paperfeed.recommend.vectors import ActiveVectors
from paperfeed.store import Store
from paperfeed.store.recommend import GENERAL_TAG, StoredModel

DEFAULT_DAYS = 7
DEFAULT_LIMIT = 20


class ForYouStatus(StrEnum):
    OK = "ok"
    NO_FEEDBACK = "no-feedback"  # nothing liked yet: like papers or describe an interest
    TRAINING = "training"  # feedback given, its first model not trained yet
    NO_VECTORS = "no-vectors"  # the store is not embedded (paperfeed index)
    STALE = "stale"  # the model was trained on another embedding model


@dataclass(frozen=True, slots=True)
class Because:
    """Something the user liked that a pick is close to: a paper, or an interest sentence."""

    similarity: float
    paper_id: str | None = None
    title: str | None = None
    interest: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "paper_id": self.paper_id,
            "title": self.title,
            "interest": self.interest,
            "similarity": round(self.similarity, 4),
        }


@dataclass(frozen=True, slots=True)
class ForYouPick:
    paper: Paper
    score: float  # the ranking score (standardized: 0 is an average corpus paper)
    model_score: float  # logistic probability, or cosine to the centroid of the likes
    model_kind: str
    because: tuple[Because, ...]

    @property
    def reason(self) -> str:
        """One line: "close to “A” (0.71) and “B” (0.64) · model 0.93"."""
        parts = []
        for b in self.because:
            if b.interest is not None:
                parts.append(f"your interest “{b.interest}” ({b.similarity:.2f})")
            else:
                parts.append(f"“{b.title}” ({b.similarity:.2f})")
        label = "model" if self.model_kind == KIND_LOGISTIC else "centroid"
        return f"close to {' and '.join(parts)} · {label} {self.model_score:.2f}"

    def to_json(self) -> dict[str, object]:
        return {
            "paper": self.paper.to_json(),
            "score": round(self.score, 4),
            "model_score": round(self.model_score, 4),
            "model_kind": self.model_kind,
            "because": [b.to_json() for b in self.because],
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ForYou:
    user_id: int
    tag: str
    status: ForYouStatus
    picks: list[ForYouPick]
    candidates: int
    period: Period | None
    model: StoredModel | None

    def to_json(self) -> dict[str, object]:
        m = self.model
        return {
            "user_id": self.user_id,
            "tag": self.tag,
            "status": self.status.value,
            "candidates": self.candidates,
            "period": self.period.key if self.period else None,
            "model": None
            if m is None
            else {
                "kind": m.kind,
                "positives": len(m.metadata.get("positives", [])),
                "negatives": len(m.metadata.get("negatives", [])),
                "interests": len(m.metadata.get("interests", [])),
                "trained_at": m.trained_at.isoformat(timespec="seconds"),
                "version": m.version,
                "encoder_model_id": m.encoder_model_id,
            },
            "picks": [p.to_json() for p in self.picks],
        }


def default_period(store: Store, days: int = DEFAULT_DAYS) -> Period:
    """The last ``days`` days up to the latest feed day: "new papers"."""
    latest = store.latest_feed_day() or dt.date.today()
    return range_period(latest - dt.timedelta(days=days - 1), latest)


def _model_for(store: Store, user_id: int, tag: str) -> StoredModel | None:
    return next((m for m in store.models(user_id) if m.tag == tag), None)


def for_you(
    store: Store,
    vectors: ActiveVectors | None,
    user_id: int,
    *,
    tag: str = GENERAL_TAG,
    period: Period | None = None,
    candidate_pks: Sequence[int] | None = None,
    everything: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> ForYou:
    """The user's picks among the papers of ``period`` (default: the last 7 days up to the
    latest feed day), or among ``candidate_pks``, or among every embedded paper."""
    if candidate_pks is None and not everything:
        period = period or default_period(store)
        candidate_pks = [r.pk for r in store.feed_rows(period.start, period.end)]
    elif everything:
        period = None

    def answer(status: ForYouStatus, model: StoredModel | None = None) -> ForYou:
        return ForYou(user_id, tag, status, [], 0, period, model)

    feedback = store.feedback(user_id)
    model = _model_for(store, user_id, tag)
    if vectors is None:
        return answer(ForYouStatus.NO_VECTORS, model)
    if model is None:
        pending = any(j.user_id == user_id and j.tag == tag for j in store.training_jobs(1000))
        return answer(ForYouStatus.TRAINING if pending else ForYouStatus.NO_FEEDBACK)
    if model.encoder_model_id != vectors.model_id:
        return answer(ForYouStatus.STALE, model)

    index = vectors.index
    judged = {f.paper_pk for f in feedback}
    pool = index.keys() if everything else np.asarray(candidate_pks, dtype=np.int64)
    pool = pool[~np.isin(pool, np.fromiter(judged, dtype=np.int64, count=len(judged)))]
    pool = pool[index.contains(pool)] if len(pool) else pool
    dim = index.meta.dim
    positive_pks = [pk for pk in model.metadata.get("positives", []) if pk in index]
    negative_pks = [pk for pk in model.metadata.get("negatives", []) if pk in index]
    interests = interests_of(model)
    positives = np.vstack(
        [index.get(np.asarray(positive_pks, dtype=np.int64)).reshape(-1, dim)]
        + [i.vector.reshape(1, dim) for i in interests]
    ).astype(np.float32)
    if len(positives) == 0:
        return answer(ForYouStatus.TRAINING, model)
    negatives = index.get(np.asarray(negative_pks, dtype=np.int64)).reshape(-1, dim)
    scored = score_candidates(parts_of(model), positives, negatives, index.get(pool))
    order = np.lexsort((pool, -scored.score))[:limit]
    chosen = [int(pool[i]) for i in order]
    papers = store.papers_by_pk(chosen + positive_pks)
    picks = []
    for i in order:
        pk = int(pool[i])
        if pk not in papers:
            continue
        because = []
        for j, sim in zip(scored.nearest[i], scored.nearest_similarity[i], strict=True):
            if j < len(positive_pks):
                liked = papers.get(positive_pks[j])
                if liked is not None:
                    because.append(Because(float(sim), paper_id=liked.id, title=liked.title))
            else:
                because.append(Because(float(sim), interest=interests[j - len(positive_pks)].text))
        picks.append(
            ForYouPick(
                paper=papers[pk],
                score=float(scored.score[i]),
                model_score=float(scored.model_score[i]),
                model_kind=model.kind,
                because=tuple(because),
            )
        )
    return ForYou(user_id, tag, ForYouStatus.OK, picks, len(pool), period, model)


def digest_recommender(
    store: Store, vectors: Callable[[], ActiveVectors | None], *, limit: int = 50
) -> Recommender:
    """The digest's "for you" section: the subscriber's picks among the period's papers.

    ``vectors`` is called per digest (a long-running process may switch models). An
    anonymous subscription, or a user without a model, gets no picks.
    """

    def recommend(subscription: Subscription, papers: Sequence[Paper]) -> list[DigestPick]:
        if subscription.user_id is None or not papers:
            return []
        pks = [pk for pk in (store.paper_pk(p.id) for p in papers) if pk is not None]
        result = for_you(store, vectors(), subscription.user_id, candidate_pks=pks, limit=limit)
        return [DigestPick(p.paper, p.reason, "for_you") for p in result.picks]

    return recommend
