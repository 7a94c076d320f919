"""When digests go out: the ``[digest]`` table of ``paperfeed.toml`` and the scheduler that
``paperfeed serve`` runs (or a cron line calling ``paperfeed digest send``).

Settings (all optional)::

    [digest]
    time = "07:00"            # local time of day after which the daily digest goes out
    weekly_day = "monday"     # the weekly digest (of the previous ISO week) goes out then
    base_url = "https://papers.example.org"   # where links in the mails point
    site_name = "paperfeed"
    unsubscribe_mailto = ""   # an address that also accepts unsubscribe requests

``PAPERFEED_BASE_URL`` overrides ``base_url``. The scheduler wakes every few minutes past
the send time and runs the day's digests; the digest ledger makes every extra run a no-op
for what was sent, and a retry for what failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass

from paperfeed.digest.links import DEFAULT_BASE_URL
from paperfeed.digest.runner import DigestReport
from paperfeed.errors import PaperfeedError
from paperfeed.fetch.config import config_path
from paperfeed.settings import Settings

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CHECK_EVERY_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class DigestConfig:
    time: dt.time = dt.time(7, 0)
    weekly_day: int = 0  # Monday
    base_url: str = DEFAULT_BASE_URL
    site_name: str = "paperfeed"
    unsubscribe_mailto: str | None = None


def load_digest_config(settings: Settings) -> DigestConfig:
    path = config_path(settings)
    table: dict[str, object] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PaperfeedError(f"{path}: cannot read the settings file: {exc}") from None
        raw = data.get("digest", {})
        if not isinstance(raw, dict):
            raise PaperfeedError(f"{path}: [digest] must be a table")
        table = raw
    known = {"time", "weekly_day", "base_url", "site_name", "unsubscribe_mailto"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise PaperfeedError(
            f"{path} [digest]: unknown setting {unknown[0]!r}; "
            f"valid ones: {', '.join(sorted(known))}"
        )
    time_text = str(table.get("time", "07:00"))
    try:
        send_time = dt.time.fromisoformat(time_text)
    except ValueError:
        raise PaperfeedError(f"{path} [digest] time: {time_text!r} is not HH:MM") from None
    day_text = str(table.get("weekly_day", "monday")).strip().lower()
    if day_text not in WEEKDAYS:
        raise PaperfeedError(
            f"{path} [digest] weekly_day: {day_text!r} is not one of {', '.join(WEEKDAYS)}"
        )
    base_url = os.environ.get("PAPERFEED_BASE_URL") or str(table.get("base_url", DEFAULT_BASE_URL))
    if not base_url.startswith(("http://", "https://")):
        raise PaperfeedError(f"the base URL {base_url!r} must start with http:// or https://")
    mailto = str(table.get("unsubscribe_mailto", "")).strip() or None
    return DigestConfig(
        time=send_time,
        weekly_day=WEEKDAYS.index(day_text),
        base_url=base_url,
        site_name=str(table.get("site_name", "paperfeed")),
        unsubscribe_mailto=mailto,
    )


def last_complete_week_day(today: dt.date) -> dt.date:
    """A day of the last complete ISO week before ``today``'s week (its Sunday)."""
    return today - dt.timedelta(days=today.weekday() + 1)


@dataclass(frozen=True, slots=True)
class DueRun:
    frequency: str
    day: dt.date


def due_runs(
    config: DigestConfig, now: dt.datetime, latest_feed_day: dt.date | None
) -> list[DueRun]:
    """What the scheduler should run at local time ``now``."""
    if now.time() < config.time:
        return []
    today = now.date()
    runs = []
    # A daily digest is for a fresh feed day only: never mail a stale day to a new
    # subscriber because no source ran for a while.
    if latest_feed_day is not None and latest_feed_day >= today - dt.timedelta(days=1):
        runs.append(DueRun("daily", latest_feed_day))
    if today.weekday() == config.weekly_day:
        runs.append(DueRun("weekly", last_complete_week_day(today)))
    return runs


class DigestScheduler:
    """A thread that runs the due digests every few minutes; start() / stop()."""

    def __init__(
        self,
        config: DigestConfig,
        run: Callable[[DueRun], DigestReport],
        latest_feed_day: Callable[[], dt.date | None],
        *,
        every: float = CHECK_EVERY_SECONDS,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.config = config
        self._run = run
        self._latest = latest_feed_day
        self.every = every
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[DigestReport]:
        reports = []
        for due in due_runs(self.config, self.clock(), self._latest()):
            try:
                report = self._run(due)
            except PaperfeedError as exc:
                log.error("%s digest for %s not sent: %s", due.frequency, due.day, exc)
                continue
            reports.append(report)
            sent = report.count("sent")
            if sent or report.failed:
                log.info(
                    "%s digest for %s: %d sent, %d failed",
                    due.frequency,
                    due.day,
                    sent,
                    report.failed,
                )
        return reports

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bug in one tick must not end the server's digests
                log.exception("digest scheduler tick failed")
            self._stop.wait(self.every)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="paperfeed-digests", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
