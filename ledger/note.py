"""C2SP signed-note v1.0.0 (https://c2sp.org/signed-note): Ed25519 notes, signature type 0x01.

Byte-compatible with Go's ``golang.org/x/mod/sumdb/note``: the same key strings
(``PRIVATE+KEY+<name>+<hash>+<base64>`` and ``<name>+<hash>+<base64>``), the same
note layout (text, a blank line, ``— <name> <base64(key hash ‖ signature)>`` lines)
and the same ``Open`` rules (signed-note §Signatures): signatures from unknown keys
are kept unverified, a failing signature from a known key rejects the note, and at
least one known key must have signed.

``Signer`` and ``Verifier`` are the Ed25519 (0x01) keys. Other signature types that
use an Ed25519 key subclass them, overriding ``SIGNATURE_TYPE`` and the two message
methods; ``ledger.witness`` does so for tlog-cosignature (0x04).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InvalidEntry, InvalidKey, InvalidSignature

__all__ = [
    "SIGNATURE_TYPE_ED25519",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "add_signature",
    "generate_key",
    "open_note",
    "sign",
    "verify",
]

SIGNATURE_TYPE_ED25519 = 0x01

_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_SIGNATURE_LINE_PREFIX = "\u2014 "  # EM DASH, SPACE
_SIGNATURE_SPLIT = "\n\n"
_KEY_HASH_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
# Go's Open stops at 100 signatures; signed-note requires accepting at least 16.
_MAX_SIGNATURES = 100
_KEY_HASH_HEX = re.compile(r"[0-9a-fA-F]{8}")
# signed-note §Format: no ASCII control characters other than newline.
_FORBIDDEN_NOTE_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _key_hash(name: str, key: bytes) -> int:
    """signed-note key ID: SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:_KEY_HASH_SIZE], "big")


def _check_name(name: str) -> None:
    """Go's isValidName: non-empty UTF-8 with no Unicode space and no '+'."""
    if not isinstance(name, str) or not name:
        raise InvalidKey("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise InvalidKey(f"key name {name!r} must not contain '+' or spaces")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"key name {name!r} is not valid UTF-8") from exc


def _decode_key_string(encoded: str, *, what: str, signature_type: int) -> tuple[str, int, bytes]:
    """Split ``<name>+<hash>+<base64(type ‖ key32)>`` into name, stated hash and key bytes."""
    name, _, rest = encoded.partition("+")
    hash_hex, _, key_b64 = rest.partition("+")
    _check_name(name)
    if not _KEY_HASH_HEX.fullmatch(hash_hex):
        raise InvalidKey(f"malformed {what} key: key hash {hash_hex!r} is not 8 hex digits")
    try:
        raw = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey(f"malformed {what} key: key data is not base64") from exc
    if not raw or raw[0] != signature_type:
        found = f"0x{raw[0]:02x}" if raw else "none"
        raise InvalidKey(f"{what} key {name!r}: signature type {found}, not 0x{signature_type:02x}")
    if len(raw) != 1 + _ED25519_KEY_SIZE:
        raise InvalidKey(f"{what} key {name!r}: Ed25519 key must be {_ED25519_KEY_SIZE} bytes")
    return name, int(hash_hex, 16), raw[1:]


def _check_key_hash(name: str, *, stated: int, actual: int) -> None:
    if stated != actual:
        raise InvalidKey(
            f"key {name!r}: key hash {stated:08x} does not match the key ({actual:08x})"
        )


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures (signed-note §Ed25519 signatures)."""

    SIGNATURE_TYPE: ClassVar[int] = SIGNATURE_TYPE_ED25519

    name: str
    public_key_bytes: bytes
    key_hash: int = field(init=False)
    _public_key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key_bytes) != _ED25519_KEY_SIZE:
            raise InvalidKey(f"Ed25519 public key must be {_ED25519_KEY_SIZE} bytes")
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes(self.public_key_bytes))
        except ValueError as exc:
            raise InvalidKey(f"invalid Ed25519 public key for {self.name!r}") from exc
        key_hash = _key_hash(self.name, bytes([self.SIGNATURE_TYPE]) + self.public_key_bytes)
        object.__setattr__(self, "key_hash", key_hash)
        object.__setattr__(self, "_public_key", key)

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Self:
        """Build a verifier from a name and a raw 32-byte Ed25519 public key."""
        return cls(name, public_key)

    @classmethod
    def from_string(cls, verifier_key: str) -> Self:
        """Parse a verifier key string ``<name>+<hash 8 hex>+<base64(type ‖ pub32)>``."""
        name, stated_hash, key = _decode_key_string(
            verifier_key, what="verifier", signature_type=cls.SIGNATURE_TYPE
        )
        verifier = cls(name, key)
        _check_key_hash(name, stated=stated_hash, actual=verifier.key_hash)
        return verifier

    @property
    def key_id(self) -> str:
        """``<name>+<hash 8 hex>``, how the key is named in messages and logs."""
        return f"{self.name}+{self.key_hash:08x}"

    def to_string(self) -> str:
        """The verifier key string, as Go's ``note.NewVerifier`` reads it."""
        raw = bytes([self.SIGNATURE_TYPE]) + self.public_key_bytes
        return f"{self.key_id}+{base64.b64encode(raw).decode('ascii')}"

    def verify_message(self, message: bytes, signature: bytes) -> None:
        """Check ``signature`` (the bytes after the key hash) over the note text ``message``."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            raise InvalidSignature(f"invalid signature for key {self.key_id}: wrong length")
        try:
            self._public_key.verify(signature, message)
        except _CryptoInvalidSignature as exc:
            raise InvalidSignature(f"invalid signature for key {self.key_id}") from exc


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key that signs notes. Its ``repr`` never shows the key."""

    SIGNATURE_TYPE: ClassVar[int] = SIGNATURE_TYPE_ED25519
    VERIFIER_CLASS: ClassVar[type[Verifier]] = Verifier

    name: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    verifier: Verifier = field(init=False, repr=False)

    def __post_init__(self) -> None:
        public = self.private_key.public_key().public_bytes_raw()
        object.__setattr__(self, "verifier", self.VERIFIER_CLASS(self.name, public))

    @classmethod
    def from_private_key(cls, name: str, private_key: Ed25519PrivateKey) -> Self:
        """Build a signer from a name and an Ed25519 private key."""
        return cls(name, private_key)

    @classmethod
    def from_string(cls, signer_key: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hash 8 hex>+<base64(type ‖ seed32)>``."""
        if not signer_key.startswith(_PRIVATE_KEY_PREFIX):
            raise InvalidKey("malformed signer key: missing PRIVATE+KEY+ prefix")
        name, stated_hash, seed = _decode_key_string(
            signer_key.removeprefix(_PRIVATE_KEY_PREFIX),
            what="signer",
            signature_type=cls.SIGNATURE_TYPE,
        )
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        # The hash names the public key, so it can only be checked once that is derived.
        _check_key_hash(name, stated=stated_hash, actual=signer.key_hash)
        return signer

    @classmethod
    def generate(cls, name: str) -> Self:
        """A new random key pair under ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_hash(self) -> int:
        return self.verifier.key_hash

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    def to_string(self) -> str:
        """The signer key string, as Go's ``note.NewSigner`` reads it. Keep it secret."""
        raw = bytes([self.SIGNATURE_TYPE]) + self.private_key.private_bytes_raw()
        return f"{_PRIVATE_KEY_PREFIX}{self.key_id}+{base64.b64encode(raw).decode('ascii')}"

    def sign_message(self, message: bytes) -> bytes:
        """The signature over the note text ``message`` (without the key hash)."""
        return self.private_key.sign(message)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, key hash and the base64 payload as written."""

    name: str
    key_hash: int
    base64: str


@dataclass(frozen=True)
class Note:
    """An opened note: its text and which of its signatures were verified."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as ``(signer_key, verifier_key)`` strings."""
    signer = Signer.generate(name)
    return signer.to_string(), signer.verifier.to_string()


def _as_signer(signer: str | Signer) -> Signer:
    return Signer.from_string(signer) if isinstance(signer, str) else signer


def _as_verifiers(
    verifiers: str | Verifier | Iterable[str | Verifier],
) -> dict[tuple[str, int], Verifier]:
    items: Iterable[str | Verifier]
    items = [verifiers] if isinstance(verifiers, str | Verifier) else verifiers
    known: dict[tuple[str, int], Verifier] = {}
    for item in items:
        verifier = Verifier.from_string(item) if isinstance(item, str) else item
        slot = (verifier.name, verifier.key_hash)
        if slot in known and known[slot] != verifier:
            raise InvalidKey(f"ambiguous verifier keys: two different keys are {verifier.key_id}")
        known[slot] = verifier
    return known


def _check_text(text: str, *, error: type[Exception]) -> None:
    if _FORBIDDEN_NOTE_CHARS.search(text):
        raise error("malformed note: contains an ASCII control character other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error("malformed note: not valid UTF-8") from exc


def _split(note: str) -> tuple[str, list[tuple[str, Signature, bytes]]]:
    """Split a note into its text and (line, signature, payload) per signature line."""
    if not isinstance(note, str):
        raise InvalidSignature(f"malformed note: expected str, got {type(note).__name__}")
    _check_text(note, error=InvalidSignature)
    split = note.rfind(_SIGNATURE_SPLIT)
    if split < 0:
        raise InvalidSignature("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise InvalidSignature("malformed note: signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise InvalidSignature(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIGNATURE_LINE_PREFIX):
            raise InvalidSignature(f"malformed note: signature line {number} must start with '— '")
        name, _, encoded = line.removeprefix(_SIGNATURE_LINE_PREFIX).partition(" ")
        try:
            _check_name(name)
            raw = base64.b64decode(encoded, validate=True)
        except (InvalidKey, binascii.Error, ValueError) as exc:
            raise InvalidSignature(f"malformed note: signature line {number}: {exc}") from exc
        if len(raw) <= _KEY_HASH_SIZE:
            raise InvalidSignature(f"malformed note: signature line {number} is too short")
        key_hash = int.from_bytes(raw[:_KEY_HASH_SIZE], "big")
        parsed.append((line, Signature(name, key_hash, encoded), raw[_KEY_HASH_SIZE:]))
    return text, parsed


def open_note(note: str, verifiers: str | Verifier | Iterable[str | Verifier]) -> Note:
    """Parse ``note`` and verify its signatures against the known ``verifiers`` (Go's ``Open``).

    Raises ``InvalidSignature`` if the note is malformed, a signature from a known key does
    not verify, or no known key signed it; ``InvalidKey`` if a verifier key is malformed or
    two different keys share a name and hash.
    """
    known = _as_verifiers(verifiers)
    text, lines = _split(note)
    message = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    verified_keys: set[tuple[str, int]] = set()
    unverified_lines: set[str] = set()
    for line, signature, payload in lines:
        slot = (signature.name, signature.key_hash)
        verifier = known.get(slot)
        # Repeated signatures are dropped as Go's Open drops them: identical lines from
        # unknown keys, and any further line from a key that already verified.
        if verifier is None:
            if line not in unverified_lines:
                unverified_lines.add(line)
                unverified.append(signature)
            continue
        if slot in verified_keys:
            continue
        verifier.verify_message(message, payload)
        verified_keys.add(slot)
        verified.append(signature)
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_hash:08x}" for s in unverified)
        raise InvalidSignature(f"note has no signature from a known key (signed by: {names})")
    return Note(text=text, verified=tuple(verified), unverified=tuple(unverified))


def verify(note: str, verifier_key: str | Verifier | Iterable[str | Verifier]) -> str:
    """Verify ``note`` with one key or several (e.g. old and new after rotation); return its text.

    Raises ``InvalidSignature`` as ``open_note`` does.
    """
    return open_note(note, verifier_key).text


def _signature_line(text: str, signer: Signer) -> str:
    payload = signer.key_hash.to_bytes(_KEY_HASH_SIZE, "big") + signer.sign_message(
        text.encode("utf-8")
    )
    return f"{_SIGNATURE_LINE_PREFIX}{signer.name} {base64.b64encode(payload).decode('ascii')}\n"


def sign(text: str, signer_key: str | Signer) -> str:
    """Sign ``text`` (which must end in a newline) and return the signed note.

    Raises ``InvalidEntry`` if ``text`` does not end in a newline or holds characters a
    note may not hold, ``InvalidKey`` if the signer key string is malformed.
    """
    if not text.endswith("\n"):
        raise InvalidEntry("malformed note: text must end with a newline")
    _check_text(text, error=InvalidEntry)
    signer = _as_signer(signer_key)
    return f"{text}\n{_signature_line(text, signer)}"


def add_signature(note: str, signer_key: str | Signer) -> str:
    """Append ``signer``'s signature to an already signed note (key rotation, cosigning).

    The existing signatures are kept, unverified; one by the same key is replaced,
    as Go's ``Sign`` does.

    Raises ``InvalidSignature`` if ``note`` is malformed.
    """
    signer = _as_signer(signer_key)
    text, lines = _split(note)
    kept = [
        line + "\n"
        for line, signature, _ in lines
        if (signature.name, signature.key_hash) != (signer.name, signer.key_hash)
    ]
    return f"{text}\n{''.join(kept)}{_signature_line(text, signer)}"
