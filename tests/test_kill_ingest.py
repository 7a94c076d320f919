"""An ingest killed at random moments leaves a sound store, and a re-run completes it."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paperfeed.index.keyword_query import parse_query
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, open_store

N = 30_000


def _snapshot(path: Path) -> None:
    with path.open("w") as fh:
        for i in range(N):
            record = {
                "id": f"2401.{i:05d}",
                "submitter": "A. Person",
                "authors": "A. Person and B. Person",
                "title": f"On the kill-safety of ingest, part {i}",
                "comments": None,
                "journal-ref": None,
                "doi": None,
                "report-no": None,
                "categories": "cs.DB cs.LG",
                "license": None,
                "abstract": "  We show that " + "interrupted writes are atomic. " * 20,
                "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
                "update_date": "2024-01-02",
                "authors_parsed": [["Person", "A.", ""], ["Person", "B.", ""]],
            }
            fh.write(json.dumps(record) + "\n")


def _ingest(data: Path, src: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAPERFEED_HOME": str(data)}
    return subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "ingest", "-q", "--no-embed", str(src)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _pending(data: Path) -> int:
    conn = sqlite3.connect(Settings.resolve(data).db_path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM keyword_pending").fetchone()[0])
    finally:
        conn.close()


def _check(data: Path) -> int:
    settings = Settings.resolve(data)
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = {int(r[0]) for r in conn.execute("SELECT pk FROM papers")}
        pending = {int(r[0]) for r in conn.execute("SELECT pk FROM keyword_pending")}
    finally:
        conn.close()
    with open_store(settings) as store:  # opens, migrations all applied
        assert store.count_papers(PaperQuery()) == len(stored)
        found = store.keyword_search(parse_query("atomic"), limit=N + 1)
    indexed = {pk for pk, _ in found}
    # Every stored paper is in the keyword index or queued for it (a batch indexed just
    # before the kill may be both: re-indexing it is harmless); nothing else is indexed.
    assert stored - pending <= indexed <= stored
    return len(stored)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun(tmp_path: Path) -> None:
    src = tmp_path / "snapshot.jsonl"
    _snapshot(src)
    data = tmp_path / "data"
    rng = random.Random(20261122)
    counts = []
    for _ in range(5):
        proc = _ingest(data, src)
        time.sleep(rng.uniform(0.3, 6.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if (data / "paperfeed.db").exists():
            count = _check(data)
            assert count % 1000 == 0 or count == N  # whole batches only
            counts.append(count)
    proc = _ingest(data, src)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr.decode()
    assert _check(data) == N
    assert _pending(data) == 0
    assert counts  # at least one kill landed mid-ingest or after the store existed


@pytest.mark.slow
def test_ctrl_c_is_reported_and_rerun_completes(tmp_path: Path) -> None:
    src = tmp_path / "snapshot.jsonl"
    _snapshot(src)
    data = tmp_path / "data"
    proc = _ingest(data, src)
    deadline = time.monotonic() + 30
    while not (data / "paperfeed.db").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 130:
        assert b"run the same command again" in stderr
        conn = sqlite3.connect(Settings.resolve(data).db_path)
        status = conn.execute("SELECT status FROM ingest_runs").fetchall()
        conn.close()
        assert status == [("interrupted",)]
    else:  # finished before the signal arrived
        assert proc.returncode == 0
    proc = _ingest(data, src)
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    assert _check(data) == N
