"""The daily scheduled fetch: by cron (``paperfeed fetch --scheduled``) or inside ``serve``.

What runs is the ``[fetch.schedule]`` table of the settings (:class:`ScheduleConfig`):
which sources (``arxiv``, ``arxiv-rss``, ``oai``, ``hf-daily``), which categories and
OAI-PMH sets, at what local time, and whether to embed afterwards. Each source and query
is one logged run (``paperfeed sources``); one failing never stops the others. Every
source resumes from its cursor, so a run that was killed, or a day that was missed,
is caught up by the next run.

For ``serve``, :class:`FetchScheduler` runs the schedule in a background thread::

    scheduler = FetchScheduler(settings, store)
    scheduler.start()      # returns at once; checks every poll_seconds whether a run is due
    ...
    scheduler.stop()       # interrupts a wait between requests and joins the thread

A run is due once the configured time of day has passed and no scheduled run (from the
thread or from cron) started yet that day, so a server started after the time catches
up at once, and cron and serve never both run the same day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from paperfeed.errors import PaperfeedError
from paperfeed.fetch import arxiv_api, hf_daily, oai
from paperfeed.fetch.config import FetchConfig, ScheduleConfig, load_config
from paperfeed.fetch.http import Clock, FetchCancelled, FetchError, PoliteClient, SystemClock
from paperfeed.fetch.pipeline import embed_new
from paperfeed.fetch.runs import FetchReport, ProgressCallback
from paperfeed.settings import Settings
from paperfeed.store import Store

log = logging.getLogger("paperfeed.fetch")

STATE_SOURCE = "schedule"
STATE_KEY = "daily"

__all__ = [
    "FetchScheduler",
    "ScheduleConfig",
    "ScheduledRun",
    "last_scheduled_run",
    "run_scheduled",
]


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """What one scheduled run did: a report per source + query, and the embedding."""

    started_at: dt.datetime
    reports: list[FetchReport] = field(default_factory=list)
    embedded: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def to_json(self) -> dict[str, object]:
        return {
            "started_at": self.started_at.isoformat(),
            "ok": self.ok,
            "runs": [r.to_json() for r in self.reports],
            "embedded": self.embedded,
        }


def last_scheduled_run(store: Store) -> dt.date | None:
    state = store.fetch_state(STATE_SOURCE, STATE_KEY)
    if state is None:
        return None
    try:
        return dt.date.fromisoformat(json.loads(state.cursor)["day"])
    except (ValueError, TypeError, KeyError):
        return None


def run_scheduled(
    settings: Settings,
    store: Store,
    *,
    config: FetchConfig | None = None,
    clock: Clock | None = None,
    now: dt.datetime | None = None,
    embed: bool | None = None,
    progress: Callable[[str], ProgressCallback | None] | None = None,
) -> ScheduledRun:
    """Run every source of the schedule once (whatever the time of day; cron decides).

    ``progress(label)`` may return a callback for that source + query's pages. Raises
    FetchError when no schedule is configured; FetchCancelled when ``clock`` is stopped.
    """
    config = config or load_config(settings)
    schedule = config.schedule
    if not schedule.sources:
        raise FetchError(
            "no schedule: set sources in the [fetch.schedule] table of paperfeed.toml "
            "(see docs/fetch.md)"
        )
    started = now or dt.datetime.now().astimezone()
    today = started.date()
    store.save_fetch_state(
        STATE_SOURCE,
        STATE_KEY,
        json.dumps(
            {"day": today.isoformat(), "started_at": started.isoformat(), "status": "running"}
        ),
    )
    reports: list[FetchReport] = []

    def bar(label: str) -> ProgressCallback | None:
        return progress(label) if progress is not None else None

    with PoliteClient(config, clock=clock or SystemClock()) as client:
        for source in schedule.sources:
            if source == "arxiv":
                for cat in schedule.categories:
                    reports.append(
                        arxiv_api.fetch_category(
                            store, client, config, cat, today=today, progress=bar(f"arxiv {cat}")
                        )
                    )
            elif source == "arxiv-rss":
                for cat in schedule.categories:
                    reports.append(
                        arxiv_api.fetch_listing(
                            store, client, config, cat, progress=bar(f"arxiv-rss {cat}")
                        )
                    )
            elif source == "oai":
                for set_spec in schedule.oai_sets or (None,):
                    reports.append(
                        oai.harvest(
                            store,
                            client,
                            config,
                            set_spec=set_spec,
                            metadata=schedule.oai_metadata,
                            progress=bar(f"oai {set_spec or '*'}"),
                        )
                    )
            elif source == "hf-daily":
                reports.extend(
                    hf_daily.fetch_recent(
                        store, client, config, today=today, progress=bar("hf-daily")
                    )
                )
    store.refresh_keyword_index()
    embedded = 0
    if schedule.embed if embed is None else embed:
        embedded = embed_new(settings, store)
    result = ScheduledRun(started_at=started, reports=reports, embedded=embedded)
    store.save_fetch_state(
        STATE_SOURCE,
        STATE_KEY,
        json.dumps(
            {
                "day": today.isoformat(),
                "started_at": started.isoformat(),
                "status": "done" if result.ok else "failed",
                "runs": len(reports),
                "failed": sum(1 for r in reports if not r.ok),
                "embedded": embedded,
            }
        ),
    )
    return result


def next_run_time(
    schedule: ScheduleConfig, last_day: dt.date | None, now: dt.datetime
) -> dt.datetime:
    """When the next scheduled run is due (``now`` if it is due already)."""
    today_at = dt.datetime.combine(now.date(), schedule.time, tzinfo=now.tzinfo)
    if last_day != now.date():
        return now if now >= today_at else today_at
    return today_at + dt.timedelta(days=1)


class FetchScheduler:
    """The daily schedule in a background thread (see the module docstring).

    ``config`` fixes the settings; without it they are read again before each check, so
    an edited paperfeed.toml takes effect without a restart. ``now`` returns the local
    time (tests pass a fake one). The thread is a daemon, but call :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        config: FetchConfig | None = None,
        poll_seconds: float = 30.0,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._fixed_config = config
        self._poll = poll_seconds
        self._now = now or (lambda: dt.datetime.now().astimezone())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_result: ScheduledRun | None = None
        self.last_error: str | None = None
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def config(self) -> FetchConfig:
        return self._fixed_config or load_config(self._settings)

    def next_run(self) -> dt.datetime | None:
        """When the next run is due, or None when no schedule is configured."""
        schedule = self.config().schedule
        if not schedule.active:
            return None
        return next_run_time(schedule, last_scheduled_run(self._store), self._now())

    def due(self) -> bool:
        when = self.next_run()
        return when is not None and when <= self._now()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="paperfeed-fetch-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.due():
                    self._run()
            except FetchCancelled:
                break
            except PaperfeedError as exc:  # a bad settings file: say so, try again later
                self.last_error = str(exc)
                log.error("scheduled fetch: %s", exc)
            except Exception as exc:  # never let a bug kill the server's thread silently
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduled fetch failed")
            self._stop.wait(self._poll)

    def _run(self) -> None:
        self.runs += 1
        result = run_scheduled(
            self._settings,
            self._store,
            config=self.config(),
            clock=SystemClock(self._stop),
            now=self._now(),
        )
        self.last_result = result
        failed = [r for r in result.reports if not r.ok]
        self.last_error = "; ".join(f"{r.run.query}: {r.run.error}" for r in failed) or None
        log.info(
            "scheduled fetch: %d runs, %d failed, %d embedded",
            len(result.reports),
            len(failed),
            result.embedded,
        )
