"""Ingest: files in, papers merged into the store, bad records quarantined.

Records are written in batches, each batch one transaction. A run killed at any moment
leaves the store as it was after the last whole batch, and because every write is an
idempotent merge, running the same ingest again completes it without duplicates.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import lzma
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paperfeed.errors import FormatError, NotFoundError
from paperfeed.model import IngestReport
from paperfeed.sources import FORMATS, detect_format, get_parser
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from paperfeed.store import IncomingRecord, IncomingRejection, Store

BATCH_SIZE = 1000
_HEAD_BYTES = 64 * 1024

ProgressCallback = Callable[[int], None]
"""Called with the number of input bytes consumed so far (of the file as stored on disk)."""


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the underlying file (compressed bytes for .gz inputs)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _GuardedReader(io.RawIOBase):
    """Turns a decompression failure mid-file (a truncated .gz) into end-of-input.

    The records decoded before the damage are kept; the failure is reported afterwards
    as one quarantined record instead of aborting the whole file.
    """

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        try:
            # read1 returns what one decompression step gives, so the data before a
            # truncation point comes out before the error does.
            data = self._inner.read1(min(len(buffer), 1 << 16))  # type: ignore[attr-defined]
        except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            self.error = str(exc) or type(exc).__name__
            return 0
        n = len(data)
        buffer[:n] = data
        return n


@dataclass(frozen=True, slots=True)
class _Opened:
    stream: IO[bytes]
    counter: _CountingReader
    guard: _GuardedReader | None
    head: bytes


@contextmanager
def _open_input(path: Path) -> Iterator[_Opened]:
    raw = path.open("rb")
    counter = _CountingReader(raw)
    try:
        buffered: IO[bytes] = io.BufferedReader(counter, buffer_size=1 << 20)
        name = path.name.lower()
        guard: _GuardedReader | None = None
        reader: IO[bytes] = buffered
        if name.endswith((".gz", ".bz2", ".xz")):
            # Closed with `raw` in the finally clause below; no context manager fits here.
            inner: IO[bytes]
            if name.endswith(".gz"):
                inner = gzip.GzipFile(fileobj=buffered)  # type: ignore[assignment]
            elif name.endswith(".bz2"):
                inner = bz2.BZ2File(buffered)
            else:
                inner = lzma.LZMAFile(buffered)  # noqa: SIM115
            guard = _GuardedReader(inner)
            reader = io.BufferedReader(guard, buffer_size=1 << 20)
        # Peek without consuming, so that the parser still sees the whole input.
        head = reader.peek(_HEAD_BYTES)[:_HEAD_BYTES]  # type: ignore[attr-defined]
        if guard is not None and guard.error is not None and not head:
            raise FormatError(f"{path}: cannot decompress: {guard.error}")
        yield _Opened(reader, counter, guard, head)
    finally:
        raw.close()


def listing_name(path: Path) -> str:
    """The listing identity of a file: its name without compression suffix."""
    name = path.name
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    return name


def ingest_file(
    store: Store,
    path: str | Path,
    *,
    fmt: str | None = None,
    today: dt.date | None = None,
    listing: str | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int = BATCH_SIZE,
    refresh_index: bool = True,
    index_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Parse one file and merge it into the store; returns what happened.

    Raises NotFoundError for a missing file and FormatError when nothing in it can be read
    as the requested or detected format. ``KeyboardInterrupt`` is let through after the
    run is recorded as interrupted; everything written before it stays consistent.

    With ``refresh_index`` (the default) the keyword index is brought up to date after
    the file is stored (``index_progress(done, total)`` follows it).
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise FormatError(f"{p}: is a directory; pass the files inside it")
    if fmt is not None and fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    with _open_input(p) as opened:
        chosen = fmt or detect_format(str(p), opened.head)
        parser = get_parser(chosen)
        ctx = ParseContext(
            source=chosen,
            listing=listing or listing_name(p),
            path=str(p),
            today=today or dt.date.today(),
        )
        report = IngestReport(path=str(p), format=chosen)
        run_id = store.start_ingest_run(str(p), chosen)
        records: list[IncomingRecord] = []
        rejections: list[IncomingRejection] = []

        def flush() -> None:
            nonlocal report, records, rejections
            if not records and not rejections:
                return
            result = store.write_batch(records, rejections)
            report = IngestReport(
                path=report.path,
                format=report.format,
                added=report.added + result.added,
                merged=report.merged + result.merged,
                unchanged=report.unchanged + result.unchanged,
                quarantined=report.quarantined + result.quarantined,
                appearances=report.appearances + result.appearances,
            )
            records, rejections = [], []
            if progress is not None:
                progress(opened.counter.count)

        status = "failed"
        try:
            for item in parser(opened.stream, ctx):
                if isinstance(item, Parsed):
                    records.append(IncomingRecord(item.paper, item.entry))
                elif isinstance(item, Rejected):
                    rejections.append(
                        IncomingRejection(
                            source=chosen,
                            listing=ctx.listing,
                            path=str(p),
                            locator=item.locator,
                            reason=item.reason,
                            raw=item.raw,
                        )
                    )
                if len(records) + len(rejections) >= batch_size:
                    flush()
            if opened.guard is not None and opened.guard.error is not None:
                rejections.append(
                    IncomingRejection(
                        source=chosen,
                        listing=ctx.listing,
                        path=str(p),
                        locator="end of file",
                        reason=f"compressed file is truncated or corrupt: {opened.guard.error}",
                        raw="",
                    )
                )
            flush()
            status = "done"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            store.finish_ingest_run(run_id, report, status)
        if refresh_index:
            store.refresh_keyword_index(progress=index_progress)
        if report.read == 0 and report.quarantined == 0:
            raise FormatError(f"{p}: no paper records found (read as {chosen})")
        return report
