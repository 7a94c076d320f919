"""The run log of the live sources: one row per fetch of one source + query.

A :class:`RunLog` is opened when a fetch starts, told about every stored page (so a run
killed midway still shows what it did), and closed with its status: ``done``, ``failed``
(with the error), or ``interrupted`` (Ctrl-C, scheduler stop). A run killed with
``kill -9`` stays ``running`` until the next run of the same query marks it ``abandoned``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from paperfeed.errors import PaperfeedError
from paperfeed.fetch.http import ClientStats, FetchCancelled, PoliteClient
from paperfeed.store import BatchResult, Store
from paperfeed.store.base import FetchRun


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one fetch of one source + query did, for the CLI and the scheduler."""

    run: FetchRun
    note: str = ""  # what was asked and where it started, e.g. a date window, a resume point

    @property
    def ok(self) -> bool:
        return self.run.status == "done"

    def to_json(self) -> dict[str, object]:
        r = self.run
        return {
            "source": r.source,
            "query": r.query,
            "status": r.status,
            "note": self.note,
            "pages": r.pages,
            "requests": r.requests,
            "retries": r.retries,
            "added": r.added,
            "merged": r.merged,
            "unchanged": r.unchanged,
            "quarantined": r.quarantined,
            "appearances": r.appearances,
            "error": r.error,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        }


class RunLog:
    """Keeps one fetch_runs row up to date while a fetch goes on."""

    def __init__(self, store: Store, client: PoliteClient, source: str, query: str) -> None:
        self._store = store
        self._stats = client.stats
        self._base = dataclasses.replace(client.stats)
        self.run = store.start_fetch_run(source, query)
        self.note = ""

    def _with_requests(self, run: FetchRun) -> FetchRun:
        now: ClientStats = self._stats
        return dataclasses.replace(
            run,
            requests=now.requests - self._base.requests,
            retries=now.retries - self._base.retries,
        )

    def page(self, result: BatchResult) -> None:
        r = self.run
        self.run = self._with_requests(
            dataclasses.replace(
                r,
                pages=r.pages + 1,
                added=r.added + result.added,
                merged=r.merged + result.merged,
                unchanged=r.unchanged + result.unchanged,
                quarantined=r.quarantined + result.quarantined,
                appearances=r.appearances + result.appearances,
            )
        )
        self._store.update_fetch_run(self.run)

    def finish(self, status: str, error: str | None = None) -> FetchReport:
        self.run = self._with_requests(
            dataclasses.replace(
                self.run, status=status, error=error, finished_at=dt.datetime.now(dt.UTC)
            )
        )
        self._store.update_fetch_run(self.run)
        return FetchReport(self.run, self.note)


ProgressCallback = Callable[[int, int | None], None]
"""Called with (records done, records expected or None) after each stored page."""


def run_logged(
    store: Store, client: PoliteClient, source: str, query: str, body: Callable[[RunLog], None]
) -> FetchReport:
    """Run one fetch under a run log; a PaperfeedError gives a ``failed`` report.

    Ctrl-C and a scheduler stop are logged as ``interrupted`` and let through; anything
    else is a bug: logged as ``failed`` and re-raised.
    """
    run_log = RunLog(store, client, source, query)
    try:
        body(run_log)
    except (KeyboardInterrupt, FetchCancelled) as exc:
        run_log.finish("interrupted", str(exc) or "interrupted")
        raise
    except PaperfeedError as exc:
        return run_log.finish("failed", str(exc))
    except Exception as exc:
        run_log.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    return run_log.finish("done")
