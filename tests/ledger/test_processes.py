"""Real processes against one log: concurrent appenders never fork it; a SIGKILL loses only its batch."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ledger.log import Log
from tests.conftest import ROOT
from tests.factories import registered_signer


def _spawn(store_url: str, signer_key: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.append_worker", store_url, signer_key, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_appending_concurrently_make_one_chain(log: Log, store_url: str) -> None:
    signer = registered_signer(log)
    start = len(log)
    workers = [
        _spawn(store_url, signer.to_string(), "--batches", "40", "--size", "25", "--tag", tag)
        for tag in ("a", "b")
    ]
    for w in workers:
        _out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    assert len(log) == start + 2 * 40 * 25
    result = log.verify(workers=1)  # one chain: no gap, no duplicate, no fork
    assert result.size == len(log)
    seen = collections.Counter(
        (e.body["tag"], e.body["batch"], e.body["i"]) for e in log.entries(start, len(log))
    )
    assert len(seen) == 2 * 40 * 25
    assert set(seen.values()) == {1}
    # Each batch landed contiguously: batches are atomic, interleaving happens between them.
    entries = log.entries(start, len(log))
    for lo in range(0, len(entries), 25):
        assert len({(e.body["tag"], e.body["batch"]) for e in entries[lo : lo + 25]}) == 1


def _writing(backend: str, store_url: str) -> bool:
    """True once the worker's append transaction is writing rows (not yet committed)."""
    if backend == "sqlite":
        wal = Path(store_url + "-wal")
        return wal.exists() and wal.stat().st_size > 4 * 1024 * 1024
    with psycopg.connect(store_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE state = 'active' AND query LIKE 'COPY ledger_%%'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("moment", ["while-writing", "after-commit"])
def test_sigkill_in_the_middle_of_a_large_batch_leaves_all_or_none(
    log: Log, backend: str, store_url: str, moment: str
) -> None:
    signer = registered_signer(log)
    log.checkpoint()
    before = len(log)
    size = 60_000
    worker = _spawn(store_url, signer.to_string(), "--size", str(size), "--presigned")
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    if moment == "while-writing":
        while not _writing(backend, store_url):
            assert time.monotonic() < deadline and worker.poll() is None, "never saw the write"
            time.sleep(0.002)
    else:
        assert worker.stdout.readline().startswith("appended")
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=60)
    expected = before if moment == "while-writing" else before + size
    assert len(log) == expected
    assert log.verify(workers=1).size == expected
