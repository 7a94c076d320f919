"""The app's URLs, built in one place (templates, feeds and APIs link with these)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from paperfeed.feeds import Period, PeriodKind

_SEGMENT = {PeriodKind.DAY: "date", PeriodKind.WEEK: "week", PeriodKind.MONTH: "month"}


def query_string(pairs: Sequence[tuple[str, str | int | None]]) -> str:
    kept = [(k, str(v)) for k, v in pairs if v is not None and v != ""]
    return ("?" + urlencode(kept)) if kept else ""


def period_path(period: Period) -> str:
    segment = _SEGMENT.get(period.kind)
    if segment is None:
        return "/papers" + query_string([("from", period.start.isoformat())])
    return f"/papers/{segment}/{period.key}"


def period_params(period: Period) -> list[tuple[str, str | int | None]]:
    """The period as query parameters (for the RSS / Atom and API links of a page)."""
    segment = _SEGMENT.get(period.kind, "date")
    return [(segment, period.key)]


def paper_path(paper_id: str) -> str:
    # Ids may hold '/' (DOIs, old arXiv ids) and ':' (title: ids): keep them readable.
    return "/papers/" + quote(paper_id, safe="/:")
