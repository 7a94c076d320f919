"""Job leases for stores without a server (SQLite): one lock file per job beside the store.

``flock`` on a file of its own: the kernel frees it when the holder closes the file or
dies, so a killed process never leaves a job taken; two open file descriptions conflict
even within one process, so two threads of one server exclude each other as well.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from pathlib import Path

from paperfeed.errors import StoreError
from paperfeed.store.base import JobLease

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def job_lock_path(directory: Path, job: str) -> Path:
    if not job or len(job) > 100:
        raise StoreError(f"invalid job name {job!r}: 1 to 100 characters")
    return directory / f"{_SAFE.sub('-', job)}.lock"


class FileJobLease(JobLease):
    def __init__(self, job: str, fd: int) -> None:
        super().__init__(job)
        self._fd: int | None = fd
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._guard:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None


def acquire_file_job(directory: Path, job: str) -> FileJobLease | None:
    """The job's lease if no one holds it, else None (never waits)."""
    path = job_lock_path(directory, job)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the job lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from None
    return FileJobLease(job, fd)
