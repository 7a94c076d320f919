"""People: accounts, passwords, sessions, API tokens, signed links.

:class:`~paperfeed.accounts.service.Accounts` is what the web app and the CLI call; the
rows live in the store (:mod:`paperfeed.store.accounts`).
"""

from paperfeed.accounts.service import (
    Accounts,
    AuthError,
    ForbiddenError,
    LoginResult,
    NewToken,
    RateLimitedError,
)
from paperfeed.accounts.signing import SignatureError, Signer

__all__ = [
    "Accounts",
    "AuthError",
    "ForbiddenError",
    "LoginResult",
    "NewToken",
    "RateLimitedError",
    "SignatureError",
    "Signer",
]
