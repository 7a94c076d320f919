"""``paperfeed serve`` and ``paperfeed demo`` as real processes serving on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from paperfeed.sample import sample_path
from paperfeed.store.postgres.jobs import JOB_LOCK_CLASS
from tests.pg_server import PgServer
from tests.web.conftest import free_port

PAPERFEED = [sys.executable, "-m", "paperfeed"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


@contextmanager
def running(
    args: list[str], port: int, log: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The command running until it answers on the port; Ctrl-C (SIGINT) when done."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PAPERFEED, *args], stdout=out, stderr=subprocess.STDOUT, env={**_env(), **(env or {})}
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"exited with {proc.returncode} before serving:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer in time")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_demo_ends_serving_the_sample(tmp_path: Path) -> None:
    """README command 1: the demo ends with the site running on localhost."""
    port = free_port()
    data = tmp_path / "pf"
    args = ["demo", "--data-dir", str(data), "--no-embed", "--port", str(port)]
    log = tmp_path / "demo.log"
    with running(args, port, log) as proc:
        home = httpx.get(f"http://127.0.0.1:{port}/")
        assert "Wednesday 1 April 2026" in home.text
        feed = httpx.get(f"http://127.0.0.1:{port}/api/v1/feed").json()
        assert feed["total"] == 44
    out = log.read_text()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
    assert "Latest feed day" in out
    assert (data / "paperfeed.db").exists()


def test_serve_a_store_then_stop(tmp_path: Path) -> None:
    data = tmp_path / "pf"
    subprocess.run(
        [*PAPERFEED, "demo", "--data-dir", str(data), "--no-embed", "--no-serve"],
        check=True,
        capture_output=True,
        env=_env(),
    )
    # A lost keyword index (or one from an older layout) is rebuilt before serving.
    shutil.rmtree(data / "paperfeed.db-keyword")
    port = free_port()
    args = ["serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"]
    with running(args, port, tmp_path / "serve.log") as proc:
        r = httpx.get(f"http://127.0.0.1:{port}/search", params={"q": "diffusion"})
        assert r.status_code == 200
        assert "Keyword search only" in r.text
        found = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/search", params={"q": "diffusion", "mode": "keyword"}
        ).json()
        assert found["total"] > 10
        assert httpx.get(f"http://127.0.0.1:{port}/papers/nope").status_code == 404
        # The port is taken now: a second server says so instead of a traceback.
        second = subprocess.run(
            [*PAPERFEED, "serve", "--data-dir", str(data), "--port", str(port)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert "Traceback" not in second.stderr
    assert proc.returncode == 0
    assert "Stopped." in (tmp_path / "serve.log").read_text()


def test_serve_without_a_store_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PAPERFEED, "serve", "--data-dir", str(tmp_path / "none"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode != 0
    assert "no paperfeed store" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was created.
    assert not (tmp_path / "none").exists()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_serve_workers_on_postgresql(tmp_path: Path, pg_server: PgServer) -> None:
    """Two worker processes answer on one port; the scheduled jobs run in one of them."""
    data = tmp_path / "pf"
    with pg_server.fresh_database() as url:
        env = {"PAPERFEED_DATABASE_URL": url}
        subprocess.run(
            [*PAPERFEED, "ingest", "--data-dir", str(data), "--no-embed", str(sample_path())],
            check=True,
            capture_output=True,
            env={**_env(), **env},
        )
        port = free_port()
        args = [
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--workers",
            "2",
            "--keyword-only",
            "--no-access-log",
        ]
        with running(args, port, tmp_path / "serve.log", env=env) as proc:
            workers = [p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)]
            assert len(workers) == 2, [_cmdline(p) for p in _children(proc.pid)]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(20):
                    feed = client.get("/api/v1/feed")
                    assert feed.status_code == 200
                    assert feed.json()["total"] == 44
                    assert client.get("/search", params={"q": "diffusion"}).status_code == 200
            # Each job's lease is held once, by a session of one of the workers.
            with psycopg.connect(url) as conn:
                deadline = time.monotonic() + 30
                while True:
                    rows = conn.execute(
                        "SELECT l.objid, a.application_name FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.granted",
                        (JOB_LOCK_CLASS,),
                    ).fetchall()
                    if len(rows) >= 3 or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            assert sorted(name for _, name in rows) == [
                "paperfeed job digests",
                "paperfeed job fetch",
                "paperfeed job trainer",
            ]
        assert proc.returncode == 0
        assert "2 workers" in (tmp_path / "serve.log").read_text()


def test_serve_workers_refuses_a_sqlite_store(tmp_path: Path) -> None:
    data = tmp_path / "pf"
    subprocess.run(
        [*PAPERFEED, "init", "--data-dir", str(data)], check=True, capture_output=True, env=_env()
    )
    result = subprocess.run(
        [
            *PAPERFEED,
            "serve",
            "--data-dir",
            str(data),
            "--workers",
            "2",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "--workers above 1 needs a PostgreSQL store" in result.stderr
    assert "Traceback" not in result.stderr
