"""Recording events from rows: the checks every write shares, and batches through the engine.

Every write endpoint checks, before the engine's custody rules (:mod:`trace.rules`):

1. the caller's role ever records the event type (else 403: no item could make it allowed);
2. every existing item the event acts on is visible to the caller (else 404: existence is
   not revealed, as for reads);
3. a correction points at an event of the item it corrects (the rules cannot see the log).

A bulk import (:mod:`api.routes.bulk` turns the file into :class:`Row` values) checks each
row on its own and records the valid ones through the engine in batches of
:data:`BATCH_SIZE`, each under the write lock; a batch the engine refuses is halved until the
refused rows are found, so every other row is still recorded. Rows carry idempotency keys,
so a retried file appends nothing twice: its recorded rows come back ``replayed``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import select

from api.custodial import CustodialKeyError
from api.deps import Principal
from api.errors import ProblemError
from api.services import Services
from api.visibility import can_read
from ledger import LedgerError, note
from ledger.canonical import canonicalize
from ledger.entry import Submission
from schemas.actors import Actor
from schemas.epcis import event_id as compute_event_id
from schemas.events import (
    CorrectionData,
    Event,
    EventData,
    EventType,
)
from schemas.tables import EventItemRow
from trace.engine import EventReceipt, Tracer, parse_event
from trace.errors import CustodyError, InvalidEvent, TraceError
from trace.rules import ROLES, created_items

__all__ = [
    "BATCH_SIZE",
    "MAX_ROWS",
    "BulkReport",
    "Heads",
    "Row",
    "RowIssue",
    "RowOutcome",
    "build_event",
    "check_corrects",
    "check_replay",
    "check_role",
    "check_visible",
    "created_items",
    "custodial_signer",
    "import_rows",
    "parse_data",
    "reason",
    "world_head",
]

MAX_ROWS: Final = 100_000
BATCH_SIZE: Final = 500
_SUBMISSION_PREFIX: Final = re.compile(r"^submission \d+: ")
_DATA: Final = TypeAdapter[EventData](EventData)

Heads = Callable[[str], str | None]


# --- the checks every write shares ---


def parse_data(data: Any) -> EventData:
    """An event's ``data`` validated by the event models; the error names the field."""
    try:
        return _DATA.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["data", *(str(p) for p in first["loc"])])
        raise InvalidEvent(f"{where}: {first['msg']}", field=where) from exc


def check_role(actor: Actor, kind: EventType) -> None:
    """Refuse (403) a role that never records ``kind``, whatever the item."""
    allowed = ROLES[kind]
    if actor.role not in allowed:
        names = ", ".join(sorted(role.value for role in allowed))
        raise ProblemError(
            "forbidden", f"{actor.id} is a {actor.role.value}; {kind.value} is recorded by {names}"
        )


def check_visible(caller: Principal, tracer: Tracer, data: EventData) -> None:
    """Refuse (404) an event on an existing item the caller cannot see."""
    created = created_items(data)
    for item_id in data.items():
        state = None if item_id in created else tracer.world.item(item_id)
        if state is not None and not can_read(caller, state, tracer):
            raise ProblemError("not-found", f"no item {item_id} visible to this API key")


def check_corrects(
    tracer: Tracer, data: EventData, recent: Mapping[str, Sequence[str]] | None = None
) -> None:
    """A correction names an event of its item: on the log, or in ``recent`` (id -> items)."""
    if not isinstance(data, CorrectionData):
        return
    if recent is not None and data.item in recent.get(data.corrects, ()):
        return
    links = EventItemRow.__table__  # type: ignore[attr-defined]
    query = select(links.c.seq).where(links.c.item == data.item, links.c.event_id == data.corrects)
    with tracer.projections.engine.connect() as conn:
        if conn.execute(query.limit(1)).first() is not None:
            return
    raise InvalidEvent(
        f"{data.corrects} is no event of {data.item}; a correction points at an event of the "
        "item it corrects",
        field="data.corrects",
    )


def check_replay(tracer: Tracer, prior: EventReceipt, data: EventData, *, key: str) -> None:
    """A retry under ``key`` must ask for the event recorded under it (else 422)."""
    recorded = tracer.log.entry(prior.seq).body
    mine = data.model_dump(mode="json", by_alias=True, exclude_none=True)
    if canonicalize(recorded.get("data")) != canonicalize(mine):
        raise ProblemError(
            "invalid-request",
            f"idempotency key {key!r} was used for another event ({prior.event_id}); "
            "a new event needs a new key",
            field="idempotency_key",
        )


def custodial_signer(services: Services, actor_id: str) -> note.Signer:
    try:
        return services.custodial.signer_for(actor_id)
    except CustodialKeyError as exc:
        raise ProblemError("invalid-key", str(exc)) from exc


def world_head(tracer: Tracer) -> Heads:
    """Each item's latest event id (``None`` for items not known yet)."""

    def head(item_id: str) -> str | None:
        state = tracer.world.item(item_id)
        return None if state is None else state.head

    return head


def build_event(
    actor: Actor,
    data: EventData,
    *,
    key: str,
    when: datetime,
    head: Heads,
    region: str | None = None,
    read_point: str | None = None,
    prev: Mapping[str, str | None] | None = None,
) -> Event:
    """The caller's event: ``prev`` from ``head`` unless given, region the actor's by default."""
    body: dict[str, Any] = {
        "actor": actor.id,
        "event_time": when.isoformat(),
        "region": region or actor.region,
        "idempotency_key": key,
        "prev": dict(prev) if prev is not None else {i: head(i) for i in data.items()},
        "data": data.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if read_point is not None:
        body["read_point"] = read_point
    return parse_event(body)


# --- rows ---


@dataclass(frozen=True, slots=True)
class Row:
    """A row that passed its own checks: an event to sign, or one signed by its organisation."""

    line: int
    key: str
    data: EventData
    when: datetime | None = None
    region: str | None = None
    read_point: str | None = None
    prev: Mapping[str, str | None] | None = None
    signed: Submission | None = None
    event: Event | None = None


@dataclass(frozen=True, slots=True)
class RowIssue:
    line: int
    reason: str
    item: str | None = None


# --- the report and the import ---


class RowOutcome(BaseModel):
    line: int
    status: Literal["committed", "replayed", "invalid"]
    item: str | None = None
    event_id: str | None = None
    seq: int | None = None
    reason: str | None = None
    rule: str | None = None


class BulkReport(BaseModel):
    """What became of each row: ``outcomes`` lists the invalid ones (every row if asked)."""

    rows: int
    committed: int
    replayed: int
    invalid: int
    outcomes: list[RowOutcome]


def reason(exc: Exception) -> str:
    """The message of a refusal, without the engine's position in the batch."""
    text = exc.detail if isinstance(exc, ProblemError) else str(exc)
    return _SUBMISSION_PREFIX.sub("", text)


@dataclass
class _Import:
    services: Services
    caller: Principal
    actor: Actor
    now: datetime
    outcomes: dict[int, RowOutcome]
    signer: note.Signer | None = None

    def invalid(self, row: Row, exc: Exception) -> None:
        rule = exc.rule if isinstance(exc, CustodyError) else None
        item = next(iter(row.data.items()), None)
        self.outcomes[row.line] = RowOutcome(
            line=row.line, status="invalid", item=item, reason=reason(exc), rule=rule
        )

    def done(self, row: Row, receipt: EventReceipt) -> None:
        self.outcomes[row.line] = RowOutcome(
            line=row.line,
            status="replayed" if receipt.replayed else "committed",
            item=next(iter(row.data.items()), None),
            event_id=receipt.event_id,
            seq=receipt.seq,
        )

    def batch(self, tracer: Tracer, rows: Sequence[Row]) -> None:
        todo: list[Row] = []
        for row in rows:
            prior = tracer.receipt(self.actor.id, row.key)
            try:
                if prior is None:
                    check_role(self.actor, EventType(row.data.type))
                    todo.append(row)
                    continue
                if row.event is None:
                    check_replay(tracer, prior, row.data, key=row.key)
                elif compute_event_id(row.event) != prior.event_id:
                    raise InvalidEvent(f"idempotency key {row.key!r} was used for another event")
                self.done(row, prior)
            except (ProblemError, TraceError) as exc:
                self.invalid(row, exc)
        self.commit(tracer, todo)

    def sign(self, tracer: Tracer, row: Row, head: Heads) -> tuple[Submission, Event]:
        if row.signed is not None and row.event is not None:
            return row.signed, row.event
        if self.signer is None:
            self.signer = custodial_signer(self.services, self.actor.id)
        event = build_event(self.actor, row.data, key=row.key, when=row.when or self.now,
                            head=head, region=row.region, read_point=row.read_point,
                            prev=row.prev)  # fmt: skip
        return tracer.sign(event, key_id=self.signer.key_id, key=self.signer.private_key), event

    def commit(self, tracer: Tracer, rows: Sequence[Row]) -> None:
        """Sign and submit ``rows``; a refused batch is halved until the refused rows are found."""
        if not rows:
            return
        # Later rows chain onto (or correct) earlier ones: their ids are worked out here.
        touches = Counter(item for row in rows for item in row.data.items())
        corrections = any(isinstance(row.data, CorrectionData) for row in rows)
        heads: dict[str, str | None] = {}
        recent: dict[str, Sequence[str]] = {}
        base = world_head(tracer)
        built: list[tuple[Row, Submission]] = []
        for row in rows:
            try:
                check_visible(self.caller, tracer, row.data)
                check_corrects(tracer, row.data, recent)
                submission, event = self.sign(
                    tracer, row, lambda i: heads[i] if i in heads else base(i)
                )
            except (ProblemError, TraceError, LedgerError) as exc:
                self.invalid(row, exc)
                continue
            if corrections or any(touches[item] > 1 for item in event.items()):
                eid = compute_event_id(event)
                heads.update(dict.fromkeys(event.items(), eid))
                recent[eid] = event.items()
            built.append((row, submission))
        try:
            receipts = tracer.submit([submission for _, submission in built])
        except (TraceError, LedgerError) as exc:
            if len(built) == 1:
                self.invalid(built[0][0], exc)
                return
            half = len(built) // 2
            self.commit(tracer, [row for row, _ in built[:half]])
            self.commit(tracer, [row for row, _ in built[half:]])
            return
        for (row, _), receipt in zip(built, receipts, strict=True):
            self.done(row, receipt)


def import_rows(
    services: Services, caller: Principal, rows: Sequence[Row | RowIssue], *, all_rows: bool
) -> BulkReport:
    """Record every valid row (in batches, under the write lock) and report on each row."""
    assert caller.actor is not None
    run = _Import(services, caller, caller.actor, datetime.now(UTC), {})
    valid: list[Row] = []
    seen: dict[str, int] = {}
    for row in rows:
        if isinstance(row, RowIssue):
            run.outcomes[row.line] = RowOutcome(
                line=row.line, status="invalid", item=row.item, reason=row.reason
            )
        elif row.key in seen:
            why = f"the same event as line {seen[row.key]} (idempotency key {row.key})"
            run.outcomes[row.line] = RowOutcome(line=row.line, status="invalid", reason=why)
        else:
            seen[row.key] = row.line
            valid.append(row)
    for start in range(0, len(valid), BATCH_SIZE):
        with services.writing() as tracer:
            run.batch(tracer, valid[start : start + BATCH_SIZE])
    outcomes = sorted(run.outcomes.values(), key=lambda o: o.line)
    count = Counter(o.status for o in outcomes)
    return BulkReport(
        rows=len(outcomes),
        committed=count["committed"],
        replayed=count["replayed"],
        invalid=count["invalid"],
        outcomes=[o for o in outcomes if all_rows or o.status == "invalid"],
    )
