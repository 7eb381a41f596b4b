"""Offline proof bundles in the C2SP ``tlog-proof@v1`` format.

A bundle proves that one entry is in the log, verifiable with the log's public
key alone (and, optionally, witness keys)::

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry's canonical bytes>
    index 1234
    <base64 proof hash>
    ...
    <blank line>
    <the signed checkpoint, with witness cosignature lines>

The format's opaque ``extra`` field carries the entry itself, so the file is
self-contained: the verifier hashes those bytes as the leaf.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger import note
from ledger.checkpoint import Checkpoint, verify_checkpoint
from ledger.entry import Entry
from ledger.errors import InvalidProof, InvalidSignature, LedgerError
from ledger.merkle import HASH_SIZE, verify_inclusion
from ledger.witness import verify_cosignature

__all__ = ["HEADER", "TlogProof", "VerifiedBundle", "merge_signatures", "verify_bundle"]

HEADER = "c2sp.org/tlog-proof@v1"


def merge_signatures(signed_note: str, others: Iterable[str]) -> str:
    """Add to ``signed_note`` the signature lines of other signings of the same text."""
    text, _, sigs = signed_note.partition("\n\n")
    lines = [line for line in sigs.splitlines() if line]
    for other in others:
        other_text, _, other_sigs = other.partition("\n\n")
        if other_text != text:
            raise InvalidSignature("a cosigned note signs a different checkpoint")
        lines += [line for line in other_sigs.splitlines() if line and line not in lines]
    return text + "\n\n" + "".join(line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed ``tlog-proof@v1`` file."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def to_text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def from_text(cls, text: str) -> TlogProof:
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise InvalidProof("a tlog-proof needs a blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise InvalidProof(f"a tlog-proof starts with {HEADER!r}")
        lines = lines[1:]
        extra = None
        try:
            if lines and lines[0].startswith("extra "):
                extra = base64.b64decode(lines.pop(0)[len("extra ") :], validate=True)
            if not lines or not lines[0].startswith("index "):
                raise InvalidProof("a tlog-proof names the entry's index")
            index_text = lines.pop(0)[len("index ") :]
            if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")):
                raise InvalidProof(f"index {index_text!r} is not a decimal number")
            hashes = tuple(base64.b64decode(line, validate=True) for line in lines)
        except (binascii.Error, ValueError) as exc:
            raise InvalidProof(f"a tlog-proof line is not valid base64: {exc}") from exc
        if any(len(h) != HASH_SIZE for h in hashes):
            raise InvalidProof(f"proof hashes are {HASH_SIZE} bytes")
        return cls(int(index_text), hashes, checkpoint, extra)


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    entry: Entry
    checkpoint: Checkpoint
    witnesses: tuple[str, ...]


def verify_bundle(
    text: str,
    log_keys: str | note.Verifier | Iterable[str | note.Verifier],
    *,
    origin: str | None = None,
    witness_keys: Sequence[str] = (),
    min_witnesses: int = 0,
) -> VerifiedBundle:
    """Verify a self-contained proof bundle; raise :class:`InvalidProof` or :class:`InvalidSignature`."""
    proof = TlogProof.from_text(text)
    # 1. The checkpoint is signed by the log.
    checkpoint = verify_checkpoint(proof.checkpoint, log_keys, origin=origin)
    # 2. Enough of the trusted witnesses cosigned it.
    witnesses: list[str] = []
    for key in witness_keys:
        try:
            verify_cosignature(proof.checkpoint, key)
        except (InvalidSignature, LedgerError):
            continue
        witnesses.append(key.split("+", 1)[0])
    if len(witnesses) < min_witnesses:
        raise InvalidSignature(
            f"{len(witnesses)} trusted witnesses cosigned the checkpoint; {min_witnesses} required"
        )
    # 3. The entry is the leaf at the index, under the checkpoint's root.
    if proof.extra is None:
        raise InvalidProof("this bundle does not carry its entry (no extra line)")
    if proof.index >= checkpoint.size:
        raise InvalidProof(
            f"index {proof.index} is outside the checkpoint's {checkpoint.size} entries"
        )
    verify_inclusion(
        proof.extra, proof.index, checkpoint.size, list(proof.hashes), checkpoint.root_hash
    )
    # 4. The entry is well formed and says it is that entry.
    try:
        entry = Entry.parse(proof.extra)
    except LedgerError as exc:
        raise InvalidProof(f"the bundled entry is malformed: {exc}") from exc
    if entry.seq != proof.index:
        raise InvalidProof(f"the bundled entry says seq {entry.seq}, the proof index {proof.index}")
    return VerifiedBundle(entry, checkpoint, tuple(witnesses))
