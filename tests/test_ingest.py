from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest

from paperfeed.errors import FormatError, NotFoundError
from paperfeed.ingest import ingest_file
from paperfeed.sample import sample_path
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, Store
from tests.conftest import HF_PAGES, need_shared


def test_the_four_shared_listing_pages_give_210_appearances_of_162_papers(store: Store) -> None:
    pages = sorted(need_shared(HF_PAGES).glob("*.txt"))
    assert len(pages) == 4
    reports = [ingest_file(store, p) for p in pages]
    assert {r.format for r in reports} == {"listing"}
    assert sum(r.appearances for r in reports) == 210
    assert sum(r.quarantined for r in reports) == 0
    stats = store.stats()
    assert (stats.papers, stats.appearances, stats.quarantined) == (162, 210, 0)
    # Re-ingesting the same files changes nothing.
    again = [ingest_file(store, p) for p in pages]
    assert sum(r.added + r.merged + r.appearances for r in again) == 0
    assert sum(r.unchanged for r in again) == 210
    assert store.stats() == stats


def test_bundled_sample_matches_the_shared_pages(store: Store) -> None:
    report = ingest_file(store, sample_path())
    assert report.format == "jsonl"
    assert (report.added, report.appearances, report.quarantined) == (162, 210, 0)
    days = store.feed_dates()
    assert len(days) == 3
    latest = store.query_papers(PaperQuery(feed_date=days[-1]))
    assert latest
    assert all(p.abstract for p in latest)


def test_bad_records_are_quarantined_and_neighbours_kept(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"title": "Good one", "abstract": "fine"}\n'
        b'{"title": "", "abstract": "no title"}\n'
        b'{"title": "Bad date", "published": "the day after tomorrow"}\n'
        b'{"title": "Broken \xff\xfe encoding"}\n'
        b'{"title": "Truncated", "abstr\n'
        b'{"title": "Good two", "published": "2024-05-01"}\n'
    )
    report = ingest_file(store, path)
    assert (report.added, report.quarantined) == (2, 4)
    records = store.quarantined()
    assert [r.locator.split()[:2] for r in records] == [
        ["line", "2"],
        ["line", "3"],
        ["line", "4"],
        ["line", "5"],
    ]
    reasons = " | ".join(r.reason for r in records)
    assert "title" in reasons
    assert "published" in reasons
    assert "encoding" in reasons
    # Re-ingesting keeps one quarantine row per bad record.
    ingest_file(store, path)
    assert store.stats().quarantined == 4


def test_compressed_inputs_and_truncated_gzip(store: Store, tmp_path: Path) -> None:
    lines = [json.dumps({"title": f"Paper number {i}", "abstract": "x " * 50}) for i in range(2000)]
    data = ("\n".join(lines) + "\n").encode()
    good = tmp_path / "papers.jsonl.gz"
    good.write_bytes(gzip.compress(data))
    assert ingest_file(store, good).added == 2000
    cut = tmp_path / "cut.jsonl.gz"
    blob = gzip.compress(("\n".join(lines[:1500]).replace("Paper", "Other") + "\n").encode())
    cut.write_bytes(blob[: len(blob) // 2])
    report = ingest_file(store, cut)
    assert 0 < report.added < 1500
    assert report.quarantined >= 1
    assert any("compressed file" in r.reason for r in store.quarantined())


def test_missing_empty_and_unknown_inputs(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        ingest_file(store, tmp_path / "nope.bib")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match="empty"):
        ingest_file(store, empty)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(FormatError):
        ingest_file(store, binary)
    with pytest.raises(FormatError, match="unknown format"):
        ingest_file(store, empty, fmt="docx")
    with pytest.raises(FormatError, match="directory"):
        ingest_file(store, tmp_path)


def test_forced_format_and_progress(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "list.data"
    path.write_text('{"title": "Forced JSONL"}\n')
    seen: list[int] = []
    report = ingest_file(store, path, fmt="jsonl", progress=seen.append)
    assert report.added == 1
    assert seen
    assert seen[-1] == path.stat().st_size


def test_sqlite_ingest_runs_are_recorded(
    sqlite_store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"title": "One"}\n')
    ingest_file(sqlite_store, path)
    conn = sqlite3.connect(settings.db_path)
    rows = conn.execute("SELECT format, status, added FROM ingest_runs").fetchall()
    conn.close()
    assert rows == [("jsonl", "done", 1)]
