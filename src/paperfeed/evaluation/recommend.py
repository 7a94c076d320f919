"""Offline evaluation of the recommender on users simulated from a BEIR dataset.

A BEIR dataset says which documents are relevant to each query (for SciFact: which
abstracts support or refute a claim). Documents relevant to one query are about one
subject, so they make a plausible set of papers one person liked. Two populations:

- **one interest**: for each query with at least two relevant documents, a user who liked
  them; each document is held out in turn (leave-one-out) and the others are the likes.
- **several interests**: users who liked the documents of three such queries plus three
  queries with a single relevant document (a researcher follows several subjects);
  one document of each of the three multi-document queries is held out.

For every user the corpus minus their likes is ranked and precision@10 / nDCG@10 of the
held-out documents are averaged over users. Methods: the recommender (the same
:func:`paperfeed.recommend.models.fit` / ``score_candidates`` the product uses, with a
background sample of the corpus), and the baselines *centroid* (cosine to the mean of the
likes), *recency* (newest published first) and *popularity* (most votes, local and
imported). Users are drawn with a fixed seed, so a run repeats exactly.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paperfeed.errors import PaperfeedError
from paperfeed.evaluation.beir import ingest_corpus, load_dataset
from paperfeed.evaluation.metrics import ndcg_at
from paperfeed.index import semantic
from paperfeed.recommend.models import BACKGROUND, fit, sample_background, score_candidates
from paperfeed.recommend.vectors import open_active_vectors
from paperfeed.settings import Settings

K = 10
METHODS = ("recommender", "centroid", "recency", "popularity")
INTERESTS_PER_USER = 3
SINGLES_PER_USER = 3
DEFAULT_USERS = 200


@dataclass(frozen=True, slots=True)
class SimulatedUser:
    likes: tuple[int, ...]  # rows of the vector matrix
    held_out: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MethodScores:
    method: str
    precision_at_10: float
    ndcg_at_10: float

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "precision@10": round(self.precision_at_10, 4),
            "ndcg@10": round(self.ndcg_at_10, 4),
        }


@dataclass(frozen=True, slots=True)
class PopulationReport:
    population: str
    users: int
    mean_likes: float
    scores: list[MethodScores]

    def to_json(self) -> dict[str, object]:
        return {
            "population": self.population,
            "users": self.users,
            "mean_likes": round(self.mean_likes, 2),
            "methods": {s.method: s.to_json() for s in self.scores},
        }


@dataclass(frozen=True, slots=True)
class RecommenderReport:
    dataset: str
    documents: int
    model: str
    seconds: float
    populations: list[PopulationReport]

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "documents": self.documents,
            "model": self.model,
            "seconds": round(self.seconds, 1),
            "populations": {p.population: p.to_json() for p in self.populations},
        }


def one_interest_users(groups: Sequence[Sequence[int]]) -> list[SimulatedUser]:
    users = []
    for rows in groups:
        if len(rows) < 2:
            continue
        for held in rows:
            users.append(SimulatedUser(tuple(r for r in rows if r != held), (held,)))
    return users


def several_interest_users(
    groups: Sequence[Sequence[int]], n: int, seed: int
) -> list[SimulatedUser]:
    multi = [list(g) for g in groups if len(g) >= 2]
    single = [list(g) for g in groups if len(g) == 1]
    if len(multi) < INTERESTS_PER_USER or len(single) < SINGLES_PER_USER:
        return []
    rng = random.Random(seed)
    users = []
    for _ in range(n):
        likes: list[int] = []
        held: list[int] = []
        for rows in rng.sample(multi, INTERESTS_PER_USER):
            shuffled = rows[:]
            rng.shuffle(shuffled)
            held.append(shuffled[0])
            likes.extend(shuffled[1:])
        for rows in rng.sample(single, SINGLES_PER_USER):
            likes.extend(rows)
        likes = [r for r in dict.fromkeys(likes) if r not in held]
        users.append(SimulatedUser(tuple(likes), tuple(held)))
    return users


Scorer = Callable[[SimulatedUser], npt.NDArray[np.float64]]


def _evaluate(users: Sequence[SimulatedUser], scorer: Scorer, method: str) -> MethodScores:
    precisions, ndcgs = [], []
    for user in users:
        scores = scorer(user).astype(np.float64)
        scores[list(user.likes)] = -np.inf
        # Ties go to the lower row (a stable order), as every ranking of paperfeed does.
        top = np.lexsort((np.arange(len(scores)), -scores))[:K]
        held = set(user.held_out)
        precisions.append(sum(1 for r in top if int(r) in held) / K)
        ndcgs.append(ndcg_at([str(int(r)) for r in top], {str(h): 1 for h in held}, K))
    return MethodScores(method, statistics.fmean(precisions), statistics.fmean(ndcgs))


def evaluate_users(
    population: str,
    users: Sequence[SimulatedUser],
    vectors: npt.NDArray[np.float32],
    *,
    recency: npt.NDArray[np.float64],
    popularity: npt.NDArray[np.float64],
) -> PopulationReport:
    """Score every method on one population; ``vectors`` are unit rows of the corpus."""
    all_rows = np.arange(len(vectors), dtype=np.int64)

    def recommender(user: SimulatedUser) -> npt.NDArray[np.float64]:
        likes = list(user.likes)
        background = sample_background(all_rows, likes, BACKGROUND, seed=int(sum(likes)))
        parts = fit(vectors[likes], vectors[:0], vectors[background])
        scored = score_candidates(parts, vectors[likes], vectors[:0], vectors)
        return scored.score.astype(np.float64)

    def centroid(user: SimulatedUser) -> npt.NDArray[np.float64]:
        c = vectors[list(user.likes)].mean(axis=0)
        out: npt.NDArray[np.float64] = (vectors @ (c / np.linalg.norm(c))).astype(np.float64)
        return out

    scores = [
        _evaluate(users, recommender, "recommender"),
        _evaluate(users, centroid, "centroid"),
        _evaluate(users, lambda _u: recency, "recency"),
        _evaluate(users, lambda _u: popularity, "popularity"),
    ]
    mean_likes = statistics.fmean(len(u.likes) for u in users) if users else 0.0
    return PopulationReport(population, len(users), mean_likes, scores)


def evaluate_recommender(
    directory: Path,
    work: Settings,
    *,
    model: str | None = None,
    split: str = "test",
    users: int = DEFAULT_USERS,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RecommenderReport:
    """Simulate users from a BEIR folder and compare the recommender with the baselines.

    The corpus is ingested and embedded in ``work`` (reused when run again), exactly as
    ``paperfeed eval`` does.
    """
    from paperfeed.store import open_store

    started = time.perf_counter()
    dataset = load_dataset(directory, split)
    with open_store(work) as store:
        if model:
            semantic.activate(store, model)
        docs_of = ingest_corpus(store, dataset.corpus)
        semantic.build(work, store, progress=partial(progress, "embedding") if progress else None)
        active = open_active_vectors(work, store)
        if active is None:
            raise PaperfeedError("the corpus could not be embedded")
        keys = active.index.keys()
        matrix = active.index.get(keys)
        row_of = {int(k): i for i, k in enumerate(keys)}
        doc_row = {d: row_of[pk] for pk, docs in docs_of.items() if pk in row_of for d in docs}
        papers = store.papers_by_pk([int(k) for k in keys])
        votes = store.vote_counts([p.id for p in papers.values()])
        recency = np.zeros(len(keys))
        popularity = np.zeros(len(keys))
        for i, k in enumerate(keys):
            paper = papers.get(int(k))
            if paper is None:
                continue
            day = paper.published or (paper.first_seen.date() if paper.first_seen else None)
            recency[i] = day.toordinal() if day else 0.0
            popularity[i] = (paper.upvotes or 0) + votes.get(paper.id, 0)
        groups = []
        for qid in sorted(dataset.qrels):
            rows = sorted(
                {doc_row[d] for d, g in dataset.qrels[qid].items() if g > 0 and d in doc_row}
            )
            if rows:
                groups.append(rows)
        populations = [
            ("one interest", one_interest_users(groups)),
            ("several interests", several_interest_users(groups, users, seed)),
        ]
        reports = []
        for i, (name, simulated) in enumerate(populations):
            if progress is not None:
                progress("users", i, len(populations))
            if simulated:
                reports.append(
                    evaluate_users(name, simulated, matrix, recency=recency, popularity=popularity)
                )
        if progress is not None:
            progress("users", len(populations), len(populations))
        return RecommenderReport(
            dataset=dataset.name,
            documents=len(doc_row),
            model=active.model_id,
            seconds=time.perf_counter() - started,
            populations=reports,
        )
