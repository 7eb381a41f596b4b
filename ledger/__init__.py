"""The tamper-evident log: RFC 8785 entries on an RFC 6962 Merkle tree, C2SP signed checkpoints.

Knows bytes, hashes and keys; nothing about batteries. The public contract
(DESIGN.md) lives in :mod:`ledger.canonical`, :mod:`ledger.merkle` and
:mod:`ledger.note`; :class:`ledger.log.Log` is the log itself.
"""

from ledger.backends import open_store
from ledger.errors import (
    InvalidEntry,
    InvalidKey,
    InvalidProof,
    InvalidSignature,
    LedgerError,
    NonCanonicalJSON,
    OutOfRange,
    RevokedKey,
    StaleHead,
    UnknownKey,
    VerificationFailed,
)
from ledger.log import Log, Receipt

__all__ = [
    "InvalidEntry",
    "InvalidKey",
    "InvalidProof",
    "InvalidSignature",
    "LedgerError",
    "Log",
    "NonCanonicalJSON",
    "OutOfRange",
    "Receipt",
    "RevokedKey",
    "StaleHead",
    "UnknownKey",
    "VerificationFailed",
    "open_store",
]
