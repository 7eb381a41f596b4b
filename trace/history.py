"""An item's history as a hash chain, and its offline check.

Every event names, for each item it touches, the id of that item's previous
event (``prev``). An item's history is therefore a chain from its first event
(``prev = None``) to its head; the head sits on the log, so one inclusion
proof of the head's entry against a signed checkpoint pins the whole chain:
an event left out or reordered breaks a link, and a forged event changes an
id. :func:`verify_history` does that check with the log's public key alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger import note
from ledger.bundle import verify_bundle
from ledger.entry import Entry
from schemas.epcis import event_id as compute_event_id
from schemas.events import EVENT_KIND_PREFIX, Event
from trace.errors import ChainError, InvalidEvent

__all__ = ["HistoryEvent", "VerifiedHistory", "verify_history"]


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One event of an item's history: its log entry (canonical bytes) and parsed form."""

    seq: int
    event_id: str
    event: Event
    entry: bytes


@dataclass(frozen=True, slots=True)
class VerifiedHistory:
    item: str
    events: tuple[HistoryEvent, ...]
    checkpoint_size: int


def _parse(raw: bytes) -> HistoryEvent:
    entry = Entry.parse(raw)
    if not entry.kind.startswith(EVENT_KIND_PREFIX):
        raise InvalidEvent(f"entry {entry.seq} is a {entry.kind!r} entry, not an event")
    event = Event.model_validate(entry.body)
    return HistoryEvent(entry.seq, compute_event_id(event), event, raw)


def verify_history(
    item: str,
    entries: Iterable[bytes],
    head_bundle: str,
    log_keys: str | note.Verifier | Sequence[str | note.Verifier],
    *,
    origin: str | None = None,
) -> VerifiedHistory:
    """Check that ``entries`` are the complete, ordered history of ``item``.

    ``entries`` are the canonical log entries of the item's events, oldest
    first; ``head_bundle`` is the C2SP tlog-proof of the newest one.

    Raises :class:`ChainError` when a link is missing, out of order or forged,
    and the ledger's ``InvalidProof`` / ``InvalidSignature`` when the bundle
    does not verify.
    """
    events = [_parse(raw) for raw in entries]
    if not events:
        raise ChainError(f"no events given for {item}")
    # 1. The head is on the log, under a checkpoint signed by the log.
    bundle = verify_bundle(head_bundle, log_keys, origin=origin)
    if bundle.entry.raw != events[-1].entry:
        raise ChainError("the proof bundle is not for the last event given")
    # 2. Every link: each event touches the item and names the one before it.
    previous: str | None = None
    for e in events:
        links: dict[str, Any] = dict(e.event.prev)
        if item not in links:
            raise ChainError(f"event {e.event_id} (entry {e.seq}) does not touch {item}")
        if links[item] != previous:
            raise ChainError(
                f"entry {e.seq}: {item}'s previous event is {links[item]}, "
                f"but the history given has {previous} before it (an event is missing or reordered)"
            )
        previous = e.event_id
    return VerifiedHistory(item, tuple(events), bundle.checkpoint.size)
