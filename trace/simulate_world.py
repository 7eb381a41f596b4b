"""The simulator's side of the engine: a simulated clock, the cast of actors, batched signing.

The log records when each entry was appended; in a simulation that time must be simulated
too, or every event of 2021 would look years late. :class:`SimClock` is a clock the
simulator moves forward, and :func:`open_simulation_tracer` builds a log and a tracer on it.

:class:`Emitter` turns event bodies into signed events: it keeps each item's latest event
id (so ``prev`` chains within a batch before anything reaches the log), submits batches
through :meth:`Tracer.submit` with the clock at the batch's upload time, and holds back
late reports until their (simulated) report day.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Final

from ledger import Log, note, open_store
from ledger.entry import Submission
from schemas.actors import PROVINCES, Actor, Role
from schemas.epcis import event_id
from schemas.events import (
    AcceptData,
    CollectData,
    CommissionData,
    DismantleData,
    Event,
    EventData,
    HandoverData,
    InstallData,
    LotCreateData,
    LotSmeltData,
    RecycleData,
    RemoveData,
    RepurposeData,
    RetireData,
    is_lot_id,
)
from trace.deadlines import (
    DEADLINES,
    HolidayCalendar,
    add_working_days,
    lateness,
    working_days_between,
)
from trace.engine import EventReceipt, Tracer
from trace.errors import TraceError
from trace.projections import Projections
from trace.simulate_truth import LateReport

__all__ = [
    "CST",
    "SIM_EPOCH",
    "SIM_ORIGIN",
    "Emitter",
    "LateDecision",
    "SimActor",
    "SimClock",
    "SimProgress",
    "SimulationError",
    "Upload",
    "actor_code",
    "open_simulation_tracer",
    "register_cast",
]

CST: Final = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the offset of every simulated event."""
SIM_EPOCH: Final = datetime(2018, 1, 1, tzinfo=UTC)
"""Where a :class:`SimClock` starts unless told otherwise: before any simulated event."""
SIM_ORIGIN: Final = "suyuan.sim/log"
_REPORT_HOUR: Final = time(10, 0)
_KEY_PREFIX: Final = "sim"


class SimulationError(TraceError):
    """Raised when the simulator cannot do what its config asks, or contradicts the engine."""


class SimClock:
    """A clock the simulator moves forward; the log and the tracer read it.

    >>> clock = SimClock()
    >>> clock.advance_to(datetime(2022, 5, 1, tzinfo=UTC))
    >>> clock.now().isoformat()
    '2022-05-01T00:00:00+00:00'
    >>> clock.advance_to(datetime(2021, 1, 1, tzinfo=UTC))  # never backwards
    >>> clock.now().year
    2022
    """

    def __init__(self, start: datetime = SIM_EPOCH) -> None:
        if start.utcoffset() is None:
            raise ValueError("a SimClock starts at an aware time (with a UTC offset)")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The simulated time (UTC)."""
        return self._now

    def __call__(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        """Move the clock to ``moment`` if that is later; it never runs backwards."""
        self._now = max(self._now, moment.astimezone(UTC))


def open_simulation_tracer(
    url: str,
    *,
    clock: SimClock,
    signer: note.Signer | None = None,
    origin: str = SIM_ORIGIN,
    calendar: HolidayCalendar | None = None,
) -> Tracer:
    """A log and a tracer on ``url`` whose recorded times come from ``clock``.

    ``url`` is a SQLite path (or ``sqlite:///PATH``) or a ``postgresql://`` URL; the log
    key is generated unless ``signer`` is given. ``calendar`` counts the working days of
    reporting deadlines (the tracer's default, Monday to Friday, unless given; e.g.
    :func:`trace.deadlines.prc_calendar`).
    """
    log_signer = signer or note.Signer.generate("suyuan-sim-log")
    log = Log.create(open_store(url), signer=log_signer, origin=origin, clock=clock.now)
    return Tracer(log, Projections(url), clock=clock.now, calendar=calendar)


@dataclass(frozen=True, slots=True)
class SimActor:
    """A simulated organisation: its registration, its signing key and its codes.

    ``code`` is its GB/T 34014 manufacturer code (battery makers, cascade operators) or
    its VIN world manufacturer identifier (automakers); empty for the others.
    """

    actor: Actor
    signer: note.Signer = field(repr=False)
    code: str = ""

    @property
    def id(self) -> str:
        return self.actor.id

    @property
    def role(self) -> Role:
        return self.actor.role

    @property
    def region(self) -> str:
        return self.actor.region


_ROLE_PREFIXES: Final[Mapping[Role, tuple[str, str]]] = {
    Role.BATTERY_MAKER: ("bm", "battery maker"),
    Role.AUTOMAKER: ("am", "automaker"),
    Role.COLLECTOR: ("col", "collection point"),
    Role.CASCADE_OPERATOR: ("cas", "cascade-use operator"),
    Role.RECYCLER: ("rec", "recycler"),
    Role.SCRAP_PROCESSOR: ("scr", "scrap processor"),
}
_VIN_ALPHABET: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_CODE_LEADS: Final[Mapping[Role, str]] = {Role.BATTERY_MAKER: "B", Role.CASCADE_OPERATOR: "T"}


def actor_code(role: Role, number: int) -> str:
    """The manufacturer code (battery makers, cascade operators) or VIN prefix (automakers)."""
    if role is Role.AUTOMAKER:
        return "L" + _VIN_ALPHABET[number // len(_VIN_ALPHABET)] + _VIN_ALPHABET[number]
    lead = _CODE_LEADS.get(role)
    return "" if lead is None else f"{lead}{number:02d}"


def register_cast(
    tracer: Tracer, counts: Mapping[Role, int], provinces: Sequence[str]
) -> dict[Role, list[SimActor]]:
    """Register ``counts[role]`` organisations per role, spread over ``provinces``."""
    cast: dict[Role, list[SimActor]] = {}
    for offset, (role, count) in enumerate(counts.items()):
        prefix, label = _ROLE_PREFIXES[role]
        for number in range(1, count + 1):
            region = provinces[(offset + number - 1) % len(provinces)]
            actor = Actor(
                id=f"{prefix}-{number:02d}",
                name=f"{PROVINCES[region]} {label} {number:02d}",
                role=role,
                region=region,
            )
            signer = note.Signer.generate(actor.id)
            tracer.register_actor(actor, [signer.verifier.to_string()])
            cast.setdefault(role, []).append(SimActor(actor, signer, actor_code(role, number)))
    return cast


@dataclass(frozen=True, slots=True)
class SimProgress:
    """Where a run is: the simulated time reached, events submitted, share of time done."""

    simulated: datetime
    events: int
    fraction: float


@dataclass(frozen=True, slots=True)
class Upload:
    """A batch ready for the engine: recorded at ``at``, with the ids the simulator expects."""

    at: datetime
    submissions: tuple[Submission, ...]
    event_ids: tuple[str, ...]
    events: int  # signed so far, this batch included


@dataclass(slots=True)
class _Pending:
    event: Event
    event_id: str
    submission: Submission
    actor: SimActor


@dataclass(frozen=True, slots=True)
class LateDecision:
    """Whether events with a reporting deadline are reported late, and by how much."""

    rng: random.Random
    share: float
    working_days: tuple[int, int]
    last_report: datetime  # no report is held past the end of the simulation


class Emitter:
    """Signs events, chains them, and submits them in batches on the simulated clock."""

    def __init__(
        self,
        tracer: Tracer,
        clock: SimClock,
        *,
        late: LateDecision,
        max_batch: int,
        span: tuple[datetime, datetime],
        progress: Callable[[SimProgress], None] | None = None,
    ) -> None:
        self.tracer = tracer
        self.clock = clock
        self.late = late
        self.max_batch = max_batch
        self.span = span
        self.progress = progress
        # Where batches go instead of the tracer when the simulation runs in a worker process.
        self.uploader: Callable[[Upload], None] | None = None
        self.heads: dict[str, str] = {}
        self.status: dict[str, str] = {}  # item -> the status the simulator expects
        self.pending: dict[str, str] = {}  # item -> open handover id
        self.counts: Counter[str] = Counter()
        self.late_reports: dict[str, LateReport] = {}
        self._batch: list[_Pending] = []
        self._deferred: list[tuple[datetime, int, _Pending]] = []
        self._held: dict[str, datetime] = {}  # item -> when its held-back event is reported
        self._serial = 0

    # --- building events ---

    def emit(self, actor: SimActor, when: datetime, data: EventData) -> str:
        """Sign ``data`` as ``actor`` at ``when``; return the event id. May defer or flush."""
        items = data.items()
        self._serial += 1
        event = Event(
            actor=actor.id,
            event_time=when,
            region=actor.region,
            idempotency_key=f"{_KEY_PREFIX}-{self._serial:08d}",
            prev={item: self.heads.get(item) for item in items},
            data=data,
        )
        eid = event_id(event)
        signer = actor.signer
        pending = _Pending(
            event, eid, self.tracer.sign(event, key_id=signer.key_id, key=signer.private_key), actor
        )
        for item in items:
            self.heads[item] = eid
        self._model(data, eid)
        self.counts[event.type.value] += 1
        report_at = self._report_time(actor, event)
        held = self.held_until(items)
        if held is not None:  # an event on a held-back item is reported with it, after it
            report_at = held if report_at is None else max(report_at, held)
        if report_at is None:
            self._batch.append(pending)
            if len(self._batch) >= self.max_batch:
                self.flush(when)
        else:
            heapq.heappush(self._deferred, (report_at, self._serial, pending))
            self._held.update(dict.fromkeys(items, report_at))
        return eid

    def _report_time(self, actor: SimActor, event: Event) -> datetime | None:
        """When an event with a deadline is reported, if it is chosen to be late.

        The delay is drawn from the config's range of working days, and always passes the
        deadline; no report is held past the end of the simulation.
        """
        rule = DEADLINES.get((actor.role, event.type))
        late = self.late
        if rule is None or late.share <= 0 or late.rng.random() >= late.share:
            return None
        low, high = late.working_days
        delay = late.rng.randint(max(low, rule.working_days + 1), max(high, rule.working_days + 1))
        day = add_working_days(event.event_time.date(), delay, self.tracer.calendar)
        report_at = datetime.combine(day, _REPORT_HOUR, tzinfo=event.event_time.tzinfo)
        return None if report_at > late.last_report else report_at

    def _model(self, data: EventData, eid: str) -> None:
        """The status each touched item should now have (the rules' outcome as intended)."""
        status = self.status
        if isinstance(data, CommissionData | RemoveData):
            status[data.item] = "in_stock"
        elif isinstance(data, InstallData):
            status[data.item] = "installed"
        elif isinstance(data, RetireData):
            status[data.item] = "retired"
        elif isinstance(data, CollectData):
            status[data.item] = "collected"
        elif isinstance(data, HandoverData):
            self.pending.update(dict.fromkeys(data.items(), eid))
        elif isinstance(data, AcceptData):
            for item in data.items():
                self.pending.pop(item, None)
        elif isinstance(data, RepurposeData):
            status[data.item], status[data.new_code] = "repurposed", "in_stock"
        elif isinstance(data, DismantleData):
            status[data.item] = "dismantled"
            status.update((o.lot.id, "in_stock") for o in data.outputs)
        elif isinstance(data, RecycleData | LotSmeltData):
            for entry in data.inputs:
                status[entry.item] = "consumed" if is_lot_id(entry.item) else "recycled"
            status.update((o.lot.id, "in_stock") for o in data.outputs)
        elif isinstance(data, LotCreateData):
            status[data.lot.id] = "in_stock"

    # --- timing ---

    def is_held(self, item: str) -> bool:
        """Whether an event on ``item`` is held back, not reported yet."""
        return item in self._held

    def held_until(self, items: Iterable[str]) -> datetime | None:
        """When the last held-back event on any of ``items`` is reported, if one is held."""
        times = [self._held[i] for i in items if i in self._held]
        return max(times) if times else None

    def next_report(self) -> datetime | None:
        """When the next held-back event is due to be reported."""
        return self._deferred[0][0] if self._deferred else None

    def report_due(self, at: datetime) -> None:
        """Submit every held-back event due by ``at``, with the batch, recorded at ``at``."""
        due: list[_Pending] = []
        while self._deferred and self._deferred[0][0] <= at:
            due.append(heapq.heappop(self._deferred)[2])
        self._batch.extend(due)
        self.flush(at)
        recorded = self.clock.now()
        for p in due:
            for item in p.event.items():
                if self._held.get(item, at) <= at:
                    self._held.pop(item, None)
            self._note_late(p, recorded)

    def _note_late(self, p: _Pending, recorded: datetime) -> None:
        role, kind, when = p.actor.role, p.event.type, p.event.event_time
        calendar = self.tracer.calendar
        late = lateness(role, kind, when, recorded, calendar)
        if late is None:  # held back only with another event, and within its own deadline
            return
        delay = working_days_between(when.date(), recorded.astimezone(when.tzinfo).date(), calendar)
        self.late_reports[p.event_id] = LateReport(
            actor=p.actor.id,
            role=role.value,
            type=kind.value,
            items=tuple(p.event.items()),
            event_time=p.event.event_time.isoformat(),
            recorded_at=recorded.isoformat(),
            delay_working_days=delay,
            late_working_days=late.working_days,
        )

    def flush(self, at: datetime) -> None:
        """Upload the batch with the clock at ``at`` (or its latest event, if later)."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        latest = max(p.event.event_time for p in batch)
        self.clock.advance_to(max(at, latest))
        submissions = tuple(p.submission for p in batch)
        upload = Upload(
            self.clock.now(), submissions, tuple(p.event_id for p in batch), self.events
        )
        if self.uploader is None:
            self.deliver(upload)
        else:
            self.uploader(upload)

    def deliver(self, upload: Upload) -> None:
        """Submit an upload through the tracer, its clock at the upload's time."""
        self.clock.advance_to(upload.at)
        self.delivered(upload, self.tracer.submit(upload.submissions))

    def delivered(self, upload: Upload, receipts: Sequence[EventReceipt]) -> None:
        """Check the receipts of a submitted upload against the simulator's ids; report."""
        for eid, receipt in zip(upload.event_ids, receipts, strict=True):
            if receipt.event_id != eid:
                raise SimulationError(
                    f"the engine gave event {receipt.event_id}, the simulator computed {eid}"
                )
        if self.progress is not None:
            start, end = self.span
            share = (upload.at - start) / (end - start)
            self.progress(SimProgress(upload.at, upload.events, min(1.0, max(0.0, share))))

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Items by kind (``pack``, ``lot``) and the status the simulator left them in."""
        counts: dict[str, Counter[str]] = {}
        for item, status in self.status.items():
            counts.setdefault("lot" if is_lot_id(item) else "pack", Counter())[status] += 1
        return {kind: dict(sorted(c.items())) for kind, c in sorted(counts.items())}

    @property
    def events(self) -> int:
        """Events signed so far (submitted, batched or held back)."""
        return self._serial
