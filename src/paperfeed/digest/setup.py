"""Building a digest sender from the settings: what the CLI and ``serve`` both call."""

from __future__ import annotations

from paperfeed.accounts.signing import Signer
from paperfeed.digest.compose import Recommender, Searcher
from paperfeed.digest.mailer import SmtpMailer, SmtpSettings
from paperfeed.digest.render import MailContext
from paperfeed.digest.runner import DigestSender
from paperfeed.digest.schedule import load_digest_config
from paperfeed.settings import Settings
from paperfeed.store import Store


def mail_context(settings: Settings) -> MailContext:
    config = load_digest_config(settings)
    smtp = SmtpSettings.from_env()
    sender = smtp.sender if smtp else f"{config.site_name} <paperfeed@localhost>"
    return MailContext(base_url=config.base_url, sender=sender, site_name=config.site_name)


def build_sender(
    settings: Settings,
    store: Store,
    *,
    searcher: Searcher | None = None,
    recommender: Recommender | None = None,
) -> DigestSender:
    config = load_digest_config(settings)
    return DigestSender(
        store=store,
        ctx=mail_context(settings),
        signer=Signer.for_store(store),
        searcher=searcher,
        recommender=recommender,
        unsubscribe_mailto=config.unsubscribe_mailto,
    )


def build_mailer() -> SmtpMailer | None:
    """A mailer for the SMTP server of ``PAPERFEED_SMTP_*``; None when none is configured."""
    smtp = SmtpSettings.from_env()
    return None if smtp is None else SmtpMailer(smtp)
