"""Two-party custody transfer: handover, then accept, reject, cancel or dispute.

Custody moves only when the receiver accepts, so the log holds a receipt signed by both
sides (EPCIS 2.0 possessing_party; owning_party too when ownership transfers). While a
handover is pending its items are frozen: only its answers may touch them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from schemas.actors import Role
from schemas.events import (
    AcceptData,
    CancelData,
    DisputeData,
    EventType,
    HandoverData,
    RejectData,
)
from trace.errors import CustodyError, UnknownActor
from trace.rules_common import Handler, Step
from trace.state import Effects, HandoverState, HandoverStatus, ItemState, evolve

__all__ = ["HANDLERS"]

_Answer = AcceptData | RejectData | CancelData | DisputeData


def _handover(step: Step) -> Effects:
    data = step.data(HandoverData)
    receiver = step.world.actor(data.to)
    if receiver is None:
        raise UnknownActor(f"receiver {data.to!r} is not a registered organisation")
    if receiver.id == step.actor.id:
        raise CustodyError(
            f"{step.actor.id} cannot hand items over to itself", rule="self-handover"
        )
    if receiver.role is Role.AUDITOR:
        raise CustodyError(f"{receiver.id} is an auditor; auditors take no custody", rule="role")
    effects = Effects()
    for item_id in data.items():
        state = step.held(item_id, "hand over")
        if data.transfer_ownership and state.owner != step.actor.id:
            raise CustodyError(
                f"{item_id} is owned by {state.owner}; only its owner can transfer ownership",
                rule="owner-only",
            )
        effects.items[item_id] = step.touch(state, pending_handover=step.event_id)
    effects.handovers[step.event_id] = HandoverState(
        id=step.event_id,
        sender=step.actor.id,
        receiver=receiver.id,
        items=tuple(data.items()),
        transfer_ownership=data.transfer_ownership,
        status=HandoverStatus.PENDING,
        created=step.event.event_time,
    )
    return effects


def _known(step: Step, data: _Answer) -> HandoverState:
    handover = step.world.handover(data.handover)
    if handover is None:
        raise CustodyError(f"no handover {data.handover} is known", rule="unknown-handover")
    return handover


def _require_party(step: Step, handover: HandoverState, *, receiver: bool) -> None:
    party, role = (handover.receiver, "receiver") if receiver else (handover.sender, "sender")
    if step.actor.id != party:
        raise CustodyError(
            f"only the {role} ({party}) of handover {handover.id} may "
            f"{step.event.type.value} it, not {step.actor.id}",
            rule=f"{role}-only",
        )


def _check_items(handover: HandoverState, data: _Answer) -> None:
    if set(data.items()) != set(handover.items):
        raise CustodyError(
            f"handover {handover.id} offered {sorted(handover.items)}; an answer names exactly "
            f"those items, not {sorted(data.items())}",
            rule="handover-items",
        )


def _require_pending(step: Step, handover: HandoverState) -> None:
    if handover.status is not HandoverStatus.PENDING:
        raise CustodyError(
            f"handover {handover.id} is already {handover.status.value} "
            f"(by {handover.closed_by}); it cannot be answered again",
            rule="handover-closed",
        )


def _parts(step: Step, state: ItemState) -> Iterator[ItemState]:
    """Every assembled part under ``state``, at any depth (cells in modules in a pack)."""
    for child_id in state.children:
        child = step.item(child_id)
        yield child
        yield from _parts(step, child)


def _accept(step: Step) -> Effects:
    data = step.data(AcceptData)
    handover = _known(step, data)
    _require_party(step, handover, receiver=True)
    _require_pending(step, handover)
    _check_items(handover, data)
    moved: dict[str, Any] = {"custodian": handover.receiver}
    if handover.transfer_ownership:
        moved["owner"] = handover.receiver
    effects = Effects()
    for item_id in handover.items:
        state = step.item(item_id)
        effects.items[item_id] = step.touch(state, pending_handover=None, **moved)
        # Parts travel with their parent; they are not on the event, so their head stays.
        for part in _parts(step, state):
            effects.items[part.id] = step.carry(part, **moved)
    closed = evolve(handover, status=HandoverStatus.ACCEPTED, closed_by=step.event_id)
    effects.handovers[handover.id] = closed
    return effects


def _close(step: Step, data: RejectData | CancelData, *, status: HandoverStatus) -> Effects:
    handover = _known(step, data)
    _require_party(step, handover, receiver=status is HandoverStatus.REJECTED)
    _require_pending(step, handover)
    _check_items(handover, data)
    effects = Effects()
    for item_id in handover.items:
        effects.items[item_id] = step.touch(step.item(item_id), pending_handover=None)
    effects.handovers[handover.id] = evolve(handover, status=status, closed_by=step.event_id)
    return effects


def _reject(step: Step) -> Effects:
    return _close(step, step.data(RejectData), status=HandoverStatus.REJECTED)


def _cancel(step: Step) -> Effects:
    return _close(step, step.data(CancelData), status=HandoverStatus.CANCELLED)


def _dispute(step: Step) -> Effects:
    data = step.data(DisputeData)
    handover = _known(step, data)
    if step.actor.id not in (handover.sender, handover.receiver):
        raise CustodyError(
            f"only the parties to handover {handover.id} ({handover.sender}, "
            f"{handover.receiver}) may dispute it, not {step.actor.id}",
            rule="party-only",
        )
    if handover.status not in (HandoverStatus.PENDING, HandoverStatus.ACCEPTED):
        raise CustodyError(
            f"handover {handover.id} was {handover.status.value}; nothing moved to dispute",
            rule="handover-closed",
        )
    _check_items(handover, data)
    effects = Effects()
    for item_id in handover.items:
        effects.items[item_id] = step.touch(step.item(item_id), disputed=True)
    effects.handovers[handover.id] = evolve(handover, disputed=True)
    return effects


HANDLERS: Final[Mapping[EventType, Handler]] = {
    EventType.HANDOVER: _handover,
    EventType.ACCEPT: _accept,
    EventType.REJECT: _reject,
    EventType.CANCEL: _cancel,
    EventType.DISPUTE: _dispute,
}
