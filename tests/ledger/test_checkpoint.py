"""C2SP tlog-checkpoints: serverless-log vectors, round trips both ways, strict parsing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ledger import merkle, note
from ledger.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from ledger.errors import InvalidSignature, MalformedCheckpoint
from tests.conftest import load_vector

V = load_vector("ledger-vectors/signed_note.json")
ASTRA = V["keys"]["astra"]
SERVERLESS = V["checkpoints"]["serverless_log"]
SIGNED = {case["text"]: case["signed_note"] for case in V["sign"] if case["key"] == "astra"}
LEAVES = [
    bytes.fromhex(x) for x in load_vector("ledger-vectors/rfc6962.json")["serverless_log"]["leaves"]
]
ROOT = bytes(range(32))


def _text(cp: dict[str, Any]) -> str:
    return f"{cp['origin']}\n{cp['size']}\n{cp['root_b64']}\n"


@pytest.mark.parametrize("cp", SERVERLESS, ids=lambda c: f"checkpoint.{c['size']}")
def test_serverless_checkpoints_verify_parse_and_resign(cp: dict[str, Any]) -> None:
    signed = SIGNED[_text(cp)]
    checkpoint = verify_checkpoint(signed, ASTRA["verifier_key"], origin=cp["origin"])
    assert checkpoint == Checkpoint(cp["origin"], cp["size"], base64.b64decode(cp["root_b64"]))
    assert checkpoint.root_hash == merkle.root(LEAVES[: cp["size"]])
    assert sign_checkpoint(checkpoint, ASTRA["signer_key"]) == signed


def test_c2sp_example_parses() -> None:
    example = V["checkpoints"]["c2sp_example"]
    text = example["signed_note"].split("\n\n")[0] + "\n"
    checkpoint = Checkpoint.from_text(text)
    assert (checkpoint.origin, checkpoint.size) == (example["origin"], example["size"])
    assert checkpoint.root_hash == base64.b64decode(example["root_b64"])
    assert checkpoint.to_text() == text


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("example.com/log", 0, ROOT),
        Checkpoint("example.com/log", 2**64 - 1, ROOT),
        Checkpoint("suyuan.example/溯源", 42, ROOT, ("extension one", "— two +")),
    ],
    ids=["empty", "max-size", "extensions"],
)
def test_round_trip_from_value(checkpoint: Checkpoint) -> None:
    assert Checkpoint.from_text(checkpoint.to_text()) == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n123\n" + base64.b64encode(ROOT).decode() + "\nx\ny y\n",
    ],
    ids=["plain", "extensions"],
)
def test_round_trip_from_text(text: str) -> None:
    assert Checkpoint.from_text(text).to_text() == text


def test_sign_and_verify_with_extension_and_rotation() -> None:
    old, new = (
        note.Signer.generate("suyuan.example/log"),
        note.Signer.generate("suyuan.example/log"),
    )
    checkpoint = Checkpoint("suyuan.example/log", 7, ROOT, ("note: rotated",))
    signed = note.add_signature(sign_checkpoint(checkpoint, old), new)
    assert verify_checkpoint(signed, [new.verifier]) == checkpoint
    assert verify_checkpoint(signed, old.verifier.to_string(), origin="suyuan.example/log") == (
        checkpoint
    )


def test_verify_refuses_wrong_origin() -> None:
    signed = V["sign"][-1]["signed_note"]
    with pytest.raises(MalformedCheckpoint, match=r"is not the expected 'example\.com/other'"):
        verify_checkpoint(signed, ASTRA["verifier_key"], origin="example.com/other")


def test_verify_refuses_wrong_key() -> None:
    signed = V["sign"][-1]["signed_note"]
    with pytest.raises(InvalidSignature, match="no signature from a known key"):
        verify_checkpoint(signed, V["keys"]["PeterNeumann"]["verifier_key"])


def test_verify_refuses_signed_text_that_is_not_a_checkpoint() -> None:
    with pytest.raises(MalformedCheckpoint, match="root hash"):
        verify_checkpoint(V["sign"][0]["signed_note"], V["keys"]["PeterNeumann"]["verifier_key"])


_R = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(f"o\n1\n{_R}", "end with a newline", id="no-final-newline"),
        pytest.param("o\n1\n", "got 2 line", id="two-lines"),
        pytest.param(f"\n1\n{_R}\n", "origin line is empty", id="empty-origin"),
        pytest.param(f"o\n01\n{_R}\n", "leading zeros", id="leading-zero"),
        pytest.param(f"o\n00\n{_R}\n", "leading zeros", id="double-zero"),
        pytest.param(f"o\n-1\n{_R}\n", "leading zeros", id="negative"),
        pytest.param(f"o\n+1\n{_R}\n", "leading zeros", id="plus"),
        pytest.param(f"o\n 1\n{_R}\n", "leading zeros", id="space"),
        pytest.param(f"o\n1_000\n{_R}\n", "leading zeros", id="underscore"),
        pytest.param(f"o\n\u0661\n{_R}\n", "leading zeros", id="arabic-digit"),
        pytest.param(f"o\n{2**64}\n{_R}\n", "64 bits", id="too-big"),
        pytest.param("o\n1\nnot base64!\n", "not base64", id="bad-base64"),
        pytest.param(f"o\n1\n{_R[:-1]}\n", "not base64", id="bad-padding"),
        pytest.param("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "31 bytes", id="31"),
        pytest.param("o\n1\n" + base64.b64encode(bytes(33)).decode() + "\n", "33 bytes", id="33"),
        pytest.param(f"o\n1\n{_R[:-2]}9=\n", "not canonical base64", id="non-canonical-b64"),
        pytest.param(f"o\n1\n{_R}\n\n", "extension lines must be non-empty", id="empty-ext"),
        pytest.param(f"o\n1\n{_R}\na\n\nb\n", "extension lines must be non-empty", id="gap"),
    ],
)
def test_malformed_text(text: str, match: str) -> None:
    with pytest.raises(MalformedCheckpoint, match=match):
        Checkpoint.from_text(text)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"origin": ""}, "origin", id="empty-origin"),
        pytest.param({"origin": "a\nb"}, "origin", id="multiline-origin"),
        pytest.param({"size": -1}, "size", id="negative"),
        pytest.param({"size": 2**64}, "size", id="too-big"),
        pytest.param({"size": True}, "size", id="bool"),
        pytest.param({"root_hash": bytes(31)}, "32 bytes", id="short-root"),
        pytest.param({"extensions": ("",)}, "extension", id="empty-extension"),
        pytest.param({"extensions": ("a\nb",)}, "extension", id="multiline-extension"),
    ],
)
def test_malformed_values(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {"origin": "o", "size": 1, "root_hash": ROOT, **kwargs}
    with pytest.raises(MalformedCheckpoint, match=match):
        Checkpoint(**fields)
