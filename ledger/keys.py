"""The log's key registry, kept on the log itself.

Keys are registered and revoked by entries, so anyone replaying the log (or an
export of it) from the first log key alone knows which key could sign what,
and when:

- ``ledger.genesis`` (entry 0 only): ``{"origin", "log_key"}``, signed by that log key.
- ``ledger.key.add``: ``{"key": "<C2SP verifier key>", "role": "log" | "entry", "owner"}``,
  signed by a current log key. A ``log`` key may sign checkpoints and key entries.
- ``ledger.key.revoke``: ``{"key_id", "reason"}``, signed by a current log key or by
  the revoked key itself.

A key added by entry *a* and revoked by entry *r* signs entries ``a < seq <= r``:
entries signed before a revocation stay valid, later ones are refused.
Key ids are the C2SP signed-note ``<name>+<hash>`` of the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import InvalidEntry, InvalidKey, RevokedKey, UnknownKey
from ledger.note import Verifier

__all__ = [
    "GENESIS",
    "KEY_ADD",
    "KEY_REVOKE",
    "RESERVED_PREFIX",
    "KeyRecord",
    "KeyRole",
    "Keyring",
]

GENESIS = "ledger.genesis"
KEY_ADD = "ledger.key.add"
KEY_REVOKE = "ledger.key.revoke"
RESERVED_PREFIX = "ledger."


class KeyRole(StrEnum):
    LOG = "log"  # signs checkpoints and key-registry entries
    ENTRY = "entry"  # signs ordinary entries


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One registered key and the span of sequence numbers it may sign."""

    key_id: str
    verifier_key: str
    role: KeyRole
    added_seq: int
    revoked_seq: int | None = None
    owner: str = ""

    @property
    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(
            Verifier.from_string(self.verifier_key).public_key_bytes
        )

    def valid_at(self, seq: int) -> bool:
        return self.added_seq < seq and (self.revoked_seq is None or seq <= self.revoked_seq)


def _field(body: Any, name: str, kind: str) -> str:
    if not isinstance(body, dict) or not isinstance(body.get(name), str) or not body[name]:
        raise InvalidEntry(f"{kind} entry needs a non-empty string field {name!r}")
    value: str = body[name]
    return value


def _parse_verifier(text: str, kind: str) -> Verifier:
    try:
        return Verifier.from_string(text)
    except InvalidKey as exc:
        raise InvalidEntry(f"{kind}: {exc}") from exc


class Keyring:
    """Registered keys by id; :meth:`apply` replays registry entries in log order."""

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._records: dict[str, KeyRecord] = {r.key_id: r for r in records}
        self._public: dict[str, Ed25519PublicKey] = {}

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._records

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    def snapshot(self) -> Mapping[str, KeyRecord]:
        return dict(self._records)

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        """The key's public key object (cached: parsing it costs as much as a hash)."""
        found = self._public.get(key_id)
        if found is None:
            found = self._public[key_id] = self.require(key_id).public_key
        return found

    def require(self, key_id: str) -> KeyRecord:
        record = self._records.get(key_id)
        if record is None:
            raise UnknownKey(f"key {key_id!r} is not registered with this log", key_id=key_id)
        return record

    def check(self, key_id: str, seq: int, *, role: KeyRole | None = None) -> KeyRecord:
        """The key that may sign entry ``seq``; raises if unknown, not yet valid or revoked."""
        record = self.require(key_id)
        if record.revoked_seq is not None and seq > record.revoked_seq:
            raise RevokedKey(
                f"key {key_id!r} was revoked by entry {record.revoked_seq}", key_id=key_id
            )
        if not record.valid_at(seq):
            raise UnknownKey(f"key {key_id!r} is not valid at entry {seq}", key_id=key_id)
        if role is not None and record.role is not role:
            raise InvalidEntry(f"key {key_id!r} is a {record.role} key; this needs a {role} key")
        return record

    def apply(self, seq: int, kind: str, body: Any, signer_key_id: str) -> KeyRecord | None:
        """Apply a registry entry (signature already checked); return the record it changed.

        Entries of other kinds are ignored; unknown ``ledger.*`` kinds are refused.
        """
        if kind == GENESIS:
            if seq != 0 or self._records:
                raise InvalidEntry("ledger.genesis may only be entry 0")
            verifier = _parse_verifier(_field(body, "log_key", kind), kind)
            _field(body, "origin", kind)
            if verifier.key_id != signer_key_id:
                raise InvalidEntry("ledger.genesis must be signed by the log key it names")
            record = KeyRecord(verifier.key_id, verifier.to_string(), KeyRole.LOG, -1)
        elif kind == KEY_ADD:
            self.check(signer_key_id, seq, role=KeyRole.LOG)
            verifier = _parse_verifier(_field(body, "key", kind), kind)
            try:
                role = KeyRole(_field(body, "role", kind))
            except ValueError as exc:
                raise InvalidEntry(f"ledger.key.add: role must be one of {list(KeyRole)}") from exc
            if verifier.key_id in self._records:
                raise InvalidEntry(f"key {verifier.key_id!r} is already registered")
            owner = body.get("owner", "")
            if not isinstance(owner, str):
                raise InvalidEntry("ledger.key.add: owner must be a string")
            record = KeyRecord(verifier.key_id, verifier.to_string(), role, seq, owner=owner)
        elif kind == KEY_REVOKE:
            target = self.require(_field(body, "key_id", kind))
            _field(body, "reason", kind)
            if signer_key_id != target.key_id:
                self.check(signer_key_id, seq, role=KeyRole.LOG)
            if target.revoked_seq is not None:
                raise InvalidEntry(f"key {target.key_id!r} is already revoked")
            record = replace(target, revoked_seq=seq)
        elif kind.startswith(RESERVED_PREFIX):
            raise InvalidEntry(f"kind {kind!r} is reserved for the log")
        else:
            return None
        self._records[record.key_id] = record
        return record

    def log_verifiers(self) -> list[Verifier]:
        """Every log key ever registered: old checkpoints stay verifiable after rotation."""
        return [Verifier.from_string(r.verifier_key) for r in self if r.role is KeyRole.LOG]
