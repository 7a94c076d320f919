"""Fixtures of the live-source tests: the loopback upstream and its settings.

The network guard that refuses anything but loopback is autouse for the whole suite
(tests/network_guard.py, tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paperfeed.fetch.config import FetchConfig
from tests.fetch.recorded import RecordedUpstream, RunningServer, serve


@pytest.fixture
def upstream() -> RecordedUpstream:
    return RecordedUpstream()


@pytest.fixture
def server(upstream: RecordedUpstream) -> Iterator[RunningServer]:
    running = serve(upstream)
    try:
        yield running
    finally:
        running.stop()


def fast_config(url: str, **overrides: Any) -> FetchConfig:
    """The real settings shape pointed at the loopback server, with delays in milliseconds."""
    base = FetchConfig(
        contact="tests@example.org",
        min_interval=0.005,
        max_interval=0.2,
        timeout=2.0,
        max_retries=3,
        backoff_base=0.005,
        backoff_max=0.05,
        max_throttle_wait=30.0,
        arxiv_api_url=f"{url}/api/query",
        arxiv_rss_url=f"{url}/rss",
        oai_url=f"{url}/oai2",
        hf_daily_url=f"{url}/api/daily_papers",
        arxiv_page_size=25,
        hf_page_size=100,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def config(server: RunningServer) -> FetchConfig:
    return fast_config(server.url)


def settings_toml(url: str, extra: str = "") -> str:
    """A paperfeed.toml pointing at the loopback server (for CLI and subprocess tests)."""
    return f"""
[fetch]
contact = "tests@example.org"
min_interval = 0.005
max_interval = 0.2
timeout = 2.0
max_retries = 3
backoff_base = 0.005
backoff_max = 0.05
arxiv_api_url = "{url}/api/query"
arxiv_rss_url = "{url}/rss"
oai_url = "{url}/oai2"
hf_daily_url = "{url}/api/daily_papers"
arxiv_page_size = 25
{extra}
"""


def write_settings(data_dir: Path, url: str, extra: str = "") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "paperfeed.toml").write_text(settings_toml(url, extra), encoding="utf-8")
