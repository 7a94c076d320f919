"""The e-mail digest: what goes in it (compose), how it looks (render), how it is sent
(mailer, SMTP), exactly once per subscription and period (runner), and when (schedule).

Subscriptions themselves (double opt-in, signed confirm / unsubscribe links) are in
:mod:`paperfeed.digest.subscriptions`.
"""
