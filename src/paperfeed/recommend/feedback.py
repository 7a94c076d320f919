"""Feedback: like / dislike / "not interested" / save to a tag, and whose feedback it is.

Every change is one store write that also queues the affected models for retraining (see
:mod:`paperfeed.recommend.trainer`); nothing is trained here, so a click stays instant.

Labels live per *tag*: the general tag ``""`` holds likes and dislikes ("for you"); a named
tag (``"reading group"``, ``"diffusion"``) holds the papers saved to it, and gets a model of
its own. The general model learns from the positives of every tag.

A laptop install has no accounts: the CLI then acts for the *local user*, an account named
``local`` that is created on first use with a password nobody can log in with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from paperfeed.accounts.service import local_user
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import User
from paperfeed.store import Store
from paperfeed.store.recommend import GENERAL_TAG, FeedbackItem

MAX_TAG_LENGTH = 64
_TAG = re.compile(r"^[^\x00-\x1f]+$")


class FeedbackKind(StrEnum):
    LIKE = "like"
    DISLIKE = "dislike"
    NOT_INTERESTED = "not-interested"
    SAVE = "save"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class TagSummary:
    tag: str  # "" for the general likes / dislikes
    positives: int
    negatives: int


def resolve_user(store: Store, username: str | None) -> User:
    """The named account, or the local user when ``username`` is None."""
    if username is None:
        return local_user(store)
    found = store.user_credentials(username)
    if found is None:
        raise NotFoundError(f"no user named {username!r} (see 'paperfeed user list')")
    return found[0]


def check_tag(tag: str) -> str:
    """A tag name as stored: trimmed, 1–64 characters without control characters."""
    name = " ".join(tag.split())
    if not name:
        raise PaperfeedError("tag: a tag needs a name")
    if len(name) > MAX_TAG_LENGTH or not _TAG.match(name):
        raise PaperfeedError(
            f"tag: {tag[:80]!r} is not a tag name (up to {MAX_TAG_LENGTH} printable characters)"
        )
    return name


def give_feedback(
    store: Store, user_id: int, paper_id: str, kind: FeedbackKind, tag: str | None = None
) -> None:
    """Record one piece of feedback on a paper (by any of its ids).

    ``like`` / ``save`` with a tag put the paper in that tag (``save`` needs one);
    ``dislike`` / ``not-interested`` mark it negative (in the tag, when given); ``clear``
    removes the paper's label from the tag (or from the general likes / dislikes).
    """
    name = GENERAL_TAG if tag is None else check_tag(tag)
    if kind is FeedbackKind.SAVE and not name:
        raise PaperfeedError("tag: saving a paper needs a tag name")
    label: int | None
    if kind in (FeedbackKind.LIKE, FeedbackKind.SAVE):
        label = 1
    elif kind in (FeedbackKind.DISLIKE, FeedbackKind.NOT_INTERESTED):
        label = -1
    else:
        label = None
    store.set_feedback(user_id, paper_id, name, label)


def tag_summaries(store: Store, user_id: int) -> list[TagSummary]:
    """The user's tags (the general one first) with their counts."""
    counts: dict[str, list[int]] = {}
    for item in store.feedback(user_id):
        pos_neg = counts.setdefault(item.tag, [0, 0])
        pos_neg[0 if item.label > 0 else 1] += 1
    return [TagSummary(tag, p, n) for tag, (p, n) in sorted(counts.items())]


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """The paper keys a tag's model learns from."""

    positives: list[int]
    negatives: list[int]


def training_set(items: list[FeedbackItem], tag: str) -> TrainingSet:
    """Positives and negatives of a tag from a user's feedback.

    The general tag takes the positives of every tag and the general negatives; a named tag
    takes its own labels plus the general dislikes as negatives. A paper that is both
    liked and disliked counts as what it is in the tag itself.
    """
    own = {i.paper_pk: i.label for i in items if i.tag == tag}
    positives = {pk for pk, label in own.items() if label > 0}
    negatives = {pk for pk, label in own.items() if label < 0}
    for i in items:
        if i.tag == tag:
            continue
        if tag == GENERAL_TAG and i.label > 0 and i.paper_pk not in negatives:
            positives.add(i.paper_pk)
        general_dislike = i.tag == GENERAL_TAG and i.label < 0
        if tag != GENERAL_TAG and general_dislike and i.paper_pk not in positives:
            negatives.add(i.paper_pk)
    return TrainingSet(sorted(positives), sorted(negatives - positives))
