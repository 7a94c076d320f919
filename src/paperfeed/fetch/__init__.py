"""Live sources: arXiv (query API, listing feeds, OAI-PMH), Hugging Face daily papers, URLs.

Every source fetches through :class:`~paperfeed.fetch.http.PoliteClient` (per-host
interval, Retry-After, backoff with jitter, timeouts, a User-Agent with a contact), parses
with the same parsers as ``paperfeed ingest`` (:mod:`paperfeed.sources`), stores each page
in one transaction, then saves its cursor in the store, so a fetch killed at any moment
resumes where it stopped and a re-run adds nothing. Each fetch of one source + query is
logged (:mod:`paperfeed.fetch.runs`). Settings: :mod:`paperfeed.fetch.config`; the daily
schedule and the thread ``serve`` runs: :mod:`paperfeed.fetch.schedule`.
"""

from __future__ import annotations

from paperfeed.fetch.config import FetchConfig, ScheduleConfig, load_config
from paperfeed.fetch.http import FetchCancelled, FetchError, PoliteClient
from paperfeed.fetch.runs import FetchReport

__all__ = [
    "FetchCancelled",
    "FetchConfig",
    "FetchError",
    "FetchReport",
    "PoliteClient",
    "ScheduleConfig",
    "load_config",
]
