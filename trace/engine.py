"""The engine: signed events in, custody rules checked, log appended, projections kept.

:meth:`Tracer.submit` takes signed submissions and, for a batch:

1. catches up with the log (other processes may have appended);
2. parses each event, checks that its signer key belongs to its actor, its
   time is not in the future, and its idempotency key (a retry returns the
   original receipt; a replayed event under a new key is refused);
3. runs the custody rules against the current state plus the batch so far;
4. appends the batch to the log *conditionally on the log size it checked
   against* — if another writer appended first, it catches up and re-checks
   (optimistic concurrency: of two racing handovers of one item, exactly one
   wins);
5. writes the new states to the projection tables.

Every signature is verified before anything is appended. For a batch of 64 or
more, a worker process of the log (:mod:`ledger.verify_pool`) checks the signatures
and computes each event's id while this process runs steps 1-3, and the log waits
for the check before it commits; :meth:`Tracer.submit_stream` keeps the next two
batches checking while one is ruled on, so both cores work. (A thread could not do
this: the rules hold the GIL it needs between verifications.) A refused batch
appends nothing. Each event is parsed and checked once; its id is computed once,
by the worker or here; the result travels with it to the log and the projections.
Projections are a pure function of the log: after a crash between steps 4 and 5
the next start replays what is missing.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from ledger import LedgerError, Log, StaleHead
from ledger.entry import Entry, Submission, sign_submission
from ledger.keys import KeyRecord, KeyRole
from ledger.verify_pool import SignatureCheck
from schemas.actors import Actor
from schemas.epcis import event_id as compute_event_id
from schemas.events import EVENT_KIND_PREFIX, Event
from trace.deadlines import HolidayCalendar, lateness, prc_calendar
from trace.errors import (
    Conflict,
    DuplicateEvent,
    InvalidEvent,
    TraceError,
    UnknownActor,
    UnknownItem,
)
from trace.projections import ProjectedEvent, Projections
from trace.receipts import ReceiptIndex
from trace.rules import check_event
from trace.state import Effects, HandoverState, ItemState, MemoryWorld

__all__ = ["ACTOR_REGISTER", "Accepted", "EventReceipt", "Subscriber", "Tracer", "parse_event"]

logger = logging.getLogger(__name__)

ACTOR_REGISTER = "actor.register"
DEFAULT_TOLERANCE = 0.005
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
_MAX_ATTEMPTS = 20
# Batches whose signatures and event ids are being checked ahead of the one being submitted.
_STREAM_AHEAD = 2


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """What the submitter gets back: the event's id and where the log put it."""

    event_id: str
    seq: int
    recorded_at: datetime
    late_working_days: int | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event the log holds, as subscribers (the lifecycle graph, caches) receive it."""

    seq: int
    event: Event
    event_id: str
    recorded_at: datetime
    effects: Effects


Subscriber = Callable[[Accepted], None]


@dataclass(slots=True)
class _Planned:
    index: int
    submission: Submission
    event: Event
    body: dict[str, Any]  # event.body()
    event_id: str
    effects: Effects


@dataclass(slots=True)
class _Changes:
    """What a batch of accepted events changed, as one projections write takes it: each
    item's and handover's last state with its log position, and each item's state before
    the batch (None for a new item)."""

    items: dict[str, tuple[ItemState, int]] = field(default_factory=dict)
    handovers: dict[str, tuple[HandoverState, int]] = field(default_factory=dict)
    before: dict[str, ItemState | None] = field(default_factory=dict)

    def apply(self, world: MemoryWorld, effects: Effects, seq: int) -> None:
        """Apply ``effects`` (of the entry at ``seq``) to ``world`` and note them."""
        for item_id in effects.items:
            if item_id not in self.before:
                self.before[item_id] = world.item(item_id)
        world.apply(effects)
        self.items.update({k: (v, seq) for k, v in effects.items.items()})
        self.handovers.update({k: (v, seq) for k, v in effects.handovers.items()})


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@functools.lru_cache(maxsize=256)  # the entries of one append share their time
def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def parse_event(body: Any) -> Event:
    """An event from a signed body; schema errors name the field."""
    try:
        return Event.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidEvent(f"{where}: {first['msg']}", field=where) from exc


def event_id_of(canonical_body: bytes) -> str | None:
    """The id of the event whose signed body is ``canonical_body``; None if it is no event.

    Computed from the bytes the log stores, as a replay of the log computes it; the log's
    signature workers run it beside each check (:meth:`Tracer.submit_stream`).
    """
    try:
        event = parse_event(orjson.loads(canonical_body))
        return compute_event_id(event, body=event.body())
    except (TraceError, ValueError):
        return None


class Tracer:
    """Custody rules in front of the log, with projections behind it."""

    def __init__(
        self,
        log: Log,
        projections: Projections,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        calendar: HolidayCalendar | None = None,
    ) -> None:
        self.log = log
        self.projections = projections
        self.tolerance = tolerance
        self.clock_skew = clock_skew
        self.clock = clock
        self.calendar = calendar or prc_calendar()
        self._key_owner: dict[str, str] = {}
        self._log_keys: set[str] = set()
        self._key_records: dict[str, KeyRecord] = {}
        # Where each recorded event is, by idempotency key and by id (loaded from the tables).
        self._recorded = ReceiptIndex()
        # Called, in log order, for every event applied after they subscribe (see subscribe()).
        self._subscribers: list[Subscriber] = []
        self._seq, self.world = self._load()
        self.catch_up()

    @property
    def seq(self) -> int:
        """How many log entries the world reflects (the tables may already hold more,
        written by another engine on the same database)."""
        return self._seq

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` for every event applied from now on, in log order."""
        self._subscribers.append(subscriber)

    def _publish(self, accepted: Accepted) -> None:
        for subscriber in self._subscribers:
            subscriber(accepted)

    def close(self) -> None:
        self.log.close()
        self.projections.close()

    # --- state from the log ---

    def _load(self) -> tuple[int, MemoryWorld]:
        """The log position the tables reflect and their world, with the receipts recorded,
        all as of one commit: another engine may be writing what it caught up with meanwhile."""
        with self.projections.reading() as conn:
            seq = self.projections.seq(conn)
            world = self.projections.load_world(conn)
            for at, eid, actor, key in self.projections.receipt_keys(conn):
                self._recorded.add(at, eid, actor, key)
        return seq, world

    def _prior(self, actor: str, key: str) -> EventReceipt | None:
        """The receipt of the event recorded under ``(actor, key)``, read from the tables."""
        seq = self._recorded.seq_of_key(actor, key)
        row = None if seq is None else self.projections.receipt(seq)
        if row is None or (row[2], row[3]) != (actor, key):
            return None
        return EventReceipt(row[1], row[0], _as_utc(row[4]), row[5], True)

    def _is_recorded(self, event_id: str) -> bool:
        seq = self._recorded.seq_of_id(event_id)
        row = None if seq is None else self.projections.receipt(seq)
        return row is not None and row[1] == event_id

    def _refresh_keys(self) -> None:
        for record in self.log.key_records():
            self._key_owner[record.key_id] = record.owner
            self._key_records[record.key_id] = record
            if record.role is KeyRole.LOG:
                self._log_keys.add(record.key_id)

    def catch_up(self) -> int:
        """Apply log entries the projections do not reflect yet; return how many."""
        head = self.log.head().size
        if head <= self._seq:
            return 0
        start = self._seq
        self._refresh_keys()
        for chunk_start in range(start, head, 2048):
            entries = self.log.entries(chunk_start, min(head, chunk_start + 2048))
            self._replay(entries)
        logger.info("projections caught up from %d to %d", start, head)
        return head - start

    def _replay(self, entries: Sequence[Entry]) -> None:
        changes = _Changes()
        actors: list[tuple[Actor, int]] = []
        events: list[ProjectedEvent] = []
        for entry in entries:
            if entry.kind == ACTOR_REGISTER:
                if entry.key_id not in self._log_keys:
                    raise TraceError(f"entry {entry.seq}: actor.register not signed by a log key")
                actor = Actor.model_validate(entry.body)
                self.world.actors[actor.id] = actor
                actors.append((actor, entry.seq))
            elif entry.kind.startswith(EVENT_KIND_PREFIX):
                event = parse_event(entry.body)
                body = event.body()
                eid = compute_event_id(event, body=body)
                effects = check_event(self.world, event, event_id=eid, tolerance=self.tolerance)
                changes.apply(self.world, effects, entry.seq)
                recorded_at = _parse_time(entry.recorded_at)
                events.append(self._projected(entry.seq, event, body, eid, recorded_at))
                self._publish(Accepted(entry.seq, event, eid, recorded_at, effects))
        seq = entries[-1].seq + 1 if entries else self._seq
        self.projections.write(
            seq=seq,
            items=changes.items.values(),
            handovers=changes.handovers.values(),
            actors=actors,
            events=events,
            before=changes.before,
        )
        self._seq = seq

    def _projected(
        self, seq: int, event: Event, body: dict[str, Any], eid: str, recorded_at: datetime
    ) -> ProjectedEvent:
        actor = self.world.actor(event.actor)
        late = (
            lateness(actor.role, event.type, event.event_time, recorded_at, self.calendar)
            if actor is not None
            else None
        )
        days = None if late is None else late.working_days
        self._recorded.add(seq, eid, event.actor, event.idempotency_key)
        return ProjectedEvent(
            seq=seq,
            event_id=eid,
            type=event.type.value,
            actor=event.actor,
            region=event.region,
            event_time=event.event_time,
            recorded_at=recorded_at,
            idempotency_key=event.idempotency_key,
            late_working_days=days,
            body=body,
            prev=dict(event.prev),
        )

    # --- actors ---

    def register_actor(self, actor: Actor, verifier_keys: Sequence[str] = ()) -> None:
        """Register an organisation and its signing keys (signed with the log key)."""
        self.catch_up()
        if self.world.actor(actor.id) is not None:
            raise InvalidEvent(f"actor {actor.id!r} is already registered", field="id")
        submissions = [self.log.sign(ACTOR_REGISTER, actor.model_dump(mode="json"))]
        for key in verifier_keys:
            body = {"key": key, "role": KeyRole.ENTRY.value, "owner": actor.id}
            submissions.append(self.log.sign("ledger.key.add", body))
        self.log.append(submissions)
        self.catch_up()

    def add_key(self, actor_id: str, verifier_key: str) -> None:
        """Register another key for an actor (rotation: add the new one, then revoke the old)."""
        if self.world.actor(actor_id) is None:
            raise UnknownActor(f"actor {actor_id!r} is not registered")
        self.log.register_key(verifier_key, owner=actor_id)
        self._refresh_keys()

    def sign(self, event: Event, *, key_id: str, key: Any) -> Submission:
        """Sign an event as its actor would (simulation, tests, custodial keys)."""
        return sign_submission(event.kind, event.body(), key_id=key_id, key=key)

    def receipt(self, actor: str, idempotency_key: str) -> EventReceipt | None:
        """The receipt of the event an actor recorded under an idempotency key, if any."""
        self.catch_up()
        return self._prior(actor, idempotency_key)

    # --- history ---

    def history(self, item: str) -> list[Entry]:
        """The log entries of every event that touched ``item``, oldest first."""
        self.catch_up()
        if self.world.item(item) is None:
            raise UnknownItem(f"{item} is not known")
        return [self.log.entry(seq) for seq in self.projections.item_seqs(item)]

    def history_proof(self, item: str) -> tuple[list[Entry], str]:
        """The item's history and a proof bundle of its newest event, for offline checking."""
        entries = self.history(item)
        return entries, self.log.proof_bundle(entries[-1].seq)

    # --- events ---

    def _check_signer(self, index: int, s: Submission, event: Event) -> None:
        if s.kind != event.kind:
            raise InvalidEvent(f"submission {index}: kind {s.kind!r} does not match {event.kind!r}")
        owner = self._key_owner.get(s.key_id)
        if owner is None:
            self._refresh_keys()
            owner = self._key_owner.get(s.key_id)
        if owner is None:
            raise InvalidEvent(
                f"submission {index}: key {s.key_id!r} is not registered", field="key_id"
            )
        if owner != event.actor:
            raise InvalidEvent(
                f"submission {index}: key {s.key_id!r} belongs to {owner!r}, not to {event.actor!r}",
                field="actor",
            )
        if event.event_time > self.clock() + self.clock_skew:
            raise InvalidEvent(
                f"submission {index}: event_time {event.event_time.isoformat()} is in the future",
                field="event_time",
            )

    def _plan(
        self, submissions: Sequence[Submission], checks: SignatureCheck | None
    ) -> tuple[list[EventReceipt | None], list[_Planned]]:
        overlay = MemoryWorld(base=self.world)
        receipts: list[EventReceipt | None] = [None] * len(submissions)
        planned: list[_Planned] = []
        batch_ids: set[str] = set()
        batch_keys: set[tuple[str, str]] = set()
        for i, s in enumerate(submissions):
            if not s.kind.startswith(EVENT_KIND_PREFIX):
                raise InvalidEvent(f"submission {i}: kind {s.kind!r} is not an event", field="kind")
            event = parse_event(s.body)
            self._check_signer(i, s, event)
            body = event.body()
            eid = (checks and checks.derived(i)) or compute_event_id(event, body=body)
            key = (event.actor, event.idempotency_key)
            prior = self._prior(*key)
            if prior is not None or key in batch_keys:
                if prior is not None and prior.event_id == eid:
                    receipts[i] = prior
                    continue
                raise InvalidEvent(
                    f"submission {i}: idempotency key {event.idempotency_key!r} was used for another event",
                    field="idempotency_key",
                )
            if eid in batch_ids or self._is_recorded(eid):
                raise DuplicateEvent(f"submission {i}: event {eid} is already recorded (a replay)")
            try:
                effects = check_event(overlay, event, event_id=eid, tolerance=self.tolerance)
            except TraceError as exc:
                _at(i, exc)
                raise
            overlay.apply(effects)
            batch_ids.add(eid)
            batch_keys.add(key)
            planned.append(_Planned(i, s, event, body, eid, effects))
        return receipts, planned

    def submit(self, submissions: Sequence[Submission]) -> list[EventReceipt]:
        """Check and append a batch of signed events: all of them, or none (the error says why)."""
        return self._submit(submissions, self._start_checks(submissions))

    def submit_stream(
        self,
        batches: Iterable[Sequence[Submission]],
        *,
        before: Callable[[Sequence[Submission]], None] | None = None,
    ) -> Iterator[list[EventReceipt]]:
        """:meth:`submit` each batch in turn, yielding its receipts.

        While one batch is ruled on and stored here, the next one's signatures are checked
        and its event ids computed in the log's worker processes, so both cores work for a
        stream of batches (an import, a simulation). ``before`` is called with each batch
        just before it is submitted (a simulated clock sets its time there). A refused
        batch raises as :meth:`submit` does; the batches after it are not submitted.
        """
        ahead: deque[tuple[Sequence[Submission], SignatureCheck | None]] = deque()
        for batch in batches:
            ahead.append((batch, self._start_checks(batch)))
            if len(ahead) > _STREAM_AHEAD:
                yield self._submit_first(ahead, before)
        while ahead:
            yield self._submit_first(ahead, before)

    def _submit_first(
        self,
        ahead: deque[tuple[Sequence[Submission], SignatureCheck | None]],
        before: Callable[[Sequence[Submission]], None] | None,
    ) -> list[EventReceipt]:
        batch, checks = ahead.popleft()
        try:
            if before is not None:
                before(batch)
            return self._submit(batch, checks)
        except BaseException:
            for _, later in ahead:
                if later is not None:
                    later.cancel()
            raise

    def _start_checks(self, submissions: Sequence[Submission]) -> SignatureCheck | None:
        return self.log.check_signatures(submissions, derive=event_id_of)

    def _submit(
        self, submissions: Sequence[Submission], signatures: SignatureCheck | None
    ) -> list[EventReceipt]:
        # The signatures are checked in worker processes while the rules run here.
        for _attempt in range(_MAX_ATTEMPTS):
            self.catch_up()
            size = self._seq
            try:
                receipts, planned = self._plan(submissions, signatures)
            except BaseException:
                if signatures is not None:
                    signatures.cancel()
                raise
            if not planned:
                return [r for r in receipts if r is not None]
            try:
                appended = self.log.append(
                    [p.submission for p in planned], expect_size=size, signatures=signatures
                )
            except StaleHead:
                continue  # someone else appended: catch up and check again
            except LedgerError as exc:
                raise InvalidEvent(str(exc)) from exc
            projected = self._project(planned, appended)
            for p, e in zip(planned, projected, strict=True):
                receipts[p.index] = EventReceipt(
                    e.event_id, e.seq, e.recorded_at, e.late_working_days
                )
            return [r for r in receipts if r is not None]
        raise Conflict(f"the log kept moving: gave up after {_MAX_ATTEMPTS} attempts")

    def _project(
        self, planned: Sequence[_Planned], appended: Sequence[Any]
    ) -> list[ProjectedEvent]:
        changes = _Changes()
        events: list[ProjectedEvent] = []
        for p, receipt in zip(planned, appended, strict=True):
            changes.apply(self.world, p.effects, receipt.seq)
            recorded_at = _parse_time(receipt.recorded_at)
            events.append(self._projected(receipt.seq, p.event, p.body, p.event_id, recorded_at))
            self._publish(Accepted(receipt.seq, p.event, p.event_id, recorded_at, p.effects))
        seq = appended[-1].seq + 1
        self.projections.write(
            seq=seq,
            items=changes.items.values(),
            handovers=changes.handovers.values(),
            events=events,
            before=changes.before,
        )
        self._seq = seq
        return events


def _at(index: int, exc: TraceError) -> None:
    """Prefix the error's message with the submission's position in the batch."""
    exc.args = (f"submission {index}: {exc.args[0]}" if exc.args else f"submission {index}",)
