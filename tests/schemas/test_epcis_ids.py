"""Event ids written straight from the event equal the general CBV 2.0 path, for any event.

:func:`schemas.epcis.event_prehash` writes the pre-hash string of a suyuan event directly;
:func:`schemas.epcis_hash.prehash_string` of :func:`schemas.epcis.to_epcis` is the reference
(itself checked against the published vectors and the PyPI generator in test_epcis_hash).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ledger.errors import NonCanonicalJSON
from schemas.codes import ProductType, generate_code, recode_for_cascade
from schemas.composition import Chemistry, Element, estimate_composition
from schemas.epcis import (
    SUYUAN_CONTEXT,
    _as_is,
    _write,
    canonical_json,
    event_id,
    event_prehash,
    to_epcis,
)
from schemas.epcis_hash import EpcisHashError, event_hash, prehash_string
from schemas.events import Event, EventType
from schemas.lots import new_lot_id
from tests.schemas.test_epcis import _DATA, SAMPLES

_SEEDS = st.integers(min_value=0, max_value=2**32)


def _code(seed: int, product: ProductType = ProductType.PACK) -> str:
    return generate_code(random.Random(seed), product_type=product)


def _lot_id(seed: int) -> str:
    return new_lot_id(random.Random(seed))


# Masses as a scale reads them and as a float can hold them: tiny, huge, integral, long.
_KG = st.one_of(
    st.floats(min_value=1e-9, max_value=1e18, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=10**6).map(float),
    st.sampled_from([0.1, 0.5, 1e-5, 123456789.125, 2.0**53, 1e16, 1e21, 5e-324]),
).filter(lambda kg: kg > 0)
_TEXT = st.text(min_size=1, max_size=30)
_EVENT_IDS = st.binary(min_size=32, max_size=32).map(
    lambda b: f"ni:///sha-256;{b.hex()}?ver=CBV2.0"
)
# Read points are free text, so they meet every rewrite of the CBV 2.0 canonicalisation.
_READ_POINTS = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "   ",
            " dock 7 ",
            "007",
            "1e3",
            "nan",
            "suyuan:dock-7",
            "gs1:Temperature",
            "cbv:BizStep-receiving",
            "urn:epcglobal:cbv:bizstep:receiving",
            "urn:epc:id:sgln:0614141.07346.1234",
            "https://example.com/414/0614141073467",
            "https://id.gs1.org/414/0614141073467?x=1",
            "urn:suyuan:dock:7",
            "urn:suyuan:dock:7 ",
        ]
    ),
)
_OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_TIMES = st.builds(
    lambda moment, ms, zone: (moment.replace(microsecond=ms * 1000, tzinfo=UTC)).astimezone(zone),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)),
    st.integers(min_value=0, max_value=999),
    _OFFSETS,
)


def _lot(seed: int, kg: float, material: str = "black_mass") -> dict[str, Any]:
    return {"lot": {"id": _lot_id(seed), "material": material, "mass_kg": kg}}


@st.composite
def _items(draw: st.DrawFn, *, lots: bool = True, min_size: int = 1) -> list[str]:
    seeds = draw(st.lists(_SEEDS, min_size=min_size, max_size=3, unique=True))
    kinds = draw(st.lists(st.booleans(), min_size=len(seeds), max_size=len(seeds)))
    items = [
        (_lot_id(s) if lots and lot else _code(s)) for s, lot in zip(seeds, kinds, strict=True)
    ]
    assume(len(set(items)) == len(items))
    return items


@st.composite
def _composition(draw: st.DrawFn) -> dict[str, Any] | None:
    chemistry = draw(st.sampled_from(list(Chemistry)))
    energy = draw(st.floats(min_value=1, max_value=200, allow_nan=False))
    if draw(st.booleans()) and chemistry in (Chemistry.LFP, Chemistry.NCM811, Chemistry.NCM523):
        return estimate_composition(chemistry, energy).model_dump(mode="json")
    content = draw(
        st.dictionaries(
            st.sampled_from([e.value for e in Element]),
            st.floats(min_value=0, max_value=10, allow_nan=False),
            max_size=4,
        )
    )
    return {
        "chemistry": chemistry.value,
        "energy_kwh": energy,
        "mass_kg": 400.0,
        "content_kg": content,
        "estimated": False,
        "basis": draw(st.one_of(_TEXT, st.sampled_from(["maker's declaration", " 42 "]))),
    }


@st.composite
def _data(draw: st.DrawFn, kind: EventType) -> dict[str, Any]:
    seed = draw(_SEEDS)
    pack = _code(seed)
    reason = draw(_TEXT)
    if kind is EventType.COMMISSION:
        return {
            "type": kind,
            "item": pack,
            "mass_kg": draw(st.none() | _KG),
            "composition": draw(st.none() | _composition()),
            "materials": [
                {"item": lot, "mass_kg": draw(_KG)}
                for lot in draw(st.lists(_SEEDS.map(_lot_id), max_size=2, unique=True))
            ],
        }
    if kind in (EventType.ASSEMBLE, EventType.DISASSEMBLE):
        parent, part = draw(
            st.sampled_from(
                [(ProductType.PACK, ProductType.MODULE), (ProductType.MODULE, ProductType.CELL)]
            )
        )
        seeds = draw(st.lists(_SEEDS, min_size=1, max_size=3, unique=True))
        return {"type": kind, "parent": _code(seed, parent), "children": [_code(s, part) for s in seeds]}  # fmt: skip
    if kind in (EventType.INSTALL, EventType.REMOVE):
        vin = draw(st.from_regex(r"[A-HJ-NPR-Z0-9]{17}", fullmatch=True))
        extra = {"reason": reason} if kind is EventType.REMOVE else {}
        return {"type": kind, "item": pack, "vin": vin, **extra}
    if kind is EventType.HANDOVER:
        return {
            "type": kind,
            "items": draw(_items()),
            "to": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)),
            "transfer_ownership": draw(st.booleans()),
            "reference": draw(st.none() | _TEXT),
        }
    if kind in (EventType.ACCEPT, EventType.REJECT, EventType.CANCEL, EventType.DISPUTE):
        extra = {} if kind is EventType.ACCEPT else {"reason": reason}
        return {"type": kind, "handover": draw(_EVENT_IDS), "items": draw(_items()), **extra}
    if kind is EventType.INSPECT:
        return {
            "type": kind,
            "item": pack,
            "soh_pct": draw(st.floats(min_value=0, max_value=100)),
            "remaining_capacity_kwh": draw(st.none() | st.floats(min_value=0, max_value=1e6)),
            "grade": draw(st.sampled_from(["A", "B", "C", "D", "scrap"])),
        }
    if kind is EventType.RETIRE:
        return {"type": kind, "item": draw(_items(min_size=1))[0], "reason": reason}
    if kind is EventType.COLLECT:
        return {"type": kind, "item": pack, "mass_kg": draw(st.none() | _KG)}
    if kind is EventType.REPURPOSE:
        made = generate_code(
            random.Random(seed), product_type=ProductType.PACK, date=date(2024, 3, 9)
        )
        recode = recode_for_cascade(
            made, manufacturer="T9X", spec="2B", date=date(2026, 1, 5), serial=seed % 9999 + 1
        )
        return {
            "type": kind,
            "item": made,
            "new_code": recode.code.text,
            "new_use": draw(st.sampled_from(["energy_storage", "backup_power"])),
        }
    if kind is EventType.DISMANTLE:
        parts = [_code(s, ProductType.MODULE) for s in draw(st.lists(_SEEDS, max_size=2))]
        outputs = [_lot(s, draw(_KG)) for s in draw(st.lists(_SEEDS, max_size=2, unique=True))]
        return {"type": kind, "item": pack, "mass_kg": draw(_KG), "parts": parts, "outputs": outputs}  # fmt: skip
    if kind in (EventType.RECYCLE, EventType.LOT_SMELT):
        inputs = [{"item": i, "mass_kg": draw(_KG)} for i in draw(_items())]
        outputs = [_lot(s, draw(_KG), "lithium_carbonate") for s in draw(st.lists(_SEEDS, min_size=1, max_size=2, unique=True))]  # fmt: skip
        return {"type": kind, "inputs": inputs, "outputs": outputs, "reagents_kg": draw(_KG)}
    if kind is EventType.LOT_CREATE:
        return {"type": kind, **_lot(seed, draw(_KG), "steel_scrap")}
    if kind is EventType.LOT_SPLIT:
        parts = [_lot(s, draw(_KG)) for s in draw(st.lists(_SEEDS, min_size=2, max_size=3, unique=True))]  # fmt: skip
        return {"type": kind, "lot": _lot_id(seed), "parts": parts}
    if kind is EventType.LOT_MERGE:
        lots = [_lot_id(s) for s in draw(st.lists(_SEEDS, min_size=2, max_size=3, unique=True))]
        return {"type": kind, "lots": lots, "into": _lot(seed, draw(_KG))}
    assert kind is EventType.CORRECTION
    fields = draw(
        st.dictionaries(
            st.sampled_from(["mass_kg", "soh_pct", "grade", "remaining_capacity_kwh"]),
            st.one_of(_KG, _TEXT, st.integers(), st.booleans(), st.none()),
            min_size=1,
            max_size=3,
        )
    )
    return {"type": kind, "corrects": draw(_EVENT_IDS), "item": pack, "reason": reason, "fields": fields}  # fmt: skip


@st.composite
def events(draw: st.DrawFn, kind: EventType) -> Event:
    """A schema-valid event of type ``kind``, with every field drawn."""
    try:
        data = _DATA.validate_python(draw(_data(kind)))
    except ValidationError:
        assume(False)
        raise
    # prev names every touched item: its previous event, or none for a new one.
    prev = {item: draw(st.none() | _EVENT_IDS) for item in data.items()}
    try:
        return Event.model_validate(
            {
                "actor": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)),
                "event_time": draw(_TIMES),
                "region": draw(st.sampled_from(["110000", "350000", "440000", "650000"])),
                "read_point": draw(_READ_POINTS),
                "idempotency_key": draw(st.from_regex(r"[A-Za-z0-9._:-]{1,30}", fullmatch=True)),
                "prev": prev,
                "data": data,
            }
        )
    except ValidationError:
        assume(False)
        raise


def _reference(event: Event) -> str:
    return prehash_string(to_epcis(event), context=SUYUAN_CONTEXT)


@pytest.mark.parametrize("kind", list(EventType), ids=str)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_prehash_equals_the_general_path(kind: EventType, data: st.DataObject) -> None:
    event = data.draw(events(kind), label="event")
    expected = _reference(event)
    assert event_prehash(event) == expected
    assert event_prehash(event, body=event.body()) == expected
    assert event_id(event) == event_hash(to_epcis(event), context=SUYUAN_CONTEXT)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_prehash_of_every_sample_equals_the_general_path(name: str) -> None:
    event = SAMPLES[name]
    assert event_prehash(event) == _reference(event)


def test_an_event_time_without_offset_is_refused_on_both_paths() -> None:
    naive = SAMPLES["retire"].model_copy(update={"event_time": datetime(2026, 3, 2, 9, 30)})
    with pytest.raises(EpcisHashError, match="UTC offset"):
        event_prehash(naive)
    with pytest.raises(EpcisHashError, match="UTC offset"):
        _reference(naive)


@given(
    text=st.one_of(
        st.text(max_size=40), st.sampled_from(["urn:suyuan:x ", "a=1", "{}", "=", "{x:1}", " {} "])
    )
)
def test_text_written_as_is_is_what_the_hash_writes(text: str) -> None:
    if _as_is(text):
        assert _write(text) == text


# ---------------------------------------------------------------------------
# RFC 8785 of event data

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1e-4, 9.99e-5, 1e16, 9999999999999998.0, 2.0**53, 1e21, 0.1])
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500)
@given(value=_JSON)
def test_canonical_json_is_rfc_8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value).decode("utf-8")
    except (rfc8785.IntegerDomainError, UnicodeEncodeError):
        with pytest.raises(NonCanonicalJSON):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": [float("-inf")]}])
def test_canonical_json_refuses_what_rfc_8785_cannot_write(value: Any) -> None:
    with pytest.raises(NonCanonicalJSON):
        canonical_json(value)


def test_canonical_json_keys_beyond_the_basic_plane_sort_as_utf_16() -> None:
    value = {"\U0001f600": 1, "\uff61": 2, "a": 0.5}
    assert canonical_json(value) == rfc8785.dumps(value).decode("utf-8")
