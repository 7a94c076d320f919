"""Feedback → training → "for you" with reasons, on the sample with the fake encoder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index import semantic
from paperfeed.model import Subscription, SubscriptionContents
from paperfeed.recommend.feedback import (
    FeedbackKind,
    check_tag,
    give_feedback,
    local_user,
    resolve_user,
    tag_summaries,
    training_set,
)
from paperfeed.recommend.for_you import ForYouStatus, digest_recommender, for_you
from paperfeed.recommend.models import KIND_LOGISTIC, KIND_NEAREST
from paperfeed.recommend.topics import add_user_topic, remove_user_topic
from paperfeed.recommend.trainer import Trainer, train_pending
from tests.recommend.conftest import Embedded


def liked_pks(e: Embedded, ids: list[str]) -> list[int]:
    return [pk for pk in (e.store.paper_pk(i) for i in ids) if pk is not None]


def like_all(e: Embedded, papers: list[str], tag: str | None = None) -> None:
    for pid in papers:
        give_feedback(e.store, e.user.id, pid, FeedbackKind.LIKE, tag)


def test_local_user_is_created_once_and_cannot_log_in(embedded: Embedded) -> None:
    store = embedded.store
    again = local_user(store)
    assert again.id == embedded.user.id
    assert again.username == "local"
    assert resolve_user(store, None).id == again.id
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        resolve_user(store, "nobody")
    from paperfeed.accounts import Accounts, AuthError

    with pytest.raises(AuthError):
        Accounts(store).authenticate("local", "!no-login:local-user")


def test_tags_are_checked(embedded: Embedded) -> None:
    assert check_tag("  reading   group ") == "reading group"
    with pytest.raises(PaperfeedError, match="tag"):
        check_tag("   ")
    with pytest.raises(PaperfeedError, match="tag"):
        check_tag("x" * 65)
    pid = embedded.papers[0].id
    with pytest.raises(PaperfeedError, match="needs a tag"):
        give_feedback(embedded.store, embedded.user.id, pid, FeedbackKind.SAVE)


def test_five_likes_give_picks_that_say_why(embedded: Embedded) -> None:
    e = embedded
    liked = [p.id for p in e.find("text-to-image")[:5]]
    assert len(liked) == 5
    result = for_you(e.store, e.vectors, e.user.id, everything=True)
    assert result.status is ForYouStatus.NO_FEEDBACK
    like_all(e, liked)
    result = for_you(e.store, e.vectors, e.user.id, everything=True)
    assert result.status is ForYouStatus.TRAINING  # never trained per request
    (report,) = train_pending(e.store, e.vectors)
    assert (report.kind, report.positives) == (KIND_LOGISTIC, 5)
    result = for_you(e.store, e.vectors, e.user.id, everything=True, limit=10)
    assert result.status is ForYouStatus.OK
    assert len(result.picks) == 10
    titles = {p.id: p.title for p in e.papers}
    for pick in result.picks:
        assert pick.paper.id not in liked
        assert pick.because
        assert all(b.paper_id in liked for b in pick.because)
        assert f"“{titles[pick.because[0].paper_id]}”" in pick.reason
        assert 0.0 <= pick.model_score <= 1.0
    assert [p.score for p in result.picks] == sorted((p.score for p in result.picks), reverse=True)
    # The picks are much closer to the liked papers than the rest of the corpus is.
    index = e.vectors.index
    liked_vectors = index.get([e.store.paper_pk(i) for i in liked])
    picked = {e.store.paper_pk(p.paper.id) for p in result.picks}
    rest = [
        k
        for k in index.keys().tolist()
        if int(k) not in picked and int(k) not in set(liked_pks(e, liked))
    ]
    nearest_picked = (index.get(list(picked)) @ liked_vectors.T).max(axis=1).mean()
    nearest_rest = (index.get(rest) @ liked_vectors.T).max(axis=1).mean()
    assert nearest_picked > nearest_rest + 0.1
    doc = result.to_json()
    assert doc["status"] == "ok"
    assert doc["model"]["positives"] == 5


def test_not_interested_removes_a_pick_and_teaches_the_model(embedded: Embedded) -> None:
    e = embedded
    like_all(e, [p.id for p in e.find("text-to-image")[:3]])
    train_pending(e.store, e.vectors)
    first = for_you(e.store, e.vectors, e.user.id, everything=True, limit=5)
    assert first.model is not None
    assert first.model.kind == KIND_NEAREST
    top = first.picks[0].paper
    give_feedback(e.store, e.user.id, top.id, FeedbackKind.NOT_INTERESTED)
    (report,) = train_pending(e.store, e.vectors)
    assert report.negatives == 1
    second = for_you(e.store, e.vectors, e.user.id, everything=True, limit=5)
    assert top.id not in {p.paper.id for p in second.picks}
    assert second.model is not None
    assert second.model.metadata["negatives"]


def test_a_tag_has_its_own_model_and_feeds_the_general_one(embedded: Embedded) -> None:
    e = embedded
    saved = [p.id for p in e.find("language")[:2]]
    like_all(e, saved, tag="nlp")
    disliked = e.find("diffusion")[0].id
    give_feedback(e.store, e.user.id, disliked, FeedbackKind.DISLIKE)
    reports = {r.tag: r for r in train_pending(e.store, e.vectors)}
    assert set(reports) == {"", "nlp"}
    assert reports[""].positives == 2
    assert reports["nlp"].negatives == 1
    summaries = {s.tag: (s.positives, s.negatives) for s in tag_summaries(e.store, e.user.id)}
    assert summaries == {"": (0, 1), "nlp": (2, 0)}
    nlp = for_you(e.store, e.vectors, e.user.id, tag="nlp", everything=True, limit=3)
    assert nlp.status is ForYouStatus.OK
    assert nlp.tag == "nlp"
    # Emptying the tag removes its model.
    for pid in saved:
        give_feedback(e.store, e.user.id, pid, FeedbackKind.CLEAR, "nlp")
    reports = {r.tag: r for r in train_pending(e.store, e.vectors)}
    assert reports["nlp"].kind is None
    assert [m.tag for m in e.store.models(e.user.id)] == []
    items = e.store.feedback(e.user.id)
    assert training_set(items, "").negatives == [e.store.paper_pk(disliked)]


def test_cold_start_from_a_sentence(embedded: Embedded) -> None:
    e = embedded
    encoder = semantic.load_encoder(e.settings, "fake")
    topic = add_user_topic(
        e.store, e.user.id, "text-to-image personalization of diffusion models", interest=True
    )
    (report,) = train_pending(e.store, e.vectors, encoder_factory=lambda: encoder)
    assert report.positives == 1
    result = for_you(e.store, e.vectors, e.user.id, everything=True, limit=5)
    assert result.status is ForYouStatus.OK
    assert all(p.because[0].interest == topic.description for p in result.picks)
    assert "your interest “text-to-image personalization" in result.picks[0].reason
    remove_user_topic(e.store, e.user.id, topic.key)
    train_pending(e.store, e.vectors, encoder_factory=lambda: encoder)
    assert for_you(e.store, e.vectors, e.user.id).status is ForYouStatus.NO_FEEDBACK


def test_default_candidates_are_the_last_week_of_feed_days(embedded: Embedded) -> None:
    e = embedded
    like_all(e, [p.id for p in e.find("text-to-image")[:5]])
    train_pending(e.store, e.vectors)
    result = for_you(e.store, e.vectors, e.user.id, limit=500)
    assert result.period is not None
    latest = e.store.latest_feed_day()
    assert latest is not None
    assert result.period.end == latest
    assert result.period.start == latest - dt.timedelta(days=6)
    listed = {r.pk for r in e.store.feed_rows(result.period.start, result.period.end)}
    pks = {e.store.paper_pk(p.paper.id) for p in result.picks}
    assert pks
    assert pks <= listed


def test_stale_model_after_a_model_change(embedded: Embedded) -> None:
    e = embedded
    like_all(e, [e.papers[0].id])
    train_pending(e.store, e.vectors)
    semantic.activate(e.store, "fake:48")
    semantic.build(e.settings, e.store)
    from paperfeed.recommend.vectors import open_active_vectors

    other = open_active_vectors(e.settings, e.store)
    assert other is not None
    assert other.model_id != e.vectors.model_id
    assert for_you(e.store, other, e.user.id).status is ForYouStatus.STALE
    assert for_you(e.store, None, e.user.id).status is ForYouStatus.NO_VECTORS


def test_the_digest_recommender_uses_the_same_picks(embedded: Embedded) -> None:
    e = embedded
    like_all(e, [p.id for p in e.find("text-to-image")[:5]])
    train_pending(e.store, e.vectors)
    recommend = digest_recommender(e.store, lambda: e.vectors)
    sub = Subscription(
        id=1,
        user_id=e.user.id,
        email="a@example.org",
        frequency="daily",
        contents=SubscriptionContents(),
        max_items=10,
        created_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    candidates = e.papers[:80]
    picks = recommend(sub, candidates)
    expected = for_you(
        e.store,
        e.vectors,
        e.user.id,
        candidate_pks=[pk for pk in (e.store.paper_pk(p.id) for p in candidates) if pk],
        limit=50,
    )
    assert [p.paper.id for p in picks] == [p.paper.id for p in expected.picks]
    assert picks
    assert all(p.section == "for_you" and p.reason.startswith("close to") for p in picks)
    assert recommend(dataclasses.replace(sub, user_id=None), candidates) == []


def test_the_background_trainer_trains_after_feedback(embedded: Embedded) -> None:
    e = embedded
    trainer = Trainer(e.settings, e.store, poll_seconds=0.05)
    trainer.start()
    try:
        like_all(e, [p.id for p in e.find("text-to-image")[:2]])
        trainer.wake()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not e.store.models(e.user.id):
            time.sleep(0.05)
    finally:
        trainer.stop()
    (model,) = e.store.models(e.user.id)
    assert model.kind == KIND_NEAREST
    assert len(model.metadata["positives"]) == 2
    assert trainer.trained >= 1
    assert trainer.last_error is None
    assert e.store.training_jobs() == []
