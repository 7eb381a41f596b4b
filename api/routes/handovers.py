"""Handovers: the two-party custody transfer — an offer, then accept, reject, cancel or dispute.

Custody moves only when the receiver accepts (:mod:`trace.rules_handover`). A handover is
named in URLs by the hex SHA-256 of its event id (``ni:///sha-256;<hex>?ver=CBV2.0``). It is
visible to its sender and receiver, to auditors and to administrators; to anyone else it
does not exist (404). Writes take an ``Idempotency-Key`` header, as every write does
(:mod:`api.routes.operations`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select

from api.bulk import parse_data
from api.deps import CallerDep, Principal, ServicesDep
from api.errors import ProblemError
from api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from api.routes.events import Receipt
from api.routes.operations import (
    WRITE_RESPONSES,
    Envelope,
    WriteDep,
    event_data,
    problem_responses,
)
from api.services import Services
from schemas.events import EventType, HandoverData
from schemas.tables import HandoverRow
from trace.state import HandoverState, HandoverStatus

__all__ = ["HandoverOut", "router"]

router = APIRouter(prefix="/handovers", tags=["handovers"])

_ID_PREFIX: Final = "ni:///sha-256;"
_ID_SUFFIX: Final = "?ver=CBV2.0"
Digest = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the handover's event id")
]


class HandoverOffer(Envelope, HandoverData):
    """Items the caller holds, offered to another organisation (ownership too, if asked)."""


class Answer(Envelope):
    """An answer to a handover: when and where it was given."""


class ReasonedAnswer(Answer):
    reason: str = Field(min_length=1, max_length=500)


class HandoverOut(BaseModel):
    id: str = Field(description="the handover event's id")
    digest: str = Field(description="the id's SHA-256 in hex, as used in URLs")
    sender: str
    receiver: str
    items: list[str]
    transfer_ownership: bool
    status: HandoverStatus
    created: datetime
    disputed: bool = False
    closed_by: str | None = None

    @classmethod
    def of(cls, h: HandoverState) -> HandoverOut:
        return cls(
            id=h.id, digest=_digest(h.id), sender=h.sender, receiver=h.receiver,
            items=list(h.items), transfer_ownership=h.transfer_ownership, status=h.status,
            created=h.created, disputed=h.disputed, closed_by=h.closed_by,
        )  # fmt: skip


class HandoverReceipt(Receipt):
    handover: str = Field(description="the handover's digest: GET /v1/handovers/{digest}")


def _digest(handover_id: str) -> str:
    return handover_id.removeprefix(_ID_PREFIX).removesuffix(_ID_SUFFIX)


def _sees(caller: Principal, h: HandoverState) -> bool:
    if caller.admin or caller.is_auditor():
        return True
    return caller.actor is not None and caller.actor.id in (h.sender, h.receiver)


def _handover(services: Services, caller: Principal, digest: str) -> HandoverState:
    if caller.public:
        raise ProblemError("unauthenticated", "handovers are visible to API-key holders")
    found = services.tracer.world.handover(f"{_ID_PREFIX}{digest}{_ID_SUFFIX}")
    if found is None or not _sees(caller, found):
        raise ProblemError("not-found", f"no handover {digest} visible to this API key")
    return found


_RETRIED: Final = {"model": HandoverReceipt, "description": "A retry: the original receipt"}


@router.post("", status_code=status.HTTP_201_CREATED, responses={**WRITE_RESPONSES, 200: _RETRIED})
def offer(body: HandoverOffer, write: WriteDep, request: Request) -> HandoverReceipt:
    """Offer items to another organisation; only their custodian may."""
    receipt = write.record_data(event_data(body), body)
    digest = _digest(receipt.event_id)
    write.response.headers["Location"] = request.url_for("get_handover", digest=digest).path
    return HandoverReceipt(**receipt.model_dump(), handover=digest)


@router.get("/pending", responses=problem_responses(401, 403, 404, 422))
def pending(
    services: ServicesDep,
    caller: CallerDep,
    direction: Literal["incoming", "outgoing", "both"] = "both",
    actor: Annotated[
        str | None, Query(max_length=64, description="auditors and administrators: whose")
    ] = None,
    cursor: Annotated[str | None, Query(min_length=1, description="a page's next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Page[HandoverOut]:
    """Pending handovers to or from the caller, oldest first."""
    if caller.public:
        raise ProblemError("unauthenticated", "handovers are visible to API-key holders")
    party = caller.actor.id if caller.actor is not None and not caller.is_auditor() else None
    if actor is not None and party is not None and actor != party:
        raise ProblemError("forbidden", f"this key sees the handovers of {party!r} only")
    if actor is not None and services.tracer.world.actor(actor) is None:
        raise ProblemError("unknown-actor", f"no organisation {actor!r}")
    party = actor or party
    table = HandoverRow.__table__  # type: ignore[attr-defined]
    query = select(table).where(table.c.status == HandoverStatus.PENDING.value)
    if party is not None:
        sides = {"incoming": [table.c.receiver], "outgoing": [table.c.sender]}
        columns = sides.get(direction, [table.c.receiver, table.c.sender])
        query = query.where(or_(*(column == party for column in columns)))
    after = _after(decode_cursor(cursor))
    if after is not None:
        created, last_id = after
        query = query.where(
            or_(table.c.created > created, and_(table.c.created == created, table.c.id > last_id))
        )
    query = query.order_by(table.c.created, table.c.id).limit(limit + 1)
    with services.tracer.projections.engine.connect() as conn:
        rows = conn.execute(query).all()
    page = rows[:limit]
    last = page[-1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_cursor([last.created.isoformat(), last.id])
    return Page[HandoverOut](data=[_from_row(row) for row in page], next_cursor=next_cursor)


def _from_row(row: Any) -> HandoverOut:
    created = row.created if row.created.tzinfo else row.created.replace(tzinfo=UTC)  # SQLite
    return HandoverOut.of(
        HandoverState(
            id=row.id, sender=row.sender, receiver=row.receiver,
            items=tuple(json.loads(row.items_json)), transfer_ownership=row.transfer_ownership,
            status=HandoverStatus(row.status), created=created, disputed=row.disputed,
            closed_by=row.closed_by,
        )
    )  # fmt: skip


def _after(key: Any) -> tuple[datetime, str] | None:
    if key is None:
        return None
    try:
        created, last_id = key
        return datetime.fromisoformat(created), str(last_id)
    except (TypeError, ValueError) as exc:
        raise ProblemError("invalid-request", "the cursor is not one this service issued") from exc


@router.get("/{digest}", responses=problem_responses(401, 404, 422))
def get_handover(digest: Digest, services: ServicesDep, caller: CallerDep) -> HandoverOut:
    """One handover, to its sender or receiver, auditors and administrators."""
    return HandoverOut.of(_handover(services, caller, digest))


def _answer(write: WriteDep, digest: str, kind: EventType, body: Answer) -> Receipt:
    handover = _handover(write.services, write.caller, digest)
    data: dict[str, Any] = {"type": kind.value, "handover": handover.id, "items": handover.items}
    if isinstance(body, ReasonedAnswer):
        data["reason"] = body.reason
    return write.record_data(parse_data(data), body, check_items=False)


@router.post("/{digest}/accept", responses=WRITE_RESPONSES, status_code=status.HTTP_201_CREATED)
def accept(digest: Digest, write: WriteDep, body: Answer | None = None) -> Receipt:
    """Accept a handover: custody (and ownership, if offered) moves to the receiver."""
    return _answer(write, digest, EventType.ACCEPT, body or Answer())


@router.post("/{digest}/reject", responses=WRITE_RESPONSES, status_code=status.HTTP_201_CREATED)
def reject(digest: Digest, body: ReasonedAnswer, write: WriteDep) -> Receipt:
    """Reject a handover (the receiver); the items stay with the sender."""
    return _answer(write, digest, EventType.REJECT, body)


@router.post("/{digest}/cancel", responses=WRITE_RESPONSES, status_code=status.HTTP_201_CREATED)
def cancel(digest: Digest, body: ReasonedAnswer, write: WriteDep) -> Receipt:
    """Cancel a pending handover (the sender)."""
    return _answer(write, digest, EventType.CANCEL, body)


@router.post("/{digest}/dispute", responses=WRITE_RESPONSES, status_code=status.HTTP_201_CREATED)
def dispute(digest: Digest, body: ReasonedAnswer, write: WriteDep) -> Receipt:
    """Dispute a pending or accepted handover (either party)."""
    return _answer(write, digest, EventType.DISPUTE, body)
