"""An item's history is a hash chain pinned by one inclusion proof: completeness checked offline."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidProof, InvalidSignature
from tests.factories import Scene
from trace.errors import ChainError
from trace.history import verify_history


def _lived(scene: Scene) -> str:
    code = scene.code()
    scene.submit("catl", {"type": "commission", "item": code, "mass_kg": 400})
    offer = scene.submit("catl", {"type": "handover", "items": [code], "to": "byd"})
    scene.submit("byd", {"type": "accept", "handover": offer.event_id, "items": [code]})
    scene.submit("byd", {"type": "inspect", "item": code, "soh_pct": 91, "grade": "A"})
    other = scene.code()  # events of other items interleave on the log
    scene.submit("catl", {"type": "commission", "item": other})
    scene.submit("byd", {"type": "retire", "item": code, "reason": "end of first life"})
    return code


def test_a_complete_history_verifies_with_the_log_key_alone(scene: Scene) -> None:
    code = _lived(scene)
    entries, bundle = scene.tracer.history_proof(code)
    key = scene.tracer.log.signer.verifier.to_string()  # type: ignore[union-attr]
    verified = verify_history(code, [e.raw for e in entries], bundle, key)
    assert [e.event.type.value for e in verified.events] == [
        "commission", "handover", "accept", "inspect", "retire",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        lambda raws: raws[:2] + raws[3:],  # an event left out
        lambda raws: [raws[0], raws[2], raws[1], *raws[3:]],  # two swapped
        lambda raws: raws[1:],  # the first one dropped
    ],
    ids=["omitted", "reordered", "truncated-start"],
)
def test_an_omitted_or_reordered_event_breaks_the_chain(scene: Scene, damage) -> None:  # type: ignore[no-untyped-def]
    code = _lived(scene)
    entries, bundle = scene.tracer.history_proof(code)
    key = scene.tracer.log.signer.verifier.to_string()  # type: ignore[union-attr]
    with pytest.raises(ChainError, match=r"missing or reordered|previous event"):
        verify_history(code, damage([e.raw for e in entries]), bundle, key)


def test_a_history_that_stops_before_the_proven_head_is_refused(scene: Scene) -> None:
    code = _lived(scene)
    entries, bundle = scene.tracer.history_proof(code)
    key = scene.tracer.log.signer.verifier.to_string()  # type: ignore[union-attr]
    with pytest.raises(ChainError, match="not for the last event"):
        verify_history(code, [e.raw for e in entries[:-1]], bundle, key)


def test_a_forged_bundle_or_key_is_refused(scene: Scene) -> None:
    from ledger import note

    code = _lived(scene)
    entries, bundle = scene.tracer.history_proof(code)
    raws = [e.raw for e in entries]
    with pytest.raises(InvalidSignature):
        verify_history(code, raws, bundle, note.Signer.generate("suyuan-log").verifier)
    key = scene.tracer.log.signer.verifier.to_string()  # type: ignore[union-attr]
    lines = bundle.split("\n")
    lines[3] = lines[3][:-4] + ("AAA=" if not lines[3].endswith("AAA=") else "BBB=")
    with pytest.raises((InvalidProof, ValueError)):
        verify_history(code, raws, "\n".join(lines), key)
