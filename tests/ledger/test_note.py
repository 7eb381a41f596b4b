"""C2SP signed notes: Go sumdb/note, serverless-log and C2SP vectors, then tampering."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import note
from ledger.errors import InvalidEntry, InvalidKey, InvalidSignature
from tests.conftest import load_vector

V = load_vector("ledger-vectors/signed_note.json")
KEYS: dict[str, dict[str, Any]] = V["keys"]
PETER = KEYS["PeterNeumann"]
ENOCH = KEYS["EnochRoot"]
TEXT = V["sign"][0]["text"]
PETER_NOTE = V["sign"][0]["signed_note"]
TWO_SIGNATURES = V["verify_ok"][2]["signed_note"]
SIGNER_KEYS = {name: key for name, key in KEYS.items() if key["signer_key"]}


def _sig_line(signed: str) -> str:
    return signed.rsplit("\n\n", 1)[1]


# --- published vectors ---


@pytest.mark.parametrize("case", V["sign"], ids=lambda c: c["name"])
def test_sign_reproduces_vector(case: dict[str, Any]) -> None:
    signer_key = KEYS[case["key"]]["signer_key"]
    assert note.sign(case["text"], signer_key) == case["signed_note"]
    assert note.sign(case["text"], note.Signer.from_string(signer_key)) == case["signed_note"]


@pytest.mark.parametrize("case", V["verify_ok"], ids=lambda c: c["name"])
def test_verify_accepts_vector(case: dict[str, Any]) -> None:
    verifier_key = KEYS[case["verifier"]]["verifier_key"]
    text = note.verify(case["signed_note"], verifier_key)
    assert case["signed_note"].startswith(text + "\n\u2014 ")
    opened = note.open_note(case["signed_note"], note.Verifier.from_string(verifier_key))
    assert [s.name for s in opened.verified] == [case["verifier"]]


@pytest.mark.parametrize("case", V["verify_bad"], ids=lambda c: c["name"])
def test_verify_refuses_vector(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidSignature, match="signature"):
        note.verify(case["signed_note"], KEYS[case["verifier"]]["verifier_key"])


@pytest.mark.parametrize("name", list(KEYS))
def test_verifier_key_strings_round_trip(name: str) -> None:
    vkey = KEYS[name]["verifier_key"]
    verifier = note.Verifier.from_string(vkey)
    assert verifier.to_string() == vkey
    assert verifier.name == name
    assert verifier.key_id == vkey.rsplit("+", 1)[0]
    # signed-note §Signatures: key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pub32)[:4]
    digest = hashlib.sha256(name.encode() + b"\n\x01" + verifier.public_key_bytes).digest()
    assert verifier.key_hash == int.from_bytes(digest[:4], "big")
    assert note.Verifier.from_public_key(name, verifier.public_key_bytes) == verifier


@pytest.mark.parametrize("name", list(SIGNER_KEYS))
def test_signer_key_strings_round_trip(name: str) -> None:
    skey = KEYS[name]["signer_key"]
    signer = note.Signer.from_string(skey)
    assert signer.to_string() == skey
    assert signer.verifier == note.Verifier.from_string(KEYS[name]["verifier_key"])
    assert (signer.name, signer.key_hash, signer.key_id) == (
        name,
        signer.verifier.key_hash,
        signer.verifier.key_id,
    )
    assert skey.rsplit("+", 1)[1] not in repr(signer)


def test_add_signature_reproduces_go_cosigning_example() -> None:
    # golang/mod example_test.go ExampleSign_add_signatures: EnochRoot signs PeterNeumann's note.
    assert note.add_signature(PETER_NOTE, ENOCH["signer_key"]) == TWO_SIGNATURES


def test_open_keeps_unknown_signatures_unverified() -> None:
    opened = note.open_note(TWO_SIGNATURES, PETER["verifier_key"])
    assert opened.text == TEXT
    assert [(s.name, s.key_hash) for s in opened.verified] == [("PeterNeumann", 0xC74F20A3)]
    assert [(s.name, s.key_hash) for s in opened.unverified] == [("EnochRoot", 0xAF0CFE78)]
    both = note.open_note(TWO_SIGNATURES, [PETER["verifier_key"], ENOCH["verifier_key"]])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]
    assert both.unverified == ()


def test_checkpoint_example_signature_is_kept_with_its_key_id() -> None:
    example = V["checkpoints"]["c2sp_example"]
    signer = note.Signer.generate("suyuan.test/log")
    opened = note.open_note(note.add_signature(example["signed_note"], signer), signer.verifier)
    (other,) = opened.unverified
    assert (other.name, f"{other.key_hash:08x}") == (example["origin"], example["key_id_hex"])


def test_text_is_split_at_the_last_blank_line() -> None:
    quasimodo = V["other_examples"]["c2sp_quasimodo"]["signed_note"]
    with pytest.raises(InvalidSignature, match=r"signed by: quasimodo\.example/salvatore\+"):
        note.verify(quasimodo, PETER["verifier_key"])
    signer = note.Signer.generate("suyuan.test/reader")
    text = note.verify(note.add_signature(quasimodo, signer), signer.verifier)
    assert text == quasimodo.rsplit("\n\n", 1)[0] + "\n"
    assert "\n\n" in text


# --- generated keys, rotation, tampering ---


def test_generate_key_round_trip() -> None:
    skey, vkey = note.generate_key("suyuan.example/log")
    assert skey.startswith("PRIVATE+KEY+suyuan.example/log+")
    signer, verifier = note.Signer.from_string(skey), note.Verifier.from_string(vkey)
    assert signer.verifier == verifier
    assert note.verify(note.sign("hello\n", skey), vkey) == "hello\n"
    assert note.verify(note.sign("hello\n", signer), verifier) == "hello\n"


def test_from_private_key() -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes(32))
    signer = note.Signer.from_private_key("EnochRoot", private)
    assert signer.to_string() == ENOCH["signer_key"]


def test_rotated_note_verifies_with_either_key() -> None:
    old, new = (
        note.Signer.generate("suyuan.example/log"),
        note.Signer.generate("suyuan.example/log"),
    )
    rotated = note.add_signature(note.sign(TEXT, old), new)
    assert note.verify(rotated, old.verifier) == TEXT
    assert note.verify(rotated, new.verifier.to_string()) == TEXT
    opened = note.open_note(rotated, [old.verifier, new.verifier])
    assert [s.key_hash for s in opened.verified] == [old.key_hash, new.key_hash]


def test_add_signature_replaces_own_earlier_signature() -> None:
    assert note.add_signature(PETER_NOTE, PETER["signer_key"]) == PETER_NOTE


def test_wrong_key_is_refused() -> None:
    other = note.Signer.generate("PeterNeumann")  # same name, different key and hash
    with pytest.raises(InvalidSignature, match="no signature from a known key"):
        note.verify(PETER_NOTE, other.verifier)


def test_altered_text_is_refused() -> None:
    signer = note.Signer.generate("suyuan.example/log")
    signed = note.sign("size 10\n", signer)
    with pytest.raises(InvalidSignature, match=r"invalid signature for key suyuan\.example/log"):
        note.verify(signed.replace("size 10", "size 11"), signer.verifier)


def test_all_zero_signature_is_refused() -> None:
    payload = base64.b64decode(_sig_line(PETER_NOTE).split(" ")[2])
    zeroed = base64.b64encode(payload[:4] + bytes(64)).decode()
    forged = f"{TEXT}\n\u2014 PeterNeumann {zeroed}\n"
    with pytest.raises(InvalidSignature, match="invalid signature for key PeterNeumann"):
        note.verify(forged, PETER["verifier_key"])


def test_failing_known_signature_rejects_the_note_even_if_another_verifies() -> None:
    payload = bytearray(base64.b64decode(_sig_line(TWO_SIGNATURES).split()[-1]))
    payload[-1] ^= 0x01
    forged = PETER_NOTE + f"\u2014 EnochRoot {base64.b64encode(payload).decode()}\n"
    assert note.verify(forged, PETER["verifier_key"]) == TEXT  # EnochRoot unknown: ignored
    with pytest.raises(InvalidSignature, match="invalid signature for key EnochRoot"):
        note.verify(forged, [PETER["verifier_key"], ENOCH["verifier_key"]])


def test_repeated_signatures_are_dropped() -> None:
    doubled = TWO_SIGNATURES + _sig_line(TWO_SIGNATURES)
    opened = note.open_note(doubled, PETER["verifier_key"])
    assert len(opened.verified) == 1
    assert len(opened.unverified) == 1


def test_signature_limit() -> None:
    line = _sig_line(TWO_SIGNATURES).split("\n")[1] + "\n"
    assert note.verify(PETER_NOTE + line * 99, PETER["verifier_key"]) == TEXT
    with pytest.raises(InvalidSignature, match="more than 100 signatures"):
        note.verify(PETER_NOTE + line * 100, PETER["verifier_key"])


_LINE = _sig_line(PETER_NOTE)


@pytest.mark.parametrize(
    ("signed", "match"),
    [
        pytest.param(TEXT + _LINE, "no blank line", id="no-blank-line"),
        pytest.param(PETER_NOTE[:-1], "must end with a newline", id="no-final-newline"),
        pytest.param(f"{TEXT}\n\n", "must end with a newline", id="no-signatures"),
        pytest.param(f"{TEXT}\n" + _LINE.replace("\u2014", "-"), "must start with", id="hyphen"),
        pytest.param(f"{TEXT}\n" + _LINE.replace(" x08go", " !x08go"), "line 1", id="bad-b64"),
        pytest.param(f"{TEXT}\n\u2014  x08go\n", "line 1", id="empty-name"),
        pytest.param(f"{TEXT}\n\u2014 a+b x08go/ZJ\n", "line 1", id="plus-in-name"),
        pytest.param(f"{TEXT}\n\u2014 PeterNeumann\n", "too short", id="no-signature"),
        pytest.param(f"{TEXT}\n\u2014 PeterNeumann x08gow==\n", "too short", id="short"),
        pytest.param(f"{TEXT}\n\u2014 PeterNeumann x08go/ZJ\n", "wrong length", id="truncated"),
        pytest.param("tab\there\n\n" + _LINE, "control character", id="tab"),
        pytest.param("cr\r\n\n" + _LINE, "control character", id="carriage-return"),
        pytest.param("bad \ud800\n\n" + _LINE, "not valid UTF-8", id="lone-surrogate"),
    ],
)
def test_malformed_notes_are_refused(signed: str, match: str) -> None:
    with pytest.raises(InvalidSignature, match=match):
        note.verify(signed, PETER["verifier_key"])


_PETER_PUB = PETER["verifier_key"].rsplit("+", 1)[1]
_TYPE4_PUB = base64.b64encode(b"\x04" + base64.b64decode(_PETER_PUB)[1:]).decode()


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        pytest.param("PeterNeumann+c74f20a3", "not base64|signature type", id="no-key"),
        pytest.param("PeterNeumann", "8 hex digits", id="name-only"),
        pytest.param(f"PeterNeumann+c74f20a+{_PETER_PUB}", "8 hex digits", id="short-hash"),
        pytest.param(f"PeterNeumann+0xc74f20+{_PETER_PUB}", "8 hex digits", id="0x-hash"),
        pytest.param(f"PeterNeumann+c74f_20a+{_PETER_PUB}", "8 hex digits", id="underscore"),
        pytest.param(f"PeterNeumann+c74f20a4+{_PETER_PUB}", "does not match", id="wrong-hash"),
        pytest.param(f"PeterNeumanm+c74f20a3+{_PETER_PUB}", "does not match", id="wrong-name"),
        pytest.param("PeterNeumann+c74f20a3+ARpc2QcU!", "not base64", id="bad-base64"),
        pytest.param(f"PeterNeumann+c74f20a3+{_TYPE4_PUB}", "type 0x04", id="type-0x04"),
        pytest.param("PeterNeumann+c74f20a3+ARpc2Q==", "32 bytes", id="short-key"),
        pytest.param(f"Peter Neumann+c74f20a3+{_PETER_PUB}", "spaces", id="space-in-name"),
        pytest.param(f"+c74f20a3+{_PETER_PUB}", "non-empty", id="empty-name"),
    ],
)
def test_malformed_verifier_keys(vkey: str, match: str) -> None:
    with pytest.raises(InvalidKey, match=match):
        note.Verifier.from_string(vkey)


@pytest.mark.parametrize(
    ("skey", "match"),
    [
        pytest.param(PETER["verifier_key"], "PRIVATE\\+KEY\\+ prefix", id="verifier-key"),
        pytest.param(PETER["signer_key"].replace("c74f20a3", "c74f20a4"), "does not", id="hash"),
        pytest.param(PETER["signer_key"][:-4], "not base64|32 bytes", id="truncated"),
        pytest.param(PETER["signer_key"].replace("+AYEK", "+BIEK"), "type 0x04", id="type"),
    ],
)
def test_malformed_signer_keys(skey: str, match: str) -> None:
    with pytest.raises(InvalidKey, match=match):
        note.Signer.from_string(skey)


def test_ambiguous_verifiers_are_refused() -> None:
    real = note.Verifier.from_string(PETER["verifier_key"])
    impostor = note.Verifier.from_string(ENOCH["verifier_key"])
    object.__setattr__(impostor, "name", real.name)
    object.__setattr__(impostor, "key_hash", real.key_hash)
    with pytest.raises(InvalidKey, match="ambiguous"):
        note.verify(PETER_NOTE, [real, impostor])


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        pytest.param("no newline", InvalidEntry, "must end with a newline", id="no-newline"),
        pytest.param("", InvalidEntry, "must end with a newline", id="empty"),
        pytest.param("bell\a\n", InvalidEntry, "control character", id="control"),
    ],
)
def test_sign_refuses_bad_text(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        note.sign(text, PETER["signer_key"])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname", "ideographic\u3000space"])
def test_generate_key_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidKey, match="key name"):
        note.generate_key(name)
