"""The ``[web]`` table of ``paperfeed.toml``: how the site treats people.

Settings (all optional)::

    [web]
    accounts = false        # true: sign-up / log-in; false: single-user mode (the default)
    secure_cookies = false  # true: cookies always carry Secure (set it behind a TLS proxy
                            # that does not pass X-Forwarded-Proto); https requests get it anyway

``paperfeed serve --accounts / --single-user`` overrides ``accounts``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from paperfeed.errors import PaperfeedError
from paperfeed.fetch.config import config_path
from paperfeed.settings import Settings

KNOWN = ("accounts", "secure_cookies")


@dataclass(frozen=True, slots=True)
class WebConfig:
    accounts: bool = False
    secure_cookies: bool = False


def load_web_config(settings: Settings) -> WebConfig:
    path = config_path(settings)
    if not path.exists():
        return WebConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PaperfeedError(f"{path}: cannot read the settings file: {exc}") from None
    table = data.get("web", {})
    if not isinstance(table, dict):
        raise PaperfeedError(f"{path}: [web] must be a table")
    unknown = sorted(set(table) - set(KNOWN))
    if unknown:
        raise PaperfeedError(
            f"{path} [web]: unknown setting {unknown[0]!r}; valid ones: {', '.join(KNOWN)}"
        )
    values: dict[str, bool] = {}
    for key in KNOWN:
        if key in table:
            value = table[key]
            if not isinstance(value, bool):
                raise PaperfeedError(f"{path} [web] {key}: {value!r} is not true or false")
            values[key] = value
    return WebConfig(**values)
