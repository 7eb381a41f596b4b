"""RFC 8785 JSON Canonicalization Scheme (JCS): the byte form of every ledger entry.

``canonicalize`` produces the RFC 8785 §3.2 serialization. The reference
implementation is the ``rfc8785`` package; for the common case (floats without
exponent notation, I-JSON-safe integers, string keys inside the Basic
Multilingual Plane) the standard library's C JSON encoder gives byte-identical
output several times faster, so it is used whenever a cheap walk of the value
proves that case.

``parse_strict`` reads JSON under the I-JSON rules RFC 8785 §3.1 relies on
(RFC 7493: no duplicate member names, finite numbers, valid UTF-8), and
``parse_canonical`` additionally requires the bytes to be already canonical.
``parse_canonical`` first tries a proof by re-serialisation: inside the *plain*
domain (no floats, integers within ±(2**53 - 1), no characters outside the BMP)
orjson's sorted compact output is the RFC 8785 form, so bytes that orjson
writes back unchanged are canonical. Anything else takes the strict path, which
also names the fault.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
import rfc8785

from ledger.errors import InvalidEntry, NonCanonicalJSON

__all__ = ["canonicalize", "parse_canonical", "parse_strict"]

# RFC 8785 §3.2.2.3 / I-JSON: integers must be exactly representable as IEEE-754 doubles.
_MAX_SAFE_INTEGER = 2**53 - 1

# JCS sorts member names by UTF-16 code units (RFC 8785 §3.2.3); Python sorts by code
# points. The two orders agree unless a name holds a character outside the BMP (or a
# lone surrogate, which is not valid Unicode at all).
_NOT_BMP_SAFE = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")

# With these settings the C encoder writes strings, integers, booleans, null, arrays and
# objects exactly as RFC 8785 §3.2.2 does; only number formatting and key order can differ,
# and _plain rules those out.
_FAST_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
)


class _NotPlain(Exception):
    """A value whose RFC 8785 form the standard encoder does not write."""


def _plain(value: object) -> object:
    """``value`` as the standard encoder writes in RFC 8785 form, or :class:`_NotPlain`.

    Below 1e16 Python's shortest repr of a float has no exponent, and RFC 8785 writes the
    same digits, without the ``.0`` of an integral float: those become ints (exact there),
    the others are kept. Other floats (exponent notation), integers beyond 2**53, keys
    outside the BMP (UTF-16 order), int and str subclasses and anything else are not plain.
    """
    if type(value) is str or type(value) is bool or value is None:
        return value
    if type(value) is dict:
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [_plain(v) for v in value]
    if type(value) is int:
        if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            return value
        raise _NotPlain
    if type(value) is float:
        if value.is_integer() and abs(value) < 1e16:
            return int(value)
        if 1e-4 <= abs(value) < 1e16:
            return value
    raise _NotPlain


def _plain_key(key: object) -> str:
    if type(key) is not str or (not key.isascii() and _NOT_BMP_SAFE.search(key)):
        raise _NotPlain
    return key


def canonicalize(obj: object) -> bytes:
    """Serialize ``obj`` as RFC 8785 canonical JSON (UTF-8 bytes).

    Raises
    ------
    NonCanonicalJSON
        If ``obj`` has no JCS form: NaN or infinite floats, integers beyond
        ±(2**53 - 1), non-string object keys, lone surrogates, unsupported types
        or cyclic / too deeply nested containers.
    """
    try:
        # Encoding to UTF-8 fails on lone surrogates in string values, which _plain does
        # not look for; the reference path then reports them.
        return _FAST_ENCODER.encode(_plain(obj)).encode("utf-8")
    except (_NotPlain, RecursionError, UnicodeEncodeError, ValueError):
        pass
    try:
        return rfc8785.dumps(obj)  # type: ignore[arg-type]
    except (rfc8785.IntegerDomainError, rfc8785.FloatDomainError) as exc:
        raise NonCanonicalJSON(f"not representable in RFC 8785 JSON: {exc}") from exc
    except UnicodeEncodeError as exc:  # a key the reference sorts by its UTF-16 form
        raise NonCanonicalJSON("cannot canonicalize value: a key holds a lone surrogate") from exc
    except (ValueError, TypeError) as exc:  # rfc8785.CanonicalizationError is a ValueError
        raise NonCanonicalJSON(f"cannot canonicalize value: {exc}") from exc
    except RecursionError as exc:
        raise NonCanonicalJSON("cannot canonicalize value: cyclic or too deeply nested") from exc


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise NonCanonicalJSON(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise NonCanonicalJSON(f"{name} is not a JSON number (RFC 8259 §6)")


def _number_int(text: str) -> int | float:
    number = int(text)
    # RFC 8785 numbers are IEEE-754 doubles: beyond 2**53 an integer literal is a double
    # (the canonical form of 1e20 is "100000000000000000000").
    return number if -_MAX_SAFE_INTEGER <= number <= _MAX_SAFE_INTEGER else float(number)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NonCanonicalJSON(f"number {text} overflows an IEEE-754 double")
    return number


def parse_strict(data: bytes | str) -> Any:
    """Parse one JSON value, refusing what RFC 8785 / I-JSON cannot represent.

    Raises
    ------
    NonCanonicalJSON
        On duplicate object keys, ``NaN`` / ``Infinity`` / ``-Infinity`` (or a number
        that overflows a double), invalid UTF-8, or data after the value.
    InvalidEntry
        On otherwise malformed JSON.

    Integers beyond ±(2**53 - 1) are read as doubles, as RFC 8785 reads every number.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NonCanonicalJSON(f"invalid UTF-8 at byte {exc.start}") from exc
    elif isinstance(data, str):
        text = data
    else:
        raise InvalidEntry(f"JSON must be bytes or str, not {type(data).__name__}")
    try:
        return json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_number_int,
        )
    except json.JSONDecodeError as exc:
        where = _position(data, text, exc.pos)
        if exc.msg == "Extra data":
            raise NonCanonicalJSON(f"trailing data after the JSON value at {where}") from exc
        raise InvalidEntry(f"malformed JSON: {exc.msg} at {where}") from exc
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise InvalidEntry(f"malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidEntry("malformed JSON: nested too deeply") from exc


def _position(data: bytes | str, text: str, pos: int) -> str:
    if isinstance(data, bytes):
        return f"byte {len(text[:pos].encode('utf-8'))}"
    return f"character {pos}"


# Lead bytes of 4-byte UTF-8 sequences, i.e. of characters outside the BMP.
_UTF8_NOT_BMP = tuple(bytes([lead]) for lead in range(0xF0, 0xF5))
_PLAIN_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_UNPROVEN = object()


def _no_floats(value: Any) -> bool:
    for member in value.values() if type(value) is dict else value:
        kind = type(member)
        if kind is dict or kind is list:
            if not _no_floats(member):
                return False
        elif kind is float:
            return False
    return True


def _plain_canonical(data: bytes) -> Any:
    """The value of ``data`` if re-serialisation proves it canonical, else ``_UNPROVEN``.

    orjson reads duplicate keys last-wins and accepts whitespace, escapes and
    other number spellings, but then its output differs from ``data``. In the
    plain domain its output equals RFC 8785's: string escapes agree, keys sort by
    code point (the UTF-16 order inside the BMP), and ``OPT_STRICT_INTEGER``
    refuses integers that are not exact doubles.
    """
    if not data.isascii() and any(lead in data for lead in _UTF8_NOT_BMP):
        return _UNPROVEN
    try:
        value = orjson.loads(data)
        if type(value) is dict or type(value) is list:
            if not _no_floats(value):
                return _UNPROVEN
        elif type(value) is float:
            return _UNPROVEN
        if orjson.dumps(value, option=_PLAIN_OPTIONS) != data:
            return _UNPROVEN
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
        return _UNPROVEN
    return value


def parse_canonical(data: bytes) -> Any:
    """Parse ``data`` and require it to be exactly the RFC 8785 form of its value.

    Raises
    ------
    NonCanonicalJSON
        If ``data`` is not canonical (the message gives the byte offset of the first
        difference), or for any reason ``parse_strict`` refuses it.
    InvalidEntry
        On malformed JSON.
    """
    if type(data) is bytes:
        value = _plain_canonical(data)
        if value is not _UNPROVEN:
            return value
    return _checked_canonical(data)


def _checked_canonical(data: bytes) -> Any:
    """``parse_canonical`` by the reference route: strict parse, canonicalize, compare."""
    value = parse_strict(data)
    canonical = canonicalize(value)
    if canonical != data:
        offset = next(
            (i for i, (got, want) in enumerate(zip(data, canonical, strict=False)) if got != want),
            min(len(data), len(canonical)),
        )
        raise NonCanonicalJSON(f"JSON is not RFC 8785 canonical: first difference at byte {offset}")
    return value
