"""One suyuan :class:`~schemas.events.Event` as one GS1 EPCIS 2.0 event (JSON-LD), and back.

GS1 EPCIS 2.0 defines the event types and their fields; GS1 CBV 2.0 (Core Business
Vocabulary) the business steps, dispositions and source/destination types. domain.md §4.2
suggests the battery-lifecycle mapping this module follows:

============  ===================  =======  ===============  ==============  =========================
suyuan        EPCIS type           action   bizStep          disposition     what
============  ===================  =======  ===============  ==============  =========================
commission    ObjectEvent          ADD      commissioning    active          item; ilmd: composition
assemble      AggregationEvent     ADD      assembling       -               parentID, childEPCs
disassemble   AggregationEvent     DELETE   disassembling    -               parentID, childEPCs
install       AssociationEvent     ADD      installing       -               vehicle ⟵ item
remove        AssociationEvent     DELETE   removing         -               vehicle ⟵ item
handover      ObjectEvent          OBSERVE  shipping         in_transit      items; source, destination
accept        ObjectEvent          OBSERVE  receiving        in_progress     items; destination
reject        ObjectEvent          OBSERVE  receiving        returned        items
cancel        ObjectEvent          OBSERVE  void_shipping    -               items
dispute       ObjectEvent          OBSERVE  other            non_conformant  items
inspect       ObjectEvent          OBSERVE  inspecting       -               item; suyuan:sohPct, grade
retire        ObjectEvent          OBSERVE  decommissioning  inactive        item
collect       ObjectEvent          OBSERVE  collecting       -               item
repurpose     TransformationEvent  -        commissioning    active          old code → new code
dismantle     TransformationEvent  -        disassembling    -               item → parts, lots (KGM)
recycle       TransformationEvent  -        destroying       -               inputs → lots (KGM)
lot_create    ObjectEvent          ADD      commissioning    active          lot (KGM)
lot_split     TransformationEvent  -        -                -               lot → lots (KGM)
lot_merge     TransformationEvent  -        -                -               lots → lot (KGM)
lot_smelt     TransformationEvent  -        destroying       -               lots → lots (KGM)
correction    ObjectEvent          OBSERVE  -                -               item
============  ===================  =======  ===============  ==============  =========================

Choices behind the table:

- **Identifiers.** Battery codes are ``urn:suyuan:item:<GB/T 34014 code>`` and lots
  ``urn:suyuan:lot:<lot id>``, not GS1 Digital Link URIs: a 24-character code does not
  fit the 20-character serial of AI 21 (domain.md §4.1). A deployment holding a GS1
  company prefix could write ``https://id.gs1.org/8004/<prefix><code>`` (AI 8004 GIAI,
  up to 30 characters) instead. Parties are ``urn:suyuan:actor:<id>``, places
  ``urn:suyuan:region:<GB/T 2260 code>`` (bizLocation), vehicles ``urn:suyuan:vehicle:<VIN>``.
- **EPCs and quantities.** Battery codes name one physical object each and go in EPC lists;
  a lot is an amount of material (like GS1's LGTIN class) and goes in a quantity list in
  kilograms (UN/ECE Rec. 20 ``KGM``). A battery's own mass stays in ``suyuan:data``.
- **assembling/disassembling, not packing/unpacking**: CBV's packing puts objects into a
  container for shipping; modules in a pack make a product whose parts keep their codes.
- **retire** keeps action OBSERVE: the code lives on through collection and recycling.
- **reject** is *receiving* with disposition *returned*: the items go back to the sender.
  **dispute** is the catch-all *other* with *non_conformant*; **cancel** is *void_shipping*.
- **inspect** carries state of health as the extensions ``suyuan:sohPct``, ``suyuan:grade``
  and ``suyuan:remainingCapacityKwh``, not a sensorElementList: it is an assessment, not a
  sensor reading, and CBV has no measurement type for it.
- **repurpose** commissions the cascade-use re-code (GB/T 34014 §4.2): input old code,
  output new code, disposition active. **recycle** and **lot_smelt** are *destroying*
  without disposition, as an EPCIS TransformationEvent's disposition describes its outputs,
  which are new material, not destroyed. CBV has no step for splitting or pooling a lot.
- **correction** is an ObjectEvent on the item; the event it corrects is named in
  ``suyuan:data``. It is *not* an EPCIS errorDeclaration: that retracts a whole earlier
  event and expects corrective events to restate it, while a suyuan correction amends a
  few recorded facts and leaves the rest of the earlier event standing.

Everything without an EPCIS field is a user extension in the namespace ``suyuan`` =
``urn:suyuan:epcis:``: ``suyuan:type``, ``suyuan:actor`` (``urn:suyuan:actor:<id>``),
``suyuan:idempotencyKey`` (``urn:suyuan:key:<key>``), ``suyuan:prev``
(``"<item>=<event id>"`` or ``"<item>=none"``) and ``suyuan:data``, the RFC 8785 JSON of
the event's data. So the CBV 2.0 event hash (:mod:`schemas.epcis_hash`) commits to all the
event says. Actor and key are written as URNs because the hash rewrites any text that
reads as a number (``"007"`` becomes ``7``), which would merge distinct keys. A read point
is written as given, so read points that CBV 2.0 treats as one identifier (an EPC URN and
its Digital Link) give one id.

:func:`from_epcis` reads these events back, and maps *foreign* ObjectEvents (other
systems') whose meaning suyuan can hold without loss: receiving, shipping, commissioning,
decommissioning, collecting and inspecting, naming items by ``urn:suyuan:`` URIs or plain
GB/T 34014 codes. Anything else raises :class:`EpcisMappingError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from ledger.canonical import canonicalize
from schemas.epcis_hash import EpcisHashError, hash_id, prehash_string, scalar_writer
from schemas.epcis_normalise import canonical_timestamp
from schemas.events import (
    AcceptData,
    AssembleData,
    CancelData,
    CollectData,
    CommissionData,
    CorrectionData,
    DisassembleData,
    DismantleData,
    DisputeData,
    Event,
    EventType,
    HandoverData,
    InspectData,
    InstallData,
    LotCreateData,
    LotMergeData,
    LotSmeltData,
    LotSplitData,
    RecycleData,
    RejectData,
    RemoveData,
    RepurposeData,
    RetireData,
    is_lot_id,
)

__all__ = [
    "ACTOR_PREFIX",
    "EPCIS_MAPPING",
    "FOREIGN_BIZ_STEPS",
    "ITEM_PREFIX",
    "KEY_PREFIX",
    "LOT_PREFIX",
    "NO_PREV",
    "REGION_PREFIX",
    "SUYUAN_CONTEXT",
    "SUYUAN_NS",
    "VEHICLE_PREFIX",
    "EpcisMappingError",
    "EpcisShape",
    "canonical_json",
    "event_id",
    "event_prehash",
    "from_epcis",
    "item_uri",
    "to_epcis",
]

SUYUAN_NS: Final = "urn:suyuan:epcis:"
SUYUAN_CONTEXT: Final[Mapping[str, str]] = {"suyuan": SUYUAN_NS}
ITEM_PREFIX: Final = "urn:suyuan:item:"
LOT_PREFIX: Final = "urn:suyuan:lot:"
ACTOR_PREFIX: Final = "urn:suyuan:actor:"
REGION_PREFIX: Final = "urn:suyuan:region:"
VEHICLE_PREFIX: Final = "urn:suyuan:vehicle:"
KEY_PREFIX: Final = "urn:suyuan:key:"
_KGM: Final = "KGM"  # UN/ECE Recommendation 20: kilogram
NO_PREV: Final = "none"
"""How ``suyuan:prev`` writes "no previous event" (``"<item>=none"``)."""


class EpcisMappingError(ValueError):
    """Raised when an EPCIS event cannot become a suyuan event without losing what it says.

    ``field`` names the EPCIS field at fault (``bizStep``, ``epcList``, ``suyuan:data``...),
    ``reason`` says why; the message is ``"<field>: <reason>"``.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EpcisShape:
    """The EPCIS event type, action, bizStep and disposition of one suyuan event type."""

    type: str
    action: str | None
    biz_step: str | None
    disposition: str | None = None


_OBJECT: Final = "ObjectEvent"
_AGGREGATION: Final = "AggregationEvent"
_ASSOCIATION: Final = "AssociationEvent"
_TRANSFORMATION: Final = "TransformationEvent"
EPCIS_MAPPING: Final[Mapping[EventType, EpcisShape]] = {
    EventType.COMMISSION: EpcisShape(_OBJECT, "ADD", "commissioning", "active"),
    EventType.ASSEMBLE: EpcisShape(_AGGREGATION, "ADD", "assembling"),
    EventType.DISASSEMBLE: EpcisShape(_AGGREGATION, "DELETE", "disassembling"),
    EventType.INSTALL: EpcisShape(_ASSOCIATION, "ADD", "installing"),
    EventType.REMOVE: EpcisShape(_ASSOCIATION, "DELETE", "removing"),
    EventType.HANDOVER: EpcisShape(_OBJECT, "OBSERVE", "shipping", "in_transit"),
    EventType.ACCEPT: EpcisShape(_OBJECT, "OBSERVE", "receiving", "in_progress"),
    EventType.REJECT: EpcisShape(_OBJECT, "OBSERVE", "receiving", "returned"),
    EventType.CANCEL: EpcisShape(_OBJECT, "OBSERVE", "void_shipping"),
    EventType.DISPUTE: EpcisShape(_OBJECT, "OBSERVE", "other", "non_conformant"),
    EventType.INSPECT: EpcisShape(_OBJECT, "OBSERVE", "inspecting"),
    EventType.RETIRE: EpcisShape(_OBJECT, "OBSERVE", "decommissioning", "inactive"),
    EventType.COLLECT: EpcisShape(_OBJECT, "OBSERVE", "collecting"),
    EventType.REPURPOSE: EpcisShape(_TRANSFORMATION, None, "commissioning", "active"),
    EventType.DISMANTLE: EpcisShape(_TRANSFORMATION, None, "disassembling"),
    EventType.RECYCLE: EpcisShape(_TRANSFORMATION, None, "destroying"),
    EventType.LOT_CREATE: EpcisShape(_OBJECT, "ADD", "commissioning", "active"),
    EventType.LOT_SPLIT: EpcisShape(_TRANSFORMATION, None, None),
    EventType.LOT_MERGE: EpcisShape(_TRANSFORMATION, None, None),
    EventType.LOT_SMELT: EpcisShape(_TRANSFORMATION, None, "destroying"),
    EventType.CORRECTION: EpcisShape(_OBJECT, "OBSERVE", None),
}
"""The mapping table of the module docstring."""

FOREIGN_BIZ_STEPS: Final[Mapping[str, EventType]] = {
    "commissioning": EventType.COMMISSION,
    "shipping": EventType.HANDOVER,
    "receiving": EventType.ACCEPT,
    "decommissioning": EventType.RETIRE,
    "collecting": EventType.COLLECT,
    "inspecting": EventType.INSPECT,
}
"""The bizSteps of other systems' ObjectEvents that :func:`from_epcis` maps."""

# ---------------------------------------------------------------------------
# suyuan → EPCIS

_Entries = Sequence[tuple[str, float | None]]  # (item, kg if known)


def item_uri(item: str) -> str:
    """The URI of a battery code (``urn:suyuan:item:``) or of a lot id (``urn:suyuan:lot:``)."""
    return (LOT_PREFIX if is_lot_id(item) else ITEM_PREFIX) + item


def _party(kind: str, side: str, actor: str) -> dict[str, str]:
    # "type" first: epcis-event-hash-generator 1.9.3 hashes JSON entries in key order.
    return {"type": kind, side: ACTOR_PREFIX + actor}


def _lists(entries: _Entries, side: str) -> dict[str, Any]:
    """Battery codes into ``<side>EPCList``, lots into ``<side>QuantityList`` (in kg, if known)."""
    epcs = [item_uri(item) for item, _ in entries if not is_lot_id(item)]
    quantities = [
        {"epcClass": item_uri(item)} | ({} if kg is None else {"quantity": kg, "uom": _KGM})
        for item, kg in entries
        if is_lot_id(item)
    ]
    fields: dict[str, Any] = {f"{side}EPCList": epcs, f"{side}QuantityList": quantities}
    return {key: value for key, value in fields.items() if value}


def _transformation(inputs: _Entries, outputs: _Entries) -> dict[str, Any]:
    return _lists(inputs, "input") | _lists(outputs, "output")


def _ilmd(data: CommissionData) -> dict[str, Any]:
    ilmd: dict[str, Any] = {}
    if data.mass_kg is not None:
        ilmd["suyuan:massKg"] = data.mass_kg
    if (c := data.composition) is not None:
        ilmd["suyuan:composition"] = {
            "suyuan:chemistry": c.chemistry.value,
            "suyuan:energyKwh": c.energy_kwh,
            "suyuan:massKg": c.mass_kg,
            "suyuan:contentKg": {f"suyuan:{e.value}": kg for e, kg in c.content_kg.items()},
            "suyuan:figures": "estimated" if c.estimated else "declared",
            "suyuan:basis": c.basis,
        }
    return {"ilmd": ilmd} if ilmd else {}


def _what(event: Event) -> dict[str, Any]:
    """The event's WHAT fields (and, for custody, WHO: sourceList/destinationList)."""
    d = event.data
    if isinstance(d, CommissionData):
        return {"epcList": [item_uri(d.item)], **_ilmd(d)}
    if isinstance(d, AssembleData):  # and DisassembleData
        return {"parentID": item_uri(d.parent), "childEPCs": [item_uri(c) for c in d.children]}
    if isinstance(d, InstallData):  # and RemoveData
        return {"parentID": VEHICLE_PREFIX + d.vin, "childEPCs": [item_uri(d.item)]}
    if isinstance(d, RepurposeData):
        return {"inputEPCList": [item_uri(d.item)], "outputEPCList": [item_uri(d.new_code)]}
    if isinstance(d, DismantleData):
        parts = [(p, None) for p in d.parts] + [(o.lot.id, o.mass_kg) for o in d.outputs]
        return _transformation([(d.item, d.mass_kg)], parts)
    if isinstance(d, RecycleData | LotSmeltData):
        outputs = [(o.lot.id, o.mass_kg) for o in d.outputs]
        return _transformation([(i.item, i.mass_kg) for i in d.inputs], outputs)
    if isinstance(d, LotSplitData):
        return _transformation([(d.lot, None)], [(p.lot.id, p.mass_kg) for p in d.parts])
    if isinstance(d, LotMergeData):
        return _transformation([(lot, None) for lot in d.lots], [(d.into.lot.id, d.into.mass_kg)])
    if isinstance(d, LotCreateData):
        return {"quantityList": _lists([(d.lot.id, d.lot.mass_kg)], "")["QuantityList"]}
    fields: dict[str, Any] = {"epcList": [item_uri(i) for i in d.items()]}
    if isinstance(d, HandoverData):
        kinds = ["possessing_party"] + (["owning_party"] if d.transfer_ownership else [])
        fields["sourceList"] = [_party(kind, "source", event.actor) for kind in kinds]
        fields["destinationList"] = [_party(kind, "destination", d.to) for kind in kinds]
    elif event.type is EventType.ACCEPT:
        fields["destinationList"] = [_party("possessing_party", "destination", event.actor)]
    elif isinstance(d, InspectData):
        fields |= {"suyuan:sohPct": d.soh_pct, "suyuan:grade": d.grade}
        if d.remaining_capacity_kwh is not None:
            fields["suyuan:remainingCapacityKwh"] = d.remaining_capacity_kwh
    return fields


def to_epcis(event: Event) -> dict[str, Any]:
    """The EPCIS 2.0 JSON-LD event for ``event``, without ``eventID`` (see :func:`event_id`).

    Its extensions use the prefix ``suyuan``, which an enclosing document declares
    (:data:`SUYUAN_CONTEXT`).
    """
    shape = EPCIS_MAPPING[event.type]
    what = _what(event)
    why: dict[str, Any] = {
        k: what.pop(k) for k in ("sourceList", "destinationList", "ilmd") if k in what
    }
    extensions: dict[str, Any] = {k: what.pop(k) for k in list(what) if k.startswith("suyuan:")}
    out: dict[str, Any] = {
        "type": shape.type,
        "eventTime": event.event_time.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": event.time_zone(),
        **what,
        "action": shape.action,
        "bizStep": shape.biz_step,
        "disposition": shape.disposition,
        "readPoint": None if event.read_point is None else {"id": event.read_point},
        "bizLocation": {"id": REGION_PREFIX + event.region},
        **why,
        **extensions,
        "suyuan:type": event.type.value,
        "suyuan:actor": ACTOR_PREFIX + event.actor,
        "suyuan:idempotencyKey": KEY_PREFIX + event.idempotency_key,
        "suyuan:prev": [f"{i}={event.prev[i] or NO_PREV}" for i in event.items()],
        "suyuan:data": canonicalize(
            event.data.model_dump(mode="json", by_alias=True, exclude_none=True)
        ).decode("utf-8"),
    }
    return {key: value for key, value in out.items() if value is not None}


# ---------------------------------------------------------------------------
# Event ids: the pre-hash string of to_epcis(event), written straight from the event
#
# schemas.epcis_hash reads any EPCIS event: it builds a tree of the JSON, expands names,
# canonicalises every value and sorts at every level. A suyuan event has one of a few
# known shapes, so its pre-hash string can be written directly: the fields in the
# canonical order, list members sorted, the remaining fields (parties, ilmd, extensions)
# sorted by their text. Values that CBV 2.0 canonicalisation provably leaves unchanged
# are written as they are; every other value goes through the same writer as the
# general path. tests/schemas/test_epcis_ids.py checks the two paths agree.

_EXT: Final = "{" + SUYUAN_NS + "}"  # how the pre-hash string names a suyuan extension
_write: Final = scalar_writer(SUYUAN_CONTEXT)


def _as_is(text: str) -> bool:
    """Whether the pre-hash string writes ``text`` unchanged.

    True for a ``urn:suyuan:`` URN and for text whose part before any colon holds ``=``
    or starts with ``{`` (``suyuan:prev`` and ``suyuan:data``): no such text is a number,
    a declared CURIE, a CBV URN, an EPC URN or a URL. Outer whitespace would be stripped.
    """
    if text.startswith("urn:suyuan:"):
        return not text[-1].isspace()
    if not text or text[0].isspace() or text[-1].isspace():
        return False
    head = text.partition(":")[0]
    return "=" in head or head.startswith("{")


def _value(text: str) -> str:
    return text if _as_is(text) else _write(text)


def _member(name: str, value: Any) -> str:
    """``name=value`` as the remaining-fields pass writes a scalar member (the name alone if empty)."""
    text = _value(value) if type(value) is str else _write(value)
    return f"{name}={text}" if text else name


def _written_list(name: str, members: Iterable[str]) -> str:
    written = sorted(members)
    return name + "".join(written) if written else ""


def _epc_list(name: str, items: Iterable[str]) -> str:
    return _written_list(name, (f"epc={v}" for i in items if (v := _value(item_uri(i)))))


def _quantity(item: str, kg: float | None) -> str:
    epc_class = _value(item_uri(item))
    amount = "" if kg is None else _write(kg)
    inner = (f"epcClass={epc_class}" if epc_class else "") + (
        f"quantity={amount}uom={_KGM}" if amount else ""
    )
    return "quantityElement" + inner if inner else ""


def _quantity_list(name: str, entries: _Entries) -> str:
    return _written_list(name, (q for item, kg in entries if (q := _quantity(item, kg))))


def _transformation_text(inputs: _Entries, outputs: _Entries) -> str:
    """Input EPCs, input quantities, output EPCs, output quantities (the canonical order)."""

    def codes(entries: _Entries) -> list[str]:
        return [item for item, _ in entries if not is_lot_id(item)]

    def lots(entries: _Entries) -> _Entries:
        return [(item, kg) for item, kg in entries if is_lot_id(item)]

    return (
        _epc_list("inputEPCList", codes(inputs))
        + _quantity_list("inputQuantityList", lots(inputs))
        + _epc_list("outputEPCList", codes(outputs))
        + _quantity_list("outputQuantityList", lots(outputs))
    )


def _parent(uri: str) -> str:
    value = _value(uri)
    return f"parentID={value}" if value else ""


_PARTY_TYPES: Final = {
    kind: _write(kind, "sourceDestinationType") for kind in ("possessing_party", "owning_party")
}


def _parties(list_name: str, side: str, kinds: Sequence[str], actor: str) -> str:
    """A sourceList or destinationList: each entry written type first, entries sorted."""
    party = _member(side, ACTOR_PREFIX + actor)
    return list_name + "".join(sorted(f"type={_PARTY_TYPES[kind]}{party}" for kind in kinds))


def _ilmd_text(data: CommissionData) -> list[str]:
    members: list[str] = []
    if data.mass_kg is not None:
        members.append(_member(_EXT + "massKg", data.mass_kg))
    if (c := data.composition) is not None:
        content = sorted(_member(f"{_EXT}{e.value}", kg) for e, kg in c.content_kg.items())
        composition = [
            _member(_EXT + "chemistry", c.chemistry.value),
            _member(_EXT + "energyKwh", c.energy_kwh),
            _member(_EXT + "massKg", c.mass_kg),
            _EXT + "contentKg" + "".join(content),
            _member(_EXT + "figures", "estimated" if c.estimated else "declared"),
            _member(_EXT + "basis", c.basis),
        ]
        members.append(_EXT + "composition" + "".join(sorted(composition)))
    return ["ilmd" + "".join(sorted(members))] if members else []


_What = tuple[str, list[str]]  # the WHAT fields in canonical order; remaining-field members


def _commission_what(event: Event, d: Any) -> _What:
    return _epc_list("epcList", [d.item]), _ilmd_text(d)


def _assemble_what(event: Event, d: Any) -> _What:
    return _parent(item_uri(d.parent)) + _epc_list("childEPCs", d.children), []


def _install_what(event: Event, d: Any) -> _What:
    return _parent(VEHICLE_PREFIX + d.vin) + _epc_list("childEPCs", [d.item]), []


def _repurpose_what(event: Event, d: Any) -> _What:
    return _epc_list("inputEPCList", [d.item]) + _epc_list("outputEPCList", [d.new_code]), []


def _dismantle_what(event: Event, d: Any) -> _What:
    parts = [(p, None) for p in d.parts] + [(o.lot.id, o.mass_kg) for o in d.outputs]
    return _transformation_text([(d.item, d.mass_kg)], parts), []


def _recycle_what(event: Event, d: Any) -> _What:
    inputs = [(i.item, i.mass_kg) for i in d.inputs]
    return _transformation_text(inputs, [(o.lot.id, o.mass_kg) for o in d.outputs]), []


def _split_what(event: Event, d: Any) -> _What:
    return _transformation_text([(d.lot, None)], [(p.lot.id, p.mass_kg) for p in d.parts]), []


def _merge_what(event: Event, d: Any) -> _What:
    inputs: _Entries = [(lot, None) for lot in d.lots]
    return _transformation_text(inputs, [(d.into.lot.id, d.into.mass_kg)]), []


def _lot_create_what(event: Event, d: Any) -> _What:
    return _quantity_list("quantityList", [(d.lot.id, d.lot.mass_kg)]), []


def _items_what(event: Event, d: Any) -> _What:
    return _epc_list("epcList", d.items()), []


def _handover_what(event: Event, d: Any) -> _What:
    kinds = ["possessing_party"] + (["owning_party"] if d.transfer_ownership else [])
    parties = [
        _parties("sourceList", "source", kinds, event.actor),
        _parties("destinationList", "destination", kinds, d.to),
    ]
    return _epc_list("epcList", d.items()), parties


def _accept_what(event: Event, d: Any) -> _What:
    destination = _parties("destinationList", "destination", ["possessing_party"], event.actor)
    return _epc_list("epcList", d.items()), [destination]


def _inspect_what(event: Event, d: Any) -> _What:
    members = [_member(_EXT + "sohPct", d.soh_pct), _member(_EXT + "grade", d.grade)]
    if d.remaining_capacity_kwh is not None:
        members.append(_member(_EXT + "remainingCapacityKwh", d.remaining_capacity_kwh))
    return _epc_list("epcList", d.items()), members


# By the class of the event's data, as _what tells them apart.
_WHAT_TEXT: Final[Mapping[type, Callable[[Event, Any], _What]]] = {
    CommissionData: _commission_what,
    AssembleData: _assemble_what,
    DisassembleData: _assemble_what,
    InstallData: _install_what,
    RemoveData: _install_what,
    RepurposeData: _repurpose_what,
    DismantleData: _dismantle_what,
    RecycleData: _recycle_what,
    LotSmeltData: _recycle_what,
    LotSplitData: _split_what,
    LotMergeData: _merge_what,
    LotCreateData: _lot_create_what,
    HandoverData: _handover_what,
    AcceptData: _accept_what,
    RejectData: _items_what,
    CancelData: _items_what,
    DisputeData: _items_what,
    InspectData: _inspect_what,
    RetireData: _items_what,
    CollectData: _items_what,
    CorrectionData: _items_what,
}


@dataclass(frozen=True, slots=True)
class _Template:
    """What every event of one type writes alike."""

    head: str  # eventType=...
    shape: str  # action, bizStep and disposition
    type: str  # the suyuan:type extension


def _template(kind: EventType) -> _Template:
    shape = EPCIS_MAPPING[kind]
    fields = {"action": shape.action, "bizStep": shape.biz_step, "disposition": shape.disposition}
    head = f"eventType={shape.type}"
    written = prehash_string(
        {"type": shape.type} | {k: v for k, v in fields.items() if v is not None},
        context=SUYUAN_CONTEXT,
    )
    return _Template(head, written.removeprefix(head), _member(_EXT + "type", kind.value))


_TEMPLATES: Final = {kind: _template(kind) for kind in EventType}

_MINUTE: Final = timedelta(minutes=1)


def canonical_json(value: Any) -> str:
    """The RFC 8785 text of a JSON value (:func:`ledger.canonical.canonicalize`, as text)."""
    return canonicalize(value).decode("utf-8")


def _event_time(event: Event) -> str:
    """The event time as canonical_timestamp writes what to_epcis writes (UTC, milliseconds)."""
    moment = event.event_time
    offset = moment.utcoffset()
    if offset is not None and not offset % _MINUTE:
        utc = (moment - offset).replace(tzinfo=None, microsecond=moment.microsecond // 1000 * 1000)
        return utc.isoformat(timespec="milliseconds") + "Z"
    text = moment.isoformat(timespec="milliseconds")
    written = canonical_timestamp(text)
    if written is None:
        raise EpcisHashError(f"eventTime {text!r} is not an xsd:dateTimeStamp with a UTC offset")
    return written


def event_prehash(event: Event, *, body: Mapping[str, Any] | None = None) -> str:
    """The CBV 2.0 pre-hash string of :func:`to_epcis` of ``event``, written directly.

    Equal to ``prehash_string(to_epcis(event), context=SUYUAN_CONTEXT)``. A caller that
    holds ``event.body()`` may pass it as ``body`` to spare dumping the data again.
    """
    template = _TEMPLATES[event.type]
    data = event.data
    what, rest = _WHAT_TEXT[type(data)](event, data)
    rest.append(template.type)
    rest.append(_member(_EXT + "actor", ACTOR_PREFIX + event.actor))
    rest.append(_member(_EXT + "idempotencyKey", KEY_PREFIX + event.idempotency_key))
    prev = event.prev
    rest.extend(_member(_EXT + "prev", f"{i}={prev[i] or NO_PREV}") for i in event.items())
    dumped = (
        data.model_dump(mode="json", by_alias=True, exclude_none=True)
        if body is None
        else body["data"]
    )
    data_json = canonical_json(dumped)
    rest.append(_member(_EXT + "data", data_json))
    read_point = "" if event.read_point is None else _write(event.read_point)
    location = _value(REGION_PREFIX + event.region)
    return "".join(
        [
            template.head,
            "eventTime=",
            _event_time(event),
            "eventTimeZoneOffset=",
            _value(event.time_zone()),
            what,
            template.shape,
            f"readPointid={read_point}" if read_point else "",
            f"bizLocationid={location}" if location else "",
            *sorted(rest),
        ]
    )


def event_id(event: Event, *, body: Mapping[str, Any] | None = None) -> str:
    """The event's id: the CBV 2.0 event hash of :func:`to_epcis` (``ni:///sha-256;…``).

    ``body``, if given, is ``event.body()`` (see :func:`event_prehash`).
    """
    return hash_id(event_prehash(event, body=body))


def from_epcis(
    epcis_event: Mapping[str, Any],
    *,
    context: Mapping[str, str] = SUYUAN_CONTEXT,
    prev_for: Callable[[str], str | None] | None = None,
    actor: str | None = None,
    region: str | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """The suyuan event an EPCIS 2.0 event records; raises :class:`EpcisMappingError` if none.

    An event written by :func:`to_epcis` (it has ``suyuan:type``) is read back exactly, and
    its EPCIS fields must say what its ``suyuan:data`` says (compared by CBV 2.0 hash, so
    other spellings of the same values pass). Any other event is *foreign*: an ObjectEvent
    whose bizStep is in :data:`FOREIGN_BIZ_STEPS`, naming its items by ``urn:suyuan:`` URIs
    or plain GB/T 34014 codes. For those, ``prev_for`` names each item's previous event
    (a receiving answers the handover that is its items' previous event), ``actor`` stands
    in when no possessing party is named, ``region`` when there is no bizLocation, and
    ``idempotency_key`` defaults to ``epcis-<hex of its event hash>``.

    ``context`` maps the namespace prefixes of the enclosing document to their IRIs, as
    :func:`schemas.epcis_hash.event_hash` takes them. The reading itself lives in
    :mod:`schemas.epcis_io`, which builds on this module.
    """
    from schemas.epcis_io import read_event  # here: schemas.epcis_io imports this module

    return read_event(
        epcis_event,
        context=context,
        prev_for=prev_for,
        actor=actor,
        region=region,
        idempotency_key=idempotency_key,
    )
