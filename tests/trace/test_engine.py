"""The engine end to end on both databases: signed events, rules, idempotency, projections, races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event

from ledger import Log, note, open_store
from ledger.canonical import canonicalize
from ledger.entry import Submission
from schemas.codes import ProductType
from schemas.epcis import event_id
from tests.factories import ORIGIN, T0, Scene
from tests.trace.conftest import open_tracer
from trace.engine import Tracer, event_id_of, parse_event
from trace.errors import ChainError, CustodyError, InvalidEvent
from trace.projections import Projections
from trace.state import HandoverStatus, Status


def _commission(scene: Scene, product: ProductType = ProductType.PACK, mass: float = 400.0) -> str:
    code = scene.code(product)
    scene.submit("catl", {"type": "commission", "item": code, "mass_kg": mass})
    return code


def _hand(scene: Scene, code: str, sender: str, receiver: str) -> None:
    receipt = scene.submit(sender, {"type": "handover", "items": [code], "to": receiver})
    scene.submit(receiver, {"type": "accept", "handover": receipt.event_id, "items": [code]})


def test_custody_moves_only_on_accept_and_projections_follow(scene: Scene) -> None:
    code = _commission(scene)
    offer = scene.submit("catl", {"type": "handover", "items": [code], "to": "byd"})
    item = scene.tracer.world.item(code)
    assert item is not None and item.custodian == "catl" and item.pending_handover == offer.event_id
    accept = scene.submit("byd", {"type": "accept", "handover": offer.event_id, "items": [code]})
    item = scene.tracer.world.item(code)
    assert item is not None and item.custodian == "byd" and item.head == accept.event_id
    rows = scene.tracer.projections.dump()
    item_row = next(r for r in rows["trace_items"] if r[0] == code)
    assert "byd" in item_row
    handover = scene.tracer.world.handover(offer.event_id)
    assert handover is not None and handover.status is HandoverStatus.ACCEPTED
    # The log holds both halves of the receipt, signed by each side.
    entries = scene.tracer.log.entries(accept.seq - 1, accept.seq + 1)
    assert [e.key_id for e in entries] == [
        scene.parties["catl"].signer.key_id,
        scene.parties["byd"].signer.key_id,
    ]


def test_event_id_is_the_epcis_hash(scene: Scene) -> None:
    from schemas.epcis import event_id

    code = scene.code()
    event = scene.event("catl", {"type": "commission", "item": code})
    receipt = scene.tracer.submit([scene.sign("catl", event)])[0]
    assert receipt.event_id == event_id(event)
    assert receipt.event_id.startswith("ni:///sha-256;") and receipt.event_id.endswith(
        "?ver=CBV2.0"
    )


def test_retry_with_the_same_idempotency_key_appends_once(scene: Scene) -> None:
    code = scene.code()
    event = scene.event("catl", {"type": "commission", "item": code}, key="order-42")
    first = scene.tracer.submit([scene.sign("catl", event)])[0]
    size = len(scene.tracer.log)
    again = scene.tracer.submit([scene.sign("catl", event)])[0]
    assert again.replayed and (again.event_id, again.seq) == (first.event_id, first.seq)
    assert len(scene.tracer.log) == size


def test_reusing_an_idempotency_key_for_another_event_is_refused(scene: Scene) -> None:
    scene.submit("catl", {"type": "commission", "item": scene.code()}, key="k-1")
    size = len(scene.tracer.log)
    with pytest.raises(InvalidEvent, match="idempotency key 'k-1' was used"):
        scene.submit("catl", {"type": "commission", "item": scene.code()}, key="k-1")
    assert len(scene.tracer.log) == size


def test_refusals_append_nothing(scene: Scene) -> None:
    code = _commission(scene)
    size = len(scene.tracer.log)
    with pytest.raises(CustodyError) as refused:
        scene.submit("byd", {"type": "handover", "items": [code], "to": "brunp"})
    assert refused.value.rule == "custodian-only"
    with pytest.raises(ChainError):
        scene.submit("catl", {"type": "retire", "item": code, "reason": "x"}, prev={code: None})
    assert len(scene.tracer.log) == size


def test_a_key_of_another_actor_cannot_sign(scene: Scene) -> None:
    code = scene.code()
    event = scene.event("catl", {"type": "commission", "item": code})
    forged = scene.tracer.sign(
        event,
        key_id=scene.parties["byd"].signer.key_id,
        key=scene.parties["byd"].signer.private_key,
    )
    with pytest.raises(InvalidEvent, match="belongs to 'byd', not to 'catl'") as caught:
        scene.tracer.submit([forged])
    assert caught.value.field == "actor"


def test_unregistered_and_revoked_keys_are_refused(scene: Scene) -> None:
    stranger = note.Signer.generate("stranger")
    event = scene.event("catl", {"type": "commission", "item": scene.code()})
    with pytest.raises(InvalidEvent, match="not registered"):
        scene.tracer.submit(
            [scene.tracer.sign(event, key_id=stranger.key_id, key=stranger.private_key)]
        )
    catl = scene.parties["catl"].signer
    scene.tracer.log.revoke_key(catl.key_id, reason="rotated")
    size = len(scene.tracer.log)
    with pytest.raises(InvalidEvent, match="revoked"):
        scene.submit("catl", {"type": "commission", "item": scene.code()})
    assert len(scene.tracer.log) == size


def test_signature_over_other_bytes_is_refused(scene: Scene) -> None:
    from ledger.entry import Submission

    event = scene.event("catl", {"type": "commission", "item": scene.code(), "mass_kg": 400})
    signed = scene.sign("catl", event)
    body = {**signed.body, "data": {**signed.body["data"], "mass_kg": 4}}
    with pytest.raises(InvalidEvent, match="does not verify"):
        scene.tracer.submit([Submission(signed.kind, body, signed.key_id, signed.signature)])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "commission", "item": "001PEAB0000001G1C000000"}, "data.commission.item"),
        ({"type": "commission", "item": "001PEAB0000001G1C0000001", "mass_kg": -3}, "mass_kg"),
        ({"type": "commission", "item": "001PEAB0000001G1C0000001", "mass_kg": "heavy"}, "mass_kg"),
        ({"type": "teleport", "item": "001PEAB0000001G1C0000001"}, "data"),
    ],
)
def test_malformed_events_name_the_field(scene: Scene, data: dict[str, object], field: str) -> None:
    body = {
        "actor": "catl",
        "event_time": "2026-03-02T10:00:00+08:00",
        "region": "350000",
        "idempotency_key": "bad-1",
        "prev": {"001PEAB0000001G1C0000001": None},
        "data": data,
    }
    from ledger.entry import sign_submission

    signer = scene.parties["catl"].signer
    submission = sign_submission(
        "event.commission", body, key_id=signer.key_id, key=signer.private_key
    )
    with pytest.raises(InvalidEvent) as caught:
        scene.tracer.submit([submission])
    assert caught.value.field is not None and field in caught.value.field


def test_events_in_the_future_are_refused_but_late_ones_are_flagged(scene: Scene) -> None:
    with pytest.raises(InvalidEvent, match="in the future") as caught:
        scene.submit(
            "catl",
            {"type": "commission", "item": scene.code()},
            when=scene.tracer.clock() + timedelta(hours=1),
        )
    assert caught.value.field == "event_time"
    code = _commission(scene)
    _hand(scene, code, "catl", "byd")
    scene.submit("byd", {"type": "retire", "item": code, "reason": "end of first life"})
    _hand(scene, code, "byd", "gz-collect")
    receipt = scene.submit(
        "gz-collect", {"type": "collect", "item": code}, when=T0 + timedelta(days=3)
    )
    assert receipt.late_working_days is not None and receipt.late_working_days > 100


def test_projections_rebuilt_from_the_log_equal_the_live_ones(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    packs = [_commission(scene) for _ in range(3)]
    _hand(scene, packs[0], "catl", "byd")
    scene.submit("byd", {"type": "install", "item": packs[0], "vin": "LGXCE4CB5N0000001"})
    offer = scene.submit("catl", {"type": "handover", "items": packs[1:], "to": "byd"})
    scene.submit(
        "byd",
        {"type": "reject", "handover": offer.event_id, "items": packs[1:], "reason": "wrong spec"},
    )
    live = scene.tracer.projections.dump()
    scene.tracer.projections.clear()
    rebuilt = open_tracer(store_url, log_signer)
    try:
        assert rebuilt.projections.dump() == live
        assert rebuilt.world.items == scene.tracer.world.items
    finally:
        rebuilt.close()


def test_entries_appended_behind_the_engines_back_are_caught_up(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    code = scene.code()
    event = scene.event("catl", {"type": "commission", "item": code})
    # As if a process died after the log committed and before the projections did.
    scene.tracer.log.append([scene.sign("catl", event)])
    other = open_tracer(store_url, log_signer)
    try:
        item = other.world.item(code)
        assert item is not None and item.status is Status.IN_STOCK
    finally:
        other.close()


def _start_interrupted(
    store_url: str, log_signer: note.Signer, before: int, other: Tracer
) -> Tracer:
    """A new engine on ``store_url`` during whose start, just before its ``before``-th
    query, ``other`` catches up with the log and writes what it replayed."""
    projections = Projections(store_url)
    queries = 0

    @event.listens_for(projections.engine, "before_cursor_execute")
    def another_engine_catches_up(*args: object) -> None:
        nonlocal queries
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            queries += 1
            if queries == before:
                assert other.catch_up() == 1

    log = Log.create(open_store(store_url), signer=log_signer, origin=ORIGIN)
    starting = Tracer(log, projections)
    assert queries >= before, f"the start made {queries} queries"
    return starting


@pytest.mark.parametrize("before", [2, 3, 4, 5])
def test_an_engine_starting_while_another_catches_up_loads_one_state_of_the_tables(
    scene: Scene, store_url: str, log_signer: note.Signer, before: int
) -> None:
    code = _commission(scene)
    offer = scene.event("catl", {"type": "handover", "items": [code], "to": "byd"})
    # As if a process died after the log committed the offer and before the projections did.
    scene.tracer.log.append([scene.sign("catl", offer)])
    starting = _start_interrupted(store_url, log_signer, before, scene.tracer)
    try:
        assert starting.world.items == scene.tracer.world.items
        item = starting.world.item(code)
        assert item is not None and item.pending_handover is not None
        assert starting.receipt("catl", offer.idempotency_key) is not None
    finally:
        starting.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_concurrent_handovers_of_one_item_exactly_one_wins(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    code = _commission(scene)
    receivers = ["byd", "gz-collect", "js-storage", "brunp"]
    submissions = [
        scene.sign("catl", scene.event("catl", {"type": "handover", "items": [code], "to": r}))
        for r in receivers
    ]
    tracers = [open_tracer(store_url, log_signer) for _ in receivers]
    outcomes: list[object] = [None] * len(receivers)
    barrier = threading.Barrier(len(receivers))

    def race(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = tracers[i].submit([submissions[i]])[0]
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(receivers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in tracers:
        t.close()
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(o, ChainError | CustodyError) for o in losers), losers
    scene.tracer.catch_up()
    item = scene.tracer.world.item(code)
    assert item is not None and item.pending_handover == winners[0].event_id  # type: ignore[attr-defined]
    scene.tracer.log.verify(workers=1)


def test_two_engines_on_one_database_share_one_history(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    second = open_tracer(store_url, log_signer)
    try:
        code = scene.code()
        event = scene.event("catl", {"type": "commission", "item": code})
        second.submit([scene.sign("catl", event)])
        offer = scene.submit("catl", {"type": "handover", "items": [code], "to": "byd"})
        assert offer.seq == len(scene.tracer.log) - 1
    finally:
        second.close()


# --- large batches: signatures checked in the log's worker processes beside the rules ---


def _assert_rebuilt_from_the_log(scene: Scene, store_url: str, log_signer: note.Signer) -> None:
    live = scene.tracer.projections.dump()
    scene.tracer.projections.clear()
    rebuilt = open_tracer(store_url, log_signer)
    try:
        assert rebuilt.projections.dump() == live
    finally:
        rebuilt.close()


def _commissions(scene: Scene, n: int) -> list[Submission]:
    return [
        scene.sign("catl", scene.event("catl", {"type": "commission", "item": scene.code()}))
        for _ in range(n)
    ]


def test_a_large_batch_is_checked_and_appended_whole(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    batch = _commissions(scene, 80)
    # Submissions read from JSON carry no canonical body; the engine supplies it.
    batch[1] = Submission(batch[1].kind, batch[1].body, batch[1].key_id, batch[1].signature)
    size = len(scene.tracer.log)
    receipts = scene.tracer.submit(batch)
    assert [r.seq for r in receipts] == list(range(size, size + 80))
    assert scene.tracer.log.entry(size + 1).body == batch[1].body
    scene.tracer.log.verify(workers=1)
    _assert_rebuilt_from_the_log(scene, store_url, log_signer)


def test_a_large_batch_with_one_forged_signature_appends_nothing(scene: Scene) -> None:
    batch = _commissions(scene, 80)
    forged = batch[57]
    body = {**forged.body, "data": {**forged.body["data"], "mass_kg": 4.0}}
    batch[57] = Submission(forged.kind, body, forged.key_id, forged.signature)
    size = len(scene.tracer.log)
    with pytest.raises(InvalidEvent, match="does not verify"):
        scene.tracer.submit(batch)
    assert len(scene.tracer.log) == size
    assert scene.tracer.world.item(batch[0].body["data"]["item"]) is None


def test_a_large_batch_signed_with_a_revoked_key_is_refused(scene: Scene) -> None:
    batch = _commissions(scene, 70)
    scene.tracer.log.revoke_key(scene.parties["catl"].signer.key_id, reason="rotated")
    size = len(scene.tracer.log)
    with pytest.raises(InvalidEvent, match="revoked"):
        scene.tracer.submit(batch)
    assert len(scene.tracer.log) == size


def test_a_large_batch_of_retries_gets_the_original_receipts(scene: Scene) -> None:
    batch = _commissions(scene, 70)
    first = scene.tracer.submit(batch)
    size = len(scene.tracer.log)
    again = scene.tracer.submit(batch)
    assert [r.seq for r in again] == [r.seq for r in first]
    assert all(r.replayed for r in again) and len(scene.tracer.log) == size


def test_a_stream_of_batches_appends_each_with_the_ids_the_events_hash_to(
    scene: Scene, store_url: str, log_signer: note.Signer
) -> None:
    batches = [_commissions(scene, 70) for _ in range(4)]
    size = len(scene.tracer.log)
    receipts = [r for batch in scene.tracer.submit_stream(batches) for r in batch]
    assert [r.seq for r in receipts] == list(range(size, size + 280))
    flat = [s for batch in batches for s in batch]
    expected = [event_id(parse_event(s.body)) for s in flat]
    assert [r.event_id for r in receipts] == expected
    assert [event_id_of(canonicalize(s.body)) for s in flat[:5]] == expected[:5]
    _assert_rebuilt_from_the_log(scene, store_url, log_signer)


def test_a_refused_batch_ends_the_stream_and_later_batches_are_not_appended(
    scene: Scene,
) -> None:
    first, forged, last = (_commissions(scene, 70) for _ in range(3))
    bad = forged[33]
    forged[33] = Submission(bad.kind, {**bad.body, "region": "110000"}, bad.key_id, bad.signature)
    size = len(scene.tracer.log)
    stream = scene.tracer.submit_stream([first, forged, last])
    assert len(next(stream)) == 70
    with pytest.raises(InvalidEvent, match=r"submission 33 .*does not verify"):
        next(stream)
    assert len(scene.tracer.log) == size + 70
    assert scene.tracer.world.item(last[0].body["data"]["item"]) is None


def test_the_workers_event_id_is_none_for_what_is_no_event() -> None:
    assert event_id_of(b'{"type":"nothing"}') is None
    assert event_id_of(b"not json") is None
