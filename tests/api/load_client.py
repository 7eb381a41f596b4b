"""Load-test helpers: the real server in a subprocess, a seeded world, custody-cycling clients.

- :class:`ServerProcess` runs ``python -m api.cli serve`` (what ``scripts/suyuan serve``
  execs, minus the environment sync) in a session of its own, so that it can be stopped,
  or killed with SIGKILL, together with its uvicorn workers.
- :func:`seed` registers organisations and issues their API keys *before* the server
  starts, the way ``scripts/suyuan admin create-key`` writes keys straight to the
  database: every worker then loads the same world at start-up.
- :class:`CustodyClient` commissions its own packs and moves them back and forth
  between two organisations through the custodial endpoint, remembering every
  acknowledged (2xx) receipt; several run in threads against 127.0.0.1.
- :func:`check_log` reads the log straight from the database and checks each receipt
  against it: the entry at the receipt's sequence number is the receipt's event.

Everything is bounded: request timeouts, start-up and shutdown timeouts, run deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.services import Services
from api.settings import Settings
from ledger import Log, note
from ledger.entry import Entry
from schemas.actors import Actor, Role
from schemas.codes import BatteryType, ProductType, generate_code
from schemas.epcis import event_id as compute_event_id
from trace.engine import parse_event

__all__ = [
    "Acknowledged",
    "CustodyClient",
    "Org",
    "ServerProcess",
    "check_log",
    "event_entries",
    "free_port",
    "seed",
    "server_env",
]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 240.0
"""A worker start-up can take tens of seconds on a busy 2-core machine (uvicorn kills and
respawns workers that miss its 5 s health check while they import), so waiting is generous."""
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
KEEP_ALIVE_S = 300  # longer than any wait before a test's requests go
POLL_S = 0.2
READY_LINE = "Application startup complete."
RATE_LIMIT = 10_000_000
"""Requests per minute per key: load tests measure the engine, not the rate limiter."""

PACK_MASS_KG = 400.0
MAKER_CODE = "001"
SPEC = "1A"
CODE_DATE = dt.date(2024, 3, 9)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, log_key_file: Path) -> dict[str, str]:
    """The environment of a server on ``database_url``, with the checkout first on the path."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SUYUAN_DATABASE_URL": database_url,
        "SUYUAN_LOG_KEY_FILE": str(log_key_file),
        "SUYUAN_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        # Concurrency tests open every connection, then wait until all are open: on a busy
        # machine longer than uvicorn's 5 s, which closed idle ones before the gun.
        "SUYUAN_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_S),
    }


class ServerProcess:
    """``suyuan serve`` in a process group of its own, logging to a file."""

    def __init__(self, env: Mapping[str, str], workdir: Path, *, workers: int = 2) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = workdir / "server-0.log"

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_text(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def start(self, *, timeout: float = START_TIMEOUT_S) -> None:
        """Start the server (on a fresh port) and wait until every worker has started."""
        assert self._process is None, "already running"
        self.port = free_port()
        self._log_path = self.workdir / f"server-{self.starts}.log"
        self.starts += 1
        command = [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port),
                   "--workers", str(self.workers)]  # fmt: skip
        with self._log_path.open("wb") as log:
            # A new session: the server and its workers form one process group to signal.
            self._process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited at start-up:\n{self.log_text()[-4000:]}")
            if self.log_text().count(READY_LINE) >= self.workers:
                try:
                    if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"the server was not ready in {timeout:g} s:\n{self.log_text()}")
            time.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: a crash, nothing flushed or closed."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def stop(self) -> None:
        """Stop gracefully (SIGINT to uvicorn's supervisor); SIGKILL if it does not exit in time."""
        if self._process is None:
            return
        try:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("the server did not stop within %s s; killing it", STOP_TIMEOUT_S)
        finally:
            # Workers whose supervisor is gone are killed with the group either way.
            self.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Org:
    """A seeded organisation: its API key, and the signing key it holds itself (if any)."""

    id: str
    role: Role
    region: str
    api_key: str
    signer: note.Signer | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def seed(
    settings: Settings, orgs: Iterable[tuple[str, Role, str]], *, own_keys: bool = False
) -> tuple[str, dict[str, Org]]:
    """Register organisations (custodial key each, and an own key with ``own_keys``).

    Returns an administrator's API key and the organisations by id. Creates the log,
    its key and the schema when missing, exactly as the service does at start-up.
    """
    services = Services.start(settings)
    try:
        admin = services.keys.issue(None, label="load-test administrator").token
        seeded: dict[str, Org] = {}
        for actor_id, role, region in orgs:
            actor = Actor(id=actor_id, name=actor_id.upper(), role=role, region=region)
            signer = note.Signer.generate(actor_id) if own_keys else None
            with services.writing() as tracer:
                custodial = services.custodial.create(actor_id)
                keys = [custodial.verifier.to_string()]
                if signer is not None:
                    keys.append(signer.verifier.to_string())
                tracer.register_actor(actor, keys)
            token = services.keys.issue(actor_id, label="load test").token
            seeded[actor_id] = Org(actor_id, role, region, token, signer)
        return admin, seeded
    finally:
        services.close()


@dataclass(frozen=True)
class Acknowledged:
    """An event the server acknowledged with a 2xx receipt."""

    event_id: str
    seq: int
    actor: str
    idempotency_key: str
    type: str
    items: tuple[str, ...]


def is_problem(response: httpx.Response) -> bool:
    """Whether ``response`` is RFC 9457 problem+json."""
    media_type: str = response.headers.get("content-type", "")
    return media_type.startswith("application/problem+json")


@dataclass
class CustodyClient:
    """Commission ``batch`` packs, then hand them back and forth ``hops`` times; repeat.

    Every acknowledged event is kept in :attr:`acknowledged`; every refused request is
    counted in :attr:`refusals` by status and problem type (a 5xx is also kept in
    :attr:`server_errors`). After a refusal or a timeout the client leaves those packs
    alone and starts a new batch, so it never acts on a state it is unsure of. A
    connection error (the server is gone) ends the run.
    """

    base_url: str
    index: int
    maker: Org
    partner: Org
    batch: int = 5
    hops: int = 4
    acknowledged: list[Acknowledged] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    requests: int = 0
    connection_lost: bool = False
    _serial: int = 0
    _next_key: int = 0

    def _codes(self) -> list[str]:
        rng = random.Random(self.index)
        codes = []
        for _ in range(self.batch):
            self._serial += 1
            codes.append(
                generate_code(rng, manufacturer=MAKER_CODE, product_type=ProductType.PACK,
                              battery_type=BatteryType.LFP, spec=SPEC,
                              trace_code=f"{self.index:07d}", date=CODE_DATE,
                              serial=self._serial)
            )  # fmt: skip
        return codes

    def _key(self, what: str) -> str:
        self._next_key += 1
        return f"load-{self.index}-{what}-{self._next_key}"

    def _post(
        self, client: httpx.Client, path: str, org: Org, body: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """POST; the receipts on 2xx, else ``None`` (the refusal counted)."""
        self.requests += 1
        try:
            response = client.post(path, headers=org.headers, json=body)
        except httpx.TimeoutException:
            self.refusals["timeout"] += 1
            return None
        if response.is_success:
            receipts: list[dict[str, Any]] = response.json()
            return receipts
        kind = response.json().get("type", "?") if is_problem(response) else "not problem+json"
        self.refusals[f"{response.status_code} {kind}"] += 1
        if response.status_code >= 500 or not is_problem(response):
            self.server_errors.append(f"{path} -> {response.status_code}: {response.text[:500]}")
        return None

    def _record(
        self, receipts: Sequence[Mapping[str, Any]], org: Org, keys: Sequence[str], kind: str,
        items: Sequence[tuple[str, ...]],
    ) -> None:  # fmt: skip
        for receipt, key, touched in zip(receipts, keys, items, strict=True):
            self.acknowledged.append(
                Acknowledged(str(receipt["event_id"]), int(receipt["seq"]), org.id, key, kind,
                             touched)
            )  # fmt: skip

    def _cycle(self, client: httpx.Client) -> None:
        codes = self._codes()
        keys = [f"commission-{code}" for code in codes]  # what POST /v1/items uses
        body = [{"code": code, "mass_kg": PACK_MASS_KG} for code in codes]
        receipts = self._post(client, "/v1/items", self.maker, body)
        if receipts is None:
            return
        self._record(receipts, self.maker, keys, "commission", [(code,) for code in codes])
        holder, other = self.maker, self.partner
        for _ in range(self.hops):
            key = self._key("handover")
            offer = {"idempotency_key": key,
                     "data": {"type": "handover", "items": codes, "to": other.id}}  # fmt: skip
            receipts = self._post(client, "/v1/events/custodial", holder, [offer])
            if receipts is None:
                return
            self._record(receipts, holder, [key], "handover", [tuple(codes)])
            handover = receipts[0]["event_id"]
            key = self._key("accept")
            accept = {"idempotency_key": key,
                      "data": {"type": "accept", "handover": handover, "items": codes}}  # fmt: skip
            receipts = self._post(client, "/v1/events/custodial", other, [accept])
            if receipts is None:
                return
            self._record(receipts, other, [key], "accept", [tuple(codes)])
            holder, other = other, holder

    def run(self, stop: threading.Event, deadline: float) -> None:
        """Cycle until ``stop`` is set, ``deadline`` (monotonic) passes or the server is gone."""
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    self._cycle(client)
                except httpx.TransportError:
                    self.connection_lost = True
                    return


def run_clients(clients: Sequence[CustodyClient], stop: threading.Event, seconds: float) -> None:
    """Run ``clients`` in threads for ``seconds`` (or until ``stop``); wait for them, bounded."""
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=c.run, args=(stop, deadline), name=f"load-{c.index}", daemon=True)
        for c in clients
    ]
    for t in threads:
        t.start()
    for t in threads:
        # A request in flight at the deadline may take up to its own timeout to finish.
        t.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + STOP_TIMEOUT_S)
        assert not t.is_alive(), f"{t.name} did not stop"


def event_entries(log: Log) -> list[tuple[Entry, str]]:
    """Every event entry of the log with its event id, in log order."""
    size = len(log)
    out: list[tuple[Entry, str]] = []
    for start in range(0, size, 2048):
        for entry in log.entries(start, min(size, start + 2048)):
            if entry.kind.startswith("event."):
                out.append((entry, compute_event_id(parse_event(entry.body))))
    return out


def check_log(log: Log, acknowledged: Sequence[Acknowledged]) -> list[tuple[Entry, str]]:
    """Assert each receipt names its own entry and nothing is in the log twice; return the events.

    The entry at a receipt's ``seq`` must be that receipt's event (same id, actor and
    idempotency key); receipts name distinct entries; no event id and no (actor,
    idempotency key) appears twice in the whole log.
    """
    events = event_entries(log)
    by_seq = {entry.seq: (entry, eid) for entry, eid in events}
    for ack in acknowledged:
        assert ack.seq in by_seq, (
            f"acknowledged {ack.type} {ack.event_id} (seq {ack.seq}) is not in the log"
        )
        entry, eid = by_seq[ack.seq]
        assert eid == ack.event_id, (
            f"seq {ack.seq} holds {eid}, not the acknowledged {ack.event_id}"
        )
        assert (
            entry.body["actor"] == ack.actor
            and entry.body["idempotency_key"] == ack.idempotency_key
        )
    seqs = Counter(ack.seq for ack in acknowledged)
    assert not [s for s, n in seqs.items() if n > 1], "two receipts name the same entry"
    ids = Counter(eid for _, eid in events)
    assert not [e for e, n in ids.items() if n > 1], "an event is in the log twice"
    keys = Counter((entry.body["actor"], entry.body["idempotency_key"]) for entry, _ in events)
    assert not [k for k, n in keys.items() if n > 1], "an idempotency key was recorded twice"
    return events
