"""BEIR-format evaluation: a corpus, queries and relevance judgments in, metrics out.

``corpus.jsonl`` is ingested into a store of its own (with the ``beir`` parser), indexed
like any store, and every query is ranked by the same :class:`SearchEngine` the other faces
use, so the numbers measure the product, not a copy of it.

Two documents that paperfeed merges into one paper (same title, no other id) share its
rank: each of their ``_id`` s is listed at that rank, in ``_id`` order.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from paperfeed.errors import FormatError, NotFoundError, PaperfeedError
from paperfeed.evaluation.metrics import mrr_at, ndcg_at, recall_at
from paperfeed.index import semantic
from paperfeed.search import SearchEngine, SearchMode, SearchOptions
from paperfeed.settings import Settings
from paperfeed.sources import get_parser
from paperfeed.sources.base import ParseContext, Parsed
from paperfeed.store import IncomingRecord, Store

DEPTH = 100


@dataclass(frozen=True, slots=True)
class BeirDataset:
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    name: str


@dataclass(frozen=True, slots=True)
class ModeScores:
    mode: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    ms_per_query: float

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "queries": self.queries,
            "ms_per_query": round(self.ms_per_query, 2),
        }


@dataclass(frozen=True, slots=True)
class EvalReport:
    dataset: str
    documents: int
    papers: int
    model: str | None
    split: str
    scores: list[ModeScores]

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "documents": self.documents,
            "papers": self.papers,
            "model": self.model,
            "split": self.split,
            "modes": {s.mode: s.to_json() for s in self.scores},
        }


def load_dataset(directory: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
    corpus = directory / "corpus.jsonl"
    queries_path = directory / "queries.jsonl"
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for path in (corpus, queries_path, qrels_path):
        if not path.exists():
            raise NotFoundError(
                f"{path}: missing (a BEIR folder has corpus.jsonl, "
                f"queries.jsonl and qrels/{split}.tsv)"
            )
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            if len(row) < 3:
                raise FormatError(f"{qrels_path}: line {number}: expected 3 columns")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError:
                raise FormatError(f"{qrels_path}: line {number}: score is not a number") from None
    queries: dict[str, str] = {}
    with queries_path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                qid, text = str(obj["_id"]), str(obj["text"])
            except (ValueError, KeyError, TypeError):
                raise FormatError(f"{queries_path}: line {number}: not a BEIR query") from None
            if qid in qrels:
                queries[qid] = text
    if not queries:
        raise FormatError(f"{directory}: no query has judgments in qrels/{split}.tsv")
    return BeirDataset(corpus, queries, qrels, directory.name)


def ingest_corpus(store: Store, corpus: Path) -> dict[int, list[str]]:
    """Store the corpus; returns paper pk -> the BEIR _ids it holds."""
    parse = get_parser("beir")
    ctx = ParseContext(source="beir", listing=corpus.name, path=str(corpus))
    batch: list[IncomingRecord] = []
    ids: list[tuple[str, str]] = []  # (_id, paper id as parsed)
    with corpus.open("rb") as fh:
        for item in parse(fh, ctx):
            if isinstance(item, Parsed):
                doc_id = item.locator.rsplit("(_id ", 1)[-1].rstrip(")")
                batch.append(IncomingRecord(item.paper))
                ids.append((doc_id, item.paper.id))
                if len(batch) >= 1000:
                    store.write_batch(batch, [])
                    batch = []
    if batch:
        store.write_batch(batch, [])
    store.refresh_keyword_index()
    by_pk: dict[int, list[str]] = {}
    for doc_id, paper_id in ids:
        pk = store.paper_pk(paper_id)
        if pk is not None:
            by_pk.setdefault(pk, []).append(doc_id)
    for docs in by_pk.values():
        docs.sort()
    return by_pk


def run_queries(
    engine: SearchEngine,
    dataset: BeirDataset,
    docs_of: dict[int, list[str]],
    options: SearchOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ModeScores:
    ndcgs: list[float] = []
    recalls: list[float] = []
    mrrs: list[float] = []
    elapsed = 0.0
    items = sorted(dataset.queries.items())
    for i, (qid, text) in enumerate(items, start=1):
        started = time.perf_counter()
        ranked = engine.rank(text, options)
        elapsed += time.perf_counter() - started
        ranking: list[str] = []
        for r in ranked:
            ranking.extend(docs_of.get(r.pk, ()))
            if len(ranking) >= DEPTH:
                break
        judged = dataset.qrels[qid]
        ndcgs.append(ndcg_at(ranking, judged, 10))
        recalls.append(recall_at(ranking, judged, 100))
        mrrs.append(mrr_at(ranking, judged, 10))
        if progress is not None:
            progress(i, len(items))
    return ModeScores(
        mode=options.mode.value,
        ndcg_at_10=statistics.fmean(ndcgs),
        recall_at_100=statistics.fmean(recalls),
        mrr_at_10=statistics.fmean(mrrs),
        queries=len(items),
        ms_per_query=1000 * elapsed / len(items),
    )


def evaluate(
    directory: Path,
    work: Settings,
    *,
    modes: Sequence[SearchMode] = (SearchMode.KEYWORD, SearchMode.SEMANTIC, SearchMode.HYBRID),
    model: str | None = None,
    split: str = "test",
    options: SearchOptions | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Evaluate the given modes on a BEIR folder, using (and reusing) the store in ``work``.

    Re-running with the same ``work`` directory reuses the ingested corpus and its vectors.
    """
    from paperfeed.store import open_store

    dataset = load_dataset(directory, split)
    base = options or SearchOptions()
    with open_store(work) as store:
        if model:
            semantic.activate(store, model)
        docs_of = ingest_corpus(store, dataset.corpus)
        needs_vectors = any(m is not SearchMode.KEYWORD for m in modes)
        if needs_vectors:
            semantic.build(
                work, store, progress=partial(progress, "embedding") if progress else None
            )
        engine = semantic.open_engine(work, store, semantic=needs_vectors)
        if needs_vectors and not engine.semantic_available:
            raise PaperfeedError("the corpus could not be embedded")
        scores = []
        for mode in modes:
            # Each side keeps the default depth (its z statistics come from that list).
            opts = replace(base, mode=mode, limit=DEPTH, offset=0, semantic_floor=-1.0)
            scores.append(
                run_queries(
                    engine,
                    dataset,
                    docs_of,
                    opts,
                    progress=partial(progress, mode.value) if progress else None,
                )
            )
        model_id = engine.encoder.model_id if engine.encoder else None
        return EvalReport(
            dataset=dataset.name,
            documents=sum(len(v) for v in docs_of.values()),
            papers=len(docs_of),
            model=model_id,
            split=split,
            scores=scores,
        )
