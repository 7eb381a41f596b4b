"""Offline artefacts: NDJSON export + checkpoint, and C2SP tlog-proof bundles, verified with no database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ledger import note
from ledger.bundle import TlogProof, verify_bundle
from ledger.errors import InvalidProof, InvalidSignature, VerificationFailed
from ledger.export import export_log, read_chunks, verify_export
from ledger.log import Log
from ledger.witness import CosignatureSigner, MemoryWitnessState, Witness
from tests.factories import ORIGIN, registered_signer, submission


def _export(log: Log, tmp_path: Path) -> tuple[Path, str]:
    buf = io.BytesIO()
    signed = export_log(log, buf)
    path = tmp_path / "entries.ndjson"
    path.write_bytes(buf.getvalue())
    return path, signed


@pytest.fixture
def filled(log: Log) -> Log:
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(300)])
    return log


def test_export_verifies_offline_with_the_public_key_alone(filled: Log, tmp_path: Path) -> None:
    path, signed = _export(filled, tmp_path)
    key = filled.signer.verifier.to_string()  # type: ignore[union-attr]
    verdict = verify_export(read_chunks(path, chunk=64), signed, key, workers=2)
    assert verdict.size == len(filled) == 302
    assert verdict.origin == ORIGIN
    assert verdict.root == filled.head().root


@pytest.mark.parametrize(
    ("damage", "seq"),
    [
        (lambda lines: lines[:150] + lines[151:], 150),  # a deleted entry
        (lambda lines: [*lines[:40], lines[41], lines[40], *lines[42:]], 40),  # two swapped
        (
            lambda lines: [
                *lines[:7],
                lines[7].replace(b'"mass_kg":420', b'"mass_kg":421'),
                *lines[8:],
            ],
            7,
        ),
        (lambda lines: lines[:-1], 301),  # truncated export
    ],
    ids=["deleted", "swapped", "edited", "truncated"],
)
def test_damaged_export_names_the_first_bad_entry(
    filled: Log, tmp_path: Path, damage, seq: int
) -> None:  # type: ignore[no-untyped-def]
    path, signed = _export(filled, tmp_path)
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"".join(line + b"\n" for line in damage(lines)))
    key = filled.signer.verifier.to_string()  # type: ignore[union-attr]
    with pytest.raises(VerificationFailed) as caught:
        verify_export(read_chunks(path, chunk=64), signed, key, workers=1)
    assert caught.value.seq == seq


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_larger_than_a_worker_task_are_split_and_faults_still_named(
    filled: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    import ledger.replay

    monkeypatch.setattr(ledger.replay, "_TASK", 32)
    path, signed = _export(filled, tmp_path)
    key = filled.signer.verifier.to_string()  # type: ignore[union-attr]
    verdict = verify_export(read_chunks(path, chunk=200), signed, key, workers=workers)
    assert (verdict.size, verdict.root) == (302, filled.head().root)
    lines = path.read_bytes().splitlines()
    lines[170] = lines[170].replace(b'"mass_kg":', b'"mass_kg": ')
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with pytest.raises(VerificationFailed, match="not RFC 8785 canonical") as caught:
        verify_export(read_chunks(path, chunk=200), signed, key, workers=workers)
    assert caught.value.seq == 170


def test_export_checked_against_a_different_key_is_refused(filled: Log, tmp_path: Path) -> None:
    path, signed = _export(filled, tmp_path)
    other = note.Signer.generate("suyuan-log").verifier.to_string()
    with pytest.raises(VerificationFailed, match="checkpoint does not verify"):
        verify_export(read_chunks(path), signed, other, workers=1)


def test_proof_bundle_round_trip_and_tampering(filled: Log) -> None:
    key = filled.signer.verifier  # type: ignore[union-attr]
    text = filled.proof_bundle(123)
    verified = verify_bundle(text, key, origin=ORIGIN)
    assert verified.entry.seq == 123
    assert verified.entry.body["i"] == 121
    proof = TlogProof.from_text(text)
    assert TlogProof.from_text(proof.to_text()) == proof
    bad_hash = bytearray(proof.hashes[2])
    bad_hash[0] ^= 1
    with pytest.raises(InvalidProof):
        verify_bundle(
            TlogProof(
                proof.index,
                (*proof.hashes[:2], bytes(bad_hash), *proof.hashes[3:]),
                proof.checkpoint,
                proof.extra,
            ).to_text(),
            key,
        )
    with pytest.raises(InvalidProof):
        verify_bundle(TlogProof(124, proof.hashes, proof.checkpoint, proof.extra).to_text(), key)
    with pytest.raises(InvalidProof, match="does not carry"):
        verify_bundle(TlogProof(proof.index, proof.hashes, proof.checkpoint).to_text(), key)
    with pytest.raises(InvalidSignature):
        verify_bundle(text, note.Signer.generate("suyuan-log").verifier)
    with pytest.raises(InvalidProof, match="starts with"):
        verify_bundle(text.replace("tlog-proof@v1", "tlog-proof@v2"), key)


def test_bundle_carries_witness_cosignatures(filled: Log) -> None:
    log_key = filled.signer.verifier  # type: ignore[union-attr]
    witness_signer = CosignatureSigner.generate("witness.example")
    witness = Witness(witness_signer, logs={ORIGIN: [log_key]}, state=MemoryWitnessState())
    first = filled.checkpoint()
    filled.add_cosignature(
        302, "witness.example", witness.add_checkpoint(first, old_size=0, proof=[])
    )
    text = filled.proof_bundle(5)
    verified = verify_bundle(
        text, log_key, witness_keys=[witness_signer.verifier.to_string()], min_witnesses=1
    )
    assert verified.witnesses == ("witness.example",)
    with pytest.raises(InvalidSignature, match="1 required"):
        verify_bundle(
            filled.proof_bundle(5),
            log_key,
            witness_keys=[CosignatureSigner.generate("w2").verifier.to_string()],
            min_witnesses=1,
        )
