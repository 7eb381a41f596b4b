"""Rewriting history: refused by the database, and detected by verify when forced underneath."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from ledger.errors import VerificationFailed
from ledger.log import Log
from ledger.sqlite_store import SQLiteStore
from tests.factories import new_log, registered_signer, submission


def _raw_connection(
    backend: str, store_url: str
) -> sqlite3.Connection | psycopg.Connection[tuple[object, ...]]:
    if backend == "sqlite":
        return sqlite3.connect(store_url, isolation_level=None)
    return psycopg.connect(store_url, autocommit=True)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET entry = entry WHERE seq = 3",
        "DELETE FROM ledger_entries WHERE seq = 3",
        "UPDATE ledger_nodes SET hash = hash WHERE level = 0 AND idx = 3",
        "DELETE FROM ledger_nodes WHERE level = 1",
        "DELETE FROM ledger_checkpoints",
    ],
)
def test_raw_sql_rewrites_are_refused_by_the_database(
    log: Log, backend: str, store_url: str, statement: str
) -> None:
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(5)])
    log.checkpoint()
    head = log.head()
    conn = _raw_connection(backend, store_url)
    with pytest.raises((sqlite3.DatabaseError, psycopg.DatabaseError), match="append-only"):
        conn.execute(statement)
    conn.close()
    assert log.head() == head
    log.verify(workers=1)


def test_truncate_is_refused_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from ledger.postgres_store import PostgresStore

    log, _ = new_log(PostgresStore(postgres_url))
    with (
        psycopg.connect(postgres_url, autocommit=True) as conn,
        pytest.raises(psycopg.DatabaseError, match="append-only"),
    ):
        conn.execute("TRUNCATE ledger_entries")
    assert len(log) == 1
    log.close()


def _drop_triggers(
    conn: sqlite3.Connection | psycopg.Connection[tuple[object, ...]], backend: str
) -> None:
    if backend == "sqlite":
        names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ]
        for name in names:
            conn.execute(f"DROP TRIGGER {name}")
    else:
        for table in ("ledger_entries", "ledger_nodes", "ledger_checkpoints"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")


def test_rewritten_entry_is_found_by_verify_at_its_seq(
    log: Log, backend: str, store_url: str
) -> None:
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(20)])
    log.checkpoint()
    target = 9
    forged = log.entry(target).raw.replace(b'"mass_kg":420', b'"mass_kg":42')
    conn = _raw_connection(backend, store_url)
    _drop_triggers(conn, backend)
    mark = "?" if backend == "sqlite" else "%s"
    conn.execute(f"UPDATE ledger_entries SET entry = {mark} WHERE seq = {mark}", (forged, target))
    conn.close()
    with pytest.raises(VerificationFailed, match=f"entry {target}: signature") as caught:
        log.verify(workers=1)
    assert caught.value.seq == target


def test_rewritten_tree_node_is_found_by_verify(
    log: Log, backend: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ledger.log

    monkeypatch.setattr(ledger.log, "_KEPT_LEVEL", 0)
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(20)])
    log.inclusion_proof(3)  # proofs keep node (2, 1) in memory; verify reads the store
    assert (2, 1) in log._nodes._kept
    conn = _raw_connection(backend, store_url)
    _drop_triggers(conn, backend)
    mark = "?" if backend == "sqlite" else "%s"
    conn.execute(f"UPDATE ledger_nodes SET hash = {mark} WHERE level = 2 AND idx = 1", (bytes(32),))
    conn.close()
    with pytest.raises(VerificationFailed, match=r"node \(2, 1\)") as caught:
        log.verify(workers=1)
    assert caught.value.seq == 7  # the last leaf under node (2, 1)


def test_bytes_changed_in_the_sqlite_file_are_found_by_verify(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    log, _ = new_log(SQLiteStore(path))
    signer = registered_signer(log)
    log.append([submission(signer, i, note=f"lot-{i:04d}") for i in range(200)])
    target = 137
    log.close()  # closing checkpoints the WAL into the main file
    data = path.read_bytes()
    needle = b'"note":"lot-0135"'  # entry 137 holds i = 135 (entries 0 and 1 are registry entries)
    assert data.count(needle) == 1
    path.write_bytes(data.replace(needle, b'"note":"lot-0136"'))
    reopened = Log(SQLiteStore(path))
    with pytest.raises(VerificationFailed) as caught:
        reopened.verify(workers=1)
    assert caught.value.seq == target
    reopened.close()
