"""Log entries: the signed submission a client offers, and the canonical envelope the log stores.

A *submission* is ``(kind, body, key_id, signature)``; the signature is Ed25519
over :func:`signing_message`, i.e. the RFC 8785 form of the body, prefixed with
a domain-separation line and the kind so a signature for one kind can never be
replayed as another.

An *entry* is the RFC 8785 canonical JSON of the envelope ::

    {"body": {...}, "key_id": "<name>+<hash>", "kind": "...", "prev": "<base64 32 bytes>",
     "recorded_at": "2026-11-28T10:00:00.000000Z", "seq": 7, "sig": "<base64 64 bytes>"}

and those bytes are the RFC 6962 leaf. ``prev`` is the leaf hash of entry
``seq - 1`` (32 zero bytes for entry 0), chaining every entry to its
predecessor as well as to the tree.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import canonicalize, parse_canonical, parse_strict
from ledger.errors import InvalidEntry, NonCanonicalJSON
from ledger.merkle import HASH_SIZE, leaf_hash

__all__ = [
    "GENESIS_PREV",
    "MAX_ENTRY_BYTES",
    "SIGNATURE_SIZE",
    "Entry",
    "Submission",
    "encode_entry",
    "format_time",
    "parse_submission",
    "sign_submission",
    "signing_message",
]

_SIGNING_PREFIX = b"suyuan-entry/v1\n"
GENESIS_PREV = bytes(HASH_SIZE)
SIGNATURE_SIZE = 64
MAX_ENTRY_BYTES = 64 * 1024
_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ENVELOPE_KEYS = ("body", "key_id", "kind", "prev", "recorded_at", "seq", "sig")


def signing_message(kind: str, canonical_body: bytes) -> bytes:
    """The bytes an entry's signer signs: a format line, the kind, then the JCS body."""
    return _SIGNING_PREFIX + kind.encode() + b"\n" + canonical_body


def format_time(moment: datetime) -> str:
    """Recorded times are UTC with microseconds and a ``Z``, so they sort as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise InvalidEntry(f"kind {kind!r} must match {_KIND.pattern}")
    return kind


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not key_id or len(key_id) > 200 or "\n" in key_id:
        raise InvalidEntry(f"key_id {key_id!r} is not a key id")
    return key_id


def _b64decode(value: object, *, field: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidEntry(f"{field} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidEntry(f"{field} is not valid base64") from exc
    if len(raw) != size:
        raise InvalidEntry(f"{field} must decode to {size} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class Submission:
    """A signed request to append one entry; the log checks the signature before appending."""

    kind: str
    body: Any
    key_id: str
    signature: bytes
    # The RFC 8785 bytes of ``body`` when the signer already has them. The log
    # appends and verifies these exact bytes, so a wrong value can only make the
    # signature fail, never store a body other than the one signed.
    canonical_body: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: object) -> Submission:
        """Build from ``{"kind", "body", "key_id", "sig"}`` (the NDJSON append format)."""
        if not isinstance(obj, dict):
            raise InvalidEntry("a submission must be a JSON object")
        extra = set(obj) - {"kind", "body", "key_id", "sig"}
        missing = {"kind", "body", "key_id", "sig"} - set(obj)
        if missing or extra:
            raise InvalidEntry(
                f"a submission has exactly kind, body, key_id, sig "
                f"(missing {sorted(missing)}, unexpected {sorted(extra)})"
            )
        return cls(
            kind=_check_kind(obj["kind"]),
            body=obj["body"],
            key_id=_check_key_id(obj["key_id"]),
            signature=_b64decode(obj["sig"], field="sig", size=SIGNATURE_SIZE),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "body": self.body,
            "key_id": self.key_id,
            "sig": base64.b64encode(self.signature).decode(),
        }


def _canonical_number(text: str) -> None:
    # RFC 8785 writes each number one way; a signer that sent another spelling
    # (1.0, 1e2, -0, 007) did not sign what it sent.
    value: object = int(text) if text.lstrip("-").isdigit() else float(text)
    expected = canonicalize(value).decode()
    if expected != text:
        raise NonCanonicalJSON(f"number {text} is not in RFC 8785 form (write {expected})")


def _check_number(text: str) -> float:
    _canonical_number(text)
    return float(text)


def _check_int(text: str) -> int:
    _canonical_number(text)
    return int(text)


def parse_submission(line: bytes | str) -> Submission:
    """Parse one NDJSON submission line strictly (duplicate keys, non-canonical numbers, shape)."""
    obj = parse_strict(line)
    try:
        json.loads(line, parse_float=_check_number, parse_int=_check_int)
    except ValueError as exc:  # NonCanonicalJSON is not a ValueError; this is int(...) on odd input
        raise InvalidEntry(f"malformed number: {exc}") from exc
    return Submission.from_json(obj)


def sign_submission(kind: str, body: Any, *, key_id: str, key: Ed25519PrivateKey) -> Submission:
    """Sign ``body`` as an entry of ``kind`` with ``key`` (whose registered id is ``key_id``)."""
    canonical = canonicalize(body)
    message = signing_message(_check_kind(kind), canonical)
    return Submission(
        kind=kind, body=body, key_id=key_id, signature=key.sign(message), canonical_body=canonical
    )


@functools.lru_cache(maxsize=4096)
def _json_str(value: str) -> str:
    # json.dumps of a str with ensure_ascii=False is exactly its RFC 8785 form. Kinds and
    # key ids repeat across entries, hence the cache.
    return json.dumps(value, ensure_ascii=False)


def encode_entry(
    *,
    seq: int,
    prev: bytes,
    recorded_at: str,
    kind: str,
    canonical_body: bytes,
    key_id: str,
    signature: bytes,
) -> bytes:
    """Assemble the canonical envelope from an already canonical body.

    Equal to ``canonicalize(envelope)`` (tested); assembling avoids
    canonicalising the body twice on the append path.
    """
    # Keys in RFC 8785 order: body, key_id, kind, prev, recorded_at, seq, sig.
    head = b'{"body":'
    tail = (
        f',"key_id":{_json_str(key_id)},"kind":{_json_str(kind)},'
        f'"prev":"{base64.b64encode(prev).decode()}","recorded_at":"{recorded_at}",'
        f'"seq":{seq},"sig":"{base64.b64encode(signature).decode()}"}}'
    )
    return head + canonical_body + tail.encode()


@dataclass(frozen=True, slots=True)
class Entry:
    """One parsed log entry and its canonical bytes."""

    seq: int
    prev: bytes
    recorded_at: str
    kind: str
    body: Any
    key_id: str
    signature: bytes
    raw: bytes

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.raw)

    def message(self) -> bytes:
        """The bytes the signer signed.

        The canonical body is a slice of the canonical entry: it starts after
        ``{"body":`` and ends at the last ``,"key_id":`` (the fields after the
        body are strings and numbers, which cannot contain that sequence).
        """
        end = self.raw.rfind(b',"key_id":')
        return signing_message(self.kind, self.raw[len(b'{"body":') : end])

    @classmethod
    def parse(cls, raw: bytes) -> Entry:
        """Parse canonical entry bytes strictly; any deviation raises :class:`InvalidEntry`."""
        if len(raw) > MAX_ENTRY_BYTES:
            raise InvalidEntry(f"entry is {len(raw)} bytes; the limit is {MAX_ENTRY_BYTES}")
        obj = parse_canonical(raw)
        if not isinstance(obj, dict) or tuple(sorted(obj)) != _ENVELOPE_KEYS:
            raise InvalidEntry(f"an entry has exactly the fields {', '.join(_ENVELOPE_KEYS)}")
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise InvalidEntry(f"seq {seq!r} is not a non-negative integer")
        recorded_at = obj["recorded_at"]
        if not isinstance(recorded_at, str) or not _TIME.fullmatch(recorded_at):
            raise InvalidEntry(f"recorded_at {recorded_at!r} is not a UTC timestamp")
        return cls(
            seq=seq,
            prev=_b64decode(obj["prev"], field="prev", size=HASH_SIZE),
            recorded_at=recorded_at,
            kind=_check_kind(obj["kind"]),
            body=obj["body"],
            key_id=_check_key_id(obj["key_id"]),
            signature=_b64decode(obj["sig"], field="sig", size=SIGNATURE_SIZE),
            raw=raw,
        )
