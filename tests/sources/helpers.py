"""Helpers shared by the parser tests: run a parser on bytes, split its output."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from paperfeed.sources import get_parser
from paperfeed.sources.base import Item, ParseContext, Parsed, Rejected

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def run_parser(
    fmt: str, data: bytes, *, listing: str = "test-listing", today: dt.date | None = None
) -> list[Item]:
    ctx = ParseContext(
        source=fmt, listing=listing, path="<test>", today=today or dt.date(2026, 11, 22)
    )
    return list(get_parser(fmt)(io.BytesIO(data), ctx))


def split(items: list[Item]) -> tuple[list[Parsed], list[Rejected]]:
    good = [i for i in items if isinstance(i, Parsed)]
    bad = [i for i in items if isinstance(i, Rejected)]
    assert len(good) + len(bad) == len(items)
    return good, bad
