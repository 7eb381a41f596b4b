"""Recording events: signed by the organisation, or signed by the service with its custodial key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.bulk import check_corrects, check_replay, check_role, check_visible
from api.custodial import CustodialKeyError
from api.deps import Principal, ServicesDep, WriterDep
from api.errors import ProblemError
from ledger import LedgerError
from ledger.entry import Submission
from schemas.events import Event
from trace.engine import EventReceipt, parse_event

router = APIRouter(tags=["events"])

MAX_BATCH = 1000


class SignedEvent(BaseModel):
    """A signed submission: ``sig`` is Ed25519 over ``suyuan-entry/v1\\n<kind>\\n<RFC 8785 body>``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern=r"^event\.[a-z_]+$")
    body: dict[str, Any]
    key_id: str = Field(min_length=1, max_length=200)
    sig: str = Field(min_length=86, max_length=88, description="base64 Ed25519 signature")


class Receipt(BaseModel):
    event_id: str
    seq: int
    recorded_at: str
    late_working_days: int | None = None
    replayed: bool = False

    @classmethod
    def of(cls, r: EventReceipt) -> Receipt:
        return cls(
            event_id=r.event_id,
            seq=r.seq,
            recorded_at=r.recorded_at.isoformat(),
            late_working_days=r.late_working_days,
            replayed=r.replayed,
        )


def _submissions(events: list[SignedEvent]) -> list[Submission]:
    out = []
    for i, e in enumerate(events):
        try:
            out.append(Submission.from_json(e.model_dump()))
        except LedgerError as exc:
            raise ProblemError("invalid-event", f"event {i}: {exc}") from exc
    return out


def _checked(services: ServicesDep, caller: Principal, event: Event) -> None:
    """403 for a role that never records this type; 404 for items the caller cannot see."""
    assert caller.actor is not None
    check_role(caller.actor, event.type)
    check_visible(caller, services.tracer, event.data)
    check_corrects(services.tracer, event.data)


def _own(caller_actor: str, submissions: list[Submission]) -> None:
    for i, s in enumerate(submissions):
        actor = s.body.get("actor") if isinstance(s.body, dict) else None
        if actor != caller_actor:
            raise ProblemError(
                "forbidden",
                f"event {i} is by {actor!r}; this API key records events of {caller_actor!r}",
            )


@router.post("/events", status_code=status.HTTP_201_CREATED)
def submit_events(
    events: list[SignedEvent], services: ServicesDep, caller: WriterDep
) -> list[Receipt]:
    """Record signed events, all or none; a retry with the same idempotency key returns the original receipts."""
    if not 1 <= len(events) <= MAX_BATCH:
        raise ProblemError("invalid-request", f"send 1 to {MAX_BATCH} events")
    submissions = _submissions(events)
    assert caller.actor is not None
    _own(caller.actor.id, submissions)
    with services.writing() as tracer:
        for s in submissions:
            _checked(services, caller, parse_event(s.body))
        receipts = tracer.submit(submissions)
    return [Receipt.of(r) for r in receipts]


@router.post("/events/custodial", status_code=status.HTTP_201_CREATED)
def submit_custodial(
    events: list[dict[str, Any]], services: ServicesDep, caller: WriterDep
) -> list[Receipt]:
    """Record unsigned events, signed by the service with the organisation's custodial key.

    ``prev`` may be left out: the service fills in each item's latest event;
    ``event_time`` defaults to now and ``region`` to the organisation's.
    """
    from datetime import UTC, datetime

    if not 1 <= len(events) <= MAX_BATCH:
        raise ProblemError("invalid-request", f"send 1 to {MAX_BATCH} events")
    assert caller.actor is not None
    try:
        signer = services.custodial.signer_for(caller.actor.id)
    except CustodialKeyError as exc:
        raise ProblemError("invalid-key", str(exc)) from exc
    with services.writing() as tracer:
        tracer.catch_up()
        submissions: list[Submission] = []
        answers: list[EventReceipt | int] = []  # a replayed receipt, or the index of a new one
        for body in events:
            key = body.get("idempotency_key")
            prior = tracer.receipt(caller.actor.id, key) if isinstance(key, str) else None
            if prior is not None:
                # A retry: time and prev would be filled in afresh, so the data decides.
                check_replay(tracer, prior, _data_of(body), key=str(key))
                answers.append(prior)
                continue
            body = {
                "actor": caller.actor.id,
                "event_time": datetime.now(UTC).isoformat(),
                "region": caller.actor.region,
                **body,
            }
            if "prev" not in body:
                body["prev"] = _fill_prev(tracer, body)
            event = parse_event(body)
            _checked(services, caller, event)
            answers.append(len(submissions))
            submissions.append(tracer.sign(event, key_id=signer.key_id, key=signer.private_key))
        fresh = tracer.submit(submissions) if submissions else []
    return [Receipt.of(a if isinstance(a, EventReceipt) else fresh[a]) for a in answers]


def _data_of(body: dict[str, Any]) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from schemas.events import EventData

    try:
        return TypeAdapter(EventData).validate_python(body.get("data"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["data", *(str(p) for p in first["loc"])])
        raise ProblemError("invalid-event", f"{where}: {first['msg']}", field=where) from exc


def _fill_prev(tracer: Any, body: dict[str, Any]) -> dict[str, str | None]:
    data = _data_of(body)
    prev: dict[str, str | None] = {}
    for item in data.items():
        state = tracer.world.item(item)
        prev[item] = None if state is None else state.head
    return prev
