"""tlog-cosignature/v1 and the tlog-witness: format, tampering, growth, forks, persistence."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import merkle, note
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import (
    CheckpointRefused,
    InvalidEntry,
    InvalidKey,
    InvalidSignature,
    MalformedCheckpoint,
    StaleHead,
)
from ledger.witness import (
    CosignatureSigner,
    CosignatureVerifier,
    CosignedCheckpoint,
    MemoryWitnessState,
    SQLiteWitnessState,
    Witness,
    WitnessState,
    cosign,
    verify_cosignature,
)
from tests.conftest import load_vector

V = load_vector("ledger-vectors/signed_note.json")
ASTRA = V["keys"]["astra"]
SERVERLESS_NOTES = [case["signed_note"] for case in V["sign"] if case["key"] == "astra"]
SERVERLESS_LEAVES = [
    bytes.fromhex(x) for x in load_vector("ledger-vectors/rfc6962.json")["serverless_log"]["leaves"]
]
EXAMPLE = V["checkpoints"]["c2sp_example"]
ORIGIN = "suyuan.example/log"
LEAVES = [f"entry {i}".encode() for i in range(40)]
T0 = 1_700_000_000


def _text(signed: str) -> str:
    return signed.rsplit("\n\n", 1)[0] + "\n"


def _checkpoint(signer: note.Signer, size: int, leaves: list[bytes] = LEAVES) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root(leaves[:size])), signer)


def _proof(old: int, new: int, leaves: list[bytes] = LEAVES) -> list[bytes]:
    return merkle.consistency_proof(leaves[:new], old)


@pytest.fixture
def log_key() -> note.Signer:
    return note.Signer.generate(ORIGIN)


@pytest.fixture
def witness_key() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.suyuan.example/w1")


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WitnessState]:
    if request.param == "memory":
        yield MemoryWitnessState()
        return
    with SQLiteWitnessState(tmp_path / "witness.db") as db:
        yield db


@pytest.fixture
def witness(witness_key: CosignatureSigner, log_key: note.Signer, state: WitnessState) -> Witness:
    return Witness(witness_key, logs={ORIGIN: [log_key.verifier.to_string()]}, state=state)


# --- cosignatures ---


def test_cosign_round_trip(witness_key: CosignatureSigner) -> None:
    signed = EXAMPLE["signed_note"]
    cosigned = cosign(signed, witness_key.to_string(), timestamp=1679315147)
    assert cosigned.startswith(signed)
    assert cosigned.count("\n\u2014 ") == 2
    assert verify_cosignature(cosigned, witness_key.verifier.to_string()) == 1679315147
    assert (
        verify_cosignature(
            cosigned, CosignatureVerifier.from_string(witness_key.verifier.to_string())
        )
        == 1679315147
    )


def test_cosignature_bytes_follow_the_spec(witness_key: CosignatureSigner) -> None:
    cosigned = cosign(EXAMPLE["signed_note"], witness_key, timestamp=1679315147)
    name, encoded = cosigned.rsplit("\n\u2014 ", 1)[1].split()
    payload = base64.b64decode(encoded)
    public = witness_key.verifier.public_key_bytes
    assert name == witness_key.name
    # tlog-cosignature §Format: key ID = SHA-256(name ‖ "\n" ‖ 0x04 ‖ pub32)[:4] ...
    assert payload[:4] == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    # ... then u64 big-endian timestamp ‖ Ed25519 signature over the §Ed25519 signed message.
    assert payload[4:12] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + _text(EXAMPLE["signed_note"]).encode()
    Ed25519PublicKey.from_public_bytes(public).verify(payload[12:], message)
    assert len(payload) == 4 + 8 + 64


def test_published_cosigner_key_parses() -> None:
    # An Ed25519 cosignature/v1 (type 0x04) verifier key from transparency-dev/formats
    # note/note_cosigv1_test.go ("native algEd25519CosignatureV1 verifier").
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    assert CosignatureVerifier.from_string(vkey).to_string() == vkey
    with pytest.raises(InvalidKey, match="type 0x04, not 0x01"):
        note.Verifier.from_string(vkey)


def test_key_types_are_not_interchangeable(witness_key: CosignatureSigner) -> None:
    with pytest.raises(InvalidKey, match="type 0x01, not 0x04"):
        CosignatureVerifier.from_string(ASTRA["verifier_key"])
    with pytest.raises(InvalidKey, match="type 0x01, not 0x04"):
        CosignatureSigner.from_string(ASTRA["signer_key"])
    assert CosignatureSigner.from_string(witness_key.to_string()) == witness_key
    assert witness_key.to_string().split("+")[4].startswith("B")  # base64 of 0x04 ‖ seed


def test_note_verifiers_check_cosignatures_alongside_log_signatures(
    witness_key: CosignatureSigner,
) -> None:
    cosigned = cosign(SERVERLESS_NOTES[5], witness_key, timestamp=T0)
    opened = note.open_note(cosigned, [ASTRA["verifier_key"], witness_key.verifier])
    assert [s.name for s in opened.verified] == ["astra", witness_key.name]
    # The same key as a plain Ed25519 note key has another key ID: the line is unknown to it.
    plain = note.Verifier(witness_key.name, witness_key.verifier.public_key_bytes)
    with pytest.raises(InvalidSignature, match="no signature from a known key"):
        note.verify(cosigned, plain)


def _tamper_payload(cosigned: str, change: Any) -> str:
    head, line = cosigned.rsplit("\n\u2014 ", 1)
    name, encoded = line.split()
    payload = change(bytearray(base64.b64decode(encoded)))
    return f"{head}\n\u2014 {name} {base64.b64encode(bytes(payload)).decode()}\n"


def _later(p: bytearray) -> bytearray:
    p[11] ^= 0x01
    return p


def _zero_signature(p: bytearray) -> bytearray:
    return p[:12] + bytearray(64)


def _max_time(p: bytearray) -> bytearray:
    return p[:4] + bytearray(b"\xff" * 8) + p[12:]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(_later, "invalid signature for key", id="timestamp"),
        pytest.param(_zero_signature, "invalid signature for key", id="all-zero-signature"),
        pytest.param(_max_time, "bad timestamp", id="timestamp-over-2^63"),
        pytest.param(lambda p: p[:12], "too short|wrong length", id="no-signature"),
    ],
)
def test_tampered_cosignature_is_refused(
    witness_key: CosignatureSigner, change: Any, match: str
) -> None:
    forged = _tamper_payload(cosign(SERVERLESS_NOTES[3], witness_key, timestamp=T0), change)
    with pytest.raises(InvalidSignature, match=match):
        verify_cosignature(forged, witness_key.verifier.to_string())


def test_cosigned_text_cannot_change(witness_key: CosignatureSigner) -> None:
    cosigned = cosign(SERVERLESS_NOTES[3], witness_key, timestamp=T0)
    with pytest.raises(InvalidSignature, match="invalid signature for key witness"):
        verify_cosignature(cosigned.replace("\n3\n", "\n4\n"), witness_key.verifier)


def test_missing_cosignature_is_refused(witness_key: CosignatureSigner) -> None:
    with pytest.raises(InvalidSignature, match="no signature from a known key"):
        verify_cosignature(SERVERLESS_NOTES[3], witness_key.verifier.to_string())


def test_cosign_refuses_non_checkpoints_and_bad_times(witness_key: CosignatureSigner) -> None:
    with pytest.raises(MalformedCheckpoint, match="root hash"):
        cosign(V["sign"][0]["signed_note"], witness_key, timestamp=T0)
    with pytest.raises(InvalidEntry, match="timestamp"):
        cosign(SERVERLESS_NOTES[1], witness_key, timestamp=2**63)
    with pytest.raises(InvalidEntry, match="timestamp"):
        cosign(SERVERLESS_NOTES[1], witness_key, timestamp=-1)


# --- the witness ---


def test_witness_follows_the_published_serverless_log(
    witness_key: CosignatureSigner, state: WitnessState
) -> None:
    witness = Witness(
        witness_key, logs={"example.com/testdata": [ASTRA["verifier_key"]]}, state=state
    )
    old = 0
    for size in (0, 1, 2, 5, 8, 13, 15):
        proof = merkle.consistency_proof(SERVERLESS_LEAVES[:size], old) if old else []
        cosigned = witness.add_checkpoint(
            SERVERLESS_NOTES[size], old_size=old, proof=proof, now=T0 + size
        )
        assert verify_cosignature(cosigned, witness.verifier.to_string()) == T0 + size
        assert note.verify(cosigned, ASTRA["verifier_key"]) == _text(SERVERLESS_NOTES[size])
        old = size
    latest = state.latest("example.com/testdata")
    assert latest is not None
    assert (latest.size, latest.root_hash) == (15, merkle.root(SERVERLESS_LEAVES[:15]))
    assert witness.refusals() == []


def test_witness_accepts_a_growing_log(witness: Witness, log_key: note.Signer) -> None:
    witness.add_checkpoint(_checkpoint(log_key, 3), old_size=0, proof=[], now=T0)
    witness.add_checkpoint(_checkpoint(log_key, 17), old_size=3, proof=_proof(3, 17), now=T0 + 1)
    again = witness.add_checkpoint(_checkpoint(log_key, 17), old_size=17, proof=[], now=T0 + 2)
    assert verify_cosignature(again, witness.verifier.to_string()) == T0 + 2
    before = time.time()
    latest = witness.add_checkpoint(_checkpoint(log_key, 40), old_size=17, proof=_proof(17, 40))
    assert before - 1 <= verify_cosignature(latest, witness.verifier.to_string()) <= time.time()


def test_witness_accepts_a_rotated_log_key(
    witness_key: CosignatureSigner, log_key: note.Signer, state: WitnessState
) -> None:
    new_key = note.Signer.generate(ORIGIN)
    witness = Witness(
        witness_key, logs={ORIGIN: [log_key.verifier, new_key.verifier.to_string()]}, state=state
    )
    witness.add_checkpoint(_checkpoint(log_key, 4), old_size=0, proof=[], now=T0)
    witness.add_checkpoint(_checkpoint(new_key, 9), old_size=4, proof=_proof(4, 9), now=T0 + 1)
    both = note.add_signature(_checkpoint(log_key, 12), new_key)
    witness.add_checkpoint(both, old_size=9, proof=_proof(9, 12), now=T0 + 2)
    assert witness.refusals() == []


def _refused(
    witness: Witness, signed: str, *, old_size: int, proof: list[bytes], match: str
) -> str:
    with pytest.raises(CheckpointRefused, match=match) as info:
        witness.add_checkpoint(signed, old_size=old_size, proof=proof, now=T0 + 99)
    return info.value.reason


FORK = [b"forked " + leaf for leaf in LEAVES]
_STRANGER = note.Signer.generate(ORIGIN)
_OTHER_LOG = Checkpoint("other.example/log", 15, bytes(32))


@pytest.mark.parametrize(
    ("make", "old_size", "proof", "match"),
    [
        pytest.param(
            lambda k: _checkpoint(k, 10, FORK), 10, [], "conflict: root hash at size 10", id="fork"
        ),
        pytest.param(
            lambda k: _checkpoint(k, 20, FORK), 10, _proof(10, 20, FORK), "inconsistent", id="fork+"
        ),
        pytest.param(
            lambda k: _checkpoint(k, 15), 5, _proof(5, 15), "conflict: .* size 10$", id="stale"
        ),
        pytest.param(lambda k: _checkpoint(k, 15), 0, [], "conflict: .* size 10$", id="zero"),
        pytest.param(lambda k: _checkpoint(k, 8), 10, [], "old size 10 is not within", id="shrink"),
        pytest.param(
            lambda k: _checkpoint(_STRANGER, 15),
            10,
            _proof(10, 15),
            "not signed by a trusted key",
            id="wrong-key",
        ),
        pytest.param(
            lambda k: sign_checkpoint(_OTHER_LOG, k),
            10,
            [],
            "unknown origin 'other.example/log'",
            id="unknown-origin",
        ),
        pytest.param(
            lambda k: note.sign(f"{ORIGIN}\n15\nnot a hash\n", k),
            10,
            [],
            "malformed checkpoint",
            id="malformed",
        ),
    ],
)
def test_witness_refusals_are_raised_and_recorded(
    witness: Witness,
    log_key: note.Signer,
    make: Any,
    old_size: int,
    proof: list[bytes],
    match: str,
) -> None:
    witness.add_checkpoint(_checkpoint(log_key, 10), old_size=0, proof=[], now=T0)
    signed = make(log_key)
    reason = _refused(witness, signed, old_size=old_size, proof=proof, match=match)
    (refusal,) = witness.refusals()
    assert (refusal.time, refusal.reason) == (T0 + 99, reason)
    assert refusal.origin == signed.split("\n", 1)[0]
    latest = witness._state.latest(ORIGIN)
    assert latest is not None
    assert latest.size == 10


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof", "match"),
    [
        pytest.param(10, 20, [bytes(32)] * 3, "inconsistent", id="garbage-proof"),
        pytest.param(10, 20, [], "inconsistent", id="empty-proof"),
        pytest.param(10, 20, [b"short"], "inconsistent", id="short-hash"),
        pytest.param(10, 10, [bytes(32)], "inconsistent", id="proof-at-same-size"),
        pytest.param(10, 20, [bytes(32)] * 64, "more than 63", id="too-long"),
    ],
)
def test_witness_refuses_bad_proofs(
    witness: Witness,
    log_key: note.Signer,
    old_size: int,
    new_size: int,
    proof: list[bytes],
    match: str,
) -> None:
    witness.add_checkpoint(_checkpoint(log_key, 10), old_size=0, proof=[], now=T0)
    _refused(witness, _checkpoint(log_key, new_size), old_size=old_size, proof=proof, match=match)
    assert len(witness.refusals()) == 1


def test_first_checkpoint_needs_an_empty_proof(witness: Witness, log_key: note.Signer) -> None:
    _refused(witness, _checkpoint(log_key, 5), old_size=0, proof=[bytes(32)], match="must be empty")


def test_sqlite_state_survives_reopening(
    tmp_path: Path, witness_key: CosignatureSigner, log_key: note.Signer
) -> None:
    path = tmp_path / "witness.db"
    logs = {ORIGIN: [log_key.verifier]}
    with SQLiteWitnessState(path) as db:
        first = Witness(witness_key, logs=logs, state=db)
        cosigned = first.add_checkpoint(_checkpoint(log_key, 12), old_size=0, proof=[], now=T0)
        _refused(first, _checkpoint(log_key, 13), old_size=3, proof=[], match="conflict")
    with SQLiteWitnessState(path) as db:
        latest = db.latest(ORIGIN)
        assert latest == CosignedCheckpoint(ORIGIN, 12, merkle.root(LEAVES[:12]), cosigned)
        again = Witness(witness_key.to_string(), logs=logs, state=db)
        _refused(again, _checkpoint(log_key, 20), old_size=0, proof=[], match="size 12")
        again.add_checkpoint(_checkpoint(log_key, 20), old_size=12, proof=_proof(12, 20), now=T0)
        assert [r.reason.split(":")[0] for r in again.refusals()] == ["conflict", "conflict"]


def test_sqlite_refusal_log_is_append_only(
    tmp_path: Path, witness_key: CosignatureSigner, log_key: note.Signer
) -> None:
    path = tmp_path / "refusals.db"
    with SQLiteWitnessState(path) as db:
        witness = Witness(witness_key, logs={}, state=db)
        _refused(witness, _checkpoint(log_key, 1), old_size=0, proof=[], match="unknown origin")
    raw = sqlite3.connect(path)
    try:
        for statement in (
            "UPDATE witness_refusal SET reason = 'ok'",
            "DELETE FROM witness_refusal",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(statement)
    finally:
        raw.close()


def test_state_replace_is_a_compare_and_set(state: WitnessState) -> None:
    one = CosignedCheckpoint(ORIGIN, 1, bytes(32), "n1")
    two = CosignedCheckpoint(ORIGIN, 2, bytes(range(32)), "n2")
    state.replace(one, expected=None)
    with pytest.raises(StaleHead):
        state.replace(two, expected=None)
    with pytest.raises(StaleHead):
        state.replace(two, expected=CosignedCheckpoint(ORIGIN, 1, bytes(range(32)), "n1"))
    state.replace(two, expected=one)
    assert state.latest(ORIGIN) == two


class _RacingState(MemoryWitnessState):
    """Another writer moves the head between the witness's read and its write."""

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        seen = super().latest(origin)
        super().replace(CosignedCheckpoint(origin, 99, bytes(32), "other"), expected=seen)
        return seen


def test_witness_refuses_when_its_state_moved(
    witness_key: CosignatureSigner, log_key: note.Signer
) -> None:
    witness = Witness(witness_key, logs={ORIGIN: [log_key.verifier]}, state=_RacingState())
    _refused(
        witness, _checkpoint(log_key, 2), old_size=0, proof=[], match="conflict: .*concurrently"
    )
