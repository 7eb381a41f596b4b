"""Errors raised by the ledger.

::

    LedgerError
    ├── InvalidProof          a Merkle inclusion or consistency proof does not check out
    ├── InvalidSignature      a signed note, cosignature or entry signature does not verify
    ├── InvalidEntry          bytes offered for the log are not an acceptable entry
    │   └── NonCanonicalJSON  JSON that is not in RFC 8785 form (or has duplicate keys)
    ├── SignerKeyError        the key that signed an entry is not acceptable
    │   ├── UnknownKey        an entry names a signer key the log has never registered
    │   └── RevokedKey        an entry is signed by a key revoked before it was offered
    ├── InvalidKey            a key string or key bytes cannot be parsed
    ├── StaleHead             an append names a previous-entry hash that is not the head
    ├── OutOfRange            a sequence number, index or tree size outside the log
    ├── CheckpointRefused     a witness refuses to cosign a checkpoint (reason attached)
    └── VerificationFailed    replaying a log or an export found a fault at a sequence number
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class for every error the ledger raises."""


class InvalidProof(LedgerError):
    """Raised when a Merkle inclusion or consistency proof does not verify."""


class InvalidSignature(LedgerError):
    """Raised when a signature (signed note, cosignature, entry) does not verify."""


class InvalidKey(LedgerError):
    """Raised when a key string or raw key bytes are malformed."""


class InvalidEntry(LedgerError):
    """Raised when data offered to the log cannot be an entry (malformed, too large, bad field)."""


class NonCanonicalJSON(InvalidEntry):
    """Raised when JSON is not RFC 8785 canonical or cannot be canonicalised (e.g. duplicate keys)."""


class SignerKeyError(LedgerError):
    """Base class for problems with the key that signed an entry."""

    def __init__(self, message: str, *, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class UnknownKey(SignerKeyError):
    """Raised when an entry is signed by a key id the log has not registered."""


class RevokedKey(SignerKeyError):
    """Raised when an entry is signed by a key that was revoked before the entry was offered."""


class StaleHead(LedgerError):
    """Raised when an append expects a head (previous hash or size) that is no longer the head."""


class OutOfRange(LedgerError):
    """Raised when a sequence number, leaf index or tree size lies outside the log."""


class CheckpointRefused(LedgerError):
    """Raised when a witness refuses to cosign a checkpoint; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VerificationFailed(LedgerError):
    """Raised when replaying a log or an export finds a fault; ``seq`` is the first bad entry."""

    def __init__(self, message: str, *, seq: int | None) -> None:
        super().__init__(message if seq is None else f"entry {seq}: {message}")
        self.seq = seq


class MalformedCheckpoint(InvalidEntry):
    """Raised when text is not a C2SP tlog-checkpoint (origin, size, root hash, extensions)."""
