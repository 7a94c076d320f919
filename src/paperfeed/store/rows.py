"""Rows of the people tables turned into the typed objects, for every backend.

SQLite hands back timestamps as ISO text and JSON as text; PostgreSQL as ``datetime`` and
parsed JSON. :func:`utc` and :func:`json_doc` take either, so one converter serves both.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from paperfeed.model import (
    ApiToken,
    Collection,
    DigestRun,
    Subscription,
    SubscriptionContents,
    User,
)


def utc(value: str | dt.datetime) -> dt.datetime:
    """A timestamp from the store, in UTC (naive ones are UTC)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def utc_or_none(value: str | dt.datetime | None) -> dt.datetime | None:
    return None if value is None else utc(value)


def json_doc(value: str | dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return doc


def user_from_row(row: Sequence[Any]) -> User:
    """``id, username, email, is_admin, created_at``."""
    return User(
        id=int(row[0]),
        username=row[1],
        email=row[2],
        is_admin=bool(row[3]),
        created_at=utc(row[4]),
    )


def contents_from_doc(doc: dict[str, Any]) -> SubscriptionContents:
    return SubscriptionContents(
        trending=bool(doc.get("trending", True)),
        for_you=bool(doc.get("for_you", True)),
        searches=tuple(doc.get("searches", ())),
        authors=tuple(doc.get("authors", ())),
        categories=tuple(doc.get("categories", ())),
    )


def subscription_from_row(row: Sequence[Any]) -> Subscription:
    """``id, user_id, email, frequency, contents, max_items, created_at, confirmed_at,
    unsubscribed_at``."""
    return Subscription(
        id=int(row[0]),
        user_id=None if row[1] is None else int(row[1]),
        email=row[2],
        frequency=row[3],
        contents=contents_from_doc(json_doc(row[4])),
        max_items=int(row[5]),
        created_at=utc(row[6]),
        confirmed_at=utc_or_none(row[7]),
        unsubscribed_at=utc_or_none(row[8]),
    )


def run_from_row(row: Sequence[Any]) -> DigestRun:
    """``id, subscription_id, period, status, attempts, message_id, items, last_error,
    next_attempt_at, sent_at``."""
    return DigestRun(
        id=int(row[0]),
        subscription_id=int(row[1]),
        period=row[2],
        status=row[3],
        attempts=int(row[4]),
        message_id=row[5],
        items=int(row[6]),
        last_error=row[7],
        next_attempt_at=utc_or_none(row[8]),
        sent_at=utc_or_none(row[9]),
    )


def collection_from_row(row: Sequence[Any]) -> Collection:
    """``id, user_id, name, is_public, created_at, size``."""
    return Collection(int(row[0]), int(row[1]), row[2], bool(row[3]), utc(row[4]), int(row[5]))


def api_token_from_row(row: Sequence[Any]) -> ApiToken:
    """``id, user_id, name, created_at, last_used_at``."""
    return ApiToken(int(row[0]), int(row[1]), row[2], utc(row[3]), utc_or_none(row[4]))
