"""Errors raised by the domain engine.

::

    TraceError
    ├── InvalidEvent        an event is malformed for its type (beyond schema validation)
    ├── UnknownActor        the acting or receiving organisation is not registered
    ├── UnknownItem         an event names an item suyuan has never seen
    ├── CustodyError        a custody rule refuses the event (``rule`` names which)
    │   └── MassBalanceError  outputs of a step weigh more than its inputs allow
    ├── ChainError          ``prev`` does not name the item's latest event (stale or reordered)
    ├── DuplicateEvent      an event with the same id was already recorded (a replay)
    └── Conflict            another writer moved the log; retrying may succeed
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "Conflict",
    "CustodyError",
    "DuplicateEvent",
    "InvalidEvent",
    "MassBalanceError",
    "TraceError",
    "UnknownActor",
    "UnknownItem",
]


class TraceError(Exception):
    """Base class for every error the domain engine raises."""


class InvalidEvent(TraceError):
    """Raised when an event is malformed for its type or its signer; ``field`` names what."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownActor(TraceError):
    """Raised when an event's actor (or a handover's receiver) is not a registered organisation."""


class UnknownItem(TraceError):
    """Raised when an event names an item that was never commissioned or created."""


class CustodyError(TraceError):
    """Raised when a custody rule refuses an event; ``rule`` is the rule's stable name."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(f"{message} [{rule}]")
        self.rule = rule


class MassBalanceError(CustodyError):
    """Raised when a step's outputs weigh more than its inputs plus the tolerance."""


class ChainError(TraceError):
    """Raised when an event's ``prev`` for an item is not that item's latest event."""


class DuplicateEvent(TraceError):
    """Raised when an event id is already on the log under another idempotency key (a replay)."""


class Conflict(TraceError):
    """Raised when the log moved under a writer more times than it retries."""
