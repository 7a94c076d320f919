"""Subscriptions with double opt-in, and the signed links that confirm or end them.

A new subscription is unconfirmed and receives nothing until the link in its
confirmation mail is followed (valid 7 days). Unsubscribe links never expire: they must
work from any old digest. Both are signed with the instance secret and name the
subscription, so one address cannot unsubscribe another.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from paperfeed.accounts.service import check_email
from paperfeed.accounts.signing import SignatureError, Signer
from paperfeed.digest import links
from paperfeed.digest.render import MailContext, confirmation_message
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import Subscription, SubscriptionContents
from paperfeed.store import Store

FREQUENCIES = ("daily", "weekly")
DEFAULT_MAX_ITEMS = 10
MAX_ITEMS_LIMIT = 50
CONFIRM_MAX_AGE = 7 * 24 * 3600
CONFIRM_PURPOSE = "confirm-subscription"
UNSUBSCRIBE_PURPOSE = "unsubscribe"


def check_frequency(frequency: str) -> str:
    value = frequency.strip().lower()
    if value not in FREQUENCIES:
        raise PaperfeedError(
            f"frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}"
        )
    return value


def check_max_items(max_items: int) -> int:
    if not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise PaperfeedError(f"max items must be between 1 and {MAX_ITEMS_LIMIT}, not {max_items}")
    return max_items


def clean_contents(contents: SubscriptionContents) -> SubscriptionContents:
    def clean(values: tuple[str, ...], what: str) -> tuple[str, ...]:
        out: list[str] = []
        for v in values:
            text = " ".join(v.split())
            if len(text) > 200:
                raise PaperfeedError(f"a {what} can have at most 200 characters")
            if text and text.lower() not in {o.lower() for o in out}:
                out.append(text)
        if len(out) > 20:
            raise PaperfeedError(f"at most 20 {what}s per subscription")
        return tuple(out)

    return SubscriptionContents(
        trending=contents.trending,
        for_you=contents.for_you,
        searches=clean(contents.searches, "saved search"),
        authors=clean(contents.authors, "followed author"),
        categories=clean(contents.categories, "category"),
    )


def subscribe(
    store: Store,
    email: str,
    *,
    frequency: str = "daily",
    contents: SubscriptionContents | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
    user_id: int | None = None,
) -> Subscription:
    """Create (or renew) the subscription of an address; it starts unconfirmed.

    Subscribing an address again updates what it receives; an address that had
    unsubscribed is subscribed again (it confirmed the address before).
    """
    address = check_email(email)
    freq = check_frequency(frequency)
    items = check_max_items(max_items)
    wanted = clean_contents(contents or SubscriptionContents())
    existing = store.subscription_by_email(address)
    if existing is None:
        return store.create_subscription(
            address, user_id=user_id, frequency=freq, contents=wanted, max_items=items
        )
    if existing.user_id is not None and user_id is not None and existing.user_id != user_id:
        raise PaperfeedError(f"{address} is subscribed by another account")
    return store.update_subscription(
        existing.id,
        frequency=freq,
        contents=wanted,
        max_items=items,
        resubscribe=existing.unsubscribed_at is not None,
    )


def confirm_token(signer: Signer, subscription: Subscription) -> str:
    return signer.sign(CONFIRM_PURPOSE, f"{subscription.id}:{subscription.email.lower()}")


def unsubscribe_token(signer: Signer, subscription: Subscription) -> str:
    return signer.sign(UNSUBSCRIBE_PURPOSE, f"{subscription.id}:{subscription.email.lower()}")


def _subscription_of(store: Store, payload: str) -> Subscription:
    sid, _, email = payload.partition(":")
    sub = store.get_subscription(int(sid)) if sid.isdigit() else None
    if sub is None or sub.email.lower() != email:
        raise NotFoundError("this subscription no longer exists")
    return sub


def confirm(
    store: Store, signer: Signer, token: str, *, now: dt.datetime | None = None
) -> Subscription:
    payload = signer.verify(CONFIRM_PURPOSE, token, max_age=CONFIRM_MAX_AGE)
    sub = _subscription_of(store, payload)
    if sub.active:
        return sub
    # An address that unsubscribed and asked again (the site's subscribe box mails a new
    # confirmation link) is active again once the link is followed.
    return store.update_subscription(
        sub.id,
        confirmed_at=None if sub.confirmed else (now or dt.datetime.now(dt.UTC)),
        resubscribe=sub.unsubscribed_at is not None,
    )


def unsubscribe(
    store: Store, signer: Signer, token: str, *, now: dt.datetime | None = None
) -> Subscription:
    """End a subscription from a link; idempotent (a second click changes nothing)."""
    try:
        payload = signer.verify(UNSUBSCRIBE_PURPOSE, token, max_age=None)
    except SignatureError:
        raise SignatureError("this unsubscribe link is not valid") from None
    sub = _subscription_of(store, payload)
    if sub.unsubscribed_at is not None:
        return sub
    return store.update_subscription(sub.id, unsubscribed_at=now or dt.datetime.now(dt.UTC))


def confirmation_for(signer: Signer, ctx: MailContext, subscription: Subscription) -> EmailMessage:
    """The mail whose link confirms a new subscription."""
    url = links.confirm_url(ctx.base_url, confirm_token(signer, subscription))
    return confirmation_message(subscription, ctx, confirm_url=url)
