"""Lifecycle events: one vocabulary for everything that happens to a pack, module, cell or lot.

An :class:`Event` is what an organisation signs and the log records (kind
``event.<type>``). Its ``data`` is one of the typed bodies below, chosen by
``data.type``; ``prev`` names, for every item the event touches, the id of that
item's previous event, so each item's history is a hash chain whose head is on
the log. Each event maps to GS1 EPCIS 2.0 (:mod:`schemas.epcis`), and its id is
the CBV 2.0 event hash of that EPCIS form.

Masses are kilograms, always; state of health is a percentage.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.actors import ActorId, Region
from schemas.codes import ProductType, check_code, code_is_valid, product_type_of
from schemas.composition import Composition, Element
from schemas.lots import Lot, parse_lot_id

__all__ = [
    "EVENT_KIND_PREFIX",
    "AcceptData",
    "AssembleData",
    "CancelData",
    "CollectData",
    "CommissionData",
    "CorrectionData",
    "DisassembleData",
    "DismantleData",
    "DisputeData",
    "Event",
    "EventData",
    "EventType",
    "HandoverData",
    "InspectData",
    "InstallData",
    "ItemId",
    "LotCreateData",
    "LotMergeData",
    "LotSmeltData",
    "LotSplitData",
    "MassIn",
    "NewUse",
    "OutputLot",
    "RecycleData",
    "RejectData",
    "RemoveData",
    "RepurposeData",
    "RetireData",
    "is_lot_id",
]

EVENT_KIND_PREFIX = "event."
_MAX_ITEMS = 1000


class EventType(StrEnum):
    COMMISSION = "commission"
    ASSEMBLE = "assemble"
    DISASSEMBLE = "disassemble"
    INSTALL = "install"
    REMOVE = "remove"
    HANDOVER = "handover"
    ACCEPT = "accept"
    REJECT = "reject"
    CANCEL = "cancel"
    DISPUTE = "dispute"
    INSPECT = "inspect"
    RETIRE = "retire"
    COLLECT = "collect"
    REPURPOSE = "repurpose"
    DISMANTLE = "dismantle"
    RECYCLE = "recycle"
    LOT_CREATE = "lot_create"
    LOT_SPLIT = "lot_split"
    LOT_MERGE = "lot_merge"
    LOT_SMELT = "lot_smelt"
    CORRECTION = "correction"


class NewUse(StrEnum):
    """Second-life applications (梯次利用) a repurposed pack may go to."""

    ENERGY_STORAGE = "energy_storage"
    BACKUP_POWER = "backup_power"
    CHARGING_STATION = "charging_station"
    SWAPPING_STATION = "swapping_station"
    LOW_SPEED_VEHICLE = "low_speed_vehicle"


def is_lot_id(value: str) -> bool:
    return value.startswith("LOT-")


def _check_item_id(value: str) -> str:
    if is_lot_id(value):
        parse_lot_id(value)
        return value
    if code_is_valid(value):
        return value
    report = check_code(value)
    if not report.valid:
        reasons = "; ".join(f"position {e.position}: {e.reason}" for e in report.errors)
        raise ValueError(f"{value!r} is not a valid GB/T 34014 code: {reasons}")
    return value


ItemId = Annotated[str, AfterValidator(_check_item_id)]
"""A GB/T 34014 battery code (full or cascade form) or a lot id."""

EventId = Annotated[str, StringConstraints(pattern=r"^ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0$")]
Kg = Annotated[float, Field(gt=0, allow_inf_nan=False, description="kilograms")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Vin = Annotated[str, StringConstraints(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def items(self) -> list[str]:
        """Every item (code or lot id) the event touches, inputs before outputs."""
        raise NotImplementedError


def _product(code: str) -> ProductType | None:
    return product_type_of(code)


class MassIn(_Data):
    """An input consumed by a transformation, with its mass."""

    item: ItemId
    mass_kg: Kg


class CommissionData(_Data):
    """A new pack, module or cell enters the world (production or import).

    ``materials`` are the traced material lots the maker consumed to build it
    (kg taken from each): the source of its recycled content, traced rather
    than declared (EU 2023/1542 Art. 8).
    """

    type: Literal[EventType.COMMISSION] = EventType.COMMISSION
    item: ItemId
    composition: Composition | None = None
    mass_kg: Kg | None = None
    materials: list[MassIn] = Field(default_factory=list, max_length=_MAX_ITEMS)

    def items(self) -> list[str]:
        return [self.item, *(m.item for m in self.materials)]


class AssembleData(_Data):
    """Modules into a pack, or cells into a module (GB/T 34014 §4.1 correspondence)."""

    type: Literal[EventType.ASSEMBLE] = EventType.ASSEMBLE
    parent: ItemId
    children: list[ItemId] = Field(min_length=1, max_length=_MAX_ITEMS)

    @model_validator(mode="after")
    def _levels(self) -> AssembleData:
        _check_levels(self.parent, self.children)
        return self

    def items(self) -> list[str]:
        return [self.parent, *self.children]


class DisassembleData(AssembleData):
    type: Literal[EventType.DISASSEMBLE] = EventType.DISASSEMBLE  # type: ignore[assignment]


def _check_levels(parent: str, children: list[str]) -> None:
    expected = {ProductType.PACK: ProductType.MODULE, ProductType.MODULE: ProductType.CELL}
    want = expected.get(_product(parent))  # type: ignore[arg-type]
    if want is None:
        raise ValueError(f"{parent} is a cell; only packs and modules have parts")
    for child in children:
        if _product(child) is not want:
            raise ValueError(
                f"{child} is not a {want.name.lower()}, the part of a {parent[3]} code"
            )
    if len(set(children)) != len(children) or parent in children:
        raise ValueError("parts are listed once and never include the parent")


class InstallData(_Data):
    type: Literal[EventType.INSTALL] = EventType.INSTALL
    item: ItemId
    vin: Vin

    def items(self) -> list[str]:
        return [self.item]


class RemoveData(InstallData):
    type: Literal[EventType.REMOVE] = EventType.REMOVE  # type: ignore[assignment]
    reason: Reason


class HandoverData(_Data):
    """The current custodian offers items to another organisation; custody moves on accept."""

    type: Literal[EventType.HANDOVER] = EventType.HANDOVER
    items_: list[ItemId] = Field(alias="items", min_length=1, max_length=_MAX_ITEMS)
    to: ActorId
    transfer_ownership: bool = False
    reference: str | None = Field(default=None, max_length=200)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("items_")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an item is listed twice")
        return value

    def items(self) -> list[str]:
        return list(self.items_)


class _HandoverAnswer(_Data):
    handover: EventId
    handover_items: list[ItemId] = Field(alias="items", min_length=1, max_length=_MAX_ITEMS)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def items(self) -> list[str]:
        return list(self.handover_items)


class AcceptData(_HandoverAnswer):
    """The receiver accepts: with the handover, a receipt signed by both parties."""

    type: Literal[EventType.ACCEPT] = EventType.ACCEPT


class RejectData(_HandoverAnswer):
    type: Literal[EventType.REJECT] = EventType.REJECT
    reason: Reason


class CancelData(_HandoverAnswer):
    type: Literal[EventType.CANCEL] = EventType.CANCEL
    reason: Reason


class DisputeData(_HandoverAnswer):
    type: Literal[EventType.DISPUTE] = EventType.DISPUTE
    reason: Reason


class InspectData(_Data):
    type: Literal[EventType.INSPECT] = EventType.INSPECT
    item: ItemId
    soh_pct: float = Field(ge=0, le=100, allow_inf_nan=False, description="state of health, %")
    remaining_capacity_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    grade: Literal["A", "B", "C", "D", "scrap"]

    def items(self) -> list[str]:
        return [self.item]


class RetireData(_Data):
    """The item leaves its (first or cascade) use: it becomes waste under EU terms."""

    type: Literal[EventType.RETIRE] = EventType.RETIRE
    item: ItemId
    reason: Reason

    def items(self) -> list[str]:
        return [self.item]


class CollectData(_Data):
    """A collection point takes a retired item into storage (入库)."""

    type: Literal[EventType.COLLECT] = EventType.COLLECT
    item: ItemId
    mass_kg: Kg | None = None

    def items(self) -> list[str]:
        return [self.item]


class RepurposeData(_Data):
    """Cascade use: the item lives on under a new code, its original code kept (GB/T 34014 §4.2)."""

    type: Literal[EventType.REPURPOSE] = EventType.REPURPOSE
    item: ItemId
    new_code: ItemId
    new_use: NewUse

    @model_validator(mode="after")
    def _recode(self) -> RepurposeData:
        if self.new_code == self.item:
            raise ValueError("a repurposed item gets a new code")
        if is_lot_id(self.item) or is_lot_id(self.new_code):
            raise ValueError("lots are not repurposed")
        return self

    def items(self) -> list[str]:
        return [self.item, self.new_code]


class OutputLot(_Data):
    """A lot produced by a transformation."""

    lot: Lot

    @property
    def mass_kg(self) -> float:
        return float(self.lot.mass_kg)


class DismantleData(_Data):
    """A pack or module taken apart: parts keep their codes, the rest becomes lots (GB/T 33598)."""

    type: Literal[EventType.DISMANTLE] = EventType.DISMANTLE
    item: ItemId
    mass_kg: Kg
    parts: list[ItemId] = Field(default_factory=list, max_length=_MAX_ITEMS)
    outputs: list[OutputLot] = Field(default_factory=list, max_length=_MAX_ITEMS)

    def items(self) -> list[str]:
        return [self.item, *self.parts, *(o.lot.id for o in self.outputs)]


class _Transformation(_Data):
    """Inputs consumed by mass, output lots with their element content, reagents added."""

    inputs: list[MassIn] = Field(min_length=1, max_length=_MAX_ITEMS)
    outputs: list[OutputLot] = Field(min_length=1, max_length=_MAX_ITEMS)
    reagents_kg: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="process chemicals added, kg"
    )

    def items(self) -> list[str]:
        return [*(i.item for i in self.inputs), *(o.lot.id for o in self.outputs)]


class RecycleData(_Transformation):
    """Recycling (再生利用): batteries or black mass in, per-element recovered material out."""

    type: Literal[EventType.RECYCLE] = EventType.RECYCLE


class LotCreateData(_Data):
    """A scrap or material lot created from outside the traced flow (e.g. bought scrap steel)."""

    type: Literal[EventType.LOT_CREATE] = EventType.LOT_CREATE
    lot: Lot

    def items(self) -> list[str]:
        return [self.lot.id]


class LotSplitData(_Data):
    type: Literal[EventType.LOT_SPLIT] = EventType.LOT_SPLIT
    lot: ItemId
    parts: list[OutputLot] = Field(min_length=2, max_length=_MAX_ITEMS)

    def items(self) -> list[str]:
        return [self.lot, *(p.lot.id for p in self.parts)]


class LotMergeData(_Data):
    type: Literal[EventType.LOT_MERGE] = EventType.LOT_MERGE
    lots: list[ItemId] = Field(min_length=2, max_length=_MAX_ITEMS)
    into: OutputLot

    def items(self) -> list[str]:
        return [*self.lots, self.into.lot.id]


class LotSmeltData(_Transformation):
    """Smelting or refining: lots in (kg), lots out with element content (kg)."""

    type: Literal[EventType.LOT_SMELT] = EventType.LOT_SMELT


class CorrectionData(_Data):
    """Corrects recorded facts of an earlier event (never custody); nothing is edited or deleted."""

    type: Literal[EventType.CORRECTION] = EventType.CORRECTION
    corrects: EventId
    item: ItemId
    reason: Reason
    fields: dict[str, Any] = Field(min_length=1, max_length=20)

    @field_validator("fields")
    @classmethod
    def _correctable(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = {"mass_kg", "soh_pct", "remaining_capacity_kwh", "grade", "composition"}
        unknown = set(value) - allowed
        if unknown:
            raise ValueError(f"only {sorted(allowed)} can be corrected, not {sorted(unknown)}")
        return value

    def items(self) -> list[str]:
        return [self.item]


EventData = Annotated[
    CommissionData
    | AssembleData
    | DisassembleData
    | InstallData
    | RemoveData
    | HandoverData
    | AcceptData
    | RejectData
    | CancelData
    | DisputeData
    | InspectData
    | RetireData
    | CollectData
    | RepurposeData
    | DismantleData
    | RecycleData
    | LotCreateData
    | LotSplitData
    | LotMergeData
    | LotSmeltData
    | CorrectionData,
    Field(discriminator="type"),
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("event_time needs a UTC offset, e.g. 2026-03-01T09:30:00+08:00")
    offset = value.utcoffset()
    assert offset is not None
    if offset.total_seconds() % 60:
        raise ValueError("event_time offsets are whole minutes")
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


class Event(BaseModel):
    """One signed lifecycle event, as its actor signs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: ActorId
    event_time: Annotated[datetime, AfterValidator(_aware)]
    region: Region = Field(description="where it happened: GB/T 2260 province (bizLocation)")
    read_point: str | None = Field(default=None, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    prev: dict[str, EventId | None]
    data: EventData

    @property
    def type(self) -> EventType:
        kind = self.data.type
        return kind if type(kind) is EventType else EventType(kind)

    @property
    def kind(self) -> str:
        """The log entry kind this event is recorded under."""
        return EVENT_KIND_PREFIX + self.type.value

    def items(self) -> list[str]:
        return self.data.items()

    def time_zone(self) -> str:
        offset = self.event_time.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    @model_validator(mode="after")
    def _prev_covers_items(self) -> Event:
        items = self.items()
        if len(set(items)) != len(items):
            raise ValueError("an item appears twice in this event")
        if set(self.prev) != set(items):
            missing = sorted(set(items) - set(self.prev))
            extra = sorted(set(self.prev) - set(items))
            raise ValueError(
                f"prev names each touched item's previous event (missing {missing}, extra {extra})"
            )
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body that is signed and logged."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def element_sum(content: dict[Element, float]) -> float:
    return float(sum(content.values()))
