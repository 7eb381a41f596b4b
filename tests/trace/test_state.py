"""Item and handover states: new versions are copies with changes, never edits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trace.state import (
    EuStatus,
    HandoverState,
    HandoverStatus,
    ItemKind,
    ItemState,
    Status,
    evolve,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ITEM = ItemState(
    id="001PEAB0000001G1C0000001",
    kind=ItemKind.PACK,
    status=Status.IN_STOCK,
    custodian="catl",
    owner="catl",
    producer="catl",
    head="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0",
    last_time=T0,
    region="350000",
    mass_kg=420.0,
    content_kg={"Li": 5.0},
)
HANDOVER = HandoverState(
    id="h-1",
    sender="catl",
    receiver="byd",
    items=(ITEM.id,),
    transfer_ownership=False,
    status=HandoverStatus.PENDING,
    created=T0,
)

_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(list(Status)),
        "custodian": st.sampled_from(["catl", "byd", "brunp"]),
        "mass_kg": st.none() | st.floats(allow_nan=False),
        "children": st.lists(st.text(max_size=4), max_size=3).map(tuple),
        "eu_status": st.sampled_from(list(EuStatus)),
        "pending_handover": st.none() | st.text(max_size=8),
        "disputed": st.booleans(),
    },
)


@given(changes=_CHANGES)
def test_evolve_is_dataclasses_replace(changes: dict[str, object]) -> None:
    new = evolve(ITEM, **changes)
    assert new == dataclasses.replace(ITEM, **changes)  # type: ignore[arg-type]
    assert type(new) is ItemState
    assert ITEM.status is Status.IN_STOCK and ITEM.custodian == "catl"  # the original stays


def test_evolve_copies_handovers_too() -> None:
    closed = evolve(HANDOVER, status=HandoverStatus.ACCEPTED, closed_by="a-1")
    assert closed == dataclasses.replace(HANDOVER, status=HandoverStatus.ACCEPTED, closed_by="a-1")
    assert HANDOVER.status is HandoverStatus.PENDING


def test_evolve_refuses_unknown_fields_and_keeps_states_frozen() -> None:
    with pytest.raises(TypeError, match="colour"):
        evolve(ITEM, colour="red")
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolve(ITEM, status=Status.RETIRED).status = Status.IN_STOCK  # type: ignore[misc]
