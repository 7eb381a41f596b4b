"""Which events the log holds, by idempotency key and by event id, in little memory.

The engine answers a retried idempotency key with the original receipt and refuses an
event id that is already recorded, so it must find any earlier event by either. Holding
every receipt in memory took about 0.8 KiB per event -- some 5 GiB for the lives of a
million packs. This index keeps, per event, a 64-bit hash of its key and of its id with
the event's log position (about 0.2 KiB); the receipt itself is read from the projection
tables when a hash matches, which happens for retries only.

Two different keys with one hash would make the later one's lookups miss, so the second
of a colliding pair is kept whole, apart: the index never loses an event.
"""

from __future__ import annotations

__all__ = ["ReceiptIndex"]


class ReceiptIndex:
    """Log positions of recorded events, by (actor, idempotency key) and by event id.

    Lookups give the position of the only event that can match; the caller confirms
    it against the stored row.

    >>> index = ReceiptIndex()
    >>> index.add(7, "ni:///sha-256;abc?ver=CBV2.0", "catl", "k-1")
    >>> index.seq_of_key("catl", "k-1"), index.seq_of_key("catl", "k-2")
    (7, None)
    >>> index.seq_of_id("ni:///sha-256;abc?ver=CBV2.0"), len(index)
    (7, 1)
    """

    __slots__ = ("_by_id", "_by_key", "_colliding_ids", "_colliding_keys")

    def __init__(self) -> None:
        self._by_key: dict[int, int] = {}
        self._by_id: dict[int, int] = {}
        self._colliding_keys: dict[tuple[str, str], int] = {}
        self._colliding_ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_id) + len(self._colliding_ids)

    def add(self, seq: int, event_id: str, actor: str, key: str) -> None:
        """Record a new event (its key and id not recorded before)."""
        hashed = hash((actor, key))
        if hashed in self._by_key:
            self._colliding_keys[(actor, key)] = seq
        else:
            self._by_key[hashed] = seq
        hashed = hash(event_id)
        if hashed in self._by_id:
            self._colliding_ids[event_id] = seq
        else:
            self._by_id[hashed] = seq

    def seq_of_key(self, actor: str, key: str) -> int | None:
        """Where the event recorded under ``(actor, key)`` may be, or None if there is none."""
        found = self._colliding_keys.get((actor, key))
        return found if found is not None else self._by_key.get(hash((actor, key)))

    def seq_of_id(self, event_id: str) -> int | None:
        """Where the event ``event_id`` may be, or None if the log does not hold it."""
        found = self._colliding_ids.get(event_id)
        return found if found is not None else self._by_id.get(hash(event_id))
