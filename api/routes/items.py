"""Items: packs, modules, cells and lots — current state, search, history, registration."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.custodial import CustodialKeyError
from api.deps import CallerDep, Principal, ServicesDep, WriterDep
from api.errors import ProblemError
from api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from api.routes.events import Receipt
from api.visibility import can_read, check_can_read
from schemas.composition import Composition
from trace.engine import parse_event
from trace.state import ItemState

router = APIRouter(prefix="/items", tags=["items"])


class ItemOut(BaseModel):
    id: str
    kind: str
    status: str
    eu_status: str
    custodian: str
    owner: str
    producer: str
    region: str
    head: str
    last_time: str
    mass_kg: float | None = None
    chemistry: str | None = None
    energy_kwh: float | None = None
    material: str | None = None
    vin: str | None = None
    parent: str | None = None
    children: list[str] = Field(default_factory=list)
    original: str | None = None
    successor: str | None = None
    pending_handover: str | None = None
    disputed: bool = False
    soh_pct: float | None = None
    grade: str | None = None
    content_kg: dict[str, float] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, s: ItemState) -> ItemOut:
        return cls(
            id=s.id, kind=s.kind.value, status=s.status.value, eu_status=s.eu_status.value,
            custodian=s.custodian, owner=s.owner, producer=s.producer, region=s.region,
            head=s.head, last_time=s.last_time.isoformat(), mass_kg=s.mass_kg,
            chemistry=s.chemistry, energy_kwh=s.energy_kwh, material=s.material, vin=s.vin,
            parent=s.parent, children=list(s.children), original=s.original,
            successor=s.successor, pending_handover=s.pending_handover, disputed=s.disputed,
            soh_pct=s.soh_pct, grade=s.grade, content_kg=dict(s.content_kg), sources=list(s.sources),
        )  # fmt: skip


class ItemRegistration(BaseModel):
    """A pack, module or cell to commission with the caller's custodial key."""

    model_config = ConfigDict(extra="forbid")

    code: str
    mass_kg: float | None = Field(default=None, gt=0)
    composition: Composition | None = None
    event_time: str | None = Field(default=None, description="ISO 8601 with offset; default now")


def _require_key(caller: Principal) -> None:
    # Before any lookup, so that the answer never reveals whether a code exists.
    if caller.public:
        raise ProblemError(
            "unauthenticated", "item records need an API key; the public passport is at /p/{code}"
        )


def _item(services: ServicesDep, code: str) -> ItemState:
    state = services.tracer.world.item(code)
    if state is None:
        raise ProblemError("not-found", f"no item {code}")
    return state


@router.get("/{code}")
def get_item(code: str, services: ServicesDep, caller: CallerDep) -> ItemOut:
    """One item's current state."""
    _require_key(caller)
    state = _item(services, code)
    check_can_read(caller, state, services.tracer)
    return ItemOut.of(state)


@router.get("/{code}/history")
def item_history(code: str, services: ServicesDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Every event of the item, oldest first, with its log position and id."""
    _require_key(caller)
    state = _item(services, code)
    check_can_read(caller, state, services.tracer)
    out = []
    for entry in services.tracer.history(code):
        out.append(
            {
                "seq": entry.seq,
                "recorded_at": entry.recorded_at,
                "key_id": entry.key_id,
                "event": entry.body,
            }
        )
    return out


@router.get("")
def search_items(
    services: ServicesDep,
    caller: CallerDep,
    code: Annotated[str | None, Query(max_length=24, description="code prefix")] = None,
    vin: Annotated[str | None, Query(max_length=17)] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    custodian: Annotated[str | None, Query(max_length=64)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Page[ItemOut]:
    """Search items by code prefix, VIN, status or custodian (only those visible to the key)."""
    if caller.public:
        raise ProblemError("unauthenticated", "searching items needs an API key")
    after = decode_cursor(cursor)
    world = services.tracer.world
    matches: list[ItemState] = []
    for item_id in sorted(world.items):
        if after is not None and item_id <= str(after):
            continue
        s = world.items[item_id]
        if code and not s.id.startswith(code):
            continue
        if vin and s.vin != vin:
            continue
        if status_ and s.status.value != status_:
            continue
        if custodian and s.custodian != custodian:
            continue
        if not can_read(caller, s, services.tracer):
            continue
        matches.append(s)
        if len(matches) > limit:
            break
    page = matches[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(matches) > limit else None
    return Page[ItemOut](data=[ItemOut.of(s) for s in page], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
def register_items(
    items: list[ItemRegistration], services: ServicesDep, caller: WriterDep
) -> list[Receipt]:
    """Commission items in a batch, signed with the caller's custodial key (all or none)."""
    from datetime import UTC, datetime

    if not 1 <= len(items) <= 1000:
        raise ProblemError("invalid-request", "register 1 to 1000 items at a time")
    assert caller.actor is not None
    try:
        signer = services.custodial.signer_for(caller.actor.id)
    except CustodialKeyError as exc:
        raise ProblemError("invalid-key", str(exc)) from exc
    now = datetime.now(UTC).isoformat()
    with services.writing() as tracer:
        submissions = []
        for it in items:
            data: dict[str, Any] = {"type": "commission", "item": it.code}
            if it.mass_kg is not None:
                data["mass_kg"] = it.mass_kg
            if it.composition is not None:
                data["composition"] = json.loads(it.composition.model_dump_json())
            event = parse_event({
                "actor": caller.actor.id, "event_time": it.event_time or now,
                "region": caller.actor.region, "idempotency_key": f"commission-{it.code}",
                "prev": {it.code: None}, "data": data,
            })  # fmt: skip
            submissions.append(tracer.sign(event, key_id=signer.key_id, key=signer.private_key))
        receipts = tracer.submit(submissions)
    return [Receipt.of(r) for r in receipts]
