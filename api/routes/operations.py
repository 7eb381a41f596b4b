"""Typed operations: inspect, retire, collect, repurpose, dismantle, recycle, lots, corrections.

Each endpoint takes the event's own data model (:mod:`schemas.events`) with an optional
``event_time``, ``region`` and ``read_point``; the service fills in ``prev``, signs with the
caller's custodial key and records the event through the engine. The same endpoint takes
the event already signed by the organisation (``kind, body, key_id, sig``) and forwards it
to ``POST /v1/events``.

The ``Idempotency-Key`` header is the event's idempotency key: a retry answers 200 with
the original receipt and appends nothing; the same key for another event is refused (422).
Before the custody rules a role that never records the event type gets 403 and an item the
caller cannot see 404 (:mod:`api.bulk`); the rules' refusals are 409 naming the ``rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag

from api.bulk import (
    build_event,
    check_corrects,
    check_replay,
    check_role,
    check_visible,
    custodial_signer,
    parse_data,
    reason,
    world_head,
)
from api.deps import Principal, ServicesDep, WriterDep
from api.errors import ProblemError
from api.routes.events import Receipt, SignedEvent, submit_events
from api.services import Services
from ledger.entry import Submission
from schemas.actors import Actor, Region
from schemas.events import (
    CollectData,
    CorrectionData,
    DismantleData,
    EventData,
    EventType,
    InspectData,
    LotCreateData,
    LotMergeData,
    LotSmeltData,
    LotSplitData,
    RecycleData,
    RepurposeData,
    RetireData,
)
from trace.engine import EventReceipt, Tracer, parse_event
from trace.errors import TraceError

__all__ = [
    "WRITE_RESPONSES",
    "Envelope",
    "IdempotencyKey",
    "OrSigned",
    "Write",
    "WriteDep",
    "event_data",
    "problem_responses",
    "router",
]

router = APIRouter(tags=["operations"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the event's idempotency key: a retry with it returns the original receipt",
    ),
]

_PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "why, in words"},
        "instance": {"type": "string"},
        "rule": {"type": "string", "description": "the custody rule that refused the event"},
    },
}
_WHY: Final[dict[int, str]] = {
    400: "The body is not JSON",
    401: "No API key, or an unknown or revoked one",
    403: "Not for this key: auditors and administrators write no events, or the role never does",
    404: "No such item or handover visible to this key (existence is not revealed)",
    409: "A custody rule refuses the event (`rule` names it), or the log moved on",
    413: "The file is too large or has too many rows",
    415: "The body's media type is not one this endpoint reads",
    422: "The request or event is malformed (`field` names where, when known)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem+json answers with these statuses."""
    return {
        code: {
            "description": _WHY[code],
            "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
        }
        for code in statuses
    }


WRITE_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "model": Receipt,
        "description": "A retry with the same Idempotency-Key: appends nothing",
    },
    **problem_responses(400, 401, 403, 404, 409, 422),
}


class Envelope(BaseModel):
    """When and where an event happened: by default now, in the organisation's region."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_time: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset")
    region: Region | None = Field(default=None, description="GB/T 2260 province code")
    read_point: str | None = Field(default=None, max_length=200)


def event_data(request: Envelope) -> EventData:
    """The event's data in a typed request (the envelope left out)."""
    body = request.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=set(Envelope.model_fields)
    )
    return parse_data(body)


def _shape(value: Any) -> str:
    return "signed" if isinstance(value, dict) and "sig" in value else "typed"


_M = TypeVar("_M", bound=Envelope)
OrSigned = Annotated[
    Annotated[_M, Tag("typed")] | Annotated[SignedEvent, Tag("signed")], Discriminator(_shape)
]
"""A typed request, or the same event signed by the organisation (it has a ``sig``)."""


class Inspection(Envelope, InspectData):
    """A battery's state of health and grade, tested by its custodian."""


class Retirement(Envelope, RetireData):
    """A battery leaves its use (it becomes waste under EU terms)."""


class Collection(Envelope, CollectData):
    """A retired item taken into a collection point's storage."""


class Repurposing(Envelope, RepurposeData):
    """Cascade use under a new code, the original kept (GB/T 34014 §4.2)."""


class Dismantling(Envelope, DismantleData):
    """A pack or module taken apart into coded parts and lots (GB/T 33598)."""


class Recycling(Envelope, RecycleData):
    """Collected batteries or lots in (kg), recovered material lots out."""


class LotCreation(Envelope, LotCreateData):
    """A lot from outside the traced flow (e.g. bought scrap steel)."""


class LotSplitting(Envelope, LotSplitData):
    """One lot into several of the same material and mass."""


class LotMerging(Envelope, LotMergeData):
    """Several lots of one material into one."""


class Smelting(Envelope, LotSmeltData):
    """Smelting or refining: lots in (kg), lots out with element content (kg)."""


class Correction(Envelope, CorrectionData):
    """Recorded facts of an earlier event of the item, corrected (nothing is edited)."""


def _submit_one(tracer: Tracer, submission: Submission) -> EventReceipt:
    try:
        [receipt] = tracer.submit([submission])
    except TraceError as exc:  # one event: its position in the batch is noise
        exc.args = (reason(exc),)
        raise
    return receipt


def _answer(response: Response, receipt: EventReceipt) -> Receipt:
    if receipt.replayed:
        response.status_code = status.HTTP_200_OK
    return Receipt.of(receipt)


@dataclass(frozen=True, slots=True)
class Write:
    """One write request: the caller (an organisation), its idempotency key, the response."""

    services: Services
    caller: Principal
    key: str
    response: Response

    @property
    def actor(self) -> Actor:
        assert self.caller.actor is not None  # WriterDep admits organisations only
        return self.caller.actor

    def record(self, body: Envelope | SignedEvent, kind: EventType) -> Receipt:
        """Record a typed request (custodial key) or forward a signed event of ``kind``."""
        if isinstance(body, SignedEvent):
            return self.forward(body, kind)
        return self.record_data(event_data(body), body)

    def record_data(
        self, data: EventData, envelope: Envelope, *, check_items: bool = True
    ) -> Receipt:
        """Build ``data`` into the caller's event, sign it with its custodial key, record it."""
        check_role(self.actor, EventType(data.type))
        signer = custodial_signer(self.services, self.actor.id)
        with self.services.writing() as tracer:
            prior = tracer.receipt(self.actor.id, self.key)
            if prior is not None:
                check_replay(tracer, prior, data, key=self.key)
                return _answer(self.response, prior)
            if check_items:
                check_visible(self.caller, tracer, data)
            check_corrects(tracer, data)
            event = build_event(self.actor, data, key=self.key, head=world_head(tracer),
                                when=envelope.event_time or datetime.now(UTC),
                                region=envelope.region, read_point=envelope.read_point)  # fmt: skip
            submission = tracer.sign(event, key_id=signer.key_id, key=signer.private_key)
            receipt = _submit_one(tracer, submission)
        return _answer(self.response, receipt)

    def forward(self, signed: SignedEvent, kind: EventType) -> Receipt:
        """Check a signed event against this endpoint, then record it as ``POST /v1/events``."""
        event = parse_event(signed.body)
        if event.type is not kind:
            raise ProblemError(
                "invalid-event",
                f"this endpoint records {kind.value} events, not {event.type.value}",
            )
        if event.actor != self.actor.id:
            raise ProblemError(
                "forbidden", f"the event is by {event.actor!r}; this key records {self.actor.id!r}"
            )
        if event.idempotency_key != self.key:
            raise ProblemError(
                "invalid-request",
                "the Idempotency-Key header must be the signed event's idempotency_key",
                field="idempotency_key",
            )
        check_role(self.actor, kind)
        with self.services.writing() as tracer:
            if tracer.receipt(self.actor.id, self.key) is None:
                check_visible(self.caller, tracer, event.data)
                check_corrects(tracer, event.data)
            [receipt] = submit_events([signed], self.services, self.caller)
        if receipt.replayed:
            self.response.status_code = status.HTTP_200_OK
        return receipt


def _write(
    services: ServicesDep, caller: WriterDep, key: IdempotencyKey, response: Response
) -> Write:
    return Write(services, caller, key, response)


WriteDep = Annotated[Write, Depends(_write)]
_CREATED: Final = status.HTTP_201_CREATED


@router.post("/inspections", status_code=_CREATED, responses=WRITE_RESPONSES)
def inspect(body: OrSigned[Inspection], write: WriteDep) -> Receipt:
    """Record a battery's state of health and grade."""
    return write.record(body, EventType.INSPECT)


@router.post("/retirements", status_code=_CREATED, responses=WRITE_RESPONSES)
def retire(body: OrSigned[Retirement], write: WriteDep) -> Receipt:
    """Retire a battery from its use."""
    return write.record(body, EventType.RETIRE)


@router.post("/collections", status_code=_CREATED, responses=WRITE_RESPONSES)
def collect(body: OrSigned[Collection], write: WriteDep) -> Receipt:
    """Take a retired item into storage (collectors, cascade operators, recyclers)."""
    return write.record(body, EventType.COLLECT)


@router.post("/repurposings", status_code=_CREATED, responses=WRITE_RESPONSES)
def repurpose(body: OrSigned[Repurposing], write: WriteDep) -> Receipt:
    """Re-code a graded battery for cascade use (cascade operators)."""
    return write.record(body, EventType.REPURPOSE)


@router.post("/dismantlings", status_code=_CREATED, responses=WRITE_RESPONSES)
def dismantle(body: OrSigned[Dismantling], write: WriteDep) -> Receipt:
    """Dismantle a retired pack or module into parts and lots, masses in kg."""
    return write.record(body, EventType.DISMANTLE)


@router.post("/recyclings", status_code=_CREATED, responses=WRITE_RESPONSES)
def recycle(body: OrSigned[Recycling], write: WriteDep) -> Receipt:
    """Recycle collected batteries or lots into recovered material (recyclers)."""
    return write.record(body, EventType.RECYCLE)


@router.post("/lots", status_code=_CREATED, responses=WRITE_RESPONSES)
def create_lot(body: OrSigned[LotCreation], write: WriteDep) -> Receipt:
    """Create a lot from outside the traced flow (recyclers, scrap processors)."""
    return write.record(body, EventType.LOT_CREATE)


@router.post("/lots/splits", status_code=_CREATED, responses=WRITE_RESPONSES)
def split_lot(body: OrSigned[LotSplitting], write: WriteDep) -> Receipt:
    """Split a lot into parts of the same material and total mass."""
    return write.record(body, EventType.LOT_SPLIT)


@router.post("/lots/merges", status_code=_CREATED, responses=WRITE_RESPONSES)
def merge_lots(body: OrSigned[LotMerging], write: WriteDep) -> Receipt:
    """Merge lots of one material into one."""
    return write.record(body, EventType.LOT_MERGE)


@router.post("/lots/smelts", status_code=_CREATED, responses=WRITE_RESPONSES)
def smelt_lots(body: OrSigned[Smelting], write: WriteDep) -> Receipt:
    """Smelt or refine lots into products with element content, balanced in kg."""
    return write.record(body, EventType.LOT_SMELT)


@router.post("/corrections", status_code=_CREATED, responses=WRITE_RESPONSES)
def correct(body: OrSigned[Correction], write: WriteDep) -> Receipt:
    """Correct recorded facts of an earlier event of the item (its producer or custodian)."""
    return write.record(body, EventType.CORRECTION)
