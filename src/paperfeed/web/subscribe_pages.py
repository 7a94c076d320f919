"""Digest subscriptions on the site: the feed page's subscribe box, a user's subscription
settings, the confirmation and unsubscribe links of the mails, and the browser preview.

The link paths are :mod:`paperfeed.digest.links`' (``/subscribe/confirm``,
``/unsubscribe``, ``/digest/preview``), so a mail and a route never drift apart.

- Subscribing needs an SMTP server (``PAPERFEED_SMTP_*``): the confirmation link goes by
  mail. Without one the page says so and nothing is recorded.
- The anonymous box never changes an existing subscription's settings (anyone can type
  any address): it only mails a confirmation link again when the address is not active.
- ``GET /unsubscribe`` shows a button (mail scanners fetch links); ``POST /unsubscribe``
  (the button, or a mail client's RFC 8058 one-click ``List-Unsubscribe=One-Click``)
  unsubscribes. The signed token is the authorization, so no CSRF token is needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from paperfeed.accounts.service import check_email
from paperfeed.accounts.signing import Signer
from paperfeed.digest import links
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.mailer import MailError
from paperfeed.digest.render import render_digest_parts
from paperfeed.digest.setup import build_mailer, build_sender, mail_context
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.feeds import parse_day
from paperfeed.model import Subscription, SubscriptionContents, User
from paperfeed.web.auth import current_user, page_user
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.pages import render

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(get_context)]
Text = Annotated[str, Form()]


class AddressTaken(PaperfeedError):
    status = 409


class MailUnavailable(PaperfeedError):
    """No SMTP server is configured: nothing can be confirmed by mail."""

    status = 503


class SendFailed(PaperfeedError):
    status = 502


NO_SMTP = (
    "e-mail digests need an SMTP server and none is configured on this instance "
    "(PAPERFEED_SMTP_HOST, see docs/digest.md): the address was not recorded"
)


def send_confirmation(ctx: WebContext, sub: Subscription) -> None:
    mailer = build_mailer()
    if mailer is None:
        raise MailUnavailable(NO_SMTP)
    message = subs.confirmation_for(Signer.for_store(ctx.store), mail_context(ctx.settings), sub)
    try:
        with mailer:
            mailer.send(message)
    except MailError as exc:
        raise SendFailed(f"the confirmation mail to {sub.email} could not be sent: {exc}") from None


def split_lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def split_categories(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", " ").split() if part)


def save_user_subscription(
    ctx: WebContext,
    user: User,
    *,
    subscription_id: int | None,
    email: str,
    frequency: str,
    contents: SubscriptionContents,
    max_items: int,
) -> tuple[Subscription, bool]:
    """Create or change one of the user's subscriptions; (it, whether a confirmation
    mail went out). Another user's subscription is a 404; an address subscribed by
    someone else is refused (409) rather than taken over."""
    store = ctx.store
    frequency = subs.check_frequency(frequency)
    max_items = subs.check_max_items(max_items)
    contents = subs.clean_contents(contents)
    if subscription_id is not None:
        sub = owned_subscription(ctx, user, subscription_id)
        if email.strip() and email.strip().lower() != sub.email.lower():
            raise PaperfeedError("email: to use another address, add a new subscription")
        updated = store.update_subscription(
            sub.id, frequency=frequency, contents=contents, max_items=max_items
        )
        return updated, False
    address = check_email(email)
    existing = store.subscription_by_email(address)
    if existing is not None and existing.user_id != user.id:
        raise AddressTaken(
            f"email: {address} already has a subscription; unsubscribe it first with the "
            "link in its mails, or use another address"
        )
    if existing is None and build_mailer() is None:
        raise MailUnavailable(NO_SMTP)
    sub = subs.subscribe(
        store,
        address,
        frequency=frequency,
        contents=contents,
        max_items=max_items,
        user_id=user.id,
    )
    if sub.confirmed:
        return sub, False
    send_confirmation(ctx, sub)
    return sub, True


def owned_subscription(ctx: WebContext, user: User, subscription_id: int) -> Subscription:
    sub = ctx.store.get_subscription(subscription_id)
    if sub is None or sub.user_id != user.id:
        raise NotFoundError(f"you have no subscription {subscription_id}")
    return sub


# -- the anonymous box ---------------------------------------------------------------------
@router.post("/subscribe", response_class=HTMLResponse, name="subscribe")
def subscribe(request: Request, ctx: Ctx, email: Text = "") -> HTMLResponse:
    text = email.strip()
    if not text:
        raise PaperfeedError("email: enter the address the digest should go to")
    try:
        address = check_email(text)
    except PaperfeedError:
        raise PaperfeedError(f"email: {text!r} is not an e-mail address") from None
    if build_mailer() is None:
        return render(
            request, ctx, "subscribe.html", {"email": address, "no_smtp": NO_SMTP}, status=503
        )
    user = current_user(request)
    existing = ctx.store.subscription_by_email(address)
    if existing is None:
        sub = subs.subscribe(ctx.store, address, user_id=user.id if user else None)
        send_confirmation(ctx, sub)
    elif not existing.active:
        send_confirmation(ctx, existing)
    # The same answer whether or not the address was subscribed already: the box must
    # not tell strangers who reads this site.
    return render(request, ctx, "subscribe.html", {"email": address, "no_smtp": None})


# -- links in mails --------------------------------------------------------------------------
@router.get(links.CONFIRM_PATH, response_class=HTMLResponse, name="confirm_subscription")
def confirm(request: Request, ctx: Ctx, token: str = "") -> HTMLResponse:
    """One click from the mail confirms (the token is signed, names the subscription and
    expires after 7 days)."""
    sub = subs.confirm(ctx.store, Signer.for_store(ctx.store), token)
    return render(
        request,
        ctx,
        "message.html",
        {
            "title": "Subscription confirmed",
            "message": f"{sub.email} will get the {sub.frequency} digest, "
            f"up to {sub.max_items} papers each time.",
        },
    )


def _unsubscribe_address(ctx: WebContext, token: str) -> str:
    payload = Signer.for_store(ctx.store).verify(subs.UNSUBSCRIBE_PURPOSE, token, max_age=None)
    return payload.partition(":")[2]


@router.get(links.UNSUBSCRIBE_PATH, response_class=HTMLResponse, name="unsubscribe_page")
def unsubscribe_page(request: Request, ctx: Ctx, token: str = "") -> HTMLResponse:
    address = _unsubscribe_address(ctx, token)
    return render(request, ctx, "unsubscribe.html", {"email": address, "token": token})


@router.post(links.UNSUBSCRIBE_PATH, response_class=HTMLResponse, name="unsubscribe")
async def unsubscribe(request: Request, ctx: Ctx, token: str = "") -> HTMLResponse:
    """The page's button, or RFC 8058's one-click POST (``List-Unsubscribe=One-Click``)."""
    if not token:
        form = await request.form()
        value = form.get("token")
        token = value if isinstance(value, str) else ""
    sub = subs.unsubscribe(ctx.store, Signer.for_store(ctx.store), token)
    return render(
        request,
        ctx,
        "message.html",
        {
            "title": "Unsubscribed",
            "message": f"{sub.email} will get no more digests. Subscribing again keeps "
            "the settings.",
        },
    )


# -- a user's subscriptions ----------------------------------------------------------------
@router.post("/account/subscriptions", name="save_subscription")
def save_subscription(
    request: Request,
    ctx: Ctx,
    subscription_id: Text = "",
    email: Text = "",
    frequency: Text = "daily",
    trending: Text = "",
    for_you: Text = "",
    searches: Text = "",
    authors: Text = "",
    categories: Text = "",
    max_items: Text = str(subs.DEFAULT_MAX_ITEMS),
) -> Response:
    from paperfeed.web.account_pages import account_page

    user = page_user(request)
    try:
        items = int(max_items.strip())
    except ValueError:
        raise PaperfeedError(f"max_items: {max_items!r} is not a number") from None
    contents = SubscriptionContents(
        trending=bool(trending),
        for_you=bool(for_you),
        searches=split_lines(searches),
        authors=split_lines(authors),
        categories=split_categories(categories),
    )
    try:
        sub, mailed = save_user_subscription(
            ctx,
            user,
            subscription_id=int(subscription_id) if subscription_id.strip().isdigit() else None,
            email=email,
            frequency=frequency,
            contents=contents,
            max_items=items,
        )
    except NotFoundError:
        raise
    except PaperfeedError as exc:
        return account_page(request, ctx, user, status=exc.status, error=f"Subscription: {exc}")
    if mailed:
        notice = (
            f"A confirmation link was mailed to {sub.email}: nothing is sent until it is followed."
        )
        return account_page(request, ctx, user, notice=notice)
    return RedirectResponse("/account?notice=subscription", status_code=303)


@router.post("/account/subscriptions/{subscription_id}/unsubscribe", name="account_unsubscribe")
def account_unsubscribe(request: Request, ctx: Ctx, subscription_id: int) -> Response:
    user = page_user(request)
    sub = owned_subscription(ctx, user, subscription_id)
    if sub.unsubscribed_at is None:
        ctx.store.update_subscription(sub.id, unsubscribed_at=dt.datetime.now(dt.UTC))
    return RedirectResponse("/account?notice=unsubscribed", status_code=303)


# -- the browser preview ---------------------------------------------------------------------
@router.get(links.PREVIEW_PATH, name="digest_preview")
def preview(
    request: Request,
    ctx: Ctx,
    subscription: int | None = None,
    date: str | None = None,
    format: str = "html",
) -> Response:
    """The digest a subscription would get for the period of ``date`` (default: the
    latest feed day), exactly as the mail would show it. Nothing is sent or recorded.
    Users see their own subscriptions; administrators any."""
    user = page_user(request)
    if format not in ("html", "text"):
        raise PaperfeedError(f"format: {format!r} is not 'html' or 'text'")
    if subscription is None:
        own = ctx.store.user_subscriptions(user.id)
        if not own:
            raise NotFoundError("you have no subscription yet: set one up on /account")
        sub = own[0]
    else:
        found = ctx.store.get_subscription(subscription)
        if found is None or (found.user_id != user.id and not user.is_admin):
            raise NotFoundError(f"you have no subscription {subscription}")
        sub = found
    day = parse_day(date) if date else (ctx.store.latest_feed_day() or dt.date.today())
    sender = build_sender(ctx.settings, ctx.store, searcher=ctx.engine)
    digest = sender.digest_for(sub, day)
    if digest.is_empty:
        return render(
            request,
            ctx,
            "message.html",
            {
                "title": "Nothing to send",
                "message": f"The digest of {sub.email} for {digest.period.label} would be "
                "empty, so it would not be sent.",
            },
        )
    unsubscribe = links.unsubscribe_url(
        sender.ctx.base_url, subs.unsubscribe_token(sender.signer, sub)
    )
    text, html = render_digest_parts(digest, sender.ctx, unsubscribe)
    if format == "text":
        return PlainTextResponse(text)
    return HTMLResponse(html)
