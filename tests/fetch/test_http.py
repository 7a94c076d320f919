"""The polite client against the loopback server: intervals, throttling, retries, errors."""

from __future__ import annotations

import dataclasses
import email.utils
import itertools
import random
import socket
import time

import pytest

from paperfeed import __version__
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import (
    FetchError,
    PoliteClient,
    SystemClock,
    backoff_delay,
    retry_after_seconds,
    user_agent,
)
from tests.fetch.recorded import Fault, RecordedUpstream, RunningServer
from tests.network_guard import NetworkGuard


class FakeClock:
    """Time that passes only when the client sleeps: the delays are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_backoff_delays_double_with_jitter_and_a_cap() -> None:
    config = FetchConfig(backoff_base=3.0, backoff_max=60.0)
    rng = random.Random(7)
    delays = [backoff_delay(n, config, rng) for n in range(8)]
    for n, delay in enumerate(delays):
        full = min(60.0, 3.0 * 2**n)
        assert full / 2 <= delay <= full, (n, delay)
    assert all(30.0 <= d <= 60.0 for d in delays[5:])  # capped at backoff_max
    # Jitter: the same attempt gives different waits for different clients.
    other = [backoff_delay(3, config, random.Random(seed)) for seed in range(20)]
    assert len({round(d, 6) for d in other}) > 10


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = time.time()
    later = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds(later, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds(past, now=now) == 0.0


def test_user_agent_names_paperfeed_and_the_contact(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"hello", "text/plain")
    with PoliteClient(config) as client:
        assert client.get(f"{server.url}/x.txt").content == b"hello"
    agent = upstream.seen[0].user_agent
    assert agent == user_agent("tests@example.org")
    assert f"paperfeed/{__version__}" in agent
    assert "mailto:tests@example.org" in agent


def test_one_request_per_interval_per_host(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"x", "text/plain")
    clock = FakeClock()
    polite = dataclasses.replace(config, min_interval=3.0)
    with PoliteClient(polite, clock=clock) as client:
        for _ in range(4):
            client.get(f"{server.url}/x.txt")
    # The first request goes at once; each later one waits out the 3 s interval.
    assert len(clock.sleeps) == 3
    assert all(s == pytest.approx(3.0) for s in clock.sleeps)


def test_the_interval_holds_in_real_time(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"x", "text/plain")
    with PoliteClient(dataclasses.replace(config, min_interval=0.15)) as client:
        for _ in range(3):
            client.get(f"{server.url}/x.txt")
    times = [s.at for s in upstream.seen]
    assert all(b - a >= 0.14 for a, b in itertools.pairwise(times)), times


def test_a_429_storm_slows_the_client_down_instead_of_failing_it(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"finally", "text/plain")
    upstream.faults.append(Fault("/x.txt", "status", times=6, status=429, retry_after="2"))
    clock = FakeClock()
    polite = dataclasses.replace(
        config, min_interval=1.0, max_interval=20.0, max_throttle_wait=1000.0
    )
    with PoliteClient(polite, clock=clock) as client:
        assert client.get(f"{server.url}/x.txt").content == b"finally"
        # The host's interval doubled with each 429, up to the maximum...
        assert client.host_interval(client_host(server)) == pytest.approx(20.0 * 0.9)
        assert client.stats.throttled == 6
        assert client.stats.retries == 6
        assert client.stats.requests == 7
    # ...and the waits follow it once it exceeds Retry-After: 2 s.
    assert clock.sleeps == pytest.approx([2.0, 4.0, 8.0, 16.0, 20.0, 20.0])


def client_host(server: RunningServer) -> str:
    return server.url.split("://", 1)[1]


def test_throttling_without_retry_after_backs_off_exponentially(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"ok", "text/plain")
    upstream.faults.append(Fault("/x.txt", "status", times=4, status=503))
    clock = FakeClock()
    polite = dataclasses.replace(
        config, min_interval=0.0, backoff_base=10.0, backoff_max=1000.0, max_throttle_wait=1e4
    )
    with PoliteClient(polite, clock=clock, rng=random.Random(1)) as client:
        client.get(f"{server.url}/x.txt")
    assert len(clock.sleeps) == 4
    for n, wait in enumerate(clock.sleeps):
        assert 10.0 * 2**n / 2 <= wait <= 10.0 * 2**n


def test_throttling_past_the_budget_fails_with_a_clear_message(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.faults.append(Fault("/x.txt", "status", times=100, status=429, retry_after="600"))
    clock = FakeClock()
    with (
        PoliteClient(dataclasses.replace(config, max_throttle_wait=1000.0), clock=clock) as client,
        pytest.raises(FetchError, match="keeps throttling"),
    ):
        client.get(f"{server.url}/x.txt")
    assert len(upstream.seen) == 2  # 600 s, then 1200 s would pass the 1000 s budget


def test_server_errors_are_retried_then_reported(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"ok", "text/plain")
    upstream.faults.append(Fault("/x.txt", "status", times=2, status=500))
    with PoliteClient(config) as client:
        assert client.get(f"{server.url}/x.txt").content == b"ok"
        assert client.stats.retries == 2
    upstream.seen.clear()
    upstream.faults.append(Fault("/x.txt", "status", times=99, status=502))
    with PoliteClient(config) as client, pytest.raises(FetchError) as failure:
        client.get(f"{server.url}/x.txt")
    assert "HTTP 502" in str(failure.value)
    assert "gave up after 4 attempts" in str(failure.value)
    assert client_host(server) in str(failure.value)
    assert len(upstream.seen) == config.max_retries + 1


def test_client_errors_fail_at_once(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    with PoliteClient(config) as client, pytest.raises(FetchError, match="HTTP 404"):
        client.get(f"{server.url}/missing")
    assert len(upstream.seen) == 1


def test_truncated_bodies_are_asked_again(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    body = b"x" * 50_000
    upstream.files["/big.bin"] = (body, "application/octet-stream")
    upstream.faults.append(Fault("/big.bin", "truncate", times=2))
    with PoliteClient(config) as client:
        assert client.get(f"{server.url}/big.bin").content == body
        assert client.stats.retries == 2
    assert [s.answer for s in upstream.seen] == ["truncate", "truncate", "200"]


def test_slow_answers_time_out_and_are_asked_again(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.files["/x.txt"] = (b"ok", "text/plain")
    upstream.faults.append(Fault("/x.txt", "slow", delay=1.0))
    with PoliteClient(dataclasses.replace(config, timeout=0.3)) as client:
        assert client.get(f"{server.url}/x.txt").content == b"ok"
        assert client.stats.retries == 1


def test_no_network_is_one_clear_line_naming_the_host(
    config: FetchConfig, network_guard: NetworkGuard
) -> None:
    with PoliteClient(config) as client, pytest.raises(FetchError) as failure:
        client.get("https://export.arxiv.org/api/query", {"search_query": "cat:cs.CL"})
    assert str(failure.value) == (
        "cannot resolve host 'export.arxiv.org' (no network, or a wrong URL?)"
    )
    assert client.stats.requests == 1  # no retries: a name that does not resolve stays so
    assert network_guard.attempts == ["getaddrinfo('export.arxiv.org')"]
    network_guard.attempts.clear()


def test_a_stopped_clock_interrupts_a_wait(
    server: RunningServer, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    import threading

    from paperfeed.fetch.http import FetchCancelled

    stop = threading.Event()
    upstream.faults.append(Fault("/x.txt", "status", times=5, status=429, retry_after="30"))
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    with (
        PoliteClient(config, clock=SystemClock(stop)) as client,
        pytest.raises(FetchCancelled),
    ):
        client.get(f"{server.url}/x.txt")
    assert time.monotonic() - started < 10
    timer.cancel()


def test_the_guard_refuses_public_addresses(network_guard: NetworkGuard) -> None:
    with pytest.raises(OSError, match="blocked by the test guard"):
        socket.create_connection(("198.51.100.7", 80), timeout=1)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("huggingface.co", 443)
    assert len(network_guard.attempts) == 2
    network_guard.attempts.clear()
