"""Zero-shot topics: labels from label embeddings.

A topic is a name and a written description (``taxonomy.json``: the arXiv computer-science
categories and research topics of machine learning; or one sentence a user writes). Its
text, ``"name. description"``, is embedded with the same encoder as the papers, and a
paper gets the topics its embedding is close to.

**Calibration** (measured with all-MiniLM-L6-v2; see docs/recommend.md for the numbers):

1. *Absolute floor*: a topic is possible only when the cosine similarity is at least
   :data:`DEFAULT_THRESHOLD` (0.30) — chosen so that every paper of the bundled sample gets
   a topic while only ~2 % of SciFact's biomedical abstracts (a corpus the taxonomy does not
   cover: the negative control) get any non-biomedical one. A topic's own ``threshold``
   overrides the floor.
2. *Hubness correction*: some descriptions are close to every abstract (generic wording);
   topics are compared by ``similarity − the topic's mean similarity over the corpus``, so
   such a topic does not take every paper.
3. *Margin over the best*: per group, a paper keeps the best arXiv category and up to two
   machine-learning topics within :data:`MARGIN` (0.05) of the group's best corrected score.

User topics (one sentence) are labels of their own: a paper gets one when it clears its
threshold. *Interests* (cold start of "for you") are stored like user topics but label
nothing: they are positives of the user's general model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index.encoder import DEFAULT_MODEL_ID
from paperfeed.recommend.vectors import ActiveVectors, open_active_vectors
from paperfeed.search import QueryEncoder
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.store.recommend import PaperTopic, StoredTopic

ARXIV_GROUP = "arxiv-cs"
ML_GROUP = "ml"
USER_GROUP = "user"
INTEREST_GROUP = "interest"
LABEL_GROUPS = (ARXIV_GROUP, ML_GROUP, USER_GROUP)
PER_GROUP = {ARXIV_GROUP: 1, ML_GROUP: 2}

# Calibrated for all-MiniLM-L6-v2 (docs/recommend.md); other models use the same floor
# unless `paperfeed topics assign --threshold` says otherwise.
CALIBRATED = {DEFAULT_MODEL_ID: 0.30}
DEFAULT_THRESHOLD = 0.30
MARGIN = 0.05
MEAN_SAMPLE = 10_000  # papers sampled to estimate a topic's mean similarity
CHUNK = 8192
MAX_SENTENCE = 500
TAXONOMY_FILE = "taxonomy.json"


@dataclass(frozen=True, slots=True)
class TaxonomyTopic:
    key: str
    name: str
    description: str
    group: str


@dataclass(frozen=True, slots=True)
class TopicLabel:
    """A topic on a paper (a chip on its page)."""

    key: str
    name: str
    group: str
    score: float

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "name": self.name, "group": self.group, "score": self.score}


@dataclass(frozen=True, slots=True)
class AssignReport:
    papers: int
    topics: int
    labels: int
    threshold: float
    papers_without_topic: int


def default_taxonomy() -> list[TaxonomyTopic]:
    text = resources.files(__package__ or "paperfeed.recommend").joinpath(TAXONOMY_FILE)
    doc = json.loads(text.read_text("utf-8"))
    return [TaxonomyTopic(t["key"], t["name"], t["description"], t["group"]) for t in doc["topics"]]


def install_taxonomy(store: Store) -> int:
    """Put the default topics in the store (idempotent); returns how many there are."""
    topics = default_taxonomy()
    for t in topics:
        store.upsert_topic(t.key, t.name, t.description, t.group)
    return len(topics)


def topic_text(name: str, description: str) -> str:
    """What a topic is embedded from."""
    if not description or description == name:
        return name
    return f"{name}. {description}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "topic"


def add_user_topic(
    store: Store,
    user_id: int,
    sentence: str,
    *,
    name: str | None = None,
    interest: bool = False,
) -> StoredTopic:
    """A user's own topic (or interest, for "for you") from one sentence."""
    text = " ".join(sentence.split())
    if not text:
        raise PaperfeedError("sentence: describe the topic in a sentence")
    if len(text) > MAX_SENTENCE:
        raise PaperfeedError(f"sentence: at most {MAX_SENTENCE} characters, not {len(text)}")
    label = " ".join((name or text).split())[:80]
    group = INTEREST_GROUP if interest else USER_GROUP
    key = f"{group}.{user_id}.{_slug(label)}"
    topic = store.upsert_topic(key, label, text, group, owner_id=user_id)
    if interest:
        store.queue_training(user_id, "")  # the general model learns from interests
    return topic


def remove_user_topic(store: Store, user_id: int, key: str) -> None:
    topic = next(
        (t for t in store.topics(owner_id=user_id) if t.key == key and t.owner_id == user_id),
        None,
    )
    if topic is None:
        raise NotFoundError(f"you have no topic or interest {key!r}")
    store.delete_topic(topic.id)
    if topic.group == INTEREST_GROUP:
        store.queue_training(user_id, "")


def base_threshold(model_id: str) -> float:
    return CALIBRATED.get(model_id, DEFAULT_THRESHOLD)


def choose_topics(
    sims: npt.NDArray[np.float32],
    groups: Sequence[str],
    thresholds: npt.NDArray[np.float32],
    means: npt.NDArray[np.float32],
    *,
    margin: float = MARGIN,
) -> list[list[int]]:
    """For each row of ``sims`` (papers × topics), the indexes of its topics, best first.

    The calibration rule of this module: floor, hubness correction, margin per group.
    """
    group_arr = np.asarray(groups)
    eligible = sims >= thresholds[None, :]
    corrected = sims - means[None, :]
    out: list[list[int]] = []
    for i in range(len(sims)):
        chosen: list[int] = []
        for group in dict.fromkeys(groups):
            idx = np.flatnonzero((group_arr == group) & eligible[i])
            if not len(idx):
                continue
            if group in PER_GROUP:
                c = corrected[i, idx]
                idx = idx[c >= c.max() - margin]
                idx = idx[np.lexsort((idx, -corrected[i, idx]))][: PER_GROUP[group]]
            else:
                idx = idx[np.lexsort((idx, -sims[i, idx]))]
            chosen.extend(int(j) for j in idx)
        out.append(chosen)
    return out


def assign_topics(
    store: Store,
    vectors: ActiveVectors,
    encoder: QueryEncoder,
    *,
    threshold: float | None = None,
    margin: float = MARGIN,
) -> AssignReport:
    """Label every embedded paper with its topics (replacing earlier labels)."""
    keys = vectors.index.keys()
    report = _label(store, vectors, encoder, keys, threshold=threshold, margin=margin)
    _set_watermark(store, vectors, keys)
    return report


def label_new_papers(
    store: Store, vectors: ActiveVectors, encoder: QueryEncoder
) -> AssignReport | None:
    """Label the papers embedded since the last labelling; None when there are none.

    Called where embedding finishes (ingest, index, fetch, the demo, the server's
    trainer), so topic chips need no manual ``paperfeed topics assign``. "Since" is a
    watermark per embedding model: the highest paper key labelled. Paper keys only grow,
    and papers are embedded in key order, so the keys above it are exactly the new ones;
    a new model has no watermark yet, and every paper is labelled with it.
    """
    keys = unlabelled_keys(store, vectors)
    if len(keys) == 0:
        return None
    report = _label(store, vectors, encoder, keys)
    _set_watermark(store, vectors, keys)
    return report


def unlabelled_keys(store: Store, vectors: ActiveVectors) -> npt.NDArray[np.int64]:
    """The embedded papers above the labelling watermark (see :func:`label_new_papers`)."""
    keys = vectors.index.keys()
    mark = store.get_setting(_watermark_key(vectors))
    if mark is not None:
        keys = keys[keys > int(mark)]
    return np.sort(keys)


def label_topic(
    store: Store, vectors: ActiveVectors, encoder: QueryEncoder, topic: StoredTopic
) -> int:
    """Label every embedded paper with one (new) user topic; returns how many got it.

    A user topic is a label of its own (no margin against other topics): a paper gets it
    when it clears the topic's threshold, as in :func:`assign_topics`.
    """
    _check_encoder(encoder, vectors)
    floor = base_threshold(vectors.model_id)
    limit = topic.threshold if topic.threshold is not None else floor
    vector = encoder.encode_queries([topic_text(topic.name, topic.description)])[0]
    keys = vectors.index.keys()
    rows: list[PaperTopic] = []
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        sims = vectors.index.get(chunk) @ vector
        rows.extend(
            PaperTopic(int(chunk[i]), topic.id, round(float(sims[i]), 4))
            for i in np.flatnonzero(sims >= limit)
        )
    store.replace_paper_topics([int(k) for k in keys], [topic.id], rows)
    return len(rows)


def _watermark_key(vectors: ActiveVectors) -> str:
    return f"topics.labelled_through:{vectors.model_id}"


def _set_watermark(store: Store, vectors: ActiveVectors, keys: npt.NDArray[np.int64]) -> None:
    if len(keys):
        store.set_setting(_watermark_key(vectors), str(int(keys.max())))


def _check_encoder(encoder: QueryEncoder, vectors: ActiveVectors) -> None:
    if encoder.model_id != vectors.model_id:
        raise PaperfeedError(
            f"the encoder ({encoder.model_id}) is not the model the papers were embedded "
            f"with ({vectors.model_id})"
        )


def _label(
    store: Store,
    vectors: ActiveVectors,
    encoder: QueryEncoder,
    keys: npt.NDArray[np.int64],
    *,
    threshold: float | None = None,
    margin: float = MARGIN,
) -> AssignReport:
    """Label ``keys`` with their topics (replacing their earlier labels)."""
    _check_encoder(encoder, vectors)
    if not any(t.owner_id is None for t in store.topics()):
        install_taxonomy(store)
    topics = [t for t in _all_topics(store) if t.group in LABEL_GROUPS]
    floor = base_threshold(vectors.model_id) if threshold is None else threshold
    topic_vectors = encoder.encode_queries([topic_text(t.name, t.description) for t in topics])
    thresholds = np.asarray(
        [t.threshold if t.threshold is not None else floor for t in topics], dtype=np.float32
    )
    index = vectors.index
    # The hubness correction's means come from the whole corpus, not only from ``keys``.
    every = index.keys()
    rng = np.random.default_rng(0)
    sample = every if len(every) <= MEAN_SAMPLE else np.sort(rng.choice(every, MEAN_SAMPLE, False))
    means = (index.get(sample) @ topic_vectors.T).mean(axis=0).astype(np.float32)
    groups = [t.group for t in topics]
    rows: list[PaperTopic] = []
    without = 0
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        sims = index.get(chunk) @ topic_vectors.T
        for row, chosen in enumerate(choose_topics(sims, groups, thresholds, means, margin=margin)):
            if not chosen:
                without += 1
            rows.extend(
                PaperTopic(int(chunk[row]), topics[j].id, round(float(sims[row, j]), 4))
                for j in chosen
            )
    store.replace_paper_topics([int(k) for k in keys], [t.id for t in topics], rows)
    return AssignReport(
        papers=len(keys),
        topics=len(topics),
        labels=len(rows),
        threshold=floor,
        papers_without_topic=without,
    )


def _all_topics(store: Store) -> list[StoredTopic]:
    """Every topic of every owner (assignment labels papers for all users at once)."""
    found: dict[int, StoredTopic] = {t.id: t for t in store.topics()}
    for user in store.list_users():
        for t in store.topics(owner_id=user.id):
            found.setdefault(t.id, t)
    return sorted(found.values(), key=lambda t: t.key)


def topic_labels(
    store: Store, paper_pks: Sequence[int], *, user_id: int | None = None
) -> dict[int, list[TopicLabel]]:
    """The topic chips of papers: default topics, plus ``user_id``'s own; best first."""
    visible = {t.id: t for t in store.topics(owner_id=user_id) if t.group in LABEL_GROUPS}
    out: dict[int, list[TopicLabel]] = {}
    for pk, labels in store.paper_topics(paper_pks).items():
        chips = [
            TopicLabel(
                visible[lt.topic_id].key,
                visible[lt.topic_id].name,
                visible[lt.topic_id].group,
                lt.score,
            )
            for lt in labels
            if lt.topic_id in visible
        ]
        if chips:
            out[pk] = chips
    return out


def find_topic(store: Store, key: str, *, user_id: int | None = None) -> StoredTopic:
    """A topic by key (``cs.CL``, ``ml.diffusion-models``) or by its exact name."""
    wanted = key.strip().lower()
    topics = store.topics(owner_id=user_id)
    for t in topics:
        if t.key.lower() == wanted:
            return t
    for t in topics:
        if t.name.lower() == wanted:
            return t
    raise NotFoundError(f"no topic {key!r} (see 'paperfeed topics list')")


def topic_paper_pks(store: Store, key: str, *, user_id: int | None = None) -> list[int]:
    """The papers labelled with a topic, best match first: for topic feeds and filters."""
    return [pt.paper_pk for pt in store.topic_papers(find_topic(store, key, user_id=user_id).id)]


def label_after_embedding(
    settings: Settings, store: Store, encoder: QueryEncoder
) -> AssignReport | None:
    """:func:`label_new_papers` for whoever just embedded with ``encoder`` (the CLI's
    ingest / index / demo); nothing when the active vectors are another model's."""
    vectors = open_active_vectors(settings, store)
    if vectors is None or vectors.model_id != encoder.model_id:
        return None
    return label_new_papers(store, vectors, encoder)


@dataclass(frozen=True, slots=True)
class TopicSummary:
    """A topic as a list shows it: the stored topic and its number of papers."""

    topic: StoredTopic
    papers: int

    def to_json(self) -> dict[str, object]:
        t = self.topic
        return {
            "key": t.key,
            "name": t.name,
            "description": t.description,
            "group": t.group,
            "mine": t.owner_id is not None,
            "threshold": t.threshold,
            "papers": self.papers,
        }


def topic_summaries(store: Store, *, user_id: int | None = None) -> list[TopicSummary]:
    """The default topics and ``user_id``'s own (interests included), with paper counts."""
    if not any(t.owner_id is None for t in store.topics()):
        install_taxonomy(store)
    counts = store.topic_counts()
    return [TopicSummary(t, counts.get(t.id, 0)) for t in store.topics(owner_id=user_id)]
