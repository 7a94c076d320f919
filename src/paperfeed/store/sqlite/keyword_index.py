"""The embedded store's keyword index: BM25 in a tantivy index directory beside the database.

SQLite's FTS5 could not meet the latency target (p95 of seconds at 1M papers for plain
OR queries, since it scores every match); tantivy's block-max WAND skips whole blocks of
postings that cannot reach the top k (benchmarks/keyword_backends.py, docs/search.md).

Layout: ``<database file>-keyword/`` (like SQLite's ``-wal``), holding tantivy's segment
files and ``paperfeed-keyword.json`` with the build metadata (library, version, schema,
analyzers). A directory of another layout, or none, is rebuilt from the store.

The analyzers, and how a paper's terms and lengths are counted, live in
:mod:`paperfeed.index.keyword_terms`: the PostgreSQL store scores with the same BM25.

Fields: ``text`` (the title four times, then the abstract and the authors: a word in the
title counts more, as one BM25 field, which scored best on SciFact), ``title``,
``abstract`` and ``authors`` for the field prefixes, ``categories`` (whole codes, lower
case) and ``published`` (an integer ``YYYYMMDD``) for filters, and ``pk``, the store's
key, read back from a fast field.

The store keeps the index in step with the ``keyword_pending`` queue (see
:meth:`SQLiteStore.refresh_keyword_index`): every write of a paper queues its key, and a
refresh re-indexes the queued keys (delete by key, then add what the store holds), so
applying a batch twice is harmless and a refresh killed at any moment resumes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import tantivy

from paperfeed.errors import StoreError
from paperfeed.index.keyword_query import Field, KeywordQuery, Term
from paperfeed.index.keyword_terms import TITLE_REPEATS, codes_analyzer, words_analyzer
from paperfeed.store.base import SearchFilters

# Bumped whenever the fields or analyzers change: an index of another layout is rebuilt.
LAYOUT = 1
METADATA_FILE = "paperfeed-keyword.json"
# Tantivy refuses less than 15 MB per indexing thread. Indexing runs after a file's papers
# are stored, so both cores are free: two threads doubled the rate (2,100 -> 4,200 papers/s,
# 20,000 abstract-length papers, idle 2-core machine).
WRITER_HEAP_BYTES = 64_000_000
WRITER_THREADS = 2
# How long a refresh waits for another process's indexing to finish before giving up.
WRITER_WAIT_SECONDS = 60.0

_TEXT = "paperfeed_en"
_NAMES = "paperfeed_names"
_CODES = "paperfeed_codes"
_FIELD_NAMES = {
    Field.ANY: "text",
    Field.TITLE: "title",
    Field.ABSTRACT: "abstract",
    Field.AUTHORS: "authors",
    Field.CATEGORIES: "categories",
}
# Characters with a meaning in tantivy's regular expressions (categories hold few others).
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\-#&~")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("pk", indexed=True, fast=True)
    builder.add_text_field("text", tokenizer_name=_TEXT)
    builder.add_text_field("title", tokenizer_name=_TEXT)
    builder.add_text_field("abstract", tokenizer_name=_TEXT)
    builder.add_text_field("authors", tokenizer_name=_NAMES)
    builder.add_text_field("categories", tokenizer_name=_CODES, index_option="basic")
    builder.add_integer_field("published", indexed=True, fast=True)
    return builder.build()


def _metadata() -> dict[str, Any]:
    return {
        "layout": LAYOUT,
        "library": "tantivy",
        "version": version("tantivy"),
        "title_repeats": TITLE_REPEATS,
        "analyzers": {
            _TEXT: "simple, remove_long(40), lowercase, ascii_fold, stemmer(english)",
            _NAMES: "simple, remove_long(40), lowercase, ascii_fold",
            _CODES: "raw, lowercase",
        },
        "fields": ["pk", "text", "title", "abstract", "authors", "categories", "published"],
    }


@dataclass(frozen=True, slots=True)
class KeywordDocument:
    """What the index holds of one paper."""

    pk: int
    title: str
    abstract: str
    authors: Sequence[str]
    categories: Sequence[str]
    published: dt.date | None


def _date_number(day: dt.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


class KeywordUpdate:
    """Commits to a keyword index through one held writer (see KeywordIndex.updating)."""

    def __init__(self, index: KeywordIndex, writer: tantivy.IndexWriter) -> None:
        self._index = index
        self._writer = writer

    def replace(self, pks: Sequence[int], documents: Iterable[KeywordDocument]) -> int:
        """Remove the papers ``pks`` and add ``documents``, in one commit; returns how many
        documents were added. Only keys the index holds are deleted: a batch of new papers
        (the bulk of any ingest) costs no deletes, and a batch committed before a crash is
        deleted and added again when it is retried."""
        for pk in self._index.indexed(pks):
            self._writer.delete_documents_by_term("pk", int(pk))
        added = 0
        for doc in documents:
            self._writer.add_document(self._index.document(doc))
            added += 1
        self._writer.commit()
        self._index.refresh_reader()
        return added


class KeywordIndex:
    """A tantivy index directory; searches from any thread, writes under the store's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = False
        self._schema = _schema()
        try:
            if not self._layout_matches():
                self._create()
            self._index = self._open()
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot open the keyword index at {path}: {exc}") from None
        self._analyzers = {
            _TEXT: words_analyzer(stem=True),
            _NAMES: words_analyzer(stem=False),
            _CODES: codes_analyzer(),
        }
        self._meta_seen = self._meta_stamp()

    # -- files ---------------------------------------------------------------------------
    def _layout_matches(self) -> bool:
        meta = self.path / METADATA_FILE
        try:
            stored = json.loads(meta.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(stored, dict)
            and stored.get("layout") == LAYOUT
            and (self.path / "meta.json").exists()
        )

    def _create(self) -> None:
        """A new, empty index; the caller queues every paper for indexing."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        index = tantivy.Index(self._schema, path=str(self.path))
        self._register(index)
        writer = index.writer(WRITER_HEAP_BYTES, 1)
        writer.commit()
        writer.wait_merging_threads()
        # The metadata goes last, atomically: a directory without it is rebuilt.
        tmp = self.path / (METADATA_FILE + ".tmp")
        tmp.write_text(json.dumps(_metadata(), indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(tmp, self.path / METADATA_FILE)
        self.created = True

    def _open(self) -> tantivy.Index:
        index = tantivy.Index.open(str(self.path))
        self._register(index)
        # Reloads are explicit (see _fresh_searcher): no watcher thread per process.
        index.config_reader("Manual")
        return index

    @staticmethod
    def _register(index: tantivy.Index) -> None:
        index.register_tokenizer(_TEXT, words_analyzer(stem=True))
        index.register_tokenizer(_NAMES, words_analyzer(stem=False))
        index.register_tokenizer(_CODES, codes_analyzer())

    def _meta_stamp(self) -> int:
        try:
            return (self.path / "meta.json").stat().st_mtime_ns
        except OSError:
            return 0

    def _fresh_searcher(self) -> tantivy.Searcher:
        # Another process (an ingest while `serve` runs) may have committed: tantivy
        # replaces meta.json on every commit, so its time stamp says when to reload.
        stamp = self._meta_stamp()
        if stamp != self._meta_seen:
            self._index.reload()
            self._meta_seen = stamp
        return self._index.searcher()

    def indexed(self, pks: Iterable[int]) -> list[int]:
        """Which of these keys have a document in the index (perhaps one already deleted:
        deleting it again is harmless; a key that never had one is not listed)."""
        searcher = self._fresh_searcher()
        return [pk for pk in pks if searcher.doc_freq("pk", int(pk))]

    # -- writes --------------------------------------------------------------------------
    @contextmanager
    def updating(self) -> Iterator[KeywordUpdate]:
        """Hold the index's writer for a series of :meth:`KeywordUpdate.replace` commits.

        One writer for a whole refresh: tantivy merges segments in the background, and
        waiting for that once at the end (not after every batch) is what keeps bulk
        indexing fast. Another process's writer is waited for (it holds it only while it
        refreshes, and empties the whole queue, this process's papers included).
        """
        writer = self._writer()
        try:
            yield KeywordUpdate(self, writer)
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
            self.refresh_reader()

    def refresh_reader(self) -> None:
        self._index.reload()
        self._meta_seen = self._meta_stamp()

    def _writer(self) -> tantivy.IndexWriter:
        deadline = time.monotonic() + WRITER_WAIT_SECONDS
        while True:
            try:
                return self._index.writer(WRITER_HEAP_BYTES, WRITER_THREADS)
            except ValueError as exc:
                # Another process holds tantivy's writer lock (released when it exits).
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreError(
                        f"cannot write the keyword index at {self.path}: {exc}"
                    ) from None
                time.sleep(0.2)

    def document(self, doc: KeywordDocument) -> tantivy.Document:
        fields: dict[str, Any] = {
            "pk": doc.pk,
            "text": [doc.title] * TITLE_REPEATS + [doc.abstract, *doc.authors],
            "title": doc.title,
            "abstract": doc.abstract,
            "authors": list(doc.authors),
            "categories": list(doc.categories),
        }
        if doc.published is not None:
            fields["published"] = _date_number(doc.published)
        return tantivy.Document(**fields)

    # -- reads ---------------------------------------------------------------------------
    def search(
        self,
        query: KeywordQuery,
        *,
        limit: int,
        filters: SearchFilters | None = None,
        allowed: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:
        """(pk, BM25 score) of the best ``limit`` matches, best first, ties by pk.

        ``filters`` are applied for dates and categories; ``allowed`` restricts the
        result to these keys (what the store resolved of the other filters).
        """
        compiled = self._compile(query)
        if compiled is None or limit <= 0:
            return []
        clauses = [(tantivy.Occur.Must, compiled)]
        clauses += [(tantivy.Occur.Must, q) for q in self._filter_queries(filters, allowed)]
        final = compiled if len(clauses) == 1 else tantivy.Query.boolean_query(clauses)
        searcher = self._fresh_searcher()
        # count=False: counting every match would disable top-k pruning.
        hits = searcher.search(final, limit, count=False).hits
        if not hits:
            return []
        keys = searcher.fast_field_values("pk", [addr for _, addr in hits])
        found = []
        for (score, _), pk in zip(hits, keys, strict=True):
            if pk is None:  # every document is written with its key
                raise StoreError(
                    f"the keyword index at {self.path} holds a document without a key: "
                    "delete that directory and it is rebuilt from the store"
                )
            found.append((int(pk), float(score)))
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found

    # -- query compilation ---------------------------------------------------------------
    def _analyze(self, field: Field, text: str) -> list[str]:
        name = {Field.AUTHORS: _NAMES, Field.CATEGORIES: _CODES}.get(field, _TEXT)
        return list(self._analyzers[name].analyze(text))

    def _compile(self, query: KeywordQuery) -> tantivy.Query | None:
        must: list[tantivy.Query] = [self._group(group) for group in query.required]
        if query.words:
            # "freq": BM25 needs each term's frequency, never its positions (tantivy-py's
            # default would read them: slower, and more of the index paged in).
            words = [
                tantivy.Query.term_query(self._schema, "text", token, "freq")
                for word in query.words
                for token in self._analyze(Field.ANY, word)
            ]
            if words:
                must.append(self._any_of(words))
            elif not must:
                return None
        if not must:
            return None
        clauses = [(tantivy.Occur.Must, q) for q in must]
        clauses += [(tantivy.Occur.MustNot, self._term(t)) for t in query.excluded]
        if len(clauses) == 1:
            return must[0]
        return tantivy.Query.boolean_query(clauses)

    @staticmethod
    def _any_of(queries: Sequence[tantivy.Query]) -> tantivy.Query:
        if len(queries) == 1:
            return queries[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])

    def _group(self, group: tuple[Term, ...]) -> tantivy.Query:
        return self._any_of([self._term(t) for t in group])

    def _term(self, term: Term) -> tantivy.Query:
        field = _FIELD_NAMES[term.field]
        if term.field is Field.CATEGORIES:
            code = term.text.casefold()
            if term.prefix:
                return tantivy.Query.regex_query(
                    self._schema, field, _regex_literal(code.rstrip("*")) + ".*"
                )
            return tantivy.Query.term_query(self._schema, field, code)
        tokens = [tok for part in term.tokens for tok in self._analyze(term.field, part)]
        if not tokens:
            # Nothing indexable (e.g. one 60-letter "word"): it cannot occur in any paper.
            return tantivy.Query.empty_query()
        if len(tokens) == 1:
            return tantivy.Query.term_query(self._schema, field, tokens[0], "freq")
        words: list[str | tuple[int, str]] = list(tokens)
        return tantivy.Query.phrase_query(self._schema, field, words)

    def _filter_queries(
        self, filters: SearchFilters | None, allowed: Sequence[int] | None
    ) -> list[tantivy.Query]:
        queries: list[tantivy.Query] = []
        if filters is not None and (filters.date_from or filters.date_to):
            queries.append(
                tantivy.Query.range_query(
                    self._schema,
                    "published",
                    tantivy.FieldType.Integer,
                    _date_number(filters.date_from) if filters.date_from else None,
                    _date_number(filters.date_to) if filters.date_to else None,
                )
            )
        if filters is not None and filters.categories:
            alternatives = []
            for cat in filters.categories:
                code = cat.casefold()
                if code.endswith(".*"):
                    archive = _regex_literal(code[:-2])
                    alternatives.append(
                        tantivy.Query.regex_query(self._schema, "categories", archive + r"(\..*)?")
                    )
                else:
                    alternatives.append(tantivy.Query.term_query(self._schema, "categories", code))
            queries.append(self._any_of(alternatives))
        if allowed is not None:
            queries.append(tantivy.Query.term_set_query(self._schema, "pk", list(allowed)))
        # Filters decide what matches, never how it ranks.
        return [tantivy.Query.const_score_query(q, 0.0) for q in queries]


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)
