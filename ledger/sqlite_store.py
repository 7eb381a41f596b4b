"""SQLite log store: the embedded default (one file, WAL, durable commits).

Writers take SQLite's write lock with ``BEGIN IMMEDIATE`` before reading the
head, so two processes appending to one file serialise and never fork the log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ledger.keys import KeyRecord
from ledger.merkle import EMPTY_ROOT, NodeId
from ledger.store import (
    APPEND_ONLY_TABLES,
    KEY_COLUMNS,
    AppendPlan,
    Head,
    LogStore,
    SQLLogStore,
    key_from_row,
)

__all__ = ["SQLiteStore", "ledger_ddl"]

logger = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 60_000
_MAX_VARS = 900  # below SQLite's default limit on bound parameters

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ledger_entries (
        seq INTEGER PRIMARY KEY, leaf_key INTEGER NOT NULL, entry BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ledger_entries_leaf_key ON ledger_entries (leaf_key)",
    """CREATE TABLE IF NOT EXISTS ledger_nodes (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ledger_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, root BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_keys (
        key_id TEXT PRIMARY KEY, verifier_key TEXT NOT NULL, role TEXT NOT NULL,
        added_seq INTEGER NOT NULL, revoked_seq INTEGER, owner TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS ledger_checkpoints (
        size INTEGER PRIMARY KEY, note TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_cosignatures (
        size INTEGER NOT NULL, witness TEXT NOT NULL, note TEXT NOT NULL,
        PRIMARY KEY (size, witness))""",
    "INSERT OR IGNORE INTO ledger_head (id, size, root) VALUES (1, 0, ?)",
]


def _triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()}
                BEFORE {op} ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"""
            )
    return statements


def ledger_ddl() -> list[tuple[str, tuple[bytes, ...] | None]]:
    """Every statement that creates the log's tables and triggers (idempotent), with parameters."""
    out: list[tuple[str, tuple[bytes, ...] | None]] = []
    for statement in _SCHEMA:
        out.append((statement, (EMPTY_ROOT,) if "?" in statement else None))
    out += [(statement, None) for statement in _triggers()]
    return out


class SQLiteStore(SQLLogStore):
    """A log in one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk when append() returns, so acknowledged entries survive a crash.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA cache_size = -65536")

    def create(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement, params in ledger_ddl():
                    self._conn.execute(statement, params or ())
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def head(self) -> Head:
        with self._lock:
            row = self._conn.execute("SELECT size, root FROM ledger_head WHERE id = 1").fetchone()
        return Head(int(row[0]), bytes(row[1]))

    def append(self, build: Callable[[Head, LogStore], AppendPlan]) -> AppendPlan:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")  # the write lock: the head cannot move under us
            try:
                row = conn.execute("SELECT size, root FROM ledger_head WHERE id = 1").fetchone()
                plan = build(Head(int(row[0]), bytes(row[1])), self)
                conn.executemany(
                    "INSERT INTO ledger_entries (seq, leaf_key, entry) VALUES (?, ?, ?)",
                    plan.entries,
                )
                conn.executemany(
                    "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", plan.nodes
                )
                conn.executemany(
                    f"INSERT INTO ledger_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            k.key_id,
                            k.verifier_key,
                            k.role.value,
                            k.added_seq,
                            k.revoked_seq,
                            k.owner,
                        )
                        for k in plan.new_keys
                    ],
                )
                conn.executemany(
                    "UPDATE ledger_keys SET revoked_seq = ? WHERE key_id = ? AND revoked_seq IS NULL",
                    [(seq, key_id) for key_id, seq in plan.revoked],
                )
                if plan.head is not None:
                    conn.execute(
                        "UPDATE ledger_head SET size = ?, root = ? WHERE id = 1",
                        (plan.head.size, plan.head.root),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return plan

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        found: dict[NodeId, bytes] = {}
        with self._lock:
            for i in range(0, len(ids), _MAX_VARS // 2):
                part = ids[i : i + _MAX_VARS // 2]
                where = " OR ".join(["(level = ? AND idx = ?)"] * len(part))
                params = [v for node in part for v in node]
                for level, idx, h in self._conn.execute(
                    f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}", params
                ):
                    found[(level, idx)] = bytes(h)
        return found

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, KeyRecord]:
        found: dict[str, KeyRecord] = {}
        with self._lock:
            for i in range(0, len(key_ids), _MAX_VARS):
                part = list(key_ids[i : i + _MAX_VARS])
                marks = ", ".join("?" * len(part))
                for row in self._conn.execute(
                    f"SELECT {KEY_COLUMNS} FROM ledger_keys WHERE key_id IN ({marks})", part
                ):
                    record = key_from_row(row)
                    found[record.key_id] = record
        return found

    def add_checkpoint(self, size: int, note: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO ledger_checkpoints (size, note) VALUES (?, ?)", (size, note)
            )

    def add_cosignature(self, size: int, witness: str, note: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO ledger_cosignatures (size, witness, note) VALUES (?, ?, ?)",
                (size, witness, note),
            )
