"""Small text helpers for templates (plain functions: cheaper than Jinja macros in loops)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def authors_text(authors: Sequence[str], limit: int = 6) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return f"{', '.join(authors[:limit])}, et al. ({len(authors)} authors)"


def day_text(day: dt.date) -> str:
    return f"{day.day:02d} {_MONTHS[day.month - 1]} {day.year}"
