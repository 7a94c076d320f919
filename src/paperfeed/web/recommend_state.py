"""What the pages need from the recommender: the vectors and encoder the site already holds,
the marks of a list of papers (your like / dislike, their topic chips), waking the trainer
after feedback, and the signed URL token of a personal feed.

Nothing here ranks or trains: that is :mod:`paperfeed.recommend`; this module only finds
its inputs in the web app and shapes its answers for templates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import Request

from paperfeed.accounts.signing import Signer
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index import semantic
from paperfeed.index.vectors import VectorIndex
from paperfeed.model import Paper, User
from paperfeed.recommend.topics import TopicLabel, find_topic, topic_labels
from paperfeed.recommend.vectors import ActiveVectors, open_active_vectors
from paperfeed.search import QueryEncoder
from paperfeed.store.recommend import GENERAL_TAG
from paperfeed.web.context import WebContext

log = logging.getLogger("paperfeed.web")

CHIPS_PER_ENTRY = 3
FEED_TOKEN_PURPOSE = "for-you-feed"


def active_vectors(ctx: WebContext) -> ActiveVectors | None:
    """The paper vectors of the site's search engine (already open, and following new
    generations when ``serve`` runs a live engine); the store's own when the engine
    searches by keywords only; None when nothing is embedded."""
    engine = ctx.engine
    index = engine.vectors
    if engine.encoder is not None and isinstance(index, VectorIndex) and len(index):
        return ActiveVectors(
            model=semantic.active_model(ctx.store), model_id=engine.encoder.model_id, index=index
        )
    try:
        return open_active_vectors(ctx.settings, ctx.store)
    except PaperfeedError as exc:  # e.g. PostgreSQL vectors without the model to size them
        log.warning("the recommender cannot open the vectors: %s", exc)
        return None


def query_encoder(ctx: WebContext) -> QueryEncoder:
    """The site's encoder, for embedding a topic sentence; an error naming the fix if off."""
    encoder = ctx.engine.encoder
    if encoder is None:
        raise PaperfeedError(
            "sentence: describing a topic needs the embedding model, which this server has "
            "not loaded (run 'paperfeed index', and serve without --keyword-only)"
        )
    return encoder


@dataclass(frozen=True, slots=True)
class EntryMarks:
    """Per paper id of a list: the user's general label (+1 liked, -1 disliked) and the
    paper's topic chips (best first)."""

    judged: dict[str, int] = field(default_factory=dict)
    chips: dict[str, list[TopicLabel]] = field(default_factory=dict)

    def label(self, paper_id: str) -> int:
        return self.judged.get(paper_id, 0)

    def chips_of(self, paper_id: str) -> list[TopicLabel]:
        return self.chips.get(paper_id, [])


def entry_marks(ctx: WebContext, user: User | None, papers: Sequence[Paper]) -> EntryMarks:
    if not papers:
        return EntryMarks()
    wanted = {p.id for p in papers}
    judged = {}
    if user is not None:
        judged = {
            f.paper_id: f.label
            for f in ctx.store.feedback(user.id, GENERAL_TAG)
            if f.paper_id in wanted
        }
    pks = {pk: p.id for p in papers if (pk := ctx.store.paper_pk(p.id)) is not None}
    labels = topic_labels(ctx.store, list(pks), user_id=user.id if user else None)
    chips = {pks[pk]: found[:CHIPS_PER_ENTRY] for pk, found in labels.items()}
    return EntryMarks(judged, chips)


def topic_keys(ctx: WebContext, user: User | None, values: Sequence[str] | None) -> tuple[str, ...]:
    """``topic=`` values (keys or exact names, repeatable or comma-separated) as topic keys;
    a 400 naming the parameter for an unknown one."""
    keys: list[str] = []
    for value in values or ():
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                topic = find_topic(ctx.store, part, user_id=user.id if user else None)
            except NotFoundError:
                raise PaperfeedError(
                    f"topic: no topic {part.strip()!r} (the topics are listed at /topics)"
                ) from None
            keys.append(topic.key)
    return tuple(dict.fromkeys(keys))


def wake_trainer(request: Request) -> None:
    """Train now rather than at the trainer's next poll (``serve`` runs one; tests too)."""
    for service in getattr(request.app.state, "services", ()):
        # A service may wrap the trainer (serve runs it under a lease): look inside.
        while service is not None:
            wake = getattr(service, "wake", None)
            if callable(wake):
                wake()
            service = getattr(service, "service", None)


# -- personal feeds ------------------------------------------------------------------------
# Feed readers send no cookies: the URL of a user's "for you" feed carries a signed token
# naming the user (never expiring; a new instance secret revokes every such URL).


def feed_token(ctx: WebContext, user: User) -> str:
    return Signer.for_store(ctx.store).sign(FEED_TOKEN_PURPOSE, str(user.id), now=0)


def feed_token_user(ctx: WebContext, token: str) -> User:
    payload = Signer.for_store(ctx.store).verify(FEED_TOKEN_PURPOSE, token, max_age=None)
    user = ctx.store.get_user(int(payload)) if payload.isdigit() else None
    if user is None:
        raise NotFoundError("the account of this feed no longer exists")
    return user
