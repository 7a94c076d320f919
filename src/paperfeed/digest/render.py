"""Digest and confirmation e-mails as MIME messages: a plain-text and an HTML part.

Templates live in ``digest/templates``. The HTML is rendered with autoescaping on, so a
paper title like ``<script>`` or ``Tom & Jerry`` arrives as text, never as markup; the text
part needs no escaping. Headers: ``List-Unsubscribe`` (the signed https link and, when
configured, a mailto) with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058),
so mail clients can offer a one-click unsubscribe that needs no page visit.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cache
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from paperfeed.digest import links
from paperfeed.digest.compose import Digest
from paperfeed.model import Paper, Subscription

ABSTRACT_CHARS = 400


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("paperfeed.digest", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True, slots=True)
class MailContext:
    """Where links point and who the mail is from."""

    base_url: str
    sender: str  # "paperfeed <digest@example.org>" or an address
    site_name: str = "paperfeed"


def _authors(paper: Paper) -> str:
    names = list(paper.authors)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _abstract(paper: Paper) -> str:
    text = " ".join((paper.abstract or "").split())
    return textwrap.shorten(text, ABSTRACT_CHARS, placeholder=" …") if text else ""


def _site(base_url: str) -> str:
    return urlsplit(base_url).netloc or base_url


def digest_subject(digest: Digest) -> str:
    n = len(digest.picks)
    return f"Papers of {digest.period.label}: {n} pick{'s' if n != 1 else ''}"


def message_id(subscription: Subscription, period_key: str, base_url: str) -> str:
    """The same for every attempt at one digest, so a resend after a crash is one thread."""
    host = urlsplit(base_url).hostname or "paperfeed.local"
    return f"<digest.{subscription.id}.{period_key}@{host}>"


def _message(
    ctx: MailContext, to: str, subject: str, text: str, html: str, msg_id: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = ctx.sender if "<" in ctx.sender else formataddr((ctx.site_name, ctx.sender))
    msg["To"] = to
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    if msg_id:
        msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def render_digest_parts(digest: Digest, ctx: MailContext, unsubscribe_url: str) -> tuple[str, str]:
    """The (text, html) bodies of a digest; the browser preview shows the html one."""
    sub = digest.subscription
    n = len(digest.picks)
    values = {
        "digest": digest,
        "subject": digest_subject(digest),
        "heading": f"{ctx.site_name}: {digest.period.label}",
        "intro": f"{n} paper{'s' if n != 1 else ''} picked for you, each with the reason why.",
        "frequency": sub.frequency,
        "email": sub.email,
        "site": _site(ctx.base_url),
        "settings_url": links.settings_url(ctx.base_url),
        "unsubscribe_url": unsubscribe_url,
        "paper_url": lambda pid: links.paper_url(ctx.base_url, pid),
        "authors": _authors,
        "abstract": _abstract,
    }
    env = _env()
    return env.get_template("digest.txt").render(values), env.get_template("digest.html").render(
        values
    )


def digest_message(
    digest: Digest,
    ctx: MailContext,
    *,
    unsubscribe_url: str,
    msg_id: str,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    text, html = render_digest_parts(digest, ctx, unsubscribe_url)
    msg = _message(ctx, digest.subscription.email, digest_subject(digest), text, html, msg_id)
    targets = [f"<{unsubscribe_url}>"]
    if unsubscribe_mailto:
        targets.append(f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>")
    msg["List-Unsubscribe"] = ", ".join(targets)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"{ctx.site_name} digest <digest.{_site(ctx.base_url).split(':')[0]}>"
    return msg


def confirmation_message(
    subscription: Subscription, ctx: MailContext, *, confirm_url: str
) -> EmailMessage:
    values = {
        "frequency": subscription.frequency,
        "email": subscription.email,
        "site": _site(ctx.base_url),
        "confirm_url": confirm_url,
    }
    env = _env()
    return _message(
        ctx,
        subscription.email,
        f"Confirm your {ctx.site_name} digest subscription",
        env.get_template("confirm.txt").render(values),
        env.get_template("confirm.html").render(values),
    )
