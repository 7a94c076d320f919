"""Rebuild the bundled sample corpus from saved listing pages.

    python scripts/make_sample.py ../shared/data/hf-pages/*.txt

Each page is parsed with paperfeed's own listing parser and written as generic JSON
lines (one line per appearance, with feed_date / rank / listing), gzip-compressed into
src/paperfeed/sample/. Titles and abstracts are arXiv metadata (CC0).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
from pathlib import Path

from paperfeed.sample import SAMPLE_FILE
from paperfeed.sources import get_parser
from paperfeed.sources.base import ParseContext, Parsed

OUT = Path(__file__).resolve().parent.parent / "src" / "paperfeed" / "sample" / SAMPLE_FILE
# Listing pages print "Mar 13" without a year; pin the reference day so the sample is
# reproducible instead of depending on when the script runs.
REFERENCE_DAY = dt.date(2026, 11, 22)


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    parse = get_parser("listing")
    lines = 0
    # mtime=0 keeps the gzip bytes identical between runs.
    with OUT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for path in sorted(paths):
            listing = Path(path).name
            ctx = ParseContext(source="listing", listing=listing, path=path, today=REFERENCE_DAY)
            with open(path, "rb") as fh:
                for item in parse(fh, ctx):
                    if not isinstance(item, Parsed) or item.entry is None:
                        continue
                    paper = item.paper
                    record = {
                        "title": paper.title,
                        "abstract": paper.abstract,
                        "authors": list(paper.authors),
                        "feed_date": item.entry.feed_date.isoformat()
                        if item.entry.feed_date
                        else None,
                        "rank": item.entry.rank,
                        "listing": f"daily-papers/{listing}",
                    }
                    gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                    lines += 1
    print(f"{lines} appearances written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
