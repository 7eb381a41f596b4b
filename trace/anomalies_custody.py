"""Custody anomalies: leakage, custody gaps and double custody, from the current states.

One pass over the handovers (in order of creation) and one over the items:

* **leakage** — a handover pending longer than ``pending_after``; a waste item or lot
  rejected or cancelled that long ago with no event since; a retired item still with its
  last user (no collector, cascade operator or recycler) after ``retired_after``;
* **custody gap** — a retired item at a collector, cascade operator or recycler with no event
  for ``uncollected_after``; a collected item with no event for ``collected_after``;
* **double custody** — two pending or accepted handovers of one item open at the same time;
  an item and a pending handover that disagree on it; a pack or lot whose custodian is not
  the receiver of its last accepted handover; an assembled part held apart from its parent;
  projection rows that disagree with the in-memory state. The custody rules refuse all of
  these when events are written, so a finding means imported or damaged data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from schemas.actors import Role
from trace.anomalies_model import Anomaly, AnomalyConfig, Check, Severity, build, listing
from trace.anomalies_state import ScanState
from trace.state import HandoverState, HandoverStatus, ItemKind, ItemState, Status

__all__ = ["custody_anomalies"]

_DAY: Final = timedelta(days=1)
_COLLECTING: Final = frozenset({Role.COLLECTOR, Role.CASCADE_OPERATOR, Role.RECYCLER})
_RETURNED: Final = frozenset({HandoverStatus.REJECTED, HandoverStatus.CANCELLED})
_CLAIMS: Final = frozenset({HandoverStatus.PENDING, HandoverStatus.ACCEPTED})
_WAITING: Final = frozenset({Status.RETIRED, Status.COLLECTED})
# Custody of packs and lots moves only by their own handovers; modules and cells also move
# with a parent, so their last own handover need not name their custodian.
_SELF_MOVING: Final = frozenset({ItemKind.PACK, ItemKind.LOT})


def _days(delta: timedelta) -> float:
    return round(delta / _DAY, 3)


def _said(delta: timedelta) -> str:
    """Days for a summary, to a tenth."""
    return f"{round(delta / _DAY, 1):g}"


@dataclass(slots=True)
class _Claim:
    """The claim on one item that ends last so far, and its last accepted handover."""

    end: float  # POSIX seconds; inf while pending
    handover: HandoverState
    received: HandoverState | None
    received_end: float


class _Scan:
    def __init__(self, state: ScanState, now: datetime, config: AnomalyConfig) -> None:
        self.state = state
        self.world = state.world
        self.now = now
        self.config = config
        self.found: list[Anomaly] = []

    def role(self, actor_id: str) -> Role | None:
        actor = self.world.actor(actor_id)
        return None if actor is None else actor.role

    def who(self, actor_id: str) -> str:
        role = self.role(actor_id)
        return actor_id if role is None else f"{actor_id} ({role.value.replace('_', ' ')})"

    def add(
        self,
        check: Check,
        severity: Severity,
        summary: str,
        *,
        items: tuple[str, ...],
        actors: tuple[str, ...],
        events: tuple[str, ...],
        amounts: dict[str, float],
    ) -> None:
        self.found.append(
            build(
                check,
                severity,
                summary,
                items=items,
                actors=actors,
                events=events,
                amounts=amounts,
                now=self.now,
            )
        )

    # --- handovers ---

    def handovers(self) -> tuple[dict[str, HandoverState], dict[str, _Claim]]:
        """Check every handover; return the returned ones by closing event, and the claims."""
        returned: dict[str, HandoverState] = {}
        claims: dict[str, _Claim] = {}
        overlaps: dict[tuple[str, str], list[str]] = {}
        for h in sorted(self.world.handovers.values(), key=lambda h: h.created):
            if h.status in _RETURNED:
                if h.closed_by is not None:
                    returned[h.closed_by] = h
                continue
            if h.status not in _CLAIMS:
                continue
            start = h.created.timestamp()
            if h.status is HandoverStatus.PENDING:
                end = math.inf
                self.pending(h)
            else:
                end = self.state.accepted_at.get(h.closed_by or "", start)
            for item_id in h.items:
                claim = claims.get(item_id)
                if claim is None:
                    claim = claims[item_id] = _Claim(end, h, None, -math.inf)
                elif start < claim.end:
                    overlaps.setdefault((claim.handover.id, h.id), []).append(item_id)
                if end >= claim.end:
                    claim.end, claim.handover = end, h
                if h.status is HandoverStatus.ACCEPTED and end >= claim.received_end:
                    claim.received, claim.received_end = h, end
        for (first, second), items in overlaps.items():
            self.overlap(self.world.handovers[first], self.world.handovers[second], items)
        return returned, claims

    def pending(self, h: HandoverState) -> None:
        age = self.now - h.created
        if age > self.config.pending_after:
            self.add(
                Check.PENDING_HANDOVER,
                Severity.HIGH,
                f"{listing(h.items)} handed over by {h.sender} to {h.receiver} "
                f"{_said(age)} days ago {'was' if len(h.items) == 1 else 'were'} never "
                f"accepted, rejected or cancelled (limit {_said(self.config.pending_after)} "
                "days)",
                items=h.items,
                actors=(h.sender, h.receiver),
                events=(h.id,),
                amounts={"age_days": _days(age), "limit_days": _days(self.config.pending_after)},
            )
        for item_id in h.items:
            item = self.world.items.get(item_id)
            if item is not None and item.pending_handover != h.id:
                self.add(
                    Check.PENDING_MISMATCH,
                    Severity.HIGH,
                    f"handover by {h.sender} to {h.receiver} is pending for {item_id}, but the "
                    f"item's state names {item.pending_handover or 'no pending handover'}",
                    items=(item_id,),
                    actors=(h.sender, h.receiver, item.custodian),
                    events=(h.id,) + ((item.pending_handover,) if item.pending_handover else ()),
                    amounts={},
                )

    def overlap(self, first: HandoverState, second: HandoverState, items: list[str]) -> None:
        self.add(
            Check.OVERLAPPING_HANDOVERS,
            Severity.HIGH,
            f"{listing(items)} {'is' if len(items) == 1 else 'are'} claimed by two handovers at "
            f"once: {first.sender} to {first.receiver} ({first.status.value}) and "
            f"{second.sender} to {second.receiver} ({second.status.value}), offered before "
            "the first was closed",
            items=tuple(items),
            actors=tuple(
                dict.fromkeys((first.sender, first.receiver, second.sender, second.receiver))
            ),
            events=(first.id, second.id),
            amounts={"items": float(len(items))},
        )

    # --- items ---

    def items(self, returned: dict[str, HandoverState], claims: dict[str, _Claim]) -> None:
        for item in self.world.items.values():
            self.waiting(item, returned)
            if item.parent is not None and item.status is Status.ASSEMBLED:
                self.part(item)
            claim = claims.get(item.id)
            if (
                claim is not None
                and claim.received is not None
                and item.kind in _SELF_MOVING
                and claim.received.receiver != item.custodian
            ):
                self.custodian(item, claim.received)

    def waiting(self, item: ItemState, returned: dict[str, HandoverState]) -> None:
        """Leakage and custody gaps of an item that should move on."""
        if item.terminal or item.pending_handover is not None:
            return
        config, age = self.config, self.now - item.last_time
        back = returned.get(item.head)
        if back is not None and (item.status in _WAITING or item.kind is ItemKind.LOT):
            if age > config.pending_after:
                self.returned(item, back, age)
            return
        if item.status is Status.RETIRED:
            at_collector = self.role(item.custodian) in _COLLECTING
            if at_collector and age > config.uncollected_after:
                self.add(
                    Check.NOT_COLLECTED,
                    Severity.MEDIUM,
                    f"{item.id} reached {self.who(item.custodian)} retired and has had no event "
                    f"for {_said(age)} days: never taken into storage or sent on (limit "
                    f"{_said(config.uncollected_after)} days)",
                    items=(item.id,),
                    actors=(item.custodian,),
                    events=(item.head,),
                    amounts=_ages(age, config.uncollected_after),
                )
            elif not at_collector and age > config.retired_after:
                self.add(
                    Check.NOT_HANDED_OVER,
                    Severity.HIGH,
                    f"{item.id} has been retired for {_said(age)} days and is still with "
                    f"{self.who(item.custodian)}: it was never handed over to a collector "
                    f"(limit {_said(config.retired_after)} days)",
                    items=(item.id,),
                    actors=tuple(dict.fromkeys((item.custodian, item.producer))),
                    events=(item.head,),
                    amounts=_ages(age, config.retired_after),
                )
        elif item.status is Status.COLLECTED and age > config.collected_after:
            self.add(
                Check.STALLED,
                Severity.MEDIUM,
                f"{item.id} is collected and has had no event at {self.who(item.custodian)} "
                f"for {_said(age)} days: neither recycled, repurposed nor sent on (limit "
                f"{_said(config.collected_after)} days)",
                items=(item.id,),
                actors=(item.custodian,),
                events=(item.head,),
                amounts=_ages(age, config.collected_after),
            )

    def returned(self, item: ItemState, h: HandoverState, age: timedelta) -> None:
        verb = "rejected by" if h.status is HandoverStatus.REJECTED else "cancelled by"
        by = h.receiver if h.status is HandoverStatus.REJECTED else h.sender
        self.add(
            Check.RETURNED,
            Severity.HIGH,
            f"{item.id}, offered by {h.sender} to {h.receiver}, was {verb} {by} "
            f"{_said(age)} days ago and has had no event since; it was never handed to "
            f"anyone else (limit {_said(self.config.pending_after)} days)",
            items=(item.id,),
            actors=(h.sender, h.receiver),
            events=(h.id, item.head),
            amounts=_ages(age, self.config.pending_after),
        )

    def part(self, item: ItemState) -> None:
        parent = self.world.items.get(item.parent or "")
        if parent is None or parent.custodian == item.custodian:
            return
        self.add(
            Check.PART_CUSTODIAN,
            Severity.HIGH,
            f"{item.id} is assembled in {parent.id}, held by {parent.custodian}, but is itself "
            f"held by {item.custodian}",
            items=(item.id, parent.id),
            actors=(item.custodian, parent.custodian),
            events=(item.head, parent.head),
            amounts={},
        )

    def custodian(self, item: ItemState, h: HandoverState) -> None:
        self.add(
            Check.HANDOVER_CUSTODIAN,
            Severity.HIGH,
            f"{item.id} is held by {item.custodian}, but its last accepted handover gave it "
            f"to {h.receiver}",
            items=(item.id,),
            actors=(item.custodian, h.receiver),
            events=(h.id, *((h.closed_by,) if h.closed_by else ())),
            amounts={},
        )

    # --- projection tables ---

    def tables(self) -> None:
        for mismatch in self.state.mismatches:
            said = "; ".join(
                f"{name} is {mine} in memory but {theirs} in the table"
                for name, mine, theirs in mismatch.differences
            )
            actors: tuple[str, ...] = ()
            item = self.world.items.get(mismatch.key)
            if item is not None:
                actors = (item.custodian,)
            h = self.world.handovers.get(mismatch.key)
            if h is not None:
                actors = (h.sender, h.receiver)
            is_item = mismatch.table == "trace_items"
            self.add(
                Check.PROJECTION,
                Severity.HIGH,
                f"{mismatch.table} row {mismatch.key} disagrees with the state replayed from the "
                f"log: {said}",
                items=(mismatch.key,) if is_item else (() if h is None else h.items),
                actors=actors,
                events=() if is_item else (mismatch.key,),
                amounts={"differences": float(len(mismatch.differences))},
            )


def _ages(age: timedelta, limit: timedelta) -> dict[str, float]:
    return {"age_days": _days(age), "limit_days": _days(limit)}


def custody_anomalies(state: ScanState, *, now: datetime, config: AnomalyConfig) -> list[Anomaly]:
    """Leakage, custody gaps and double custody in ``state`` as of ``now``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from trace.anomalies_model import DEFAULT_CONFIG
    >>> from trace.state import MemoryWorld
    >>> custody_anomalies(ScanState(MemoryWorld()), now=datetime(2026, 1, 1, tzinfo=UTC),
    ...                   config=DEFAULT_CONFIG)
    []
    """
    scan = _Scan(state, now, config)
    returned, claims = scan.handovers()
    scan.items(returned, claims)
    scan.tables()
    return scan.found
