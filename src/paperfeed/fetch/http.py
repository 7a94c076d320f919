"""The polite HTTP client every live source goes through.

Politeness, as arXiv documents it and Hugging Face appreciates it:

- at most one request at a time, and at least ``min_interval`` seconds between the end of
  one response and the next request to the same host;
- a descriptive User-Agent with a contact address (``contact`` setting);
- ``429`` / ``503`` (throttling) are obeyed: ``Retry-After`` is honoured when given, else
  an exponential backoff, and the host's interval doubles (up to ``max_interval``) so a
  storm of 429s slows the client down instead of failing it; it recovers by 10 % per
  successful request. Throttling waits do not use up retries; they are bounded by the
  total ``max_throttle_wait`` of the client;
- server errors (500, 502, 504), timeouts, dropped connections and truncated bodies are
  retried ``max_retries`` times with exponential backoff and jitter
  (:func:`backoff_delay`);
- other 4xx answers and unknown hosts fail at once, with one clear line.

Time goes through a :class:`Clock` so that tests can check the schedule of delays
without sleeping, and a scheduler can interrupt a long wait (:class:`SystemClock` with a
stop event).
"""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from paperfeed import __version__
from paperfeed.errors import PaperfeedError
from paperfeed.fetch.config import FetchConfig

log = logging.getLogger("paperfeed.fetch")

THROTTLE_STATUSES = frozenset({429, 503})
RETRY_STATUSES = frozenset({500, 502, 504})
MAX_THROTTLE_ANSWERS = 200  # a hard stop even if the server says Retry-After: 0 forever
RECOVERY = 0.9  # the host interval shrinks by this factor per success, down to the minimum


class FetchError(PaperfeedError):
    """A live source could not be fetched (network, HTTP status, refusal)."""


class FetchCancelled(FetchError):
    """The fetch was stopped from outside (scheduler stop) during a wait."""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time; ``sleep`` returns early with FetchCancelled once ``stop`` is set."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._stop = stop

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._stop is None:
            time.sleep(seconds)
        elif self._stop.wait(seconds):
            raise FetchCancelled("stopped while waiting")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    url: str  # the final URL, after redirects
    status: int
    content: bytes
    content_type: str


@dataclass(slots=True)
class ClientStats:
    requests: int = 0  # requests sent, retries included
    retries: int = 0  # requests repeated after an error or a throttling answer
    throttled: int = 0  # 429 / 503 answers
    waited: float = 0.0  # seconds slept (politeness, backoff, Retry-After)


@dataclass(slots=True)
class _Host:
    interval: float
    ready_at: float = 0.0  # monotonic time of the earliest next request
    throttle_wait: float = 0.0


def user_agent(contact: str) -> str:
    who = f"mailto:{contact}" if contact else "contact not configured"
    return f"paperfeed/{__version__} (self-hosted research-paper feed; {who})"


def backoff_delay(attempt: int, config: FetchConfig, rng: random.Random) -> float:
    """The wait before retry number ``attempt`` (0-based): exponential, with equal jitter.

    The un-jittered delay is ``backoff_base * 2**attempt`` capped at ``backoff_max``; the
    wait is uniform between half of it and all of it, so clients that failed together do
    not all come back at the same moment.
    """
    full = min(config.backoff_max, config.backoff_base * float(2**attempt))
    return full / 2 + rng.uniform(0, full / 2)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, float(when.timestamp()) - current)


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def _resolution_failed(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        text = str(current)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return True
        if "Temporary failure in name resolution" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class PoliteClient:
    """GET with politeness, retries and backoff (see the module docstring).

    Use as a context manager, or call :meth:`close`. One instance serves every host of a
    run, so the per-host intervals hold across sources.
    """

    config: FetchConfig
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    transport: httpx.BaseTransport | None = None
    stats: ClientStats = field(default_factory=ClientStats)
    _hosts: dict[str, _Host] = field(default_factory=dict)
    _client: httpx.Client | None = None

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.config.timeout),
                headers={"User-Agent": user_agent(self.config.contact)},
                follow_redirects=True,
                transport=self.transport,
            )
        return self._client

    def host_interval(self, host: str) -> float:
        state = self._hosts.get(host)
        return self.config.min_interval if state is None else state.interval

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(interval=self.config.min_interval)
        return state

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited += seconds
            self.clock.sleep(seconds)

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        accept: str | None = None,
    ) -> HttpResponse:
        """GET ``url``; returns a 2xx response or raises FetchError with one clear line."""
        host = host_of(url)
        state = self._host(host)
        headers = {"Accept": accept} if accept else None
        failures = 0
        throttles = 0
        while True:
            self._wait(state.ready_at - self.clock.monotonic())
            self.stats.requests += 1
            problem: str
            try:
                response = self._http().get(url, params=params, headers=headers)
                content = response.content
            except httpx.TimeoutException:
                problem = f"timed out after {self.config.timeout:g} s"
            except httpx.TransportError as exc:
                if _resolution_failed(exc):
                    raise FetchError(
                        f"cannot resolve host {host!r} (no network, or a wrong URL?)"
                    ) from None
                problem = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    state.interval = max(self.config.min_interval, state.interval * RECOVERY)
                    state.ready_at = self.clock.monotonic() + state.interval
                    return HttpResponse(
                        url=str(response.url),
                        status=status,
                        content=content,
                        content_type=response.headers.get("content-type", ""),
                    )
                if status in THROTTLE_STATUSES:
                    throttles += 1
                    self.stats.throttled += 1
                    wait = self._throttled(state, host, status, response, throttles)
                    self.stats.retries += 1
                    state.ready_at = self.clock.monotonic()
                    self._wait(wait)
                    continue
                if status not in RETRY_STATUSES:
                    raise FetchError(
                        f"HTTP {status} from {host} for {response.url}: {_excerpt(content)}"
                    )
                problem = f"HTTP {status}"
            if failures >= self.config.max_retries:
                raise FetchError(
                    f"{host}: {problem}; gave up after {failures + 1} attempts ({url})"
                )
            delay = backoff_delay(failures, self.config, self.rng)
            failures += 1
            self.stats.retries += 1
            log.warning("%s: %s; retry %d in %.1f s", host, problem, failures, delay)
            state.ready_at = self.clock.monotonic()
            self._wait(max(delay, state.interval))

    def _throttled(
        self,
        state: _Host,
        host: str,
        status: int,
        response: httpx.Response,
        throttles: int,
    ) -> float:
        """How long to wait after a 429 / 503; slows the host down; raises past the budget."""
        state.interval = min(self.config.max_interval, max(state.interval, 0.05) * 2)
        asked = retry_after_seconds(response.headers.get("retry-after"))
        if asked is None:
            asked = backoff_delay(min(throttles - 1, 16), self.config, self.rng)
        wait = max(asked, state.interval)
        state.throttle_wait += wait
        if state.throttle_wait > self.config.max_throttle_wait or throttles > MAX_THROTTLE_ANSWERS:
            raise FetchError(
                f"{host} keeps throttling (HTTP {status}); waited {state.throttle_wait:.0f} s "
                f"in all, more than max_throttle_wait; try again later"
            )
        log.warning(
            "%s: HTTP %d, waiting %.1f s (interval now %.1f s)", host, status, wait, state.interval
        )
        return wait


def _excerpt(content: bytes) -> str:
    text = content[:300].decode("utf-8", errors="replace")
    return " ".join(text.split())[:200] or "(empty body)"
