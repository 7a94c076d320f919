"""Job leases of a PostgreSQL store: session advisory locks on a connection of their own.

The lease holds one connection (outside the pool, which serves requests) for as long as
the job is held; the server frees the lock when that session ends, so a worker killed
mid-job never keeps the job from the others. Locks use the two-key form (a paperfeed
class id, the job name's hash), a key space apart from the store's single-key locks.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from paperfeed.errors import StoreError
from paperfeed.store.base import JobLease

# "pfjb": the first key of every job lock, so they never meet another application's.
JOB_LOCK_CLASS = 0x70666A62
CONNECT_TIMEOUT = 10


class AdvisoryJobLease(JobLease):
    def __init__(self, job: str, conn: psycopg.Connection[Any]) -> None:
        super().__init__(job)
        self._conn: psycopg.Connection[Any] | None = conn
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        with self._guard:
            if self._conn is None or self._conn.closed:
                return False
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:  # the session is gone, and the lock with it
                return False
            return True

    def release(self) -> None:
        with self._guard:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (JOB_LOCK_CLASS, self.job))
        except psycopg.Error:
            pass  # a lost session has released the lock already
        finally:
            conn.close()


def acquire_advisory_job(conninfo: str, location: str, job: str) -> AdvisoryJobLease | None:
    """The job's lease if no session holds it, else None (never waits)."""
    if not job or len(job) > 100:
        raise StoreError(f"invalid job name {job!r}: 1 to 100 characters")
    try:
        conn = psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"paperfeed job {job}"[:63],
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot reach the PostgreSQL store at {location}: {exc}") from None
    try:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (JOB_LOCK_CLASS, job)
        ).fetchone()
    except psycopg.Error as exc:
        conn.close()
        raise StoreError(f"cannot take the {job!r} job lock at {location}: {exc}") from None
    if row is None or not row[0]:
        conn.close()
        return None
    return AdvisoryJobLease(job, conn)
