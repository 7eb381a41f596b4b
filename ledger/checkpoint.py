"""C2SP tlog-checkpoint v1.0.0 (https://c2sp.org/tlog-checkpoint): the signed head of the log.

A checkpoint is a signed note (``ledger.note``) whose text is, per §Note text::

    <origin>\\n
    <tree size, decimal, no leading zeros>\\n
    <base64 RFC 6962 root hash>\\n
    [<extension line>\\n ...]

Parsing is strict, so ``Checkpoint.from_text(cp.to_text()) == cp`` and
``Checkpoint.from_text(text).to_text() == text`` both hold.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from ledger import note
from ledger.errors import MalformedCheckpoint

__all__ = ["Checkpoint", "sign_checkpoint", "verify_checkpoint"]

logger = logging.getLogger(__name__)

_ROOT_HASH_SIZE = 32
_MAX_TREE_SIZE = 2**64 - 1  # sizes are uint64 in every tlog-checkpoint implementation
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """One tree head: log origin, tree size, RFC 6962 root hash and opaque extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise MalformedCheckpoint("checkpoint origin must be one non-empty line")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise MalformedCheckpoint(
                f"checkpoint size must be an integer in [0, 2**64), not {self.size!r}"
            )
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise MalformedCheckpoint(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes")
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line:
                raise MalformedCheckpoint(
                    "checkpoint extension lines must be non-empty single lines"
                )

    def to_text(self) -> str:
        """The note text of this checkpoint (ends with a newline)."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode("ascii"),
            *self.extensions,
        ]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Self:
        """Parse checkpoint note text strictly.

        Raises
        ------
        MalformedCheckpoint
            If the text does not end in a newline, has fewer than three lines, an empty
            origin, a size that is not canonical decimal, a root that is not the base64
            of exactly 32 bytes, or an empty extension line.
        """
        if not text.endswith("\n"):
            raise MalformedCheckpoint("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpoint(
                f"checkpoint needs origin, size and root hash lines, got {len(lines)} line(s)"
            )
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise MalformedCheckpoint("checkpoint origin line is empty")
        if not _DECIMAL.fullmatch(size_line):
            raise MalformedCheckpoint(
                f"checkpoint size {size_line!r} is not a decimal without leading zeros"
            )
        size = int(size_line)
        if size > _MAX_TREE_SIZE:
            raise MalformedCheckpoint(f"checkpoint size {size_line} does not fit in 64 bits")
        try:
            root_hash = base64.b64decode(root_line, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedCheckpoint(f"checkpoint root hash {root_line!r} is not base64") from exc
        if len(root_hash) != _ROOT_HASH_SIZE:
            raise MalformedCheckpoint(
                f"checkpoint root hash is {len(root_hash)} bytes, expected {_ROOT_HASH_SIZE}"
            )
        if base64.b64encode(root_hash).decode("ascii") != root_line:
            raise MalformedCheckpoint(f"checkpoint root hash {root_line!r} is not canonical base64")
        if any(not line for line in extensions):
            raise MalformedCheckpoint("checkpoint extension lines must be non-empty")
        return cls(origin, size, root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: str | note.Signer) -> str:
    """Sign ``checkpoint`` as a signed note with the log's key."""
    signed = note.sign(checkpoint.to_text(), signer)
    logger.info(
        "signed checkpoint origin=%s size=%d root=%s",
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root_hash.hex(),
    )
    return signed


def verify_checkpoint(
    signed_note: str,
    verifiers: str | note.Verifier | Iterable[str | note.Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify the log's signature on ``signed_note`` and return the checkpoint it carries.

    Raises
    ------
    InvalidSignature
        If no trusted key signed the note (see ``ledger.note.open_note``).
    MalformedCheckpoint
        If the signed text is not a checkpoint, or its origin is not ``origin``.
    """
    checkpoint = Checkpoint.from_text(note.verify(signed_note, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise MalformedCheckpoint(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint
