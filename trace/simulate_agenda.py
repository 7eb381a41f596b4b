"""The simulator's agenda: steps in simulated-time order, late reports and weekly uploads.

Each step writes the events of one moment (of one pack, or a monthly shipment) and
schedules the next. :meth:`Agenda.play` runs the steps in time order and interleaves them
with the reports of late events, which the :class:`~trace.simulate_world.Emitter` holds
back: a held-back event is uploaded on its report day, and a step that touches its items
waits until then. Between those, the events are uploaded in one batch per simulated week.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from trace.simulate_world import Emitter

__all__ = ["Agenda", "Step"]


@dataclass(slots=True)
class Step:
    """One scheduled step: when, what it is called, the items it touches, what it does."""

    when: datetime
    label: str
    items: tuple[str, ...]
    run: Callable[[datetime], None]


class Agenda:
    """Steps by simulated time, played through an :class:`Emitter`."""

    def __init__(self, emitter: Emitter, *, span: tuple[datetime, datetime], upload_days: int):
        self.emitter = emitter
        self.start, self.end = span
        self.window = timedelta(days=upload_days)
        # (when, order, step): tuples compare in C, where a dataclass's generated ordering
        # built two tuples per comparison; ``order`` is unique, so a step never compares.
        self._steps: list[tuple[datetime, int, Step]] = []
        self._order = itertools.count()

    def schedule(
        self, when: datetime, label: str, items: tuple[str, ...], run: Callable[[datetime], None]
    ) -> None:
        """Run ``run(when)`` at ``when`` (later if an item waits on a held-back report)."""
        heapq.heappush(self._steps, (when, next(self._order), Step(when, label, items, run)))

    def play(self) -> None:
        """Run every step due by the end of the simulation, then upload what is left."""
        emitter = self.emitter
        upload = self.start + self.window
        while True:
            step_at = self._steps[0][0] if self._steps else None
            report_at = emitter.next_report()
            times = [t for t in (step_at, report_at) if t is not None]
            if not times or min(times) > self.end:
                break
            now = min(times)
            if now >= upload:
                emitter.flush(upload)
                upload += self.window * ((now - upload) // self.window + 1)
            if report_at == now:  # a report goes before the steps of its moment
                emitter.report_due(now)
                continue
            _, _, step = heapq.heappop(self._steps)
            held = emitter.held_until(step.items)
            if held is not None and held > step.when:
                step.when = held
                heapq.heappush(self._steps, (held, next(self._order), step))
                continue
            step.run(step.when)
        emitter.flush(self.end)

    def left(self) -> list[Step]:
        """The steps that fell after the end, in time order."""
        return [step for _, _, step in sorted(self._steps)]
