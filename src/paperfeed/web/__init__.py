"""The web face: server-rendered pages, the JSON API, the Hugging Face-compatible papers API
and RSS / Atom feeds, built by :func:`create_app` from a store, a search engine and
settings (no global state: every app holds its own)."""

from __future__ import annotations

from paperfeed.web.app import create_app
from paperfeed.web.context import EngineProvider, WebContext

__all__ = ["EngineProvider", "WebContext", "create_app"]
