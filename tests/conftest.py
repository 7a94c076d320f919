"""Shared fixtures: every test gets its own data directory, never the user's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paperfeed.settings import Settings
from paperfeed.store import Store, open_store

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HF_PAGES = SHARED_DATA / "hf-pages"
SCIFACT = SHARED_DATA / "beir" / "scifact"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERFEED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings)
    try:
        yield s
    finally:
        s.close()


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path
