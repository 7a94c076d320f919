"""Fixtures of the live-source tests: the loopback upstream, its settings, the network guard.

The guard (autouse) refuses any connection or name look-up that is not loopback and fails
the test that tried: no test may reach the internet. Looking up a public name raises
``socket.gaierror``, which is also what a machine without network sees.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paperfeed.fetch.config import FetchConfig
from tests.fetch.recorded import RecordedUpstream, RunningServer, serve

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Records and refuses every attempt to leave the machine."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not _is_loopback(host):
                guard.attempts.append(f"getaddrinfo({host!r})")
                raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test guard: {host}")
            return real_getaddrinfo(host, *args, **kwargs)

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
                guard.attempts.append(f"connect({address!r})")
                raise ConnectionRefusedError(f"blocked by the test guard: {address!r}")

        def connect(sock: socket.socket, address: Any) -> None:
            check(sock, address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            check(sock, address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    if guard.attempts:
        pytest.fail(f"the test tried to reach the network: {guard.attempts}")


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
