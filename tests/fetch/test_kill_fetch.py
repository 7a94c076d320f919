"""A fetch killed with kill -9 in the middle resumes at the page where it stopped."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paperfeed.fetch.arxiv_api import ArxivCursor
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, open_store
from tests.fetch.conftest import write_settings
from tests.fetch.recorded import RecordedUpstream, RunningServer, week_of_papers

FIRST = dt.date.today() - dt.timedelta(days=6)


def _fetch(data: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PAPERFEED_CONFIG"}
    env["PAPERFEED_HOME"] = str(data)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paperfeed",
            "fetch",
            "arxiv",
            "--category",
            "cs.CL",
            "--since",
            FIRST.isoformat(),
            "--no-embed",
            "-q",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_9_midway_then_the_same_command_resumes(
    tmp_path: Path, upstream: RecordedUpstream, server: RunningServer
) -> None:
    upstream.arxiv = week_of_papers("cs.CL", FIRST, per_day=60)  # 420 papers, 42 pages of 10
    upstream.delay = 0.1
    data = tmp_path / "pf"
    write_settings(data, server.url)
    (data / "paperfeed.toml").write_text(
        (data / "paperfeed.toml")
        .read_text()
        .replace("arxiv_page_size = 25", "arxiv_page_size = 10")
    )
    proc = _fetch(data)
    deadline = time.monotonic() + 60
    while len(upstream.requests_to("/api/query")) < 12 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reaps it and closes its pipes

    settings = Settings.resolve(data)
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        cursor_json = conn.execute(
            "SELECT cursor FROM fetch_state WHERE source = 'arxiv' AND key = 'cs.CL'"
        ).fetchone()[0]
    finally:
        conn.close()
    saved = ArxivCursor.from_json(cursor_json)
    assert saved.window_from == FIRST
    assert saved.total == 420
    assert 0 < saved.start < 420
    # The cursor moves only after a page is stored: it never runs ahead of the store.
    assert stored >= saved.start
    served = len(upstream.requests_to("/api/query"))

    upstream.delay = 0.0
    again = _fetch(data)
    out, errors = again.communicate(timeout=120)
    assert again.returncode == 0, errors.decode()
    report = json.loads(out)["runs"][0]
    resumed = upstream.requests_to("/api/query")[served:]
    assert int(resumed[0].query["start"]) == saved.start  # not from the beginning
    assert report["note"].endswith(f"resumed at {saved.start}")
    assert report["added"] == 420 - stored
    with open_store(settings) as store:
        assert store.count_papers(PaperQuery()) == 420
        runs = store.fetch_runs()
        assert [r.status for r in runs] == ["done", "abandoned"]
        state = store.fetch_state("arxiv", "cs.CL")
        assert state is not None
        assert ArxivCursor.from_json(state.cursor) == ArxivCursor(done_through=dt.date.today())
