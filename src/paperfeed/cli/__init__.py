"""The ``paperfeed`` command: parses arguments, calls the library, formats the output.

Every command that prints data takes ``--json``. Errors are one line on stderr and a
non-zero exit code; a traceback means a bug. Each module of this package holds one family
of commands; they are attached to ``main`` here, in one visible list.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from paperfeed import __version__
from paperfeed.cli import (
    accounts,
    bench,
    demo,
    digest,
    fetch,
    library,
    recommend,
    search,
    serve,
    store_admin,
)
from paperfeed.cli.common import ErrorReportingGroup, data_dir_option


@click.group(cls=ErrorReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperfeed")
@data_dir_option
def main(data_dir: Path | None) -> None:
    """paperfeed: your own daily research-paper feed.

    Ingest paper lists (arXiv, Hugging Face daily papers, saved listing pages, BibTeX,
    RIS, CSV, JSONL, ...), browse them by feed day, search them, export them.
    Everything lives in one data directory (--data-dir or PAPERFEED_HOME).
    """
    del data_dir
    # bibtexparser logs every broken block; the quarantine already reports them.
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)


for command in (
    library.init,
    library.ingest,
    library.papers,
    library.stats,
    library.quarantine,
    library.export,
    search.search,
    search.similar,
    search.index,
    search.eval_command,
    demo.demo,
    serve.serve,
    bench.bench,
    fetch.fetch,
    fetch.sources,
    accounts.user,
    digest.subscribe,
    digest.unsubscribe,
    digest.subscriptions,
    digest.digest,
    recommend.like,
    recommend.dislike,
    recommend.unlike,
    recommend.for_you,
    recommend.recommend,
    recommend.topics,
    recommend.map_command,
    store_admin.migrate_store,
):
    main.add_command(command)
