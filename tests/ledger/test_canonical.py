"""RFC 8785 canonical JSON: published JCS vectors, the fast path against the reference, errors."""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import (
    _UNPROVEN,
    _checked_canonical,
    _plain_canonical,
    canonicalize,
    parse_canonical,
    parse_strict,
)
from ledger.errors import InvalidEntry, NonCanonicalJSON
from tests.conftest import load_vector

JCS = load_vector("ledger-vectors/jcs.json")
ES6 = JCS["numbers_es6testfile_first1000"]

# A realistic custody event of about 850 bytes of canonical JSON: ints, strings
# (some CJK), lists and nested objects, no floats.
EVENT: dict[str, Any] = {
    "seq": 1048576,
    "prev": "9f2c4b1e7a3d5f60812c4e9b0a7d3f1e5c6b8a9d0e1f2a3b4c5d6e7f8091a2b3",
    "recorded_at": "2025-03-14T09:26:53Z",
    "kind": "transfer.accept",
    "key_id": "org:cn-recycler-0042+3f9a1c2e",
    "body": {
        "event_id": "01HQ7Z3K9Y8X6W5V4T3S2R1Q0P",
        "item": {"code": "036PE02A0000001C1N0000001", "kind": "pack", "chemistry": "LFP"},
        "from": {"actor": "org:cn-collector-0117", "region": "440300", "role": "collector"},
        "to": {"actor": "org:cn-recycler-0042", "region": "441900", "role": "recycler"},
        "mass_g": 412500,
        "soh_permille": 734,
        "modules": ["036PM02A0000001C1N0000001", "036PM02A0000002C1N0000001"],
        "documents": [{"type": "waybill", "ref": "SF1402938475610", "pages": 2}],
        "idempotency_key": "b7e4c1d2-9f3a-4e8b-a6d5-0c1f2e3d4b5a",
        "note": "外包装完好 电池包无漏液 已贴溯源标签",
        "ok": True,
        "corrects": None,
    },
    "sig": "k7Vx2fQ9pL3mN8sR1tY6uW4zA0bC5dE7fG9hJ2kL4mN6pQ8rS0tU2vW4xY6zA8bC0dE2fG4hJ6kL8mN0pQ==",
}


def _double(ieee_hex: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(ieee_hex.zfill(16)))[0]
    return value


# --- published vectors (cyberphone/json-canonicalization testdata) ---


@pytest.mark.parametrize("case", JCS["files"], ids=lambda c: c["name"])
def test_jcs_file_vectors(case: dict[str, Any]) -> None:
    expected = case["expected"].encode("utf-8")
    assert expected == bytes.fromhex(case["expected_hex"])
    assert canonicalize(json.loads(case["input"])) == expected
    assert canonicalize(parse_strict(case["input"])) == expected
    assert canonicalize(parse_canonical(expected)) == expected


@pytest.mark.parametrize("case", JCS["numbers_readme_samples"], ids=lambda c: c["ieee_hex"])
def test_jcs_number_samples(case: dict[str, str]) -> None:
    assert canonicalize(_double(case["ieee_hex"])) == case["expected"].encode()


def test_es6_number_lines_are_the_published_ones() -> None:
    text = "".join(f"{line}\n" for line in ES6["lines"])
    assert len(text.encode()) == ES6["size_bytes"]
    assert hashlib.sha256(text.encode()).hexdigest() == ES6["sha256_of_lines"]


@pytest.mark.parametrize("line", ES6["lines"], ids=lambda line: line.split(",")[0])
def test_es6_number_formatting(line: str) -> None:
    ieee_hex, expected = line.split(",")
    assert canonicalize(_double(ieee_hex)) == expected.encode()
    assert canonicalize([_double(ieee_hex)]) == f"[{expected}]".encode()


# --- the fast path agrees with the reference ---


def test_realistic_event_matches_reference() -> None:
    out = canonicalize(EVENT)
    assert out == rfc8785.dumps(EVENT)
    assert 800 <= len(out) <= 900


def _no_reference(obj: object) -> bytes:
    raise AssertionError("the reference encoder should not have been needed")


def test_plain_values_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rfc8785, "dumps", _no_reference)
    assert canonicalize(EVENT) == json.dumps(
        EVENT, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert canonicalize([2**53 - 1, -(2**53 - 1), True, None, "\x1f\u2028"]) == (
        b'[9007199254740991,-9007199254740991,true,null,"\\u001f\xe2\x80\xa8"]'
    )


class _Level(enum.IntEnum):
    HIGH = 3


class _Name(str):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"x": 1.0}, b'{"x":1}', id="float-integral"),
        pytest.param([-0.0, 1e20, 1e-7, 0.1], b"[0,100000000000000000000,1e-7,0.1]", id="floats"),
        pytest.param(
            {"\ufb33": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ufb33":1}'.encode(), id="utf16-order"
        ),
        pytest.param({"level": _Level.HIGH}, b'{"level":3}', id="int-subclass"),
        pytest.param({_Name("k"): "v"}, b'{"k":"v"}', id="str-subclass-key"),
    ],
)
def test_values_needing_the_reference_encoder(value: Any, expected: bytes) -> None:
    assert canonicalize(value) == expected == rfc8785.dumps(value)


def _cyclic() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(float("nan"), "not representable", id="nan"),
        pytest.param([float("inf")], "not representable", id="inf"),
        pytest.param({"n": 2**53}, "exceeds safe integer domain", id="int-too-big"),
        pytest.param([-(2**53)], "exceeds safe integer domain", id="int-too-small"),
        pytest.param({1: "x"}, "object keys must be strings", id="int-key"),
        pytest.param({"s": "\ud800"}, "non-UTF-8", id="lone-surrogate-value"),
        pytest.param({"\udfff": 1}, "lone surrogate", id="lone-surrogate-key"),
        pytest.param({1, 2}, "unsupported type", id="set"),
        pytest.param(b"raw", "unsupported type", id="bytes"),
        pytest.param(_cyclic(), "cyclic or too deeply nested", id="cycle"),
    ],
)
def test_canonicalize_refuses(value: object, match: str) -> None:
    with pytest.raises(NonCanonicalJSON, match=match):
        canonicalize(value)


_KEY_CHARS = st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
    st.characters(min_codepoint=0x10000, max_codepoint=0x1F64F),
)
_TEXT = st.one_of(
    st.text(_KEY_CHARS, max_size=6),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=1),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**54), max_value=2**54),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_TEXT, children, max_size=4)
    ),
    max_leaves=24,
)


def _outcome(encode: Any, value: object) -> bytes | None:
    try:
        result: bytes = encode(value)
    except (NonCanonicalJSON, ValueError):  # rfc8785's errors, UnicodeEncodeError included
        return None
    return result


@given(JSON_VALUES)
def test_canonicalize_agrees_with_rfc8785(value: object) -> None:
    assert _outcome(canonicalize, value) == _outcome(rfc8785.dumps, value)


@given(JSON_VALUES)
def test_canonical_bytes_parse_back_to_the_same_value(value: object) -> None:
    encoded = _outcome(canonicalize, value)
    if encoded is not None:
        assert parse_canonical(encoded) == value
        assert canonicalize(parse_canonical(encoded)) == encoded


# --- strict and canonical parsing ---


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b'{"a":1,"b":{"c":2,"c":3}}', "duplicate object key 'c'", id="duplicate"),
        pytest.param(b"[NaN]", "NaN", id="nan"),
        pytest.param(b'{"x":Infinity}', "Infinity", id="infinity"),
        pytest.param(b"-Infinity", "-Infinity", id="minus-infinity"),
        pytest.param(b"[1e400]", "1e400 overflows", id="overflow"),
        pytest.param(b'{"a":"\xc3\x28"}', "invalid UTF-8 at byte 6", id="bad-utf8"),
        pytest.param(b'{"a":1} {"b":2}', "trailing data .* at byte 8", id="trailing-json"),
        pytest.param(b"[1]]", "trailing data .* at byte 3", id="trailing-bracket"),
        pytest.param('"é" x', "trailing data .* at character 4", id="trailing-str"),
    ],
)
def test_parse_strict_refuses_non_canonicalizable(data: bytes | str, match: str) -> None:
    with pytest.raises(NonCanonicalJSON, match=match):
        parse_strict(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"[1,]", "Expecting value at byte 3", id="trailing-comma"),
        pytest.param(b'{"a" 1}', "Expecting ':' delimiter", id="missing-colon"),
        pytest.param(b"", "Expecting value", id="empty"),
        pytest.param(b'"tab\there"', "Invalid control character", id="raw-control"),
        pytest.param(b"\xef\xbb\xbf{}", "BOM", id="utf8-bom"),
        pytest.param(b"1" * 5000, "malformed JSON", id="int-too-long"),
    ],
)
def test_parse_strict_refuses_malformed(data: bytes, match: str) -> None:
    with pytest.raises(InvalidEntry, match=match) as info:
        parse_strict(data)
    assert not isinstance(info.value, NonCanonicalJSON)


def test_parse_strict_reads_large_integers_as_doubles() -> None:
    # RFC 8785 numbers are IEEE-754 doubles; the canonical form of 1e20 is written as an integer.
    assert parse_strict(b"[100000000000000000000, 12]") == [1e20, 12]
    assert type(parse_strict(b"12")) is int


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        pytest.param(b'{"b":1,"a":2}', 2, id="key-order"),
        pytest.param(b'{"a": 1}', 5, id="whitespace"),
        pytest.param(b'{"a":1.0}', 6, id="number-form"),
        pytest.param(b'["\\u0041"]', 2, id="needless-escape"),
        pytest.param(b'"\\u00e9"', 1, id="escaped-non-ascii"),
        pytest.param(b"[1] ", 3, id="trailing-space"),
        pytest.param(b"[9007199254740993]", 16, id="inexact-integer"),
    ],
)
def test_parse_canonical_names_first_difference(data: bytes, offset: int) -> None:
    with pytest.raises(NonCanonicalJSON, match=f"not RFC 8785 canonical: .* byte {offset}$"):
        parse_canonical(data)


def test_parse_canonical_accepts_canonical_bytes() -> None:
    data = canonicalize(EVENT)
    assert parse_canonical(data) == EVENT


# --- parse_canonical's proof by re-serialisation (orjson) against the reference route ---

_BMP = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]


def test_every_bmp_character_is_written_as_rfc8785_writes_it() -> None:
    # String escaping is per character, so this covers every plain string value.
    values = ["".join(_BMP[i : i + 64]) for i in range(0, len(_BMP), 64)]
    assert [orjson_form(v) for v in values] == [rfc8785.dumps(v) for v in values]
    for value in values:
        assert _plain_canonical(rfc8785.dumps(value)) == value


def test_bmp_keys_sort_as_rfc8785_sorts_them() -> None:
    # Keys sort by code point (orjson) or UTF-16 code unit (RFC 8785): equal inside the BMP.
    keys = {c: i for i, c in enumerate(_BMP[::7])} | {"\uffff": -1, "\ue000": -2, "~": -3}
    assert orjson_form(keys) == rfc8785.dumps(keys)
    assert _plain_canonical(rfc8785.dumps(keys)) == keys


def orjson_form(value: object) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)


@pytest.mark.parametrize("case", JCS["files"], ids=lambda c: c["name"])
def test_jcs_vectors_through_the_fast_path(case: dict[str, Any]) -> None:
    expected = case["expected"].encode("utf-8")
    value = _plain_canonical(expected)
    assert value is _UNPROVEN or value == _checked_canonical(expected)
    assert parse_canonical(expected) == _checked_canonical(expected)


def test_es6_numbers_through_the_fast_path() -> None:
    # Only integers inside ±(2**53 - 1) are proven by re-serialisation; every other
    # number, written in its RFC 8785 form, is left to the reference route.
    proven = 0
    for line in ES6["lines"]:
        ieee_hex, expected = line.split(",")
        data = f'{{"n":{expected}}}'.encode()
        fast = _plain_canonical(data)
        if fast is not _UNPROVEN:
            proven += 1
            assert type(fast["n"]) is int
            assert abs(fast["n"]) < 2**53
        assert parse_canonical(data) == {"n": _double(ieee_hex)}
        assert _parse_outcome(parse_canonical, data) == _parse_outcome(_checked_canonical, data)
    assert proven < len(ES6["lines"]) // 10


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a":1,"a":1}', id="duplicate-same-value"),
        pytest.param(b'{"a":{"b":1,"b":2}}', id="duplicate-nested"),
        pytest.param(b'{"a":1.0}', id="float-integral"),
        pytest.param(b'{"a":1.5}', id="float-canonical"),
        pytest.param(b"[1e21]", id="float-exponent"),
        pytest.param(b"2.5", id="float-top-level"),
        pytest.param(b"[9007199254740992]", id="int-beyond-2**53"),
        pytest.param(b"[-9007199254740992]", id="int-below-minus-2**53"),
        pytest.param(b"[18446744073709551616]", id="int-beyond-2**64"),
        pytest.param(b"[-0]", id="minus-zero"),
        pytest.param(b'{"\xf0\x9f\x98\x80":1,"\xef\xac\xb3":2}', id="non-bmp-key"),
        pytest.param(b'["\xf0\x9f\x98\x80"]', id="non-bmp-value"),
        pytest.param(b'{"a": 1}', id="whitespace"),
        pytest.param(b" []", id="leading-space"),
        pytest.param(b'["\\u0041"]', id="needless-escape"),
        pytest.param(b'["\\ud800"]', id="escaped-lone-surrogate"),
        pytest.param(b'{"b":1,"a":2}', id="key-order"),
        pytest.param(b"[NaN]", id="nan"),
        pytest.param(b"\xef\xbb\xbf{}", id="utf8-bom"),
        pytest.param(b'{"a":"\xc3\x28"}', id="bad-utf8"),
        pytest.param(b'{"a":"\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
        pytest.param(b"[1]]", id="trailing-data"),
        pytest.param(b"[1,]", id="trailing-comma"),
        pytest.param(b"", id="empty"),
    ],
)
def test_fast_path_leaves_non_plain_or_non_canonical_input_to_the_reference(data: bytes) -> None:
    assert _plain_canonical(data) is _UNPROVEN
    assert _parse_outcome(parse_canonical, data) == _parse_outcome(_checked_canonical, data)


def _parse_outcome(parse: Any, data: bytes) -> tuple[str, object]:
    try:
        return ("value", parse(data))
    except (NonCanonicalJSON, InvalidEntry) as exc:
        return (type(exc).__name__, str(exc))


def test_plain_canonical_input_skips_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.canonical

    def refuse(data: object) -> object:
        raise AssertionError("the reference route should not have been needed")

    monkeypatch.setattr(ledger.canonical, "_checked_canonical", refuse)
    assert parse_canonical(canonicalize(EVENT)) == EVENT
    assert parse_canonical(b'[9007199254740991,-9007199254740991,"\\u001f\x7f"]') == [
        2**53 - 1,
        -(2**53 - 1),
        "\x1f\x7f",
    ]


_PLAIN_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=8)
PLAIN_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
        _PLAIN_TEXT,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_PLAIN_TEXT, children, max_size=4)
    ),
    max_leaves=24,
)


@given(PLAIN_VALUES)
def test_plain_values_are_proven_canonical_by_re_serialisation(value: object) -> None:
    encoded = rfc8785.dumps(value)
    assert orjson_form(value) == encoded
    assert _plain_canonical(encoded) == value


def _variants(value: object) -> list[bytes]:
    """Spellings of ``value``: canonical, reordered, spaced, escaped, duplicated, damaged."""
    canonical = _outcome(canonicalize, value)
    out = [
        json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        ),
        json.dumps(value, sort_keys=True, ensure_ascii=True).encode(),
        json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True).encode(),
    ]
    if canonical is not None:
        out.append(canonical)
        out += [canonical[:i] + canonical[i + 1 :] for i in range(0, len(canonical), 3)]
        out += [canonical.replace(b"}", b',"k":0,"k":0}', 1), canonical.replace(b"0", b"-0", 1)]
    return out


@given(JSON_VALUES)
def test_fast_path_agrees_with_the_reference_on_any_spelling(value: object) -> None:
    for data in _variants(value):
        fast = _plain_canonical(data)
        reference = _parse_outcome(_checked_canonical, data)
        if fast is not _UNPROVEN:
            assert reference == ("value", fast)
        assert _parse_outcome(parse_canonical, data) == reference


@given(st.binary(max_size=40))
def test_fast_path_agrees_with_the_reference_on_arbitrary_bytes(data: bytes) -> None:
    fast = _plain_canonical(data)
    reference = _parse_outcome(_checked_canonical, data)
    if fast is not _UNPROVEN:
        assert reference == ("value", fast)
    assert _parse_outcome(parse_canonical, data) == reference
