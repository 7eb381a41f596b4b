"""Projection writes on both databases: batched, idempotent, and never older over newer."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from schemas.actors import Actor, Role
from trace.projections import (
    ProjectedEvent,
    Projections,
    _table,
    handover_row,
    item_row,
)
from trace.state import (
    EuStatus,
    HandoverState,
    HandoverStatus,
    ItemKind,
    ItemState,
    Status,
    evolve,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
EVENT_ID = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"


def _item(n: int, **changes: object) -> ItemState:
    item = ItemState(
        id=f"001PEAB0000001G1C{n:07d}",
        kind=ItemKind.PACK,
        status=Status.IN_STOCK,
        custodian="catl",
        owner="catl",
        producer="catl",
        head=EVENT_ID,
        last_time=T0,
        region="350000",
    )
    return evolve(item, **changes)


@pytest.fixture
def projections(store_url: str) -> Iterator[Projections]:
    p = Projections(store_url)
    try:
        yield p
    finally:
        p.close()


def test_a_batch_of_rows_reads_back_as_written(projections: Projections) -> None:
    items = [
        # An integral mass next to fractional ones: a float column takes both.
        (_item(1, mass_kg=420, soh_pct=81.5, content_kg={"Li": 4.5, "Co": 2}), 1),
        (_item(2, mass_kg=None, children=("a", "b"), disputed=True, vin="LGXCE4CB5N0000001"), 2),
        (_item(3, mass_kg=0.125, sources=("LOT-1",), eu_status=EuStatus.WASTE), 3),
    ]
    handover = HandoverState(
        "h-1", "catl", "byd", ("x", "y"), True, HandoverStatus.PENDING, T0, closed_by=None
    )
    event = ProjectedEvent(
        seq=3,
        event_id=EVENT_ID,
        type="commission",
        actor="catl",
        region="350000",
        event_time=T0,
        recorded_at=T0 + timedelta(minutes=1),
        idempotency_key="k-1",
        late_working_days=None,
        body={"data": {"mass_kg": 420.0, "reason": "电池"}},
        prev={"x": None, "y": EVENT_ID},
    )
    actor = Actor(id="catl", name="CATL", role=Role.BATTERY_MAKER, region="350000")
    projections.write(
        seq=4, items=items, handovers=[(handover, 3)], actors=[(actor, 0)], events=[event]
    )
    world = projections.load_world()
    for item, _ in items:
        stored = world.items[item.id]
        assert stored == evolve(item, last_time=T0.astimezone(UTC))
    assert world.handovers["h-1"] == evolve(handover, created=T0.astimezone(UTC))
    assert world.actors["catl"] == actor
    assert projections.seq() == 4
    assert projections.item_seqs("x") == [3] and projections.item_seqs("y") == [3]
    assert list(projections.receipt_keys()) == [(3, EVENT_ID, "catl", "k-1")]
    found = projections.receipt(3)
    assert found is not None and projections.receipt(2) is None
    seq, eid, who, key, recorded_at, late = found
    assert (seq, eid, who, key, late) == (3, EVENT_ID, "catl", "k-1", None)
    assert recorded_at.replace(tzinfo=UTC) == event.recorded_at


def test_writes_are_idempotent_and_an_older_state_never_replaces_a_newer(
    projections: Projections,
) -> None:
    newer = _item(1, custodian="byd", status=Status.INSTALLED)
    projections.write(seq=9, items=[(newer, 8)])
    once = projections.dump()
    projections.write(seq=9, items=[(newer, 8)])
    assert projections.dump() == once
    projections.write(seq=5, items=[(_item(1), 4)])  # a slower engine, an older state
    assert projections.load_world().items[newer.id].custodian == "byd"
    assert projections.seq() == 9


def test_stored_values_are_those_sqlalchemy_stores(store_url: str, tmp_path: Path) -> None:
    # Other readers (the API's paging, SQL reports) compare columns with values that
    # SQLAlchemy binds, so the batched writes must store the very same representation.
    item = _item(7, mass_kg=420, soh_pct=80.5, disputed=True, vin="LGXCE4CB5N0000001")
    handover = HandoverState("h-7", "catl", "byd", ("x",), True, HandoverStatus.PENDING, T0)
    batched = Projections(store_url)
    try:
        batched.write(seq=3, items=[(item, 2)], handovers=[(handover, 2)])
        expected_url = store_url if "://" in store_url else str(tmp_path / "expected.db")
        with batched.engine.begin() as conn:
            raw = {t: _raw(conn, t) for t in ("trace_items", "trace_handovers")}
            if expected_url == store_url:  # PostgreSQL: the same schema, rewritten by Core
                conn.execute(delete(_table("trace_items")))
                conn.execute(delete(_table("trace_handovers")))
        expected = Projections(expected_url)
        try:
            with expected.engine.begin() as conn:
                conn.execute(insert(_table("trace_items")), [item_row(item, 2)])
                conn.execute(insert(_table("trace_handovers")), [handover_row(handover, 2)])
                assert {t: _raw(conn, t) for t in raw} == raw
        finally:
            expected.close()
    finally:
        batched.close()


def _raw(conn: Connection, table: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")]


def test_a_batch_that_breaks_a_constraint_writes_nothing(projections: Projections) -> None:
    def event(seq: int, region: str | None) -> ProjectedEvent:
        return ProjectedEvent(seq=seq, event_id=f"{EVENT_ID}{seq}", type="commission",
                              actor="catl", region=region, event_time=T0, recorded_at=T0,  # type: ignore[arg-type]
                              idempotency_key=f"k-{seq}", late_working_days=None, body={},
                              prev={"x": None})  # fmt: skip

    projections.write(seq=2, items=[(_item(1), 1)], events=[event(1, "350000")])
    before = projections.dump()
    # An event without a region breaks a NOT NULL column (on PostgreSQL, found when the
    # pipeline's results are read, after the item row went out): the whole batch is undone.
    with pytest.raises(IntegrityError):
        projections.write(seq=4, items=[(_item(2), 3)], events=[event(3, None)])
    assert projections.dump() == before and projections.seq() == 2


# Each change is (item number, field, value): the indexed columns and two that are not.
_CHANGES = st.one_of(
    st.tuples(st.integers(0, 5), st.just("status"), st.sampled_from(list(Status))),
    st.tuples(st.integers(0, 5), st.just("custodian"), st.sampled_from(["catl", "byd", "gem"])),
    st.tuples(st.integers(0, 5), st.just("owner"), st.sampled_from(["catl", "byd", "gem"])),
    st.tuples(st.integers(0, 5), st.just("region"), st.sampled_from(["350000", "440300"])),
    st.tuples(st.integers(0, 5), st.just("vin"), st.sampled_from([None, "LGXCE4CB5N0000001"])),
    st.tuples(
        st.integers(0, 5), st.just("kind"), st.sampled_from([ItemKind.PACK, ItemKind.MODULE])
    ),
    st.tuples(st.integers(0, 5), st.just("soh_pct"), st.sampled_from([None, 91.0, 72.5])),
    st.tuples(st.integers(0, 5), st.just("head"), st.sampled_from([EVENT_ID, EVENT_ID[::-1]])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_CHANGES, max_size=6), min_size=1, max_size=6))
def test_writes_with_earlier_states_store_what_whole_row_writes_store(
    batches: list[list[tuple[int, str, object]]],
) -> None:
    # An item written beside its earlier state sets only the indexed columns that changed
    # (SQLite); the tables must end up as if every column had been set.
    with tempfile.TemporaryDirectory() as folder:
        narrowed, whole = (Projections(str(Path(folder) / f"{n}.db")) for n in ("a", "b"))
        try:
            states: dict[str, ItemState] = {}
            for seq, batch in enumerate(batches, start=1):
                before = {item.id: states.get(item.id) for item in map(_item, range(6))}
                changed: dict[str, ItemState] = {}
                for n, name, value in batch:
                    item = changed.get(_item(n).id) or states.get(_item(n).id) or _item(n)
                    changed[item.id] = evolve(item, **{name: value})
                rows = [(item, seq) for item in changed.values()]
                narrowed.write(seq=seq + 1, items=rows, before=before)
                whole.write(seq=seq + 1, items=rows)
                states.update(changed)
            assert narrowed.dump() == whole.dump()
            assert narrowed.load_world().items == {
                i: evolve(s, last_time=s.last_time.astimezone(UTC)) for i, s in states.items()
            }
            with narrowed.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                # The indexes answer as the rows do.
                by_custodian = conn.exec_driver_sql(
                    "SELECT id FROM trace_items INDEXED BY ix_trace_items_custodian "
                    "WHERE custodian = 'byd' ORDER BY id"
                ).scalars()
                assert list(by_custodian) == sorted(
                    i for i, s in states.items() if s.custodian == "byd"
                )
        finally:
            narrowed.close()
            whole.close()
