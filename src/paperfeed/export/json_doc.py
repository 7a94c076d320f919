"""JSON exports: a JSON array (``json``) or one object per line (``jsonl``).

Each object is :meth:`paperfeed.model.Paper.to_json`. Both are written paper by paper, so
exporting everything never holds the whole document in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from paperfeed.model import Paper


def write(papers: Iterable[Paper], out: TextIO) -> int:
    """A JSON array, one paper per line inside it."""
    count = 0
    out.write("[")
    for paper in papers:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(paper.to_json(), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_lines(papers: Iterable[Paper], out: TextIO) -> int:
    """JSON lines: one paper object per line."""
    count = 0
    for paper in papers:
        out.write(json.dumps(paper.to_json(), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
