"""QR labels: a signed resolver URL per item, rendered as PNG or SVG, and checked when scanned.

Payload
-------
A label holds one URL on the service's own resolver (domain.md §7, item 2)::

    {base_url}/p/{code}?s={token}

``code`` is the GB/T 34014-2017 code verbatim (24 characters, 19 for a cascade-use
re-code) or a lot id. ``token`` is RFC 4648 §6 base32, upper case, without padding, of
``key hash (4 bytes, big-endian) ‖ Ed25519 signature (64 bytes)`` — the layout of a
C2SP signed-note signature line, so the 4-byte hash finds the verifier key exactly as a
note verifier does. The signature is by the *issuing organisation* (the item's producer;
for a re-coded pack, the cascade-use operator) over the domain-separated message::

    suyuan-label/v1\\n{code}\\n{key id}            (key id = "<name>+<8 hex hash>")

Why this form, against GS1 Digital Link (domain.md §4.1):

* a 24-character GB/T 34014 code does not fit AI 21 (serial, X..20), so
  ``/01/{GTIN}/21/{code}`` is not available; the code stays on suyuan's own path, where
  it is readable and stored verbatim;
* deployments with a GS1 company prefix can resolve ``https://{domain}/8004/{GIAI}``
  (AI 8004, X..30, company prefix first) to the same passport — but prefix + code must
  fit 30 characters: a 24-character code leaves room for a prefix of at most 6 digits,
  a 19-character re-code for 11. The signature would ride along as the same ``s``
  query parameter.
* base32 rather than base64url: QR alphanumeric mode (ISO/IEC 18004) holds ``0-9 A-Z``
  at 5.5 bits a character against 8 in byte mode, and the encoder switches modes on
  runs of 20 or more, so the token costs about 17 % fewer bits and the code 31 %. The URL has
  more characters (a 64-byte signature alone is 86 in base64url, so no encoding reaches
  120 characters with a 24-character code), but the symbol is what must stay small.

Measured with ``http://testserver`` (17 characters): 156 characters, QR version 7
(45 x 45 modules) at error correction M; base64url would be 138 characters and version 8.
``https://id.suyuan.cn`` gives version 7 too; a 32-character host gives version 8.

Verdicts
--------
A scanned label is *genuine* only if its signature verifies, over its own code, with a
current key of the item's issuer. Ed25519 cannot say which half of a non-matching
(code, signature) pair was changed, so a flipped signature character and an altered
code both give :attr:`Verdict.MISMATCH`; an undecodable token is :attr:`Verdict.MALFORMED`.
A revoked key's labels are not genuine (the key may be compromised): re-label.

Rendered labels are cached in memory (LRU over every rendering parameter, including
the payload). perf-limits.md §7 measures ~4 ms for a version-4 symbol; this version-7
payload takes 13-20 ms, mostly qrcode's search for the best of eight masks.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qs, urlsplit

import qrcode
from PIL import Image, ImageDraw, ImageFont

from ledger import note
from ledger.errors import InvalidSignature
from ledger.keys import KeyRecord, KeyRole
from schemas.codes import parse_code
from schemas.events import is_lot_id
from schemas.lots import parse_lot_id

__all__ = [
    "DEFAULT_SIZE",
    "LABEL_CACHE_SIZE",
    "LABEL_CONTEXT",
    "MAX_SIZE",
    "MIN_SIZE",
    "ErrorCorrection",
    "LabelCheck",
    "LabelFormat",
    "LabelSpec",
    "Verdict",
    "issuer_verifiers",
    "label_message",
    "label_url",
    "qr_version",
    "render_label",
    "sign_label",
    "verify_issued",
    "verify_label",
]

LABEL_CONTEXT: Final = "suyuan-label/v1"
RESOLVER_PATH: Final = "/p/"
SIGNATURE_PARAM: Final = "s"
_KEY_HASH_BYTES: Final = 4
_SIGNATURE_BYTES: Final = 64
_TOKEN_BYTES: Final = _KEY_HASH_BYTES + _SIGNATURE_BYTES
_BASE32_BLOCK: Final = 8  # base32 pads to blocks of 8 characters

MIN_SIZE: Final = 2  # pixels (PNG) or px units (SVG) per module
MAX_SIZE: Final = 24
DEFAULT_SIZE: Final = 8
QUIET_ZONE: Final = 4  # modules of white around the symbol, as ISO/IEC 18004 requires
LABEL_CACHE_SIZE: Final = 1024
_CAPTION_MODULES: Final = 3.0  # caption font size, in modules
_CAPTION_CHAR_WIDTH: Final = 0.62  # monospace advance, in ems


class Verdict(StrEnum):
    """What a label's signature says about the label."""

    GENUINE = "genuine"
    ABSENT = "absent"  # no signature on the label
    MALFORMED = "malformed"  # the token is not a base32 key hash and signature
    MISMATCH = "mismatch"  # the signature does not verify over this code
    UNKNOWN_SIGNER = "unknown-signer"  # no key of the issuer has this hash
    REVOKED_SIGNER = "revoked-signer"  # signed by a key the issuer has revoked

    @property
    def genuine(self) -> bool:
        return self is Verdict.GENUINE

    @property
    def words(self) -> str:
        """The verdict in a sentence, for people (the page never relies on colour)."""
        return _WORDS[self]


_WORDS: Final[Mapping[Verdict, str]] = {
    Verdict.GENUINE: "The label was signed by the organisation that issued this battery.",
    Verdict.ABSENT: "The link carries no label signature, so the label itself was not checked.",
    Verdict.MALFORMED: "The label's signature is damaged or was tampered with.",
    Verdict.MISMATCH: (
        "The signature does not match this code: the code or the signature was changed "
        "after signing."
    ),
    Verdict.UNKNOWN_SIGNER: "The label was not signed by the organisation that issued this battery.",
    Verdict.REVOKED_SIGNER: (
        "The label was signed with a key its issuer has revoked; ask the issuer for a new label."
    ),
}


@dataclass(frozen=True, slots=True)
class LabelCheck:
    """The outcome of checking a label: verdict, the code it names, the key that signed it."""

    verdict: Verdict
    code: str
    key_id: str | None = None

    @property
    def genuine(self) -> bool:
        return self.verdict.genuine


# --- payload: signing and verification ---


def _check_item_code(code: str) -> None:
    """Raise a :class:`schemas.errors.SchemaError` unless ``code`` is a battery code or lot id."""
    if is_lot_id(code):
        parse_lot_id(code)
    else:
        parse_code(code)


def label_message(code: str, key_id: str) -> bytes:
    """The signed bytes: ``suyuan-label/v1\\n{code}\\n{key id}`` (domain separation)."""
    return f"{LABEL_CONTEXT}\n{code}\n{key_id}".encode()


def _encode_token(key_hash: int, signature: bytes) -> str:
    raw = key_hash.to_bytes(_KEY_HASH_BYTES, "big") + signature
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str) -> tuple[int, bytes] | None:
    """Key hash and signature, or ``None`` unless ``token`` is canonical base32 of 68 bytes."""
    text = token.strip().upper()
    padded = text + "=" * (-len(text) % _BASE32_BLOCK)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        return None
    # Canonical form only: the last character's spare bits must be zero, so no two
    # spellings of a token exist (one flipped character always changes the bytes).
    if len(raw) != _TOKEN_BYTES or base64.b32encode(raw).decode().rstrip("=") != text:
        return None
    return int.from_bytes(raw[:_KEY_HASH_BYTES], "big"), raw[_KEY_HASH_BYTES:]


def sign_label(code: str, signer: note.Signer) -> str:
    """The label token for ``code``, signed with ``signer`` (for organisations signing offline).

    Raises :class:`schemas.errors.SchemaError` if ``code`` is not a GB/T 34014 code or lot id.
    """
    _check_item_code(code)
    signature = signer.sign_message(label_message(code, signer.key_id))
    return _encode_token(signer.key_hash, signature)


def label_url(base_url: str, code: str, token: str) -> str:
    """The resolver URL a label holds: ``{base_url}/p/{code}?s={token}``."""
    return f"{base_url.rstrip('/')}{RESOLVER_PATH}{code}?{SIGNATURE_PARAM}={token}"


def _parse_label(label: str | Mapping[str, str]) -> tuple[str, str | None]:
    """Code and token from a scanned URL, or from parameters ``{"code": ..., "s": ...}``."""
    if isinstance(label, Mapping):
        return label["code"], label.get(SIGNATURE_PARAM)
    parts = urlsplit(label)
    _, found, code = parts.path.rpartition(RESOLVER_PATH)
    if not found or not code:
        raise ValueError(f"not a label URL (no {RESOLVER_PATH}<code> path): {label!r}")
    tokens = parse_qs(parts.query).get(SIGNATURE_PARAM)
    return code, tokens[0] if tokens else None


def verify_label(
    label: str | Mapping[str, str],
    verifiers: Iterable[note.Verifier],
    *,
    revoked: Collection[str] = (),
) -> LabelCheck:
    """Check a label against its issuer's keys; works offline, with the keys alone.

    ``label`` is the scanned URL or ``{"code": ..., "s": ...}``; ``verifiers`` are the
    issuer's keys and ``revoked`` the key ids among them that were revoked.
    Returns a verdict rather than raising: a passport shows every outcome to its reader.
    """
    code, token = _parse_label(label)
    if token is None:
        return LabelCheck(Verdict.ABSENT, code)
    decoded = _decode_token(token)
    if decoded is None:
        return LabelCheck(Verdict.MALFORMED, code)
    key_hash, signature = decoded
    candidates = [v for v in verifiers if v.key_hash == key_hash]
    if not candidates:
        return LabelCheck(Verdict.UNKNOWN_SIGNER, code)
    for verifier in candidates:  # two keys may share a 32-bit hash: try each
        try:
            verifier.verify_message(label_message(code, verifier.key_id), signature)
        except InvalidSignature:
            continue
        verdict = Verdict.REVOKED_SIGNER if verifier.key_id in revoked else Verdict.GENUINE
        return LabelCheck(verdict, code, verifier.key_id)
    return LabelCheck(Verdict.MISMATCH, code, candidates[0].key_id)


def issuer_verifiers(
    records: Iterable[KeyRecord], issuer: str
) -> tuple[list[note.Verifier], frozenset[str]]:
    """The issuer's registered signing keys and the ids of those revoked since."""
    mine = [r for r in records if r.owner == issuer and r.role is KeyRole.ENTRY]
    verifiers = [note.Verifier.from_string(r.verifier_key) for r in mine]
    return verifiers, frozenset(r.key_id for r in mine if r.revoked_seq is not None)


def verify_issued(
    records: Iterable[KeyRecord], *, issuer: str, code: str, token: str | None
) -> LabelCheck:
    """Check the token of ``code`` against the registered keys of its ``issuer``."""
    if token is None:
        return LabelCheck(Verdict.ABSENT, code)
    verifiers, revoked = issuer_verifiers(records, issuer)
    return verify_label({"code": code, SIGNATURE_PARAM: token}, verifiers, revoked=revoked)


# --- rendering ---


class LabelFormat(StrEnum):
    PNG = "png"
    SVG = "svg"


class ErrorCorrection(StrEnum):
    """QR error-correction levels: about 7, 15, 25 and 30 % of the symbol recoverable."""

    L = "L"
    M = "M"
    Q = "Q"
    H = "H"

    @property
    def constant(self) -> int:
        level: int = getattr(qrcode.constants, f"ERROR_CORRECT_{self.value}")
        return level


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """Everything a rendering depends on: the cache key."""

    payload: str
    format: LabelFormat
    size: int = DEFAULT_SIZE
    ec: ErrorCorrection = ErrorCorrection.M
    caption: str | None = None


def _symbol(payload: str, ec: ErrorCorrection) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ec.constant, box_size=1, border=QUIET_ZONE)
    qr.add_data(payload)  # optimize=20: alphanumeric runs of 20+ characters switch mode
    qr.make(fit=True)
    return qr


def qr_version(payload: str, ec: ErrorCorrection = ErrorCorrection.M) -> int:
    """The QR version (1-40) the payload needs at error correction ``ec``."""
    version: int = _symbol(payload, ec).version
    return version


def _modules(payload: str, ec: ErrorCorrection) -> list[list[bool]]:
    """The symbol's dark modules, quiet zone included."""
    matrix: list[list[bool]] = _symbol(payload, ec).get_matrix()
    return matrix


def _png(spec: LabelSpec) -> bytes:
    matrix = _modules(spec.payload, spec.ec)
    n = len(matrix)
    symbol = Image.new("1", (n, n), 1)
    symbol.putdata([0 if dark else 1 for row in matrix for dark in row])
    image = symbol.resize((n * spec.size, n * spec.size), Image.Resampling.NEAREST)
    if spec.caption:
        image = _caption_png(image.convert("L"), spec.caption, spec.size)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _caption_png(symbol: Image.Image, caption: str, size: int) -> Image.Image:
    font = ImageFont.load_default(size=max(10, round(_CAPTION_MODULES * size)))
    box = ImageDraw.Draw(symbol).textbbox((0, 0), caption, font=font)
    left, top, right, bottom = (math.floor(box[0]), math.floor(box[1]), *map(math.ceil, box[2:]))
    pad = size
    width = max(symbol.width, right - left + 2 * pad)
    canvas = Image.new("L", (width, symbol.height + bottom - top + pad), 255)
    canvas.paste(symbol, ((width - symbol.width) // 2, 0))
    origin = ((width - (right - left)) // 2 - left, symbol.height - top)
    ImageDraw.Draw(canvas).text(origin, caption, fill=0, font=font)
    return canvas


def _svg_path(matrix: Sequence[Sequence[bool]]) -> str:
    """One path of horizontal runs of dark modules (``M x y h w v1 h -w z``)."""
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


def _label_code(payload: str) -> str:
    """The code a label URL names (the payload itself if it is not a label URL)."""
    try:
        return _parse_label(payload)[0]
    except ValueError:
        return payload


def _svg(spec: LabelSpec) -> str:
    matrix = _modules(spec.payload, spec.ec)
    n = len(matrix)
    height = float(n)
    text = ""
    if spec.caption:
        font = min(_CAPTION_MODULES, (n - 2) / (_CAPTION_CHAR_WIDTH * len(spec.caption)))
        text = (
            f'<text x="{n / 2:g}" y="{n + font * 0.9:.2f}" font-family="ui-monospace,monospace" '
            f'font-size="{font:.2f}" text-anchor="middle" fill="#000">'
            f"{html.escape(spec.caption)}</text>"
        )
        height += round(font * 1.25, 2)
    title = html.escape(f"QR label for {spec.caption or _label_code(spec.payload)}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {height:g}" '
        f'width="{n * spec.size}" height="{height * spec.size:g}" role="img" '
        f'shape-rendering="crispEdges"><title>{title}</title>'
        f'<rect width="{n}" height="{height:g}" fill="#fff"/>'
        f'<path fill="#000" d="{_svg_path(matrix)}"/>{text}</svg>'
    )


@lru_cache(maxsize=LABEL_CACHE_SIZE)
def render_label(spec: LabelSpec) -> bytes:
    """The label as PNG or SVG bytes; cached (LRU) on the whole spec, payload included."""
    if spec.format is LabelFormat.PNG:
        return _png(spec)
    return _svg(spec).encode()
