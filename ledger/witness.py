"""C2SP tlog-cosignature (Ed25519 cosignature/v1) and a tlog-witness that issues them.

Cosignatures (https://c2sp.org/tlog-cosignature, §Format and §Ed25519 signed
message) are signed-note signatures of type 0x04. The key ID is
SHA-256(name ‖ 0x0A ‖ 0x04 ‖ pub32)[:4]; the signature payload is
``timestamp (u64 big-endian) ‖ Ed25519 signature`` over::

    cosignature/v1\\n
    time <POSIX seconds>\\n
    <the checkpoint note text>

``Witness`` follows the add-checkpoint rules of https://c2sp.org/tlog-witness:
it cosigns a checkpoint only if a trusted key of its log signed it and it is
consistent with the last checkpoint the witness cosigned for that origin.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import ClassVar, Protocol

from ledger import merkle, note
from ledger.checkpoint import Checkpoint, verify_checkpoint
from ledger.errors import (
    CheckpointRefused,
    InvalidEntry,
    InvalidProof,
    InvalidSignature,
    MalformedCheckpoint,
    StaleHead,
)

__all__ = [
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "CosignatureSigner",
    "CosignatureVerifier",
    "CosignedCheckpoint",
    "MemoryWitnessState",
    "Refusal",
    "SQLiteWitnessState",
    "Witness",
    "WitnessState",
    "cosign",
    "verify_cosignature",
]

logger = logging.getLogger(__name__)

SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04

_HEADER = b"cosignature/v1\n"
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: "MUST NOT exceed 2^63 - 1"
_KEY_HASH_SIZE = 4
_MAX_PROOF_HASHES = 63  # tlog-witness: clients send at most 63 consistency proof lines


def _cosigned_message(text: bytes, timestamp: int) -> bytes:
    return _HEADER + b"time %d\n" % timestamp + text


def _check_timestamp(timestamp: int) -> None:
    if type(timestamp) is not int or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise InvalidEntry(f"cosignature timestamp must be in [0, 2**63), not {timestamp!r}")


@dataclass(frozen=True)
class CosignatureVerifier(note.Verifier):
    """A witness's public key; as a note verifier it checks cosignature/v1 lines."""

    SIGNATURE_TYPE: ClassVar[int] = SIGNATURE_TYPE_COSIGNATURE_V1

    def verify_message(self, message: bytes, signature: bytes) -> None:
        self.verify_timestamped(message, signature)

    def verify_timestamped(self, message: bytes, signature: bytes) -> int:
        """Check a cosignature payload over the checkpoint text ``message``; return its time."""
        if len(signature) <= _TIMESTAMP_SIZE:
            raise InvalidSignature(f"invalid cosignature for key {self.key_id}: too short")
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise InvalidSignature(f"invalid cosignature for key {self.key_id}: bad timestamp")
        super().verify_message(_cosigned_message(message, timestamp), signature[_TIMESTAMP_SIZE:])
        return timestamp


@dataclass(frozen=True)
class CosignatureSigner(note.Signer):
    """A witness's private key. ``timestamp`` fixes the cosignature time (else: now)."""

    SIGNATURE_TYPE: ClassVar[int] = SIGNATURE_TYPE_COSIGNATURE_V1
    VERIFIER_CLASS: ClassVar[type[note.Verifier]] = CosignatureVerifier

    verifier: CosignatureVerifier = field(init=False, repr=False)
    timestamp: int | None = field(default=None, compare=False)

    def sign_message(self, message: bytes) -> bytes:
        # A cosignature is a statement about a checkpoint; refuse to make one about anything else.
        Checkpoint.from_text(message.decode("utf-8"))
        timestamp = int(time.time()) if self.timestamp is None else self.timestamp
        _check_timestamp(timestamp)
        signature = self.private_key.sign(_cosigned_message(message, timestamp))
        return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature


def cosign(checkpoint_note: str, witness_signer: str | CosignatureSigner, *, timestamp: int) -> str:
    """Append a cosignature/v1 line made at ``timestamp`` to a signed checkpoint note.

    The log's signature is not checked here; ``Witness.add_checkpoint`` does that.
    Raises ``InvalidSignature`` if the note is malformed, ``MalformedCheckpoint`` if its
    text is not a checkpoint, ``InvalidEntry`` if ``timestamp`` is outside [0, 2**63).
    """
    _check_timestamp(timestamp)
    signer = (
        CosignatureSigner.from_string(witness_signer)
        if isinstance(witness_signer, str)
        else witness_signer
    )
    return note.add_signature(checkpoint_note, replace(signer, timestamp=timestamp))


def verify_cosignature(signed_note: str, witness_verifier_key: str | CosignatureVerifier) -> int:
    """Verify the witness's cosignature on ``signed_note`` and return its timestamp.

    Raises ``InvalidSignature`` if the note is malformed, carries no cosignature from
    this witness key, or the cosignature does not verify.
    """
    verifier = (
        CosignatureVerifier.from_string(witness_verifier_key)
        if isinstance(witness_verifier_key, str)
        else witness_verifier_key
    )
    signature = note.open_note(signed_note, verifier).verified[0]
    payload = base64.b64decode(signature.base64)
    return int.from_bytes(payload[_KEY_HASH_SIZE : _KEY_HASH_SIZE + _TIMESTAMP_SIZE], "big")


@dataclass(frozen=True)
class CosignedCheckpoint:
    """The latest checkpoint a witness cosigned for one origin, with the note it returned."""

    origin: str
    size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True)
class Refusal:
    """A checkpoint the witness refused: when (POSIX seconds), for which origin, and why."""

    time: int
    origin: str
    reason: str


class WitnessState(Protocol):
    """Where a witness keeps, per origin, its latest cosigned checkpoint and its refusals."""

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        """The latest cosigned checkpoint for ``origin``, or None if there is none."""
        ...

    def replace(self, record: CosignedCheckpoint, *, expected: CosignedCheckpoint | None) -> None:
        """Store ``record`` if its origin's latest is still ``expected``; else raise StaleHead."""
        ...

    def record_refusal(self, refusal: Refusal) -> None:
        """Append ``refusal`` to the refusal log."""
        ...

    def refusals(self) -> list[Refusal]:
        """Every refusal, oldest first."""
        ...


def _same_head(a: CosignedCheckpoint | None, b: CosignedCheckpoint | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.size == b.size and hmac.compare_digest(a.root_hash, b.root_hash)


class MemoryWitnessState:
    """A ``WitnessState`` held in memory, for tests and short-lived witnesses."""

    def __init__(self) -> None:
        self._latest: dict[str, CosignedCheckpoint] = {}
        self._refusals: list[Refusal] = []

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        return self._latest.get(origin)

    def replace(self, record: CosignedCheckpoint, *, expected: CosignedCheckpoint | None) -> None:
        if not _same_head(self._latest.get(record.origin), expected):
            raise StaleHead(f"witness state for {record.origin!r} changed concurrently")
        self._latest[record.origin] = record

    def record_refusal(self, refusal: Refusal) -> None:
        self._refusals.append(refusal)

    def refusals(self) -> list[Refusal]:
        return list(self._refusals)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS witness_checkpoint (
    origin    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_refusal (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS witness_refusal_no_update BEFORE UPDATE ON witness_refusal
BEGIN SELECT RAISE(ABORT, 'witness_refusal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_refusal_no_delete BEFORE DELETE ON witness_refusal
BEGIN SELECT RAISE(ABORT, 'witness_refusal is append-only'); END;
"""


class SQLiteWitnessState:
    """A ``WitnessState`` in a SQLite file; the refusal log is append-only in the database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # Autocommit: every write below is one statement, hence one atomic transaction.
        # SQLite serialises access itself, so the connection may serve several threads.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteWitnessState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        row = self._db.execute(
            "SELECT size, root_hash, note FROM witness_checkpoint WHERE origin = ?", (origin,)
        ).fetchone()
        if row is None:
            return None
        return CosignedCheckpoint(origin=origin, size=row[0], root_hash=row[1], note=row[2])

    def replace(self, record: CosignedCheckpoint, *, expected: CosignedCheckpoint | None) -> None:
        values = (record.size, record.root_hash, record.note, record.origin)
        if expected is None:
            try:
                self._db.execute(
                    "INSERT INTO witness_checkpoint (size, root_hash, note, origin) "
                    "VALUES (?, ?, ?, ?)",
                    values,
                )
            except sqlite3.IntegrityError as exc:
                raise StaleHead(
                    f"witness state for {record.origin!r} changed concurrently"
                ) from exc
            return
        # Compare-and-set: the row changes only if it still holds the expected head.
        cursor = self._db.execute(
            "UPDATE witness_checkpoint SET size = ?, root_hash = ?, note = ? "
            "WHERE origin = ? AND size = ? AND root_hash = ?",
            (*values, expected.size, expected.root_hash),
        )
        if cursor.rowcount != 1:
            raise StaleHead(f"witness state for {record.origin!r} changed concurrently")

    def record_refusal(self, refusal: Refusal) -> None:
        self._db.execute(
            "INSERT INTO witness_refusal (time, origin, reason) VALUES (?, ?, ?)",
            (refusal.time, refusal.origin, refusal.reason),
        )

    def refusals(self) -> list[Refusal]:
        rows = self._db.execute("SELECT time, origin, reason FROM witness_refusal ORDER BY id")
        return [Refusal(time=t, origin=o, reason=r) for t, o, r in rows]


class Witness:
    """A tlog-witness: cosigns checkpoints of the logs it follows when they only grow."""

    def __init__(
        self,
        signer: str | CosignatureSigner,
        *,
        logs: Mapping[str, Iterable[str | note.Verifier]],
        state: WitnessState,
    ) -> None:
        self._signer = CosignatureSigner.from_string(signer) if isinstance(signer, str) else signer
        # A log may have several keys (rotation); parse them now so bad ones fail early.
        self._logs = {
            origin: tuple(note.Verifier.from_string(k) if isinstance(k, str) else k for k in keys)
            for origin, keys in logs.items()
        }
        self._state = state
        # Checking the old size and persisting the new checkpoint must be one step
        # (tlog-witness §add-checkpoint); the state's compare-and-set guards other processes.
        self._lock = threading.Lock()

    @property
    def verifier(self) -> CosignatureVerifier:
        """The witness's public key, for clients that check its cosignatures."""
        return self._signer.verifier

    def refusals(self) -> list[Refusal]:
        """Every checkpoint this witness refused, oldest first."""
        return self._state.refusals()

    def add_checkpoint(
        self, signed_note: str, *, old_size: int, proof: Sequence[bytes], now: int | None = None
    ) -> str:
        """Check a log's new checkpoint and return it with this witness's cosignature appended.

        Raises ``CheckpointRefused`` (recorded in ``refusals()``) if it must not be cosigned.
        """
        timestamp = int(time.time()) if now is None else now
        origin = signed_note.split("\n", 1)[0]
        with self._lock:
            try:
                return self._add(signed_note, origin, old_size=old_size, proof=proof, now=timestamp)
            except CheckpointRefused as exc:
                self._state.record_refusal(
                    Refusal(time=timestamp, origin=origin, reason=exc.reason)
                )
                logger.warning("witness refused checkpoint for %r: %s", origin, exc.reason)
                raise

    def _add(
        self, signed_note: str, origin: str, *, old_size: int, proof: Sequence[bytes], now: int
    ) -> str:
        # 1. The origin must be a log this witness follows.
        keys = self._logs.get(origin)
        if keys is None:
            raise CheckpointRefused(f"unknown origin {origin!r}")
        # 2. A trusted key of that log must have signed it; other signatures are ignored.
        try:
            checkpoint = verify_checkpoint(signed_note, keys, origin=origin)
        except InvalidSignature as exc:
            raise CheckpointRefused(f"not signed by a trusted key of {origin!r}: {exc}") from exc
        except MalformedCheckpoint as exc:
            raise CheckpointRefused(f"malformed checkpoint: {exc}") from exc
        size = checkpoint.size
        # 3. The old size cannot be beyond the new checkpoint.
        if not 0 <= old_size <= size:
            raise CheckpointRefused(f"old size {old_size} is not within checkpoint size {size}")
        # 4. The old size must be the size this witness last cosigned (0 if never).
        latest = self._state.latest(origin)
        known_size = 0 if latest is None else latest.size
        if old_size != known_size:
            raise CheckpointRefused(
                f"conflict: old size {old_size} is not the last cosigned size {known_size}"
            )
        # 5. The new tree must extend the cosigned one.
        if len(proof) > _MAX_PROOF_HASHES:
            raise CheckpointRefused(f"consistency proof has more than {_MAX_PROOF_HASHES} hashes")
        if latest is None:
            if proof:
                raise CheckpointRefused("consistency proof must be empty from old size 0")
        elif old_size == size and not hmac.compare_digest(latest.root_hash, checkpoint.root_hash):
            raise CheckpointRefused(
                f"conflict: root hash at size {size} differs from the one cosigned (fork)"
            )
        else:
            try:
                merkle.verify_consistency(
                    old_size, size, list(proof), latest.root_hash, checkpoint.root_hash
                )
            except InvalidProof as exc:
                raise CheckpointRefused(
                    f"inconsistent: no valid consistency proof from size {old_size} "
                    f"to size {size}: {exc}"
                ) from exc
        # 6. Cosign, then persist before answering.
        cosigned = cosign(signed_note, self._signer, timestamp=now)
        record = CosignedCheckpoint(origin, size, checkpoint.root_hash, cosigned)
        try:
            self._state.replace(record, expected=latest)
        except StaleHead as exc:
            raise CheckpointRefused(f"conflict: {exc}") from exc
        logger.info(
            "witness cosigned origin=%s size=%d root=%s", origin, size, checkpoint.root_hash.hex()
        )
        return cosigned
