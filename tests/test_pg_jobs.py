"""Job leases (Store.acquire_job): whoever holds a job's lease does it, the others skip it;
on PostgreSQL across real processes, on SQLite across threads and processes too."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from paperfeed.cli.serve import LeasedService
from paperfeed.errors import StoreError
from paperfeed.settings import Settings
from paperfeed.store import Store, open_store
from tests.pg_server import PgServer

ROUNDS = 40

# One process doing "rounds": a round is done by whoever holds the lease when it is not
# marked done yet; doing it appends a line to the log (outside the store, so a double
# run would show), then marks it done in the store.
WORKER = """
import os, sys, time
from paperfeed.settings import Settings
from paperfeed.store import open_store

data_dir, url, log, rounds = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
store = open_store(Settings.resolve(data_dir, url))
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    lease = store.acquire_job("rounds")
    if lease is None:
        time.sleep(0.001)
        continue
    with lease:
        done = int(store.get_setting("rounds.done") or 0)
        if done >= rounds:
            break
        with open(log, "a") as fh:
            fh.write(f"{done} {os.getpid()}\\n")
        time.sleep(0.002)  # the work: long enough for the other process to try
        store.set_setting("rounds.done", str(done + 1))
store.close()
"""


def test_a_held_job_is_refused_until_released(store: Store) -> None:
    lease = store.acquire_job("digests")
    assert lease is not None
    assert lease.held
    assert store.acquire_job("digests") is None
    other = store.acquire_job("trainer")  # another job is independent
    assert other is not None
    lease.release()
    lease.release()  # harmless
    assert not lease.held
    with store.acquire_job("digests") as again:  # type: ignore[union-attr]
        assert again.held
    assert not again.held
    other.release()
    with pytest.raises(StoreError, match="invalid job name"):
        store.acquire_job("")


def test_a_killed_holder_frees_the_job(store_settings: Settings, tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from paperfeed.settings import Settings\n"
        "from paperfeed.store import open_store\n"
        "s = open_store(Settings.resolve(sys.argv[1], sys.argv[2] or None))\n"
        "lease = s.acquire_job('fetch')\n"
        "assert lease is not None\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    args = [str(store_settings.data_dir), store_settings.database_url or ""]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"held"
        with open_store(store_settings) as store:
            assert store.acquire_job("fetch") is None
            proc.kill()
            proc.communicate(timeout=30)
            deadline = time.monotonic() + 30
            lease = store.acquire_job("fetch")
            while lease is None and time.monotonic() < deadline:
                time.sleep(0.1)  # the server notices the lost session
                lease = store.acquire_job("fetch")
            assert lease is not None
            lease.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_two_processes_do_each_round_exactly_once(store_settings: Settings, tmp_path: Path) -> None:
    open_store(store_settings).close()  # created and migrated before the race
    log = tmp_path / "rounds.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(store_settings.data_dir), store_settings.database_url or "", str(log)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args, str(ROUNDS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr.decode()
    lines = log.read_text().split()
    rounds = Counter(int(x) for x in lines[::2])
    assert sorted(rounds) == list(range(ROUNDS))
    assert set(rounds.values()) == {1}  # no round done twice


class CountingService:
    """A real service of the server's kind: counts its starts and stops."""

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> None:
        self.stops += 1


def test_a_leased_service_runs_in_one_place_and_moves_when_it_stops(
    pg_server: PgServer, settings: Settings
) -> None:
    with pg_server.fresh_database() as url:
        pg = dataclasses.replace(settings, database_url=url)
        a_store, b_store = open_store(pg), open_store(pg)
        a_job, b_job = CountingService(), CountingService()
        a = LeasedService(a_store, "trainer", a_job, retry=0.05)
        b = LeasedService(b_store, "trainer", b_job, retry=0.05)
        try:
            a.start()
            _wait(lambda: a.running)
            b.start()
            time.sleep(0.5)
            assert a.running
            assert not b.running
            assert (a_job.starts, b_job.starts) == (1, 0)
            a.stop()  # the holder stops: the other process takes the job over
            _wait(lambda: b.running)
            assert (a_job.starts, a_job.stops, b_job.starts) == (1, 1, 1)
        finally:
            a.stop()
            b.stop()
            a_store.close()
            b_store.close()
        assert b_job.stops == 1


def _wait(condition: object, timeout: float = 20.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sqlite_leases_exclude_threads_of_one_process(sqlite_store: Store) -> None:
    held: list[object] = []
    barrier = threading.Barrier(4)

    def take() -> None:
        barrier.wait()
        lease = sqlite_store.acquire_job("digests")
        if lease is not None:
            held.append(lease)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 1
