"""CSV export: one row per paper under a fixed header (read back by ``sources/csv_table``).

Lists are joined in one cell: authors with ``"; "``, categories with a space. Dates are
ISO ``YYYY-MM-DD``; missing values are empty cells. Rows end with CRLF (RFC 4180).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from paperfeed.model import Paper

COLUMNS = (
    "id",
    "arxiv_id",
    "doi",
    "title",
    "abstract",
    "authors",
    "categories",
    "published",
    "updated",
    "url",
    "pdf_url",
    "code_url",
    "project_url",
    "upvotes",
)


def row(paper: Paper) -> list[str]:
    return [
        paper.id,
        paper.arxiv_id or "",
        paper.doi or "",
        paper.title,
        paper.abstract,
        "; ".join(paper.authors),
        " ".join(paper.categories),
        paper.published.isoformat() if paper.published else "",
        paper.updated.isoformat() if paper.updated else "",
        paper.links.abs or "",
        paper.links.pdf or "",
        paper.links.code or "",
        paper.links.project or "",
        "" if paper.upvotes is None else str(paper.upvotes),
    ]


def write(papers: Iterable[Paper], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for paper in papers:
        writer.writerow(row(paper))
        count += 1
    return count
