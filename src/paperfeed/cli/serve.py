"""``paperfeed serve``: the web app and APIs over a store, with uvicorn."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import click

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    open_cli_store,
    out,
    semantic_installed,
)
from paperfeed.errors import PaperfeedError
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_port(host: str, port: int) -> None:
    """Fail with a clear message (not a traceback) when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PaperfeedError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another one with --port"
            ) from None


def run_server(
    settings: Settings,
    store: Store,
    *,
    host: str,
    port: int,
    keyword_only: bool = False,
    access_log: bool = True,
    engine: SearchEngine | None = None,
) -> None:
    """Serve until Ctrl-C; the search engine (and its model) loads in the background
    unless a ready one is given."""
    import uvicorn

    from paperfeed.index import semantic
    from paperfeed.web import create_app

    check_port(host, port)
    use_semantic = semantic_installed() and not keyword_only

    def build_engine() -> SearchEngine:
        return semantic.open_engine(settings, store, semantic=use_semantic)

    app = create_app(settings, store, engine or build_engine)
    shown = f"[{host}]" if ":" in host else host
    out.print(
        f"Serving {settings.data_dir} at [bold]http://{shown}:{port}/[/bold] (Ctrl-C to stop)"
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        # The app's own error contract answers every error; no server banner needed.
        server_header=False,
    )
    # uvicorn shuts down cleanly on Ctrl-C, then re-raises it: stopping is not an error.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    out.print("Stopped.")


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--keyword-only",
    is_flag=True,
    help="Do not load the embedding model: keyword search only, no similar papers.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log every request on stderr.",
)
@data_dir_option
def serve(
    host: str, port: int, keyword_only: bool, access_log: bool, data_dir: Path | None
) -> None:
    """Run the web app: feeds, search, paper pages, RSS / Atom, the JSON API (/api/v1,
    documented at /docs) and the Hugging Face-compatible papers API."""
    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        run_server(
            settings, store, host=host, port=port, keyword_only=keyword_only, access_log=access_log
        )
