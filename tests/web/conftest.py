"""A sample instance for the web tests: the bundled sample plus a recorded Hugging Face
daily-papers response, embedded with the deterministic fake encoder, served by the real
app (TestClient in-process, or uvicorn on loopback for real clients and the browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from paperfeed.index import semantic
from paperfeed.ingest import ingest_file
from paperfeed.sample import sample_path
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store, open_store
from paperfeed.web import create_app
from tests.conftest import FIXTURES

HF_DAILY = FIXTURES / "hf-daily" / "daily_papers.json"
LATEST_SAMPLE_DAY = "2026-04-01"


@dataclass
class Instance:
    settings: Settings
    store: Store
    engine: SearchEngine


def build_instance(data_dir: Path) -> Instance:
    settings = Settings.resolve(data_dir)
    store = open_store(settings)
    ingest_file(store, sample_path())
    ingest_file(store, HF_DAILY)
    semantic.activate(store, "fake")
    semantic.build(settings, store)
    return Instance(settings, store, semantic.open_engine(settings, store))


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    inst = build_instance(tmp_path_factory.mktemp("web") / "data")
    try:
        yield inst
    finally:
        inst.store.close()


@pytest.fixture(scope="module")
def app(instance: Instance) -> FastAPI:
    return create_app(instance.settings, instance.store, instance.engine)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show as the 500 page a user would get.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving an app on loopback, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def live(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
