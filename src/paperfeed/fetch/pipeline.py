"""Fetched pages go where ingested files go: parsers -> merge -> store, quarantine.

Each page is stored in one transaction (:meth:`Store.write_batch`) before the source's
cursor moves past it, so a fetch killed at any moment re-fetches at most one page, and
the merge makes that re-fetch change nothing. After a fetch, the keyword index is
refreshed and, when the ``semantic`` extra is installed, new papers are embedded, exactly
as after ``paperfeed ingest``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable

from paperfeed.settings import Settings
from paperfeed.sources.base import Item, Parsed
from paperfeed.store import BatchResult, IncomingRecord, IncomingRejection, Store

log = logging.getLogger("paperfeed.fetch")


def store_items(
    store: Store, items: Iterable[Item], *, source: str, listing: str, origin: str
) -> BatchResult:
    """Merge one page of parsed items; rejected ones are quarantined under ``listing``."""
    records: list[IncomingRecord] = []
    rejections: list[IncomingRejection] = []
    for item in items:
        if isinstance(item, Parsed):
            records.append(IncomingRecord(item.paper, item.entry))
        else:
            rejections.append(
                IncomingRejection(
                    source=source,
                    listing=listing,
                    path=origin,
                    locator=item.locator,
                    reason=item.reason,
                    raw=item.raw,
                )
            )
    if not records and not rejections:
        return BatchResult()
    return store.write_batch(records, rejections)


def semantic_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def embed_new(
    settings: Settings, store: Store, progress: Callable[[int, int], None] | None = None
) -> int:
    """Embed the papers that are new or changed for the active model; 0 without the extra."""
    if not semantic_installed():
        return 0
    from paperfeed.index import semantic

    info = semantic.status(settings, store)
    if info.papers == 0:
        return 0
    if info.model_id is not None and not store.embedding_jobs(info.model_id, limit=1):
        return 0  # nothing to embed: do not pay for loading the model
    _, _, n = semantic.build(settings, store, progress=progress)
    return n
