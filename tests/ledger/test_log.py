"""The log on both backends: appends, refusals that leave it unchanged, proofs, checkpoints, keys."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import multiprocessing
import time

import pytest

from ledger import checkpoint, merkle, note, verify_pool
from ledger.canonical import canonicalize
from ledger.entry import GENESIS_PREV, Entry, Submission, encode_entry, sign_submission
from ledger.errors import (
    InvalidEntry,
    InvalidSignature,
    OutOfRange,
    RevokedKey,
    StaleHead,
    UnknownKey,
)
from ledger.keys import KeyRole
from ledger.log import Log
from ledger.store import LogStore
from ledger.verify_pool import SignatureCheck
from tests.factories import ORIGIN, registered_signer, submission


def test_genesis_names_origin_and_log_key(log: Log) -> None:
    genesis = log.entry(0)
    assert genesis.kind == "ledger.genesis"
    assert genesis.prev == GENESIS_PREV
    assert genesis.body == {"origin": ORIGIN, "log_key": log.signer.verifier.to_string()}  # type: ignore[union-attr]
    assert log.origin == ORIGIN


def test_appended_entries_chain_and_are_canonical(log: Log) -> None:
    signer = registered_signer(log)
    receipts = log.append([submission(signer, i) for i in range(5)])
    assert [r.seq for r in receipts] == [2, 3, 4, 5, 6]
    entries = log.entries(0, len(log))
    for before, after in itertools.pairwise(entries):
        assert after.prev == before.leaf_hash
    for entry in entries:
        envelope = {
            "body": entry.body,
            "key_id": entry.key_id,
            "kind": entry.kind,
            "prev": base64.b64encode(entry.prev).decode(),
            "recorded_at": entry.recorded_at,
            "seq": entry.seq,
            "sig": base64.b64encode(entry.signature).decode(),
        }
        assert canonicalize(envelope) == entry.raw
    assert receipts[-1].leaf_hash == entries[-1].leaf_hash
    assert log.find(receipts[2].leaf_hash) == receipts[2].seq


def test_assembled_entry_equals_canonical_envelope_with_unicode() -> None:
    body = {"名称": "宁德时代", "emoji": "\U0001f50b", "n": [1, -2, {"z": None, "a": True}]}
    raw = encode_entry(
        seq=9,
        prev=bytes(range(32)),
        recorded_at="2026-11-28T10:00:00.000000Z",
        kind="pack.commission",
        canonical_body=canonicalize(body),
        key_id="电池厂+0a1b2c3d",
        signature=bytes(64),
    )
    assert Entry.parse(raw).body == body
    assert Entry.parse(raw).message().endswith(canonicalize(body))


def _unchanged(log: Log, size: int, root: bytes) -> None:
    assert log.head().size == size
    assert log.head().root == root


def test_unknown_key_is_refused_and_nothing_appended(log: Log) -> None:
    stranger = note.Signer.generate("stranger")
    head = log.head()
    with pytest.raises(UnknownKey, match="not registered"):
        log.append([submission(stranger)])
    _unchanged(log, head.size, head.root)


def test_wrong_signature_refuses_the_whole_batch(log: Log) -> None:
    signer = registered_signer(log)
    good = [submission(signer, i) for i in range(3)]
    # A body changed after signing (as it arrives from outside, without cached canonical bytes).
    forged = Submission(
        good[1].kind, {**good[1].body, "mass_kg": 1}, good[1].key_id, good[1].signature
    )
    head = log.head()
    with pytest.raises(InvalidSignature, match="submission 1"):
        log.append([good[0], forged, good[2]])
    with pytest.raises(InvalidSignature):
        log.append([dataclasses.replace(good[0], signature=bytes(64))])
    _unchanged(log, head.size, head.root)


def test_signature_for_another_kind_is_refused(log: Log) -> None:
    signer = registered_signer(log)
    s = submission(signer, kind="pack.collect")
    with pytest.raises(InvalidSignature):
        log.append([dataclasses.replace(s, kind="pack.recycle")])


def test_revoked_key_cannot_sign_but_its_earlier_entries_stay_valid(log: Log) -> None:
    signer = registered_signer(log)
    log.append([submission(signer, 1)])
    log.revoke_key(signer.key_id, reason="laptop stolen")
    head = log.head()
    with pytest.raises(RevokedKey, match="revoked by entry"):
        log.append([submission(signer, 2)])
    _unchanged(log, head.size, head.root)
    log.verify(workers=1)
    assert log.store.keys_by_id([signer.key_id])[signer.key_id].revoked_seq == head.size - 1


def test_a_key_can_revoke_itself_but_not_others(log: Log) -> None:
    a, b = registered_signer(log, "a"), registered_signer(log, "b")
    revoke_b = sign_submission(
        "ledger.key.revoke", {"key_id": b.key_id, "reason": "x"}, key_id=a.key_id, key=a.private_key
    )
    with pytest.raises(InvalidEntry, match="needs a log key"):
        log.append([revoke_b])
    log.append(
        [
            sign_submission(
                "ledger.key.revoke",
                {"key_id": a.key_id, "reason": "retired"},
                key_id=a.key_id,
                key=a.private_key,
            )
        ]
    )
    with pytest.raises(RevokedKey):
        log.append([submission(a)])


def test_reserved_kinds_and_oversized_bodies_are_refused(log: Log) -> None:
    signer = registered_signer(log)
    with pytest.raises(InvalidEntry, match="reserved"):
        log.append([submission(signer, kind="ledger.rewrite")])
    with pytest.raises(InvalidEntry, match="limited to"):
        log.append([submission(signer, blob="x" * 70_000)])
    with pytest.raises(InvalidEntry, match="kind"):
        sign_submission("Bad Kind", {}, key_id=signer.key_id, key=signer.private_key)


def test_expect_size_refuses_a_stale_head(log: Log) -> None:
    signer = registered_signer(log)
    size = len(log)
    log.append([submission(signer, 1)], expect_size=size)
    with pytest.raises(StaleHead, match=f"not {size}"):
        log.append([submission(signer, 2)], expect_size=size)


def test_proofs_verify_against_a_signed_checkpoint(log: Log) -> None:
    signer = registered_signer(log)
    for batch in range(4):
        log.append([submission(signer, batch * 10 + i) for i in range(9)])
    old_note = log.checkpoint()
    old = checkpoint.verify_checkpoint(old_note, log.signer.verifier, origin=ORIGIN)  # type: ignore[union-attr]
    log.append([submission(signer, 100 + i) for i in range(7)])
    new = checkpoint.verify_checkpoint(log.checkpoint(), log.log_verifiers())
    assert new.size == old.size + 7
    for seq in (0, 1, old.size - 1, new.size - 1):
        entry = log.entry(seq)
        merkle.verify_inclusion(entry.raw, seq, new.size, log.inclusion_proof(seq), new.root_hash)
    merkle.verify_consistency(
        old.size, new.size, log.consistency_proof(old.size), old.root_hash, new.root_hash
    )
    raws = [e.raw for e in log.entries(0, new.size)]
    assert log.root() == merkle.root(raws) == new.root_hash
    assert log.inclusion_proof(5, 20) == merkle.inclusion_proof(raws[:20], 5)
    with pytest.raises(OutOfRange):
        log.inclusion_proof(new.size)
    with pytest.raises(OutOfRange):
        log.consistency_proof(3, new.size + 1)


def test_log_key_rotation_keeps_old_checkpoints_verifiable(store: LogStore) -> None:
    old_signer = note.Signer.generate("suyuan-log")
    log = Log.create(store, signer=old_signer, origin=ORIGIN)
    old_note = log.checkpoint()
    new_signer = note.Signer.generate("suyuan-log-2027")
    log.register_key(new_signer.verifier.to_string(), role=KeyRole.LOG)
    log.revoke_key(old_signer.key_id, reason="scheduled rotation")
    rotated = Log(store, signer=new_signer)
    entry_signer = registered_signer(rotated)
    rotated.append([submission(entry_signer)])
    new_note = rotated.checkpoint()
    checkpoint.verify_checkpoint(old_note, old_signer.verifier)
    checkpoint.verify_checkpoint(new_note, new_signer.verifier)
    checkpoint.verify_checkpoint(old_note, rotated.log_verifiers())
    with pytest.raises(InvalidSignature):
        checkpoint.verify_checkpoint(new_note, old_signer.verifier)
    with pytest.raises(RevokedKey):
        log.register_key(note.Signer.generate("late").verifier.to_string())
    rotated.verify(workers=1)


def test_proofs_through_the_kept_upper_nodes_equal_the_stores_as_the_log_grows(
    log: Log, store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ledger.log

    monkeypatch.setattr(ledger.log, "_KEPT_LEVEL", 1)
    signer = registered_signer(log)
    sizes = []
    for batch in range(5):
        log.append([submission(signer, batch * 100 + i) for i in range(13 + 7 * batch)])
        sizes.append(len(log))
        for size in sizes:  # older sizes again, now partly answered from memory
            for seq in range(0, size, 3):
                assert log.inclusion_proof(seq, size) == merkle.prove_inclusion(store, seq, size)
            for old in range(1, size + 1, 2):
                assert log.consistency_proof(old, size) == merkle.prove_consistency(
                    store, old, size
                )
            assert log.root(size) == merkle.root_of(store, size)
    kept = log._nodes._kept
    assert kept and min(level for level, _ in kept) == 1


def test_kept_upper_nodes_are_bounded(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.log

    monkeypatch.setattr(ledger.log, "_KEPT_LEVEL", 0)
    monkeypatch.setattr(ledger.log, "_KEPT_MAX", 10)
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(60)])
    for seq in range(len(log)):
        log.inclusion_proof(seq)
    assert 10 <= len(log._nodes._kept) < 10 + 2 * len(log).bit_length()


def test_checkpoint_needs_the_signing_key(store: LogStore, log: Log) -> None:
    with pytest.raises(InvalidEntry, match="signing key"):
        Log(store).checkpoint()


def test_verify_replays_a_good_log(log: Log) -> None:
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(50)])
    log.checkpoint()
    result = log.verify(workers=1)
    assert result.size == len(log)
    assert result.root == log.head().root
    assert result.origin == ORIGIN


def test_verify_in_worker_processes_over_several_chunks(log: Log) -> None:
    signer = registered_signer(log)
    log.append([submission(signer, i) for i in range(9000)])
    log.checkpoint()
    assert log.verify(workers=2).size == 9002


def test_expect_prev_refuses_an_append_after_someone_elses(log: Log) -> None:
    signer = registered_signer(log)
    seen = log.entry(len(log) - 1).leaf_hash
    log.append([submission(signer, 1)], expect_prev=seen)
    head = log.head()
    with pytest.raises(StaleHead, match="the log moved"):
        log.append([submission(signer, 2)], expect_prev=seen)
    _unchanged(log, head.size, head.root)


# --- signatures checked in worker processes (Log.check_signatures) ---


def _refused(
    log: Log, batch: list[Submission], check: SignatureCheck | None, error: type, match: str
) -> None:
    head = log.head()
    with pytest.raises(error, match=match):
        log.append(batch, signatures=check)
    _unchanged(log, head.size, head.root)


def test_a_batch_checked_in_workers_appends_as_a_plain_append_would(log: Log) -> None:
    signer = registered_signer(log)
    batch = [submission(signer, i) for i in range(100)]
    check = log.check_signatures(batch)
    assert check is not None
    receipts = log.append(batch, signatures=check)
    assert [r.seq for r in receipts] == list(range(receipts[0].seq, receipts[0].seq + 100))
    assert log.entry(receipts[57].seq).body == batch[57].body
    log.verify(workers=1)


def test_a_forged_signature_found_by_the_workers_appends_nothing(log: Log) -> None:
    signer = registered_signer(log)
    batch = [submission(signer, i) for i in range(100)]
    batch[70] = Submission(batch[70].kind, {**batch[70].body, "mass_kg": 1}, signer.key_id,
                           batch[70].signature)  # fmt: skip
    check = log.check_signatures(batch)
    assert check is not None
    _refused(log, batch, check, InvalidSignature, "submission 70 ")


def test_a_key_revoked_while_its_batch_is_checked_is_still_refused(log: Log) -> None:
    signer = registered_signer(log)
    batch = [submission(signer, i) for i in range(100)]
    check = log.check_signatures(batch)
    log.revoke_key(signer.key_id, reason="revoked between the check and the append")
    _refused(log, batch, check, RevokedKey, "revoked by entry")


def test_a_check_of_other_submissions_is_not_trusted(log: Log) -> None:
    signer = registered_signer(log)
    checked = [submission(signer, i) for i in range(100)]
    check = log.check_signatures(checked)
    other = [dataclasses.replace(s) for s in checked]  # equal, but not the objects checked
    other[3] = dataclasses.replace(other[3], signature=bytes(64))
    assert check is not None and not check.covers(other, [canonicalize(s.body) for s in other])
    _refused(log, other, check, InvalidSignature, "submission 3 ")


def test_a_body_changed_after_its_check_is_checked_again(log: Log) -> None:
    signer = registered_signer(log)
    batch = [Submission(s.kind, s.body, s.key_id, s.signature)  # no cached canonical bytes
             for s in (submission(signer, i) for i in range(100))]  # fmt: skip
    check = log.check_signatures(batch)
    batch[42].body["mass_kg"] = 1  # after the check, before the append
    _refused(log, batch, check, InvalidSignature, "submission 42 ")


def test_small_batches_and_unknown_keys_are_left_to_the_append(log: Log) -> None:
    signer = registered_signer(log)
    assert log.check_signatures([submission(signer, i) for i in range(3)]) is None
    stranger = note.Signer.generate("stranger")
    mixed = [submission(signer, i) for i in range(99)] + [submission(stranger)]
    assert log.check_signatures(mixed) is None
    _refused(log, mixed, None, UnknownKey, "not registered")


def test_a_dead_signature_worker_costs_time_not_a_check(log: Log) -> None:
    signer = registered_signer(log)
    first = [submission(signer, i) for i in range(100)]
    log.append(first, signatures=log.check_signatures(first))  # the worker is up
    pool = verify_pool._shared_pool()
    for process in list(pool._processes.values()):  # as the OOM killer would
        process.kill()
    deadline = time.monotonic() + 10
    while not pool._broken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool._broken
    forged = [submission(signer, i) for i in range(100)]
    forged[80] = dataclasses.replace(forged[80], signature=bytes(64))
    _refused(log, forged, log.check_signatures(forged), InvalidSignature, "submission 80 ")
    batch = [submission(signer, i) for i in range(100)]
    check = log.check_signatures(batch)
    assert verify_pool._shared_pool() is not pool  # a new worker takes the next batch
    assert check is not None and len(log.append(batch, signatures=check)) == 100


def _check_in_a_child(key_bytes: bytes, batch: list[Submission]) -> None:
    items = [(canonicalize(s.body), key_bytes) for s in batch]
    SignatureCheck(batch, items).result()


def test_a_child_process_that_checked_signatures_ends() -> None:
    signer = note.Signer.generate("maker")
    batch = [submission(signer, i) for i in range(100)]
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_check_in_a_child, args=(signer.verifier.public_key_bytes, batch)
    )
    child.start()
    child.join(timeout=30)
    try:
        assert child.exitcode == 0  # None: it hung, waiting for its signature worker
    finally:
        if child.exitcode is None:
            child.kill()
