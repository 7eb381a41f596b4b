"""What one service process holds: settings, the engine, API keys, the rate limiter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from api.custodial import CustodialKeys
from api.keys import KeyStore
from api.migrate import upgrade
from api.passport_cache import LedgerView, LedgerWatch, PassportCache
from api.runtime import open_tracer
from api.settings import Settings
from trace.engine import Tracer
from trace.graph import LifecycleGraph

__all__ = ["RateLimiter", "Services"]

T = TypeVar("T")


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float | None:
        """``None`` if the request may go ahead, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


_POSTGRES = ("postgresql://", "postgres://")


def _sqlite_file(url: str) -> str | None:
    """The file of a SQLite database URL (or bare path); ``None`` for other databases."""
    if url.startswith(_POSTGRES):
        return None
    path = url.removeprefix("sqlite:///")
    return None if path == ":memory:" else path


@dataclass
class Services:
    """The engine and its companions; one per process, built at start-up."""

    settings: Settings
    tracer: Tracer
    keys: KeyStore
    custodial: CustodialKeys
    limiter: RateLimiter
    graph: LifecycleGraph
    passports: PassportCache = field(default_factory=PassportCache)
    watch: LedgerWatch = field(init=False)
    # The engine's in-memory state is shared by request threads: writes take this lock.
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.tracer.subscribe(self.passports.on_event)
        self.watch = LedgerWatch(self.tracer.log, _sqlite_file(self.settings.database_url))

    @property
    def local_reads(self) -> bool:
        """Whether reads from the database take microseconds (SQLite), not a round trip."""
        return not self.settings.database_url.startswith(_POSTGRES)

    @classmethod
    def start(cls, settings: Settings) -> Services:
        upgrade(settings.database_url)  # schema migrations run at start-up
        tracer = open_tracer(settings)
        return cls(
            settings=settings,
            tracer=tracer,
            keys=KeyStore(tracer.projections.engine),
            custodial=CustodialKeys(
                tracer.projections.engine, settings.secret_key.get_secret_value()
            ),
            limiter=RateLimiter(settings.rate_limit_per_minute),
            # Rebuilt from the log, then kept up to date as events are accepted.
            graph=LifecycleGraph.follow(tracer),
            passports=PassportCache(settings.passport_cache_size),
        )

    def close(self) -> None:
        self.watch.close()
        self.tracer.close()

    def sync(self) -> LedgerView:
        """Catch up with what other processes appended; cheap when nothing did (:class:`LedgerWatch`)."""
        view = self.watch.current()
        if view != self.passports.view:
            with self.lock:
                self.tracer.catch_up()
                self.passports.refresh(view)
        return view

    @contextmanager
    def writing(self) -> Iterator[Tracer]:
        with self.lock:
            yield self.tracer
