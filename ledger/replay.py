"""Replaying a log from its entries alone: chain, signatures, key registry and tree.

Used by ``Log.verify`` (entries read from the database) and by the offline
verification of an NDJSON export. Work is split in chunks: the main process
reads registry entries in order (they are few) and keeps the key timeline,
while worker processes check each chunk's entries in parallel (parse, canonical
form, sequence, chain, signature) and return their leaf hashes. Ed25519
verification dominates, so two workers keep both cores busy.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.entry import GENESIS_PREV, Entry
from ledger.errors import LedgerError, VerificationFailed
from ledger.keys import KeyRecord, Keyring
from ledger.merkle import CompactRange

__all__ = ["ChunkResult", "Replay", "check_chunk", "replay"]

logger = logging.getLogger(__name__)

_REGISTRY_MARK = b'"kind":"ledger.'
# Entries per worker task: small enough that the last tasks of a replay leave no
# core idle for long, large enough that hand-off costs stay far below the verifies.
_TASK = 512
_IN_FLIGHT_PER_WORKER = 3


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """Leaf hashes of a chunk's entries up to the first fault, the first entry's prev, and the fault."""

    leaf_hashes: list[bytes]
    first_prev: bytes | None
    fault: tuple[int, str] | None


def check_chunk(start: int, raws: list[bytes], keys: Mapping[str, KeyRecord]) -> ChunkResult:
    """Check entries ``start, start+1, ...`` given the key registry valid for this chunk."""
    leaves: list[bytes] = []
    first_prev: bytes | None = None
    previous: bytes | None = None
    public: dict[str, Ed25519PublicKey] = {}
    for offset, raw in enumerate(raws):
        seq = start + offset
        try:
            entry = Entry.parse(raw)
        except LedgerError as exc:
            return ChunkResult(leaves, first_prev, (seq, f"malformed entry: {exc}"))
        if entry.seq != seq:
            return ChunkResult(leaves, first_prev, (seq, f"holds seq {entry.seq}"))
        if previous is None:
            first_prev = entry.prev
        elif entry.prev != previous:
            return ChunkResult(leaves, first_prev, (seq, "prev does not match the previous entry"))
        record = keys.get(entry.key_id)
        if record is None or not record.valid_at(seq):
            return ChunkResult(leaves, first_prev, (seq, f"key {entry.key_id!r} may not sign it"))
        key = public.get(entry.key_id)
        if key is None:
            key = public[entry.key_id] = record.public_key
        try:
            key.verify(entry.signature, entry.message())
        except _CryptoInvalidSignature:
            return ChunkResult(leaves, first_prev, (seq, "signature does not verify"))
        previous = entry.leaf_hash
        leaves.append(previous)
    return ChunkResult(leaves, first_prev, None)


@dataclass(slots=True)
class Replay:
    """The state a full replay arrives at."""

    size: int
    edge: CompactRange
    keyring: Keyring
    origin: str | None

    @property
    def root(self) -> bytes:
        return self.edge.root()


def _scan_registry(start: int, raws: list[bytes], keyring: Keyring, origin: list[str]) -> None:
    for offset, raw in enumerate(raws):
        if _REGISTRY_MARK not in raw:
            continue
        seq = start + offset
        try:
            entry = Entry.parse(raw)
            if entry.seq != seq:
                raise VerificationFailed(f"holds seq {entry.seq}", seq=seq)
            keyring.apply(seq, entry.kind, entry.body, entry.key_id)
        except VerificationFailed:
            raise
        except LedgerError as exc:
            raise VerificationFailed(str(exc), seq=seq) from exc
        if seq == 0 and entry.kind == "ledger.genesis":
            origin.append(entry.body["origin"])


def replay(
    chunks: Iterable[list[bytes]],
    *,
    workers: int = 2,
    on_chunk: Callable[[int, list[bytes], CompactRange], None] | None = None,
) -> Replay:
    """Replay entries from seq 0; raise :class:`VerificationFailed` at the first bad entry.

    ``on_chunk(start, leaf_hashes, edge_before)`` lets a caller compare stored
    nodes with the recomputed ones as the replay goes.
    """
    keyring = Keyring()
    origin: list[str] = []
    edge = CompactRange()
    prev = GENESIS_PREV

    def consume(start: int, result: ChunkResult) -> None:
        nonlocal prev
        if result.first_prev is not None and result.first_prev != prev:
            raise VerificationFailed("prev does not match the previous entry", seq=start)
        if on_chunk is not None:
            on_chunk(start, result.leaf_hashes, edge)
        for h in result.leaf_hashes:
            edge.append(h)
        if result.fault is not None:
            seq, message = result.fault
            raise VerificationFailed(message, seq=seq)
        if result.leaf_hashes:
            prev = result.leaf_hashes[-1]

    def scan(start: int, raws: list[bytes], drain: Callable[[], None]) -> None:
        try:
            _scan_registry(start, raws, keyring, origin)
        except VerificationFailed as exc:
            # Report the first fault: earlier chunks, then the entries before this one.
            drain()
            bad = exc.seq if exc.seq is not None else start
            consume(start, check_chunk(start, raws[: bad - start], keyring.snapshot()))
            raise

    starts = _numbered(_split(chunks, _TASK))
    first = next(starts, None)
    second = next(starts, None)
    starts = itertools.chain([c for c in (first, second) if c is not None], starts)
    if workers <= 1 or second is None:  # one chunk: worker start-up would cost more
        for start, raws in starts:
            scan(start, raws, lambda: None)
            consume(start, check_chunk(start, raws, keyring.snapshot()))
        return Replay(edge.size, edge, keyring, origin[0] if origin else None)

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[tuple[int, Future[ChunkResult]]] = []

        def drain() -> None:
            while pending:
                done_start, future = pending.pop(0)
                consume(done_start, future.result())

        for start, raws in starts:
            scan(start, raws, drain)
            pending.append((start, pool.submit(check_chunk, start, raws, keyring.snapshot())))
            while len(pending) >= _IN_FLIGHT_PER_WORKER * workers:
                done_start, future = pending.pop(0)
                consume(done_start, future.result())
        drain()
    return Replay(edge.size, edge, keyring, origin[0] if origin else None)


def _split(chunks: Iterable[list[bytes]], size: int) -> Iterator[list[bytes]]:
    for raws in chunks:
        if len(raws) <= size:
            yield raws
        else:
            yield from (raws[lo : lo + size] for lo in range(0, len(raws), size))


def _numbered(chunks: Iterable[list[bytes]]) -> Iterator[tuple[int, list[bytes]]]:
    start = 0
    for raws in chunks:
        if raws:
            yield start, raws
            start += len(raws)
