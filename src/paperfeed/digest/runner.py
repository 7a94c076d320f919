"""Sending the digests of a period, exactly once per subscription, surviving crashes.

The ledger is the ``digest_runs`` table, one row per (subscription, period):

1. ``claim``: the row is created ``pending`` (or the existing one is read). A row already
   ``sent`` means: skip, whatever happened since — this is what makes re-runs safe.
2. ``sending``: recorded just before the message goes to the SMTP server.
3. ``sent``: recorded right after the server accepted it.

A crash between 2 and 3 (a window of one SMTP reply) leaves ``sending``; the next run sends
that digest again with the *same* Message-ID, so mail clients show it once. Anything else
(a crash before 2, an SMTP failure) is simply retried: temporary failures (connection
trouble, 4xx) a few times within the run with exponential backoff, then again by later runs
after ``next_attempt_at`` (backoff doubling per attempt); permanent failures (5xx: no such
mailbox) and digests past ``MAX_ATTEMPTS`` are given up and reported.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from paperfeed.accounts.signing import Signer
from paperfeed.digest import links
from paperfeed.digest.compose import Digest, Recommender, Searcher, compose, period_for
from paperfeed.digest.mailer import MailError
from paperfeed.digest.render import MailContext, digest_message, message_id
from paperfeed.digest.subscriptions import check_frequency, unsubscribe_token
from paperfeed.model import Subscription
from paperfeed.store import Store

MAX_ATTEMPTS = 6
IN_RUN_RETRIES = 2
RETRY_BASE_SECONDS = 2.0  # within a run: 2 s, 4 s
NEXT_RUN_BASE = dt.timedelta(minutes=10)  # across runs: 10, 20, 40, 80 minutes...


class Mailer(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    subscription_id: int
    email: str
    period: str
    status: str  # sent | already-sent | empty | would-send | failed | gave-up | waiting
    items: int = 0
    error: str | None = None


@dataclass(slots=True)
class DigestReport:
    outcomes: list[DigestOutcome] = field(default_factory=list)
    dry_run: bool = False

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed") + self.count("gave-up")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class DigestSender:
    """Everything a digest run needs, built once by the CLI or the server."""

    store: Store
    ctx: MailContext
    signer: Signer
    searcher: Searcher | None = None
    recommender: Recommender | None = None
    unsubscribe_mailto: str | None = None
    clock: Callable[[], dt.datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep
    retry_base: float = RETRY_BASE_SECONDS

    def digest_for(self, subscription: Subscription, day: dt.date) -> Digest:
        return compose(
            self.store,
            subscription,
            period_for(subscription.frequency, day),
            searcher=self.searcher,
            recommender=self.recommender,
            today=self.clock().date(),
        )

    def message_for(self, digest: Digest) -> EmailMessage:
        sub = digest.subscription
        return digest_message(
            digest,
            self.ctx,
            unsubscribe_url=links.unsubscribe_url(
                self.ctx.base_url, unsubscribe_token(self.signer, sub)
            ),
            msg_id=message_id(sub, digest.period.key, self.ctx.base_url),
            unsubscribe_mailto=self.unsubscribe_mailto,
        )

    def subscriptions(
        self, *, frequency: str | None, user_id: int | None, email: str | None
    ) -> list[Subscription]:
        subs = self.store.active_subscriptions(check_frequency(frequency) if frequency else None)
        if user_id is not None:
            subs = [s for s in subs if s.user_id == user_id]
        if email is not None:
            subs = [s for s in subs if s.email.lower() == email.strip().lower()]
        return subs

    def run(
        self,
        mailer: Mailer | None,
        *,
        day: dt.date,
        frequency: str | None = None,
        user_id: int | None = None,
        email: str | None = None,
        dry_run: bool = False,
        progress: Callable[[DigestOutcome], None] | None = None,
    ) -> DigestReport:
        """Send (or with ``dry_run`` only compose) every due digest for ``day``."""
        if mailer is None and not dry_run:
            raise MailError(
                "no SMTP server configured: set PAPERFEED_SMTP_HOST (see docs/digest.md) "
                "or use --dry-run",
                temporary=False,
            )
        report = DigestReport(dry_run=dry_run)
        for sub in self.subscriptions(frequency=frequency, user_id=user_id, email=email):
            outcome = self._one(mailer, sub, day, dry_run)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return report

    def _one(
        self, mailer: Mailer | None, sub: Subscription, day: dt.date, dry_run: bool
    ) -> DigestOutcome:
        period = period_for(sub.frequency, day)
        key = period.key
        existing = self.store.digest_runs(subscription_id=sub.id, period=key)
        run = existing[0] if existing else None
        now = self.clock()
        if run is not None and run.status == "sent":
            return DigestOutcome(sub.id, sub.email, key, "already-sent", run.items)
        if run is not None and run.status == "failed":
            if run.next_attempt_at is None:
                return DigestOutcome(sub.id, sub.email, key, "gave-up", run.items, run.last_error)
            if run.next_attempt_at > now and not dry_run:
                return DigestOutcome(sub.id, sub.email, key, "waiting", run.items, run.last_error)
        digest = self.digest_for(sub, day)
        if digest.is_empty:
            return DigestOutcome(sub.id, sub.email, key, "empty")
        items = len(digest.picks)
        if dry_run:
            return DigestOutcome(sub.id, sub.email, key, "would-send", items)
        assert mailer is not None
        msg = self.message_for(digest)
        run = self.store.claim_digest_run(sub.id, key, str(msg["Message-ID"]))
        if run.status == "sent":  # another worker got there first
            return DigestOutcome(sub.id, sub.email, key, "already-sent", run.items)
        error: MailError | None = None
        for attempt in range(IN_RUN_RETRIES + 1):
            run = self.store.mark_digest_sending(run.id, items)
            try:
                mailer.send(msg)
            except MailError as exc:
                error = exc
                if not exc.temporary or attempt == IN_RUN_RETRIES or run.attempts >= MAX_ATTEMPTS:
                    break
                self.sleep(self.retry_base * 2**attempt)
                continue
            self.store.mark_digest_sent(run.id, self.clock())
            return DigestOutcome(sub.id, sub.email, key, "sent", items)
        assert error is not None
        give_up = not error.temporary or run.attempts >= MAX_ATTEMPTS
        next_at = None if give_up else self.clock() + NEXT_RUN_BASE * 2 ** (run.attempts - 1)
        self.store.mark_digest_failed(run.id, str(error), next_at)
        return DigestOutcome(
            sub.id, sub.email, key, "gave-up" if give_up else "failed", items, str(error)
        )
