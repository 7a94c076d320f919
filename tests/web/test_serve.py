"""``paperfeed serve`` and ``paperfeed demo`` as real processes serving on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import free_port

PAPERFEED = [sys.executable, "-m", "paperfeed"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


@contextmanager
def running(
    args: list[str], port: int, log: Path, timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """The command running until it answers on the port; Ctrl-C (SIGINT) when done."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PAPERFEED, *args], stdout=out, stderr=subprocess.STDOUT, env=_env()
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
    port = free_port()
    args = ["serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"]
    with running(args, port, tmp_path / "serve.log") as proc:
        r = httpx.get(f"http://127.0.0.1:{port}/search", params={"q": "diffusion"})
        assert r.status_code == 200
        assert "Keyword search only" in r.text
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
