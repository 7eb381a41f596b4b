"""NDJSON export of the log and its offline verification from the public key alone.

An export is two files: ``entries.ndjson`` (one canonical entry per line, in
sequence order; canonical JSON never holds a raw newline) and the signed
checkpoint (with cosignatures) for exactly that many entries. Verification
needs no database: it checks the checkpoint's signature with the trusted log
key, replays every entry (chain, key registry, signatures — on all cores),
and requires the recomputed root to equal the checkpoint's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ledger import note
from ledger.checkpoint import Checkpoint, verify_checkpoint
from ledger.errors import LedgerError, VerificationFailed
from ledger.log import Log
from ledger.replay import replay

__all__ = ["ExportVerdict", "export_log", "read_chunks", "verify_export"]

logger = logging.getLogger(__name__)

_CHUNK = 4096


def export_log(log: Log, entries_out: BinaryIO) -> str:
    """Write every entry up to the latest checkpoint (signed now if the log has a key).

    Returns the cosigned checkpoint that the export matches.
    """
    if log.signer is not None:
        log.checkpoint()
    signed = log.cosigned_checkpoint()
    size = Checkpoint.from_text(signed.partition("\n\n")[0] + "\n").size
    for chunk in log.iter_raw(size, chunk=_CHUNK):
        entries_out.write(b"".join(raw + b"\n" for raw in chunk))
    logger.info("exported %d entries", size)
    return signed


def read_chunks(path: Path, *, chunk: int = _CHUNK) -> Iterator[list[bytes]]:
    """Lines of an NDJSON export, in chunks, without their newlines."""
    with path.open("rb") as f:
        batch: list[bytes] = []
        for line in f:
            batch.append(line[:-1] if line.endswith(b"\n") else line)
            if len(batch) == chunk:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass(frozen=True, slots=True)
class ExportVerdict:
    size: int
    root: bytes
    origin: str | None
    checkpoint: Checkpoint


def verify_export(
    chunks: Iterable[list[bytes]],
    signed_checkpoint: str,
    log_keys: str | note.Verifier | Iterable[str | note.Verifier],
    *,
    workers: int = 2,
) -> ExportVerdict:
    """Verify an export against its checkpoint; raise :class:`VerificationFailed` at the first fault."""
    # 1. The checkpoint is signed by a key the verifier trusts.
    try:
        checkpoint = verify_checkpoint(signed_checkpoint, log_keys)
    except LedgerError as exc:
        raise VerificationFailed(f"the checkpoint does not verify: {exc}", seq=None) from exc
    # 2. Every entry replays: chain, registry, signatures, tree.
    result = replay(chunks, workers=workers)
    # 3. The export is exactly the checkpointed tree.
    if result.size != checkpoint.size:
        raise VerificationFailed(
            f"the export holds {result.size} entries; the checkpoint commits to {checkpoint.size}",
            seq=min(result.size, checkpoint.size),
        )
    if result.root != checkpoint.root_hash:
        raise VerificationFailed("the entries do not hash to the checkpoint's root", seq=None)
    if result.origin is not None and result.origin != checkpoint.origin:
        raise VerificationFailed(
            f"the log's genesis names origin {result.origin!r}, the checkpoint {checkpoint.origin!r}",
            seq=0,
        )
    return ExportVerdict(result.size, result.root, result.origin, checkpoint)
