"""Who may see what: authorisation by role and by object.

- administrators and auditors read everything;
- an organisation sees the items it holds or held, owns, or placed on the market
  (produced), and the lots made from them;
- the public (no API key) sees only the public passport (``/p/{code}``).
"""

from __future__ import annotations

from sqlalchemy import select

from api.deps import Principal
from api.errors import ProblemError
from schemas.tables import EventItemRow, EventRow
from trace.engine import Tracer
from trace.state import ItemState

__all__ = ["actors_who_acted", "can_read", "check_can_read"]


def actors_who_acted(tracer: Tracer, item_id: str) -> set[str]:
    """Organisations that recorded an event touching the item (they held it, or offered it)."""
    links = EventItemRow.__table__  # type: ignore[attr-defined]
    events = EventRow.__table__  # type: ignore[attr-defined]
    query = (
        select(events.c.actor)
        .join(links, links.c.seq == events.c.seq)
        .where(links.c.item == item_id)
        .distinct()
    )
    with tracer.projections.engine.connect() as conn:
        return {str(row[0]) for row in conn.execute(query)}


def can_read(caller: Principal, item: ItemState, tracer: Tracer) -> bool:
    if caller.admin or caller.is_auditor():
        return True
    if caller.actor is None:
        return False
    me = caller.actor.id
    if me in (item.custodian, item.owner, item.producer):
        return True
    if item.pending_handover is not None:
        offer = tracer.world.handover(item.pending_handover)
        if offer is not None and offer.receiver == me:
            return True
    return me in actors_who_acted(tracer, item.id)


def check_can_read(caller: Principal, item: ItemState, tracer: Tracer) -> None:
    """Refuse with 401 (no key) or 404 (not visible: its existence is not revealed)."""
    if caller.public:
        raise ProblemError(
            "unauthenticated", "item records need an API key; the public passport is at /p/{code}"
        )
    if not can_read(caller, item, tracer):
        raise ProblemError("not-found", f"no item {item.id} visible to this API key")
