"""Shared fixtures: every test gets its own data directory, never the user's."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from paperfeed.settings import DATABASE_URL_ENV, Settings
from paperfeed.store import Store, open_store
from tests.network_guard import NetworkGuard
from tests.pg_server import PgServer, ServerUnavailable, running_server

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HF_PAGES = SHARED_DATA / "hf-pages"
SCIFACT = SHARED_DATA / "beir" / "scifact"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERFEED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    # The tests choose their backend themselves (see store_settings).
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(tmp_path / "data")


@pytest.fixture
def store(store_settings: Settings) -> Iterator[Store]:
    """A new store of each backend in turn (SQLite, then PostgreSQL: see store_settings)."""
    s = open_store(store_settings)
    try:
        yield s
    finally:
        s.close()


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def scifact_embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding BEIR SciFact ingested and embedded by the default model,
    made once per session (embedding it takes minutes): copy it with ``scifact_work``."""
    pytest.importorskip("sentence_transformers")
    from paperfeed.evaluation.beir import ingest_corpus, load_dataset
    from paperfeed.index import semantic

    work = Settings.resolve(tmp_path_factory.mktemp("scifact") / "data")
    with open_store(work) as store:
        ingest_corpus(store, load_dataset(need_shared(SCIFACT)).corpus)
        semantic.build(work, store)
    return work.data_dir


@pytest.fixture
def scifact_work(scifact_embedded: Path, tmp_path: Path) -> Path:
    """A private copy of ``scifact_embedded``: an evaluation work directory to reuse."""
    target = tmp_path / "scifact-work"
    shutil.copytree(scifact_embedded, target)
    return target


# --- both backends ---------------------------------------------------------------------------
# A test taking `store_settings` (or a store made from it) runs once per backend: SQLite in a
# temp directory, and PostgreSQL in a fresh database of a real server (tests/pg_server.py).
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server with pgvector for the whole session (ours, or the one named by
    PAPERFEED_TEST_DATABASE_URL); the PostgreSQL tests are skipped, saying why, only when
    none can be had."""
    try:
        with running_server() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the postgres backend tests: {exc}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_settings(
    backend: str, settings: Settings, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """``settings`` pointing at a new, empty store of the backend under test."""
    if backend == "sqlite":
        yield settings
        return
    server: PgServer = request.getfixturevalue("pg_server")
    with server.fresh_database() as url:
        yield dataclasses.replace(settings, database_url=url)


@pytest.fixture
def sqlite_store(settings: Settings) -> Iterator[Store]:
    """A SQLite store, for tests of what only the SQLite backend has (files, WAL, PRAGMAs)."""
    s = open_store(settings)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Autouse: every test runs with the internet out of reach."""
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    if guard.attempts:
        pytest.fail(f"the test tried to reach the network: {guard.attempts}")
