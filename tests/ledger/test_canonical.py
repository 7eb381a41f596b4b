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

from ledger.canonical import canonicalize, parse_canonical, parse_strict
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
