"""The storage interface of the log, and the SQL both database backends share.

Tables (``ledger_`` prefix):

- ``entries(seq, leaf_key, entry)``: the canonical entry bytes; ``leaf_key`` is the
  first 8 bytes of the leaf hash as a signed integer, indexed, to find an entry by
  hash without a 32-byte random-key index on the write path.
- ``nodes(level, idx, hash)``: every perfect-subtree hash (level 0 = leaf hashes),
  so any proof is O(log n) point reads.
- ``head``: one row, the current size and root; an append locks it, so concurrent
  writers serialise and the log never forks.
- ``keys``: the key registry (a projection of the registry entries).
- ``checkpoints(size, note)`` and ``cosignatures(size, witness, note)``.

Entries, nodes and checkpoints are append-only in the database itself: triggers
refuse UPDATE and DELETE.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ledger.keys import KeyRecord, KeyRole
from ledger.merkle import NodeId

__all__ = ["AppendPlan", "Head", "LogStore", "SQLLogStore", "StoredKey", "leaf_key"]

T = TypeVar("T")


def leaf_key(leaf: bytes) -> int:
    """The indexed 64-bit prefix of a leaf hash."""
    return int.from_bytes(leaf[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    root: bytes


StoredKey = KeyRecord


@dataclass(slots=True)
class AppendPlan:
    """What one append transaction writes, computed while the head is locked."""

    entries: list[tuple[int, int, bytes]] = field(default_factory=list)  # seq, leaf_key, entry
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # level, idx, hash
    new_keys: list[KeyRecord] = field(default_factory=list)
    revoked: list[tuple[str, int]] = field(default_factory=list)  # key_id, revoked_seq
    head: Head | None = None


class LogStore(abc.ABC):
    """A database holding one log. Implementations: SQLite and PostgreSQL."""

    @abc.abstractmethod
    def create(self) -> None:
        """Create tables and append-only triggers if missing (idempotent)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def head(self) -> Head: ...

    @abc.abstractmethod
    def append(self, build: Callable[[Head, LogStore], AppendPlan]) -> AppendPlan:
        """Lock the head, call ``build(head, self)`` and write its plan in one transaction.

        ``build`` may read nodes and keys through ``self`` and may raise; then
        nothing is written.
        """

    @abc.abstractmethod
    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]: ...

    @abc.abstractmethod
    def read_level(self, level: int, start: int, end: int) -> list[bytes]:
        """Stored hashes ``(level, start) .. (level, end - 1)`` in order."""

    @abc.abstractmethod
    def read_entries(self, start: int, end: int) -> list[bytes]:
        """Entry bytes of ``seq`` in ``[start, end)``, in order."""

    @abc.abstractmethod
    def find_by_leaf_key(self, key: int) -> list[tuple[int, bytes]]:
        """``(seq, entry)`` of every entry whose leaf hash starts with ``key``."""

    @abc.abstractmethod
    def keys(self) -> list[KeyRecord]: ...

    @abc.abstractmethod
    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, KeyRecord]: ...

    @abc.abstractmethod
    def add_checkpoint(self, size: int, note: str) -> None: ...

    @abc.abstractmethod
    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint at ``size``, or the latest one; ``None`` if there is none."""

    @abc.abstractmethod
    def add_cosignature(self, size: int, witness: str, note: str) -> None: ...

    @abc.abstractmethod
    def cosignatures(self, size: int) -> dict[str, str]: ...

    def iter_entries(self, start: int, end: int, *, chunk: int = 4096) -> Iterator[list[bytes]]:
        """Entries ``[start, end)`` in chunks, for replay and export."""
        for lo in range(start, end, chunk):
            yield self.read_entries(lo, min(end, lo + chunk))


class SQLLogStore(LogStore):
    """The reads both database backends share; they differ only in the placeholder."""

    placeholder = "?"
    _lock: threading.RLock
    _conn: Any  # a sqlite3 or psycopg connection: both have execute(sql, params)

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return list(self._conn.execute(sql.replace("?", self.placeholder), params).fetchall())

    def read_level(self, level: int, start: int, end: int) -> list[bytes]:
        rows = self._rows(
            "SELECT hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end),
        )
        return [bytes(r[0]) for r in rows]

    def read_entries(self, start: int, end: int) -> list[bytes]:
        rows = self._rows(
            "SELECT entry FROM ledger_entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        )
        return [bytes(r[0]) for r in rows]

    def find_by_leaf_key(self, key: int) -> list[tuple[int, bytes]]:
        rows = self._rows(
            "SELECT seq, entry FROM ledger_entries WHERE leaf_key = ? ORDER BY seq", (key,)
        )
        return [(int(s), bytes(e)) for s, e in rows]

    def keys(self) -> list[KeyRecord]:
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM ledger_keys ORDER BY added_seq")
        return [key_from_row(r) for r in rows]

    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        if size is None:
            rows = self._rows(
                "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
            )
        else:
            rows = self._rows("SELECT size, note FROM ledger_checkpoints WHERE size = ?", (size,))
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def cosignatures(self, size: int) -> dict[str, str]:
        rows = self._rows("SELECT witness, note FROM ledger_cosignatures WHERE size = ?", (size,))
        return {str(w): str(n) for w, n in rows}


def key_from_row(row: Sequence[object]) -> KeyRecord:
    key_id, verifier_key, role, added_seq, revoked_seq, owner = row
    return KeyRecord(
        key_id=str(key_id),
        verifier_key=str(verifier_key),
        role=KeyRole(str(role)),
        added_seq=int(added_seq),  # type: ignore[call-overload]
        revoked_seq=None if revoked_seq is None else int(revoked_seq),  # type: ignore[call-overload]
        owner=str(owner),
    )


KEY_COLUMNS = "key_id, verifier_key, role, added_seq, revoked_seq, owner"
APPEND_ONLY_TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")
