"""Training the models when feedback changes: in the background, one changed tag at a time.

Every feedback change bumps its tag's version in the store (a queue that survives
restarts); :func:`train_pending` retrains exactly the tags whose version is ahead of their
stored model, and nothing else — incremental, never per request. A model is trained on the
version it read; feedback arriving meanwhile bumps the version again, so the tag is simply
trained once more on the next pass.

:class:`Trainer` runs that loop in a thread for ``paperfeed serve`` (``start()`` /
``stop()``; ``wake()`` after a change to train at once instead of at the next poll);
``paperfeed recommend train`` runs one pass from the command line. The same thread labels
the papers embedded meanwhile (by the scheduled fetch, another process's ingest) with
their topics (:func:`paperfeed.recommend.topics.label_new_papers`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from paperfeed.index import semantic
from paperfeed.index.encoder import Encoder
from paperfeed.recommend.feedback import training_set
from paperfeed.recommend.models import (
    BACKGROUND,
    Interest,
    fit,
    sample_background,
    to_stored,
    training_seed,
)
from paperfeed.recommend.topics import (
    INTEREST_GROUP,
    AssignReport,
    label_new_papers,
    unlabelled_keys,
)
from paperfeed.recommend.vectors import ActiveVectors, open_active_vectors
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.store.recommend import GENERAL_TAG, StoredModel, TrainingJob

log = logging.getLogger(__name__)

EncoderFactory = Callable[[], Encoder]
POLL_SECONDS = 2.0
LABEL_SECONDS = 30.0  # how often to look for newly embedded papers to label


@dataclass(frozen=True, slots=True)
class TrainReport:
    user_id: int
    tag: str
    version: int
    kind: str | None  # None: the tag has nothing left to learn from; its model was removed
    positives: int
    negatives: int
    seconds: float


def user_interests(
    store: Store, user_id: int, encoder_factory: EncoderFactory | None
) -> list[Interest]:
    """The user's interest sentences (cold start) with their embeddings."""
    texts = [
        t.description
        for t in store.topics(owner_id=user_id)
        if t.group == INTEREST_GROUP and t.owner_id == user_id
    ]
    if not texts or encoder_factory is None:
        return []
    vectors = encoder_factory().encode_queries(texts)
    return [Interest(text, vectors[i]) for i, text in enumerate(texts)]


def train_tag(
    store: Store,
    vectors: ActiveVectors,
    job: TrainingJob,
    *,
    encoder_factory: EncoderFactory | None = None,
    background: int = BACKGROUND,
) -> TrainReport:
    """Train (or remove) one tag's model from the user's current feedback."""
    started = time.perf_counter()
    index = vectors.index
    data = training_set(store.feedback(job.user_id), job.tag)
    positives = [pk for pk in data.positives if pk in index]
    negatives = [pk for pk in data.negatives if pk in index]
    interests = (
        user_interests(store, job.user_id, encoder_factory) if job.tag == GENERAL_TAG else []
    )
    if not positives and not interests:
        store.delete_model(job.user_id, job.tag, job.version)
        return TrainReport(
            job.user_id,
            job.tag,
            job.version,
            None,
            0,
            len(negatives),
            time.perf_counter() - started,
        )
    dim = index.meta.dim
    pos = np.vstack(
        [index.get(np.asarray(positives, dtype=np.int64)).reshape(-1, dim)]
        + [i.vector.reshape(1, dim) for i in interests]
    ).astype(np.float32)
    neg = index.get(np.asarray(negatives, dtype=np.int64)).reshape(-1, dim)
    seed = training_seed(job.user_id, job.tag, job.version)
    bg_keys = sample_background(index.keys(), positives + negatives, background, seed)
    bg = index.get(bg_keys).reshape(-1, dim)
    parts = fit(pos, neg, bg, seed=seed)
    model = to_stored(
        parts,
        user_id=job.user_id,
        tag=job.tag,
        version=job.version,
        encoder_model_id=vectors.model_id,
        positives=positives,
        negatives=negatives,
        interests=interests,
        background=len(bg_keys),
        vectors_generation=vectors.generation,
    )
    store.save_model(model)
    return TrainReport(
        job.user_id,
        job.tag,
        job.version,
        model.kind,
        len(positives) + len(interests),
        len(negatives),
        time.perf_counter() - started,
    )


def train_pending(
    store: Store,
    vectors: ActiveVectors,
    *,
    user_id: int | None = None,
    encoder_factory: EncoderFactory | None = None,
    limit: int = 1000,
) -> list[TrainReport]:
    """Train every queued tag (of one user, when given); returns what was done."""
    reports = []
    for job in store.training_jobs(limit=limit):
        if user_id is not None and job.user_id != user_id:
            continue
        reports.append(train_tag(store, vectors, job, encoder_factory=encoder_factory))
    return reports


def retrain_user(
    store: Store,
    vectors: ActiveVectors,
    user_id: int,
    *,
    encoder_factory: EncoderFactory | None = None,
) -> list[TrainReport]:
    """Queue and train every tag of a user (e.g. after a model change)."""
    tags = {i.tag for i in store.feedback(user_id)} | {GENERAL_TAG}
    for tag in sorted(tags):
        store.queue_training(user_id, tag)
    return train_pending(store, vectors, user_id=user_id, encoder_factory=encoder_factory)


def stale_models(store: Store, vectors: ActiveVectors, user_id: int) -> list[StoredModel]:
    """The user's models trained on another embedding model than the active one."""
    return [m for m in store.models(user_id) if m.encoder_model_id != vectors.model_id]


class Trainer:
    """A background thread that trains queued models; ``paperfeed serve`` runs one.

    It polls the store's queue every ``poll_seconds`` (a change made by another process is
    seen too) and opens the vectors only when there is work. Errors are logged and the
    loop goes on: a failed tag stays queued and is tried again on the next pass.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        poll_seconds: float = POLL_SECONDS,
        encoder_factory: EncoderFactory | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.poll_seconds = poll_seconds
        self._encoder_factory = encoder_factory
        self._encoder: Encoder | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._embedded_seen: tuple[str, int] | None = None
        self._labelled_at = 0.0
        self.trained = 0
        self.labelled = 0
        self.last_error: str | None = None

    def _encoder_for(self, model: str) -> Encoder:
        if self._encoder is None:
            if self._encoder_factory is not None:
                self._encoder = self._encoder_factory()
            else:
                self._encoder = semantic.load_encoder(self.settings, model)
        return self._encoder

    def run_once(self) -> list[TrainReport]:
        """One pass over the queue (what the thread does every poll)."""
        if not self.store.training_jobs(limit=1):
            return []
        vectors = open_active_vectors(self.settings, self.store)
        if vectors is None:
            return []  # nothing embedded yet: the jobs wait in the queue
        reports = train_pending(
            self.store,
            vectors,
            encoder_factory=lambda: self._encoder_for(vectors.model),
        )
        self.trained += len(reports)
        return reports

    def label_once(self) -> AssignReport | None:
        """Label the papers embedded since the last pass with their topics.

        The vectors are opened only when the number of embedded papers moved (one count
        query), so an idle server does not reopen its index every pass.
        """
        model = semantic.active_model(self.store)
        model_id = self.store.get_setting(f"semantic.model_id:{model}")
        if model_id is None:
            return None
        seen = (model_id, self.store.count_embeddings(model_id))
        if seen == self._embedded_seen:
            return None
        vectors = open_active_vectors(self.settings, self.store)
        if vectors is None:
            return None
        report = None
        # The model is loaded only when there is something to label.
        if len(unlabelled_keys(self.store, vectors)):
            report = label_new_papers(self.store, vectors, self._encoder_for(vectors.model))
            self.labelled += report.papers if report is not None else 0
        self._embedded_seen = seen
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                if time.monotonic() - self._labelled_at >= LABEL_SECONDS:
                    self._labelled_at = time.monotonic()
                    self.label_once()
                self.last_error = None
            except Exception as exc:  # the thread must outlive one bad pass
                self.last_error = str(exc)
                log.exception("training the recommender models failed; retrying later")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="paperfeed-trainer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Train now rather than at the next poll (call after recording feedback)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
