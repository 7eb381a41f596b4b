"""Public passports kept ready to serve: built once per change, served as JSON bytes.

A scan (``GET /p/{code}``) is the service's most frequent request, and building a
passport is not cheap: the item's history, an inclusion proof, the key registry, a
signature check and the custody walk. What a passport says changes only when the log
does, so each is built once and kept, in three parts:

* the document of an item, without its label verdict, as JSON bytes, with the item
  state it was built from and the *family* of items whose changes change it (its
  earlier and later lives and the packs it sits in, whose custody it shares);
* the label verdict per (code, label token);
* the key registry the verdicts are checked against.

Everything kept is valid for one :class:`LedgerView` — the log's size, the latest
checkpoint and its witness cosignatures — which :class:`LedgerWatch` reads again whenever
the database may have changed, so an append by another process is seen by the next
scan. When the view moves, :meth:`PassportCache.refresh` drops what it makes stale:

* an event drops the documents of the items it changes and of every item whose family
  includes them (as it is applied: :meth:`PassportCache.on_event`, a tracer subscriber);
* a registry entry (an organisation or a key) drops everything: holders' roles and
  label verdicts depend on the registry;
* a new checkpoint or cosignature drops the documents (their proofs), not the verdicts.

Lookups take no lock (dictionary reads); changes take the cache's lock. A document built
while something it depends on changed is not stored (a generation count tells).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from ledger import Log
from ledger.keys import KeyRecord
from trace.engine import Accepted
from trace.state import ItemState, MemoryWorld

__all__ = [
    "DEFAULT_SIZE",
    "LedgerView",
    "LedgerWatch",
    "Passport",
    "PassportCache",
    "dumps",
    "family",
]

DEFAULT_SIZE: Final = 4096
_LABEL_MEMBER: Final = b',"label":'
_LABELS_PER_DOCUMENT: Final = 4

K = TypeVar("K")
V = TypeVar("V")


def dumps(value: Any) -> bytes:
    """JSON as Starlette's ``JSONResponse`` writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What a kept passport is valid for: log size, latest checkpoint and its cosignatures."""

    size: int
    checkpoint: int | None
    cosignatures: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, log: Log) -> LedgerView:
        size = log.head().size
        latest = log.store.checkpoint()
        if latest is None:
            return cls(size, None, ())
        return cls(size, latest[0], tuple(sorted(log.store.cosignatures(latest[0]).items())))

    def older_than(self, other: LedgerView) -> bool:
        return self.size < other.size or (self.checkpoint or -1) < (other.checkpoint or -1)


class LedgerWatch:
    """The current :class:`LedgerView`, re-read only when the database may have changed.

    On a SQLite file, ``PRAGMA data_version`` on a read-only connection of the watch's
    own moves whenever any other connection, in this process or another, commits; while
    it stands still, the view read after it last moved is current. One connection per
    thread, as a connection's data version is its own. On other databases every call
    reads the view.
    """

    def __init__(self, log: Log, sqlite_file: str | None) -> None:
        self._log = log
        self._file = sqlite_file
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def current(self) -> LedgerView:
        if self._file is None:
            return LedgerView.read(self._log)
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                f"{Path(self._file).resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,  # used by its thread alone, closed by close()
            )
            with self._lock:
                self._connections.append(connection)
            local.connection, local.version, local.view = connection, None, None
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        if version != local.version:
            # Read after the version: a commit in between moves it again, so none is missed.
            local.view, local.version = LedgerView.read(self._log), version
        view: LedgerView = local.view
        return view

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


@dataclass(frozen=True, slots=True)
class Passport:
    """One item's public passport without its label verdict."""

    state: ItemState  # the item's state it was built from
    body: bytes  # the document as JSON, without the label verdict
    family: frozenset[str]  # items whose changes change it, itself included

    def with_label(self, label: bytes) -> bytes:
        """The document's JSON with the label verdict added as its last member."""
        return b"".join((self.body[:-1], _LABEL_MEMBER, label, b"}"))


def family(world: MemoryWorld, item: ItemState) -> frozenset[str]:
    """``item``, its earlier and later lives, and the items each life sits in."""
    lives = {item.id: item}
    for link in ("original", "successor"):
        current = item
        while (code := getattr(current, link)) is not None and code not in lives:
            found = world.item(code)
            if found is None:
                break
            lives[code] = current = found
    out: set[str] = set()
    for life in lives.values():
        here: ItemState | None = life
        while here is not None and here.id not in out:
            out.add(here.id)
            here = None if here.parent is None else world.item(here.parent)
    return frozenset(out)


def _put_bounded(table: dict[K, V], key: K, value: V, limit: int) -> list[tuple[K, V]]:
    """Insert; evict the oldest entries past ``limit`` and return them."""
    table.pop(key, None)
    table[key] = value
    evicted = []
    while len(table) > limit:
        oldest = next(iter(table))
        evicted.append((oldest, table.pop(oldest)))
    return evicted


class PassportCache:
    """Kept passports of one service process; see the module."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self.view: LedgerView | None = None
        # Count drops: something built while a drop happened is not kept.
        self.generation = 0
        self.registry_generation = 0
        self._documents: dict[str, Passport] = {}
        self._dependents: dict[str, set[str]] = {}  # item -> codes whose family holds it
        self._labels: dict[tuple[str, str | None], bytes] = {}
        self._keys: list[KeyRecord] | None = None
        self._applied: list[int] = []  # seqs of events applied since the view was taken
        self._lock = threading.Lock()

    # --- reading (no lock) ---

    def document(self, code: str, state: ItemState) -> Passport | None:
        """The kept document of ``code`` if it was built from ``state``."""
        found = self._documents.get(code)
        return found if found is not None and found.state is state else None

    def label(self, code: str, token: str | None) -> bytes | None:
        """The kept verdict (JSON) on ``code``'s label ``token``."""
        return self._labels.get((code, token))

    def key_records(self, load: Callable[[], list[KeyRecord]]) -> list[KeyRecord]:
        """The key registry, read with ``load`` once per registry change."""
        keys = self._keys
        if keys is None:
            generation = self.registry_generation
            keys = load()
            with self._lock:
                if generation == self.registry_generation:
                    self._keys = keys
        return keys

    # --- keeping ---

    def keep(self, code: str, passport: Passport, generation: int) -> None:
        """Keep ``passport`` unless something was dropped since ``generation`` was read."""
        with self._lock:
            if generation != self.generation:
                return
            old = self._documents.get(code)
            if old is not None:
                self._unlink(code, old)
            for item in passport.family:
                self._dependents.setdefault(item, set()).add(code)
            for evicted, gone in _put_bounded(self._documents, code, passport, self.size):
                self._unlink(evicted, gone)

    def keep_label(
        self, code: str, token: str | None, verdict: Mapping[str, Any], generation: int
    ) -> bytes:
        """The verdict as JSON; kept unless the registry changed since ``generation``."""
        label = dumps(verdict)
        with self._lock:
            if generation == self.registry_generation:
                limit = self.size * _LABELS_PER_DOCUMENT
                _put_bounded(self._labels, (code, token), label, limit)
        return label

    def _unlink(self, code: str, passport: Passport) -> None:
        """Take ``code`` out of the dependents index (the caller holds the lock)."""
        for item in passport.family:
            codes = self._dependents.get(item)
            if codes is not None:
                codes.discard(code)
                if not codes:
                    del self._dependents[item]

    def drop(self, items: Iterable[str]) -> None:
        """Drop the documents that read any of ``items``."""
        with self._lock:
            self._drop(items)

    def _drop(self, items: Iterable[str]) -> None:
        self.generation += 1
        for item in items:
            for code in self._dependents.get(item, set()) | {item}:
                passport = self._documents.pop(code, None)
                if passport is not None:
                    self._unlink(code, passport)

    def _clear(self, *, registry: bool) -> None:
        self.generation += 1
        self._documents.clear()
        self._dependents.clear()
        if registry:
            self.registry_generation += 1
            self._labels.clear()
            self._keys = None

    # --- following the log ---

    def on_event(self, accepted: Accepted) -> None:
        """Tracer subscriber: drop what an applied event changes."""
        with self._lock:
            self._applied.append(accepted.seq)
            self._drop(accepted.effects.items)

    def refresh(self, view: LedgerView) -> None:
        """Adopt ``view`` once the engine has applied the log up to it; drop what is stale."""
        with self._lock:
            old = self.view
            if old is not None and view.older_than(old):
                return  # a concurrent refresh adopted a later view
            if old is None:
                self._clear(registry=True)
            else:
                events = sum(1 for seq in self._applied if old.size <= seq < view.size)
                if events != view.size - old.size:  # registry entries among the new ones
                    self._clear(registry=True)
                elif (view.checkpoint, view.cosignatures) != (old.checkpoint, old.cosignatures):
                    self._clear(registry=False)
            self._applied = [seq for seq in self._applied if seq >= view.size]
            self.view = view
