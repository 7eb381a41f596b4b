"""Custody rules: whether an event may happen, and the item and handover states it produces.

:func:`check_event` is pure. It reads a :class:`~trace.state.World` and returns
:class:`~trace.state.Effects` (every touched item gets ``head`` = the event's id and
``last_time`` = its time), or raises; it never mutates anything. It checks, in order:

1. the actor is registered (:class:`~trace.errors.UnknownActor`) and its role may write
   this event type (:data:`ROLES`);
2. the chain (:class:`~trace.errors.ChainError`): ``prev`` of every item names that item's
   head, or is null exactly for the items this event creates; an item that must exist and
   does not is :class:`~trace.errors.UnknownItem`;
3. time order, then the state guards: terminal items, assembled parts, pending handovers;
4. the rule of the event's type (:mod:`trace.rules_custody`, :mod:`trace.rules_handover`,
   :mod:`trace.rules_transform`).

Every refusal is a :class:`~trace.errors.CustodyError` whose ``rule`` is one of
(:class:`~trace.errors.MassBalanceError` for the three mass rules):

=============================  ========================  =====================================
rule                           applies to                refused because
=============================  ========================  =====================================
role                           every event; handover     the role does not write this type
                                                         (auditors write nothing), or the
                                                         receiver is an auditor
already-exists                 events that create items  an item it creates exists already
time-order                     every event               it is earlier than a touched item's
                                                         latest event
terminal-item                  all but correction        the item was repurposed, dismantled,
                                                         recycled or consumed: it is history
assembled-acts-through-parent  all but correction and    an assembled part moves with its
                               the parent's disassemble  parent
                               or dismantle
pending-handover               all but the answers to    a pending handover freezes its items
                               that handover
custodian-only                 events on existing items  the actor does not hold the item
battery-only                   commission, inspect,      a lot is not a battery
                               retire, dismantle
lot-only                       lot_split, lot_merge,     only lots are split, merged, smelted
                               lot_smelt
composition-mass               commission                mass_kg and the composition disagree
installed-item                 assemble, disassemble,    the pack is in a vehicle
                               repurpose, dismantle
not-in-stock                   assemble                  parent or part not in stock (retired
                                                         parts are re-coded first)
already-assembled              assemble                  the part is in another item
not-a-part                     disassemble, dismantle    a listed part is not in that parent
has-parts                      dismantle, recycle        coded parts would be left inside an
                                                         item that ends
pack-only                      install                   only packs go into vehicles
already-installed              install                   the pack is in a vehicle already
retired-not-installable        install                   retired, collected, waste or ended
not-installed                  remove                    the pack is not in a vehicle
wrong-vehicle                  remove                    the pack is in another VIN
self-handover                  handover                  sender and receiver are one
owner-only                     handover                  a non-owner transfers ownership
unknown-handover               accept, reject, cancel,   no such handover
                               dispute
receiver-only                  accept, reject            the actor is not the receiver
sender-only                    cancel                    the actor is not the sender
party-only                     dispute                   the actor is neither party
handover-closed                accept, reject, cancel,   answered already (a dispute needs a
                               dispute                   pending or accepted handover)
handover-items                 accept, reject, cancel,   the items differ from those offered
                               dispute
already-retired                retire                    already retired or collected
not-retired                    collect, dismantle        collect: not retired; dismantle: not
                                                         retired, collected or graded scrap
not-inspected                  repurpose                 cascade use starts from a grade
scrap-grade                    repurpose                 the item was graded scrap
recode-type                    repurpose                 the new code is of another type
not-collected                  recycle                   a battery input was not collected
recorded-mass                  collect, dismantle,       a declared mass exceeds the recorded
                               recycle, lot_smelt        mass beyond the tolerance
mass-balance                   dismantle, recycle, lot   outputs outweigh the inputs beyond
                               split / merge / smelt     the tolerance
element-balance                recycle, lot split /      outputs hold more of an element than
                               merge / smelt             inputs of known content held
mass-lost                      lot_split, lot_merge      outputs weigh less than the inputs
                                                         beyond the tolerance
material-mismatch              lot_split, lot_merge      the lots are of different materials
no-outputs                     dismantle                 it yields neither parts nor lots
correction-author              correction                the actor is neither producer nor
                                                         custodian
=============================  ========================  =====================================

Every quantity check allows ``tolerance`` (0.5 % by default) on the side the rule bounds.
Where the rules had to choose:

* an item is where its custodian last acted on it: ``region`` follows the event's region
  whenever the actor holds the item afterwards (parts that travel with a parent too);
* parts follow their parent: an accepted handover moves custody (and ownership) of every
  part beneath, a re-code moves them under the new code; they are not on the event, so
  their ``head`` stays;
* a part that leaves a parent whose EU status is Waste is Waste too;
* a dismantle takes retired or collected items, or stock graded scrap; a balance counts an
  input at its declared mass capped at its recorded mass, so tolerances do not compound;
* a split or merge only re-labels material: it may neither gain nor lose beyond tolerance;
* per-element balances apply when every input's content is known (an element it does not
  list counts as 0 kg); dismantling is balanced by mass only, because casing metals are
  not in a battery's recorded composition;
* a correction may reach an assembled part (it fixes facts, never custody) but not an item
  with a pending handover; its values are checked here (:class:`~trace.errors.InvalidEvent`
  naming ``data.fields.<name>``). Whether ``corrects`` names an event that touched the
  item cannot be read from a world: that is the caller's check against the log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from schemas.actors import Actor, Role
from schemas.events import (
    AcceptData,
    AssembleData,
    CancelData,
    CommissionData,
    DismantleData,
    DisputeData,
    Event,
    EventData,
    EventType,
    LotCreateData,
    LotMergeData,
    LotSmeltData,
    LotSplitData,
    RecycleData,
    RejectData,
    RepurposeData,
)
from trace.errors import ChainError, CustodyError, UnknownActor, UnknownItem
from trace.rules_common import Handler, Step
from trace.rules_custody import HANDLERS as _CUSTODY
from trace.rules_handover import HANDLERS as _HANDOVER
from trace.rules_transform import HANDLERS as _TRANSFORM
from trace.state import Effects, ItemState, Status, World

__all__ = ["DEFAULT_TOLERANCE", "ROLES", "check_event", "created_items"]

DEFAULT_TOLERANCE: Final = 0.005

_ANYONE: Final = frozenset(Role) - {Role.AUDITOR}
_MAKERS: Final = frozenset({Role.BATTERY_MAKER, Role.AUTOMAKER})
_ASSEMBLERS: Final = _MAKERS | {Role.CASCADE_OPERATOR}
_VEHICLE: Final = frozenset({Role.AUTOMAKER, Role.DEALER})
_LOT_HANDLERS: Final = frozenset({Role.RECYCLER, Role.SCRAP_PROCESSOR})

ROLES: Final[Mapping[EventType, frozenset[Role]]] = {
    # Cascade operators create items only by repurpose (a re-code keeps the original).
    EventType.COMMISSION: _MAKERS,
    EventType.ASSEMBLE: _ASSEMBLERS,
    EventType.DISASSEMBLE: _ASSEMBLERS,
    EventType.INSTALL: _VEHICLE,
    EventType.REMOVE: _VEHICLE,
    EventType.HANDOVER: _ANYONE,
    EventType.ACCEPT: _ANYONE,
    EventType.REJECT: _ANYONE,
    EventType.CANCEL: _ANYONE,
    EventType.DISPUTE: _ANYONE,
    EventType.INSPECT: _ANYONE,
    EventType.RETIRE: _ANYONE,
    EventType.COLLECT: frozenset({Role.COLLECTOR, Role.CASCADE_OPERATOR, Role.RECYCLER}),
    EventType.REPURPOSE: frozenset({Role.CASCADE_OPERATOR}),
    EventType.DISMANTLE: frozenset({Role.RECYCLER, Role.CASCADE_OPERATOR, Role.SCRAP_PROCESSOR}),
    EventType.RECYCLE: frozenset({Role.RECYCLER}),
    EventType.LOT_CREATE: _LOT_HANDLERS,
    EventType.LOT_SPLIT: _LOT_HANDLERS,
    EventType.LOT_MERGE: _LOT_HANDLERS,
    EventType.LOT_SMELT: _LOT_HANDLERS,
    EventType.CORRECTION: _ANYONE,
}
"""Which roles may write each event type; auditors write nothing."""

_HANDLERS: Final[Mapping[EventType, Handler]] = {**_CUSTODY, **_HANDOVER, **_TRANSFORM}
_ANSWERS: Final = (AcceptData, RejectData, CancelData, DisputeData)


def check_event(
    world: World, event: Event, *, event_id: str, tolerance: float = DEFAULT_TOLERANCE
) -> Effects:
    """Check ``event`` against ``world`` and return the states it produces.

    Parameters
    ----------
    world : World
        The current state; it is only read.
    event : Event
        A schema-valid event.
    event_id : str
        The event's id (its CBV 2.0 hash, computed by the caller); it becomes the head of
        every item the event touches and the id of a handover it opens.
    tolerance : float
        The share by which a mass may exceed its bound (weighing error), 0 <= tolerance < 1.

    Returns
    -------
    Effects
        The new versions of every item and handover the event changes.

    Raises
    ------
    UnknownActor
        The actor, or a handover's receiver, is not registered.
    UnknownItem
        An item the event does not create is not known.
    ChainError
        ``prev`` does not name an item's head (or is not null for an item created here).
    CustodyError
        A rule refuses the event; ``rule`` names it (see the module's table).
        :class:`~trace.errors.MassBalanceError` for the mass rules.
    InvalidEvent
        A correction's field value is malformed.
    ValueError
        ``tolerance`` is not a finite number in [0, 1).

    Examples
    --------
    >>> from schemas.actors import Actor, Role
    >>> from trace.state import MemoryWorld
    >>> world = MemoryWorld()
    >>> world.actors["catl"] = Actor(id="catl", name="CATL", role=Role.BATTERY_MAKER,
    ...                              region="350000")
    >>> pack = "001PB1A0000001E390000042"
    >>> event = Event.model_validate({
    ...     "actor": "catl", "event_time": "2026-03-01T09:30:00+08:00", "region": "350000",
    ...     "idempotency_key": "c-1", "prev": {pack: None},
    ...     "data": {"type": "commission", "item": pack, "mass_kg": 420}})
    >>> effects = check_event(world, event, event_id="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0")
    >>> state = effects.items[pack]
    >>> state.kind.value, state.status.value, state.custodian, state.mass_kg
    ('pack', 'in_stock', 'catl', 420.0)
    >>> world.apply(effects)
    >>> check_event(world, event, event_id="ni:///sha-256;" + "1" * 64 + "?ver=CBV2.0")
    Traceback (most recent call last):
    ...
    trace.errors.CustodyError: 001PB1A0000001E390000042 already exists; this event would create it again [already-exists]
    """
    if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance must be a finite share in [0, 1), got {tolerance!r}")
    # 1. Who: a registered organisation whose role writes this event type.
    actor = world.actor(event.actor)
    if actor is None:
        raise UnknownActor(f"actor {event.actor!r} is not a registered organisation")
    _check_role(actor, event.type)
    step = Step(world=world, event=event, event_id=event_id, actor=actor, tolerance=tolerance)
    # 2. The chain: each item's prev is its head, or null for the items created here.
    existing = _check_chain(step)
    # 3. Time order, then what no event type may do to ended, assembled or frozen items.
    for state in existing:
        _check_time(step, state)
    for state in existing:
        _guard(step, state)
    # 4. The rule of the event's own type.
    return _HANDLERS[event.type](step)


def _check_role(actor: Actor, kind: EventType) -> None:
    if actor.role is Role.AUDITOR:
        raise CustodyError(
            f"{actor.id} is an auditor; auditors read the log, they write no events", rule="role"
        )
    allowed = ROLES[kind]
    if actor.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise CustodyError(
            f"{actor.id} is a {actor.role.value}; a {kind.value} is written by {names}",
            rule="role",
        )


def created_items(data: EventData) -> frozenset[str]:
    """The items this event brings into existence."""
    if isinstance(data, CommissionData):
        return frozenset({data.item})
    if isinstance(data, RepurposeData):
        return frozenset({data.new_code})
    if isinstance(data, DismantleData | RecycleData | LotSmeltData):
        return frozenset(o.lot.id for o in data.outputs)
    if isinstance(data, LotSplitData):
        return frozenset(p.lot.id for p in data.parts)
    if isinstance(data, LotMergeData):
        return frozenset({data.into.lot.id})
    if isinstance(data, LotCreateData):
        return frozenset({data.lot.id})
    return frozenset()


def _check_chain(step: Step) -> list[ItemState]:
    """Check ``prev`` item by item; return the states of the existing items touched."""
    created = created_items(step.event.data)
    existing: list[ItemState] = []
    for item_id in step.event.items():
        state = step.world.item(item_id)
        prev = step.event.prev[item_id]
        if item_id in created:
            if state is not None:
                raise CustodyError(
                    f"{item_id} already exists; this event would create it again",
                    rule="already-exists",
                )
            if prev is not None:
                raise ChainError(f"{item_id} is new here, so its prev must be null, not {prev}")
            continue
        if state is None:
            raise UnknownItem(f"{item_id} is not known: it was never commissioned or created")
        if prev != state.head:
            raise ChainError(
                f"prev of {item_id} is {prev}, but its latest event is {state.head}: "
                "the event was built on a stale view or out of order"
            )
        existing.append(state)
    return existing


def _check_time(step: Step, state: ItemState) -> None:
    if step.event.event_time < state.last_time:
        raise CustodyError(
            f"{state.id} has an event at {state.last_time.isoformat()}; this one, at "
            f"{step.event.event_time.isoformat()}, cannot come before it",
            rule="time-order",
        )


def _guard(step: Step, state: ItemState) -> None:
    """Refusals that hold whatever the event type: ended, assembled and frozen items."""
    kind = step.event.type
    if state.terminal and kind is not EventType.CORRECTION:
        if kind is EventType.INSTALL:
            raise CustodyError(
                f"{state.id} was {state.status.value}; it cannot be installed in a vehicle",
                rule="retired-not-installable",
            )
        raise CustodyError(
            f"{state.id} was {state.status.value}; its record only takes corrections now",
            rule="terminal-item",
        )
    if state.status is Status.ASSEMBLED and not _reaches_part(step.event, state.id):
        raise CustodyError(
            f"{state.id} is assembled in {state.parent}; it acts through its parent "
            "(disassemble it first)",
            rule="assembled-acts-through-parent",
        )
    pending = state.pending_handover
    if pending is not None and not (
        isinstance(step.event.data, _ANSWERS) and step.event.data.handover == pending
    ):
        raise CustodyError(
            f"{state.id} has a pending handover {pending}; until it is accepted, rejected or "
            "cancelled nothing else may touch the item",
            rule="pending-handover",
        )


def _reaches_part(event: Event, item_id: str) -> bool:
    """Whether an event may touch an assembled item directly.

    Disassemble and dismantle free their listed parts; assemble lists a part it will refuse
    as already assembled; a correction fixes facts, never custody.
    """
    data = event.data
    if isinstance(data, AssembleData):  # also DisassembleData
        return item_id in data.children
    if isinstance(data, DismantleData):
        return item_id in data.parts
    return event.type is EventType.CORRECTION
