"""The HTTP API benchmark: loopback load on the real server, beside a bare FastAPI endpoint.

Both servers run the same way — uvicorn, uvloop + httptools, no access log, the same
worker count — on 127.0.0.1, one after the other, in the same run:

- the bare endpoint: ``GET /bare`` returning a constant (the ceiling for this machine);
- the public scan, ``GET /p/{code}`` (JSON), or ``GET /v1/items/{code}`` with a key
  while the passport route does not exist;
- the QR label, ``GET /v1/items/{code}/label.png``, when the route exists;
- custodial commissions, ``POST /v1/items`` in batches: accepted events/s, beside the
  engine's own ``Tracer.submit`` of the same batches in one process (no HTTP).

GET load comes from ``wrk`` when it is installed, else from a Python generator
(asyncio + httpx, bounded connections) that shares the two cores with the server
and so caps the bare endpoint first (its ratios then understate the gap); event
submission always uses the Python generator (every batch has new codes). The
generator uses httpx2 when it is installed: httpx 0.28's async connection pool
slows down as connections are added (about 130 req/s at 32 connections on the
reference machine, where httpx2 gives about 700). Every run is bounded in time.

Used by ``scripts/bench.py`` (``bench_api(record, full)``), which prints and saves the table::

    scripts/bench api [--full]
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
SUITE = "api"

WORKERS = 2
CONNECTIONS = 32
WRK_THREADS = 2
WARMUP_S = 3.0
RUN_S = 10.0
FULL_RUN_S = 30.0
EVENT_RUN_S = 15.0
EVENT_CONNECTIONS = 4
EVENT_BATCH = 100
SCAN_ITEMS = 200
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
READY_LINE = "Application startup complete."
RATE_LIMIT = 1_000_000_000
"""Requests per minute per key or address: the benchmark measures the service, not its limiter."""

SCAN_SHARE_TARGET = 0.5
SCAN_P99_TARGET_MS = 25.0
EVENTS_TARGET = 1000.0
BARE_RESPONSE = {"status": "ok", "service": "suyuan", "version": 1}

MAKER = "bench-maker"
MAKER_REGION = "350000"
PASSPORT_PATH = "/p/{code}"
ITEM_PATH = "/v1/items/{code}"
LABEL_PATH = "/v1/items/{code}/label.png"


class Record(Protocol):
    """``scripts/bench.py``'s ``record``: one figure beside its peer, printed and kept."""

    def __call__(
        self,
        suite: str,
        name: str,
        value: float,
        unit: str,
        peer_name: str,
        peer_value: float,
        *,
        ratio: float | None = None,
        target: str = "",
        met: bool | None = None,
    ) -> None: ...


def create_bare_app() -> Any:
    """The peer: a FastAPI app whose one endpoint returns a constant (``uvicorn --factory``)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, object]:
        return BARE_RESPONSE

    return app


# --- servers ---


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class _Server:
    """A uvicorn server in its own process group (so that its workers stop with it)."""

    def __init__(self, command: Sequence[str], env: dict[str, str], workdir: Path, port: int):
        self.port = port
        self.log = workdir / f"server-{port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                list(command),
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def wait_ready(self, workers: int, health: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            if self.log.read_text(errors="replace").count(READY_LINE) >= workers:
                try:
                    if httpx.get(self.base_url + health, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"not ready in {START_TIMEOUT_S:g} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_S)
        # Whatever is left of the group: the workers of a supervisor that did not stop them.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def _bare_server(workdir: Path) -> Iterator[_Server]:
    """The bare app with exactly the flags ``suyuan serve`` gives uvicorn."""
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "scripts.bench_api:create_bare_app", "--factory",
        "--host", LOOPBACK, "--port", str(port), "--workers", str(WORKERS),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    ]  # fmt: skip
    server = _Server(command, _env({}), workdir, port)
    try:
        server.wait_ready(WORKERS, "/bare")
        yield server
    finally:
        server.stop()


@contextmanager
def _suyuan_server(workdir: Path, env: dict[str, str]) -> Iterator[_Server]:
    port = _free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port),
               "--workers", str(WORKERS)]  # fmt: skip
    server = _Server(command, _env(env), workdir, port)
    try:
        server.wait_ready(WORKERS, "/healthz")
        yield server
    finally:
        server.stop()


# --- the seeded world ---


@dataclass(frozen=True)
class _World:
    env: dict[str, str]
    maker_key: str
    codes: list[str]


def _code(rng: random.Random, trace: int, serial: int) -> str:
    from schemas.codes import BatteryType, ProductType, generate_code

    return generate_code(
        rng,
        manufacturer="001",
        product_type=ProductType.PACK,
        battery_type=BatteryType.LFP,
        spec="1A",
        trace_code=f"{trace:07d}",
        date=date(2024, 3, 9),
        serial=serial,
    )


def _commissions(codes: Sequence[str], actor: str, region: str) -> list[Any]:
    from trace.engine import parse_event

    now = datetime.now(UTC).isoformat()
    return [
        parse_event(
            {
                "actor": actor,
                "event_time": now,
                "region": region,
                "idempotency_key": f"commission-{code}",
                "prev": {code: None},
                "data": {"type": "commission", "item": code, "mass_kg": 400.0},
            }
        )
        for code in codes
    ]


def _seed(workdir: Path) -> _World:
    """An organisation with a custodial key and ``SCAN_ITEMS`` packs, under a checkpoint."""
    from api.services import Services
    from api.settings import Settings
    from schemas.actors import Actor, Role

    database = f"sqlite:///{workdir / 'suyuan.db'}"
    env = {
        "SUYUAN_DATABASE_URL": database,
        "SUYUAN_LOG_KEY_FILE": str(workdir / "log.key"),
        "SUYUAN_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "SUYUAN_BASE_URL": f"http://{LOOPBACK}",
    }
    settings = Settings(
        database_url=database,
        log_key_file=workdir / "log.key",
        rate_limit_per_minute=RATE_LIMIT,
    )
    services = Services.start(settings)
    try:
        signer = services.custodial.create(MAKER)
        actor = Actor(id=MAKER, name="Bench Maker", role=Role.BATTERY_MAKER, region=MAKER_REGION)
        rng = random.Random(1)
        codes = [_code(rng, 0, i + 1) for i in range(SCAN_ITEMS)]
        with services.writing() as tracer:
            tracer.register_actor(actor, [signer.verifier.to_string()])
            events = _commissions(codes, MAKER, MAKER_REGION)
            tracer.submit(
                [tracer.sign(e, key_id=signer.key_id, key=signer.private_key) for e in events]
            )
            tracer.log.checkpoint()
        key = services.keys.issue(MAKER, label="benchmark").token
    finally:
        services.close()
    return _World(env, key, codes)


def _engine_rate(workdir: Path, batches: int) -> float:
    """Accepted events/s of ``Tracer.submit`` in this process: the same custodial commissions."""
    from api.services import Services
    from api.settings import Settings
    from schemas.actors import Actor, Role

    settings = Settings(
        database_url=f"sqlite:///{workdir / 'engine.db'}", log_key_file=workdir / "engine.key"
    )
    services = Services.start(settings)
    try:
        signer = services.custodial.create(MAKER)
        actor = Actor(id=MAKER, name="Bench Maker", role=Role.BATTERY_MAKER, region=MAKER_REGION)
        tracer = services.tracer
        tracer.register_actor(actor, [signer.verifier.to_string()])
        rng = random.Random(2)
        total = 0
        start = time.perf_counter()
        for b in range(batches):
            codes = [_code(rng, 1, b * EVENT_BATCH + i + 1) for i in range(EVENT_BATCH)]
            # What POST /v1/items does per batch: build, sign with the custodial key, submit.
            events = _commissions(codes, MAKER, MAKER_REGION)
            total += len(
                tracer.submit(
                    [tracer.sign(e, key_id=signer.key_id, key=signer.private_key) for e in events]
                )
            )
        return total / (time.perf_counter() - start)
    finally:
        services.close()


# --- load generators ---


@dataclass(frozen=True)
class Load:
    """One measured run: throughput, latency percentiles and failures."""

    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    items: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def item_rate(self) -> float:
        return self.items / self.seconds

    def line(self, label: str) -> str:
        return (
            f"    {label:<46} {self.tool:<7} {self.rate:>10,.0f} req/s   p50 {self.p50_ms:7.2f} ms"
            f"   p99 {self.p99_ms:7.2f} ms   errors {self.errors}"
        )


_WRK_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _wrk_script(paths: Sequence[str], headers: dict[str, str], directory: Path) -> Path:
    """A Lua script that cycles through ``paths`` with ``headers``."""
    quoted = ", ".join(f'"{p}"' for p in paths)
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = directory / "paths.lua"
    script.write_text(
        f"local paths = {{{quoted}}}\n"
        f"{header_lines}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def _wrk(base: str, paths: Sequence[str], headers: dict[str, str], seconds: float) -> Load:
    with tempfile.TemporaryDirectory() as d:
        script = _wrk_script(paths, headers, Path(d))

        def run(duration: float, latency: bool) -> str:
            command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration:g}s",
                       "-s", str(script), base]  # fmt: skip
            if latency:
                command.insert(1, "--latency")
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=duration + 60, check=True
            )
            return done.stdout

        run(WARMUP_S, latency=False)
        out = run(seconds, latency=True)
    latency = {p: float(v) * _TO_MS[u] for p, v, u in _WRK_LATENCY.findall(out)}
    total = _WRK_TOTAL.search(out)
    if total is None or set(latency) != {"50", "99"}:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = sum(int(n) for n in _WRK_NON_2XX.findall(out))
    socket_errors = _WRK_SOCKET.search(out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    elapsed = float(total.group(2)) * _TO_MS[total.group(3)] / 1e3
    return Load("wrk", int(total.group(1)), elapsed, latency["50"], latency["99"], errors)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1e3 if ordered else 0.0


Step = Callable[[Any, int], Awaitable[tuple[bool, int]]]
"""One request on an async client (httpx or httpx2): (succeeded, items it carried)."""


def _client_library() -> Any:
    """httpx2 when installed (its async pool scales with connections), else httpx: one API."""
    try:
        import httpx2
    except ImportError:
        return httpx
    return httpx2


async def _drive(base: str, connections: int, seconds: float, step: Step) -> Load:
    """``connections`` loops calling ``step(client, n)`` until the deadline; warm-up first."""
    library = _client_library()
    limits = library.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with library.AsyncClient(
        base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        latencies: list[float] = []
        errors = items = 0
        counter = iter(range(1 << 62))

        async def loop(until: float, keep: bool) -> None:
            nonlocal errors, items
            while time.perf_counter() < until:
                started = time.perf_counter()
                ok, count = await step(client, next(counter))
                if keep:
                    latencies.append(time.perf_counter() - started)
                    errors += not ok
                    items += count

        warm_until = time.perf_counter() + min(WARMUP_S, seconds / 3)
        await asyncio.gather(*(loop(warm_until, False) for _ in range(connections)))
        start = time.perf_counter()
        await asyncio.gather(*(loop(start + seconds, True) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return Load(
        library.__name__,
        len(latencies),
        elapsed,
        _percentile(latencies, 0.50),
        _percentile(latencies, 0.99),
        errors,
        items,
    )


def _run(coro: Awaitable[Load]) -> Load:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def _python_gets(base: str, paths: Sequence[str], headers: dict[str, str], seconds: float) -> Load:
    async def step(client: Any, n: int) -> tuple[bool, int]:
        response = await client.get(paths[n % len(paths)], headers=headers)
        await response.aread()
        return response.status_code < 400, 1

    return _run(_drive(base, CONNECTIONS, seconds, step))


def _get_load(base: str, paths: Sequence[str], headers: dict[str, str], seconds: float) -> Load:
    if shutil.which("wrk"):
        return _wrk(base, paths, headers, seconds)
    return _python_gets(base, paths, headers, seconds)


def _commission_load(base: str, key: str, seconds: float) -> Load:
    """Batches of new commissions from ``EVENT_CONNECTIONS`` connections; items = receipts."""
    rng = random.Random(3)
    headers = {"Authorization": f"Bearer {key}"}

    async def step(client: Any, n: int) -> tuple[bool, int]:
        codes = [_code(rng, 2 + n // 10_000, (n % 10_000) * EVENT_BATCH + i + 1)
                 for i in range(EVENT_BATCH)]  # fmt: skip
        body = [{"code": code, "mass_kg": 400.0} for code in codes]
        response = await client.post("/v1/items", json=body, headers=headers)
        if response.status_code != 201:
            return False, 0
        return True, len(response.json())

    return _run(_drive(base, EVENT_CONNECTIONS, seconds, step))


# --- the suite ---


def _routes(base: str) -> set[str]:
    spec = httpx.get(f"{base}/openapi.json", timeout=REQUEST_TIMEOUT_S).json()
    return set(spec["paths"])


def bench_api(record: Record, full: bool) -> None:
    """Measure and ``record`` the API figures (``full``: longer runs)."""
    seconds = FULL_RUN_S if full else RUN_S
    tool = "wrk" if shutil.which("wrk") else "python (wrk not installed)"
    print(f"{SUITE}  ({WORKERS} uvicorn workers, {CONNECTIONS} connections, {seconds:g} s runs, "
          f"GET load from {tool}, 127.0.0.1)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="suyuan-bench-api-") as d:
        workdir = Path(d)
        with _bare_server(workdir) as bare_server:
            bare = _get_load(bare_server.base_url, ["/bare"], {}, seconds)
        print(bare.line("bare FastAPI constant"), flush=True)

        world = _seed(workdir)
        auth = {"Authorization": f"Bearer {world.maker_key}"}
        with _suyuan_server(workdir, world.env) as server:
            routes = _routes(server.base_url)
            if PASSPORT_PATH in routes:
                scan_name, scan_headers = (
                    "public scan GET /p/{code} (JSON)",
                    {"Accept": "application/json"},
                )
                scan_paths = [PASSPORT_PATH.format(code=c) for c in world.codes]
            else:
                scan_name, scan_headers = "item GET /v1/items/{code} (no /p/ route yet)", auth
                scan_paths = [ITEM_PATH.format(code=c) for c in world.codes]
            scan = _get_load(server.base_url, scan_paths, scan_headers, seconds)
            print(scan.line(scan_name), flush=True)
            label = None
            if LABEL_PATH in routes:
                label_paths = [LABEL_PATH.format(code=c) for c in world.codes]
                label = _get_load(server.base_url, label_paths, auth, seconds)
                print(label.line("label GET /v1/items/{code}/label.png"), flush=True)
            else:
                print("    label PNG: no /v1/items/{code}/label.png route; skipped", flush=True)
            events = _commission_load(server.base_url, world.maker_key, EVENT_RUN_S)
            print(
                events.line(f"POST /v1/items x{EVENT_BATCH}")
                + f"   {events.item_rate:,.0f} accepted events/s",
                flush=True,
            )
        engine_batches = max(5, min(50, round(events.items / EVENT_BATCH / 2)))
        engine = _engine_rate(workdir, engine_batches)

    for load, what in ((bare, "bare"), (scan, "scan"), (label, "label"), (events, "events")):
        if load is not None and load.errors:
            print(f"  WARNING: {load.errors} failed requests in the {what} run", flush=True)
    share = scan.rate / bare.rate
    # A Python generator caps the bare endpoint before the server does: no verdict on the share.
    judged = bare.tool == "wrk"
    record(SUITE, f"{scan_name.split(' (')[0]}, {CONNECTIONS} conn", scan.rate, "req/s",
           "bare FastAPI constant, same server", bare.rate,
           target=f">= {SCAN_SHARE_TARGET}" + ("" if judged else " (needs wrk)"),
           met=(share >= SCAN_SHARE_TARGET and not scan.errors) if judged else None)  # fmt: skip
    record(SUITE, f"scan p99 @ {CONNECTIONS} conn (p50 {scan.p50_ms:.1f} ms)", scan.p99_ms, "ms",
           f"bare p99 (p50 {bare.p50_ms:.1f} ms)", bare.p99_ms,
           target=f"p99 < {SCAN_P99_TARGET_MS:g} ms", met=scan.p99_ms < SCAN_P99_TARGET_MS)  # fmt: skip
    if label is not None:
        record(SUITE, f"label PNG, {CONNECTIONS} conn (p99 {label.p99_ms:.0f} ms)", label.rate,
               "req/s", "bare FastAPI constant, same server", bare.rate)  # fmt: skip
    record(SUITE, f"custodial commissions, SQLite, x{EVENT_BATCH} batches", events.item_rate,
           "events/s", "Tracer.submit in-process, same batches", engine,
           target=f">= {EVENTS_TARGET:,.0f} events/s",
           met=events.item_rate >= EVENTS_TARGET and not events.errors)  # fmt: skip
