"""A seeded fleet simulator with known ground truth, for the demo, the tests and the benchmarks.

:func:`simulate` creates organisations with keys, draws the life of every pack
(:mod:`trace.simulate_plan`), and walks simulated time writing each event through the real
path — :meth:`Tracer.sign` and :meth:`Tracer.submit`, in weekly batches — so every event
passes the custody rules and lands on the log. What it did is counted, exactly, in a
:class:`GroundTruth` that the rate engine and the anomaly detectors are tested against.

Hashing and signing the events costs the simulator about as much as checking and storing
them costs the engine; with ``worker=True`` the simulator runs in a forked process and only
the engine's part stays in the caller's (about 1.6 times the events per second on two busy
cores, measured at 2,000 packs).

The pieces:

=================================  ============================================================
:mod:`trace.simulate_config`       :class:`SimConfig`, its presets, the anomaly kinds
:mod:`trace.simulate_world`        :class:`SimClock`, the tracer, actors, signing in batches
:mod:`trace.simulate_plan`         every pack's life, drawn from the seed; anomalies placed
:mod:`trace.simulate_agenda`       steps in simulated-time order, weekly uploads, held-back reports
:mod:`trace.simulate_flows`        a pack's life as events
:mod:`trace.simulate_lots`         recycler outputs, shipments, smelting, recycled content
:mod:`trace.simulate_materials`    masses of black mass, refined products, reagents and scrap
:mod:`trace.simulate_truth`        :class:`GroundTruth` and what each field means
=================================  ============================================================

A run of the demo preset, timed (about 70,000 events)::

    PYTHONPATH=. uv run --frozen --no-sync python -c "
    import time; from trace.simulate import *
    t = open_simulation_tracer('var/sim.db', clock=SimClock()); s = time.perf_counter()
    g = simulate(t, SimConfig.demo(), worker=True)
    print(g.events / (time.perf_counter() - s), 'events/s')"
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from ledger.entry import Submission
from schemas.actors import Role
from trace.engine import Tracer
from trace.simulate_config import DEFAULT_RECOVERY, INJECTED_KINDS, AnomalyKind, SimConfig
from trace.simulate_flows import Fleet
from trace.simulate_plan import plan_packs
from trace.simulate_truth import (
    Anomaly,
    ElementFlow,
    GroundTruth,
    LateReport,
    ProducerYear,
    RecycledContent,
    ScrapYear,
)
from trace.simulate_world import (
    CST,
    Emitter,
    LateDecision,
    SimClock,
    SimProgress,
    SimulationError,
    Upload,
    actor_code,
    open_simulation_tracer,
    register_cast,
)

__all__ = [
    "DEFAULT_RECOVERY",
    "INJECTED_KINDS",
    "Anomaly",
    "AnomalyKind",
    "ElementFlow",
    "GroundTruth",
    "LateReport",
    "ProducerYear",
    "RecycledContent",
    "ScrapYear",
    "SimClock",
    "SimConfig",
    "SimProgress",
    "SimulationError",
    "open_simulation_tracer",
    "simulate",
]


def _clock_of(tracer: Tracer) -> SimClock:
    clock = tracer.clock
    if isinstance(clock, SimClock):
        return clock
    owner = getattr(clock, "__self__", None)
    if isinstance(owner, SimClock):
        return owner
    raise SimulationError(
        "the tracer does not run on a SimClock; build it with open_simulation_tracer()"
    )


def _counts(config: SimConfig) -> dict[Role, int]:
    return {
        Role.BATTERY_MAKER: config.battery_makers,
        Role.AUTOMAKER: config.automakers,
        Role.COLLECTOR: config.collectors,
        Role.CASCADE_OPERATOR: config.cascade_operators,
        Role.RECYCLER: config.recyclers,
        Role.SCRAP_PROCESSOR: config.scrap_processors,
    }


def simulate(
    tracer: Tracer,
    config: SimConfig,
    *,
    progress: Callable[[SimProgress], None] | None = None,
    worker: bool = False,
) -> GroundTruth:
    """Simulate a fleet on ``tracer`` and return what happened, counted exactly.

    Parameters
    ----------
    tracer : Tracer
        A tracer on a fresh log whose clock is a :class:`SimClock` not yet past 1 January
        of ``config.first_year`` (see :func:`open_simulation_tracer`).
    config : SimConfig
        Who takes part, how packs age, what goes wrong; the same config (seed included)
        gives the same events, event ids and ground truth.
    progress : callable, optional
        Called after every uploaded batch with a :class:`SimProgress`.
    worker : bool
        Draw, build, hash and sign the events in a forked worker process while this one
        submits them (:func:`_run_in_worker`): the same events, ids, log and ground truth,
        with the simulator's share of the work off the engine's core. POSIX only.

    Returns
    -------
    GroundTruth

    Raises
    ------
    SimulationError
        The tracer has no simulated clock or it is already past the start, or the config
        asks for a pack the custody rules' mass balance could not recycle.
    TraceError
        The engine refused an event: a bug of the simulator (or of a rule).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> tracer = open_simulation_tracer(os.path.join(folder.name, "sim.db"), clock=SimClock())
    >>> truth = simulate(tracer, SimConfig.small(total_packs=20, seed=7))
    >>> truth.packs, truth.event_counts["commission"], len(truth.actors)
    (20, 20, 9)
    >>> len(tracer.log) == 1 + 2 * len(truth.actors) + truth.events  # genesis, actors, events
    True
    >>> tracer.close()
    >>> folder.cleanup()
    """
    clock = _clock_of(tracer)
    start = datetime(config.first_year, 1, 1, tzinfo=CST)
    end = datetime(config.last_year, 12, 31, 23, 59, 59, tzinfo=CST)
    if clock.now() > start:
        raise SimulationError(
            f"the clock reads {clock.now().isoformat()}, past the simulation's start "
            f"{start.isoformat()}; simulate on a fresh log"
        )
    counts = _counts(config)
    plans = plan_packs(
        config,
        maker_codes=[actor_code(Role.BATTERY_MAKER, n + 1) for n in range(config.battery_makers)],
        wmis=[actor_code(Role.AUTOMAKER, n + 1) for n in range(config.automakers)],
        counts={
            "automakers": config.automakers,
            "collectors": config.collectors,
            "cascade": config.cascade_operators,
            "recyclers": config.recyclers,
        },
    )
    clock.advance_to(start)
    cast = register_cast(tracer, counts, config.provinces)
    late = LateDecision(
        rng=random.Random(f"{config.seed}:late"),
        share=config.late_share,
        working_days=config.late_working_days,
        last_report=end,
    )
    emitter = Emitter(
        tracer, clock, late=late, max_batch=config.max_batch, span=(start, end), progress=progress
    )
    fleet = Fleet(config, emitter, cast, plans, span=(start, end))
    return _run_in_worker(fleet, emitter) if worker else fleet.run()


_IN_FLIGHT: Final = 8  # batches the worker may run ahead of the engine


class _CallerGone(Exception):
    """The process that started a simulation worker has ended."""


def _run_in_worker(fleet: Fleet, emitter: Emitter) -> GroundTruth:
    """Run ``fleet`` in a forked child that sends its batches here, to ``emitter.deliver``.

    The child inherits the plans, keys and clock; it never touches the tracer's database,
    and this process does nothing else than submit, so the two overlap. The child's clock
    and this one move together: each upload carries the time it is recorded at. To stop a
    run, stop this process: the child follows. A child killed on its own may die halfway
    through a message, and this process would wait for the rest.
    """
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(maxsize=_IN_FLIGHT)
    caller = os.getpid()

    def send(message: tuple[str, object]) -> None:
        while True:
            try:
                channel.put(message, timeout=5)
                return
            except queue.Full:
                if os.getppid() != caller:  # the caller was stopped: nobody will read
                    raise _CallerGone from None

    def child() -> None:
        emitter.uploader = lambda upload: send(("upload", upload))
        try:
            try:
                message: tuple[str, object] = ("done", fleet.run())
            except _CallerGone:
                raise
            except BaseException:
                message = ("failed", traceback.format_exc())
            send(message)
        except _CallerGone:
            channel.cancel_join_thread()  # exit without flushing to a pipe nobody reads

    process = context.Process(target=child, name="suyuan-simulator", daemon=True)
    process.start()
    sent: deque[Upload] = deque()  # uploads handed to the tracer, not yet submitted
    truth: list[GroundTruth] = []

    def uploads() -> Iterator[Sequence[Submission]]:
        while True:
            try:
                kind, payload = channel.get(timeout=5)
            except queue.Empty:
                if not process.is_alive():
                    raise SimulationError(
                        f"the simulator's worker died (exit code {process.exitcode})"
                    ) from None
                continue
            if kind == "upload":
                sent.append(payload)
                yield payload.submissions
            elif kind == "done":
                truth.append(payload)
                return
            else:
                raise SimulationError(f"the simulator's worker failed:\n{payload}")

    def on_the_clock(_: Sequence[Submission]) -> None:
        emitter.clock.advance_to(sent[0].at)  # the upload about to be submitted

    try:
        # Streamed: the tracer checks the next uploads' signatures while it rules on one.
        for receipts in emitter.tracer.submit_stream(uploads(), before=on_the_clock):
            emitter.delivered(sent.popleft(), receipts)
        return truth[0]
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
