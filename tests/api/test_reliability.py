"""The real server (uvicorn, 2 workers) under concurrency, sustained load and a crash.

- 50 accepts of one handover, released together: exactly one is recorded.
- 20 clients for ``SUYUAN_RELIABILITY_SECONDS`` (default 30) s: every acknowledged
  event is in the log, once, and the log verifies.
- SIGKILL mid-load, restart: every acknowledged event survived, the projections
  caught up with the log, the log verifies.
- What one worker records, the other knows: a new organisation's key and a new item.

The server runs as ``suyuan serve`` does, in a subprocess on 127.0.0.1; the log is
read back straight from the database. PostgreSQL tests skip when the server is
unreachable (and fail under ``CI=true``), like the other PostgreSQL tests.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from ledger import Log, open_store
from ledger.entry import Entry, sign_submission
from schemas.actors import Role
from schemas.codes import BatteryType, ProductType, generate_code
from schemas.events import Event
from tests.api.load_client import (
    RATE_LIMIT,
    REQUEST_TIMEOUT_S,
    Acknowledged,
    CustodyClient,
    Org,
    ServerProcess,
    check_log,
    is_problem,
    run_clients,
    seed,
    server_env,
)

pytestmark = pytest.mark.slow

LOAD_SECONDS = float(os.environ.get("SUYUAN_RELIABILITY_SECONDS", "30"))
"""How long the sustained-load test runs; 30 s unless the environment says otherwise."""
LOAD_CLIENTS = 20
RACERS = 50
FRESH_CONNECTIONS = 16
"""Concurrent new connections: enough that both workers accept some of them."""

RESTART_CLIENTS = 6
RESTART_MIN_ACKNOWLEDGED = 150
RESTART_MIN_LOAD_S = 3.0
RESTART_MAX_LOAD_S = 90.0
BARRIER_TIMEOUT_S = 120.0

RACE_LOSER_PROBLEMS = frozenset(
    {"/problems/custody-refused", "/problems/stale-chain", "/problems/conflict"}
)
TOLERATED_REFUSALS = frozenset({"409 /problems/conflict"})
"""Under load the optimistic append may give up after its retries; nothing else is expected."""

MAKER_REGION = "350000"
PARTNER_REGION = "440000"


def _orgs() -> list[tuple[str, Role, str]]:
    orgs = [
        ("race-maker", Role.BATTERY_MAKER, MAKER_REGION),
        ("race-receiver", Role.COLLECTOR, PARTNER_REGION),
        ("reader-maker", Role.BATTERY_MAKER, MAKER_REGION),
    ]
    for i in range(LOAD_CLIENTS):
        orgs += [
            (f"maker-{i}", Role.BATTERY_MAKER, MAKER_REGION),
            (f"partner-{i}", Role.COLLECTOR, PARTNER_REGION),
        ]
    return orgs


def _code(client: int, serial: int) -> str:
    return generate_code(
        random.Random(0),
        manufacturer="002",
        product_type=ProductType.PACK,
        battery_type=BatteryType.LFP,
        spec="1A",
        trace_code=f"{client:07d}",
        date=date(2024, 3, 9),
        serial=serial,
    )


@dataclass
class Served:
    """A running server with its seeded world."""

    server: ServerProcess
    settings: Settings
    admin_key: str
    orgs: dict[str, Org]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def open_log(self) -> Log:
        return Log(open_store(self.settings.database_url))


@pytest.fixture(scope="module")
def pg(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A 2-worker server on a PostgreSQL schema of its own, seeded before it starts."""
    import psycopg

    schema = f"suyuan_rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_server_url else "?"
    url = f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    workdir = tmp_path_factory.mktemp("reliability-pg")
    settings = Settings(
        database_url=url, log_key_file=workdir / "log.key", rate_limit_per_minute=RATE_LIMIT
    )
    server = ServerProcess(server_env(url, settings.log_key_file), workdir, workers=2)
    try:
        admin, orgs = seed(settings, _orgs(), own_keys=True)
        server.start()
        yield Served(server, settings, admin, orgs)
    finally:
        server.stop()
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _together(
    base_url: str, requests: Sequence[tuple[str, str, Mapping[str, str], Any]]
) -> list[httpx.Response]:
    """Send ``(method, path, headers, json)`` requests at once, each on its own open connection."""
    barrier = threading.Barrier(len(requests), timeout=BARRIER_TIMEOUT_S)
    results: list[httpx.Response | BaseException | None] = [None] * len(requests)

    def one(i: int) -> None:
        method, path, headers, body = requests[i]
        try:
            with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
                client.get("/healthz").raise_for_status()  # the connection is open before the gun
                barrier.wait()
                results[i] = client.request(method, path, headers=dict(headers), json=body)
        except BaseException as exc:
            barrier.abort()
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=BARRIER_TIMEOUT_S + REQUEST_TIMEOUT_S)
        assert not t.is_alive(), "a request did not finish"
    errors = [r for r in results if not isinstance(r, httpx.Response)]
    assert not errors, f"requests failed: {errors[:3]}"
    return [r for r in results if isinstance(r, httpx.Response)]


def _commission_and_offer(served: Served, code: str, maker: Org, receiver: Org) -> str:
    """Commission ``code`` and offer it to ``receiver``; return the handover's id."""
    with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        response = client.post("/v1/items", headers=maker.headers, json=[{"code": code}])
        assert response.status_code == 201, response.text
        offer = [{"idempotency_key": f"offer-{code}",
                  "data": {"type": "handover", "items": [code], "to": receiver.id}}]  # fmt: skip
        response = client.post("/v1/events/custodial", headers=maker.headers, json=offer)
        assert response.status_code == 201, response.text
        return str(response.json()[0]["event_id"])


def _accepts(
    route: str, receiver: Org, code: str, handover: str
) -> tuple[str, list[list[dict[str, Any]]]]:
    """``RACERS`` distinct accepts of one handover: unsigned (custodial) or signed by the receiver."""
    data = {"type": "accept", "handover": handover, "items": [code]}
    if route == "custodial":
        bodies = [[{"idempotency_key": f"race-{i}", "data": data}] for i in range(RACERS)]
        return "/v1/events/custodial", bodies
    signer = receiver.signer
    assert signer is not None
    now = datetime.now(UTC).isoformat()
    bodies = []
    for i in range(RACERS):
        event = Event.model_validate({
            "actor": receiver.id, "event_time": now, "region": receiver.region,
            "idempotency_key": f"race-signed-{i}", "prev": {code: handover}, "data": data,
        })  # fmt: skip
        signed = sign_submission(
            event.kind, event.body(), key_id=signer.key_id, key=signer.private_key
        )
        bodies.append([signed.to_json()])
    return "/v1/events", bodies


@pytest.mark.postgres
@pytest.mark.parametrize("route", ["custodial", "signed"])
def test_fifty_simultaneous_accepts_of_one_handover_record_exactly_one(
    pg: Served, route: str
) -> None:
    maker, receiver = pg.orgs["race-maker"], pg.orgs["race-receiver"]
    code = _code(900, 1 if route == "custodial" else 2)
    handover = _commission_and_offer(pg, code, maker, receiver)
    path, bodies = _accepts(route, receiver, code, handover)
    with pg.open_log() as log:
        size_before = len(log)

    responses = _together(pg.base_url, [("POST", path, receiver.headers, b) for b in bodies])

    winners = [r for r in responses if r.is_success]
    assert len(winners) == 1, Counter(r.status_code for r in responses)
    losers = [r for r in responses if not r.is_success]
    assert all(r.status_code == 409 and is_problem(r) for r in losers), {
        (r.status_code, r.text[:200]) for r in losers
    }
    assert {r.json()["type"] for r in losers} <= RACE_LOSER_PROBLEMS
    receipt = winners[0].json()[0]
    with pg.open_log() as log:
        assert len(log) == size_before + 1
        accepts = [
            e
            for e in log.entries(size_before, len(log))
            if e.kind == "event.accept" and e.body["data"]["handover"] == handover
        ]
        assert [e.seq for e in accepts] == [receipt["seq"]]
        log.verify()


def _load_report(
    clients: Sequence[CustodyClient], seconds: float
) -> tuple[list[Acknowledged], str]:
    acknowledged = [a for c in clients for a in c.acknowledged]
    refusals: Counter[str] = Counter()
    for c in clients:
        refusals.update(c.refusals)
    requests = sum(c.requests for c in clients)
    report = (
        f"{len(acknowledged)} events acknowledged in {requests} requests over {seconds:.1f} s "
        f"({len(acknowledged) / seconds:.0f} events/s); refusals {dict(refusals)}"
    )
    return acknowledged, report


@pytest.mark.postgres
def test_twenty_clients_in_parallel_lose_and_duplicate_no_acknowledged_event(pg: Served) -> None:
    clients = [
        CustodyClient(pg.base_url, i, pg.orgs[f"maker-{i}"], pg.orgs[f"partner-{i}"])
        for i in range(LOAD_CLIENTS)
    ]
    started = time.monotonic()
    run_clients(clients, threading.Event(), LOAD_SECONDS)
    acknowledged, report = _load_report(clients, time.monotonic() - started)
    print(f"\nsustained load, PostgreSQL, 2 workers: {report}")

    assert not [c.index for c in clients if c.connection_lost], report
    assert not [e for c in clients for e in c.server_errors], report
    for c in clients:
        assert set(c.refusals) <= TOLERATED_REFUSALS, report
        assert c.acknowledged, f"client {c.index} recorded nothing: {report}"
    with pg.open_log() as log:
        check_log(log, acknowledged)
        log.verify()


def _expected_states(events: Sequence[tuple[Entry, str]]) -> dict[str, dict[str, Any]]:
    """Head, custodian and pending handover of every item, replayed by hand from the log."""
    states: dict[str, dict[str, Any]] = {}
    for entry, eid in events:
        data, actor = entry.body["data"], entry.body["actor"]
        kind = data["type"]
        items = [data["item"]] if kind == "commission" else list(data["items"])
        for item in items:
            state = states.setdefault(item, {"custodian": actor, "pending_handover": None})
            state["head"] = eid
            if kind == "handover":
                state["pending_handover"] = eid
            elif kind == "accept":
                state.update(custodian=actor, pending_handover=None)
    return states


def test_a_server_killed_mid_load_comes_back_with_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'suyuan.db'}"
    settings = Settings(
        database_url=url, log_key_file=tmp_path / "log.key", rate_limit_per_minute=RATE_LIMIT
    )
    orgs = [
        org
        for i in range(RESTART_CLIENTS)
        for org in (
            (f"maker-{i}", Role.BATTERY_MAKER, MAKER_REGION),
            (f"partner-{i}", Role.COLLECTOR, PARTNER_REGION),
        )
    ]
    _, seeded = seed(settings, orgs)
    with ServerProcess(server_env(url, settings.log_key_file), tmp_path, workers=2) as server:
        server.start()
        clients = [
            CustodyClient(server.base_url, i, seeded[f"maker-{i}"], seeded[f"partner-{i}"])
            for i in range(RESTART_CLIENTS)
        ]
        stop = threading.Event()
        load = threading.Thread(
            target=run_clients, args=(clients, stop, RESTART_MAX_LOAD_S), daemon=True
        )
        started = time.monotonic()
        load.start()
        while time.monotonic() - started < RESTART_MAX_LOAD_S and (
            time.monotonic() - started < RESTART_MIN_LOAD_S
            or sum(len(c.acknowledged) for c in clients) < RESTART_MIN_ACKNOWLEDGED
        ):
            time.sleep(0.1)
        server.kill()  # SIGKILL, mid-load: requests are in flight
        stop.set()
        load.join(timeout=REQUEST_TIMEOUT_S * 3)
        assert not load.is_alive(), "the load did not stop"
        acknowledged, report = _load_report(clients, time.monotonic() - started)
        print(f"\nbefore the kill, SQLite, 2 workers: {report}")
        assert len(acknowledged) >= RESTART_MIN_ACKNOWLEDGED, report
        assert not [e for c in clients for e in c.server_errors], report

        server.start()  # the same database, a new process
        with Log(open_store(url)) as log:
            events = check_log(log, acknowledged)
            log.verify()
        expected = _expected_states(events)
        producers = {a.items[0]: a.actor for a in acknowledged if a.type == "commission"}
        with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            for code, producer in producers.items():
                response = client.get(f"/v1/items/{code}", headers=seeded[producer].headers)
                assert response.status_code == 200, response.text
                item = response.json()
                want = expected[code]
                assert (item["head"], item["custodian"], item["pending_handover"]) == (
                    want["head"], want["custodian"], want["pending_handover"],
                ), code  # fmt: skip
            # And the restarted service records events again.
            maker = seeded["maker-0"]
            response = client.post(
                "/v1/items", headers=maker.headers, json=[{"code": _code(901, 1)}]
            )
            assert response.status_code == 201, response.text


@pytest.mark.postgres
def test_an_organisation_registered_through_one_worker_is_known_to_every_worker(
    pg: Served,
) -> None:
    admin = {"Authorization": f"Bearer {pg.admin_key}"}
    body = {"id": "late-joiner", "name": "Late Joiner", "role": "collector",
            "region": PARTNER_REGION, "custodial_key": True}  # fmt: skip
    response = httpx.post(
        f"{pg.base_url}/v1/actors", headers=admin, json=body, timeout=REQUEST_TIMEOUT_S
    )
    assert response.status_code == 201, response.text
    key = {"Authorization": f"Bearer {response.json()['api_key']}"}

    responses = _together(
        pg.base_url, [("GET", "/v1/actors/late-joiner", key, None)] * FRESH_CONNECTIONS
    )

    answers = Counter(f"{r.status_code} {r.json().get('detail', '')}" for r in responses)
    assert set(answers) == {"200 "}, answers


@pytest.mark.postgres
def test_an_item_recorded_through_one_worker_is_readable_through_every_worker(
    pg: Served,
) -> None:
    maker = pg.orgs["reader-maker"]
    code = _code(902, 1)
    response = httpx.post(
        f"{pg.base_url}/v1/items",
        headers=maker.headers,
        json=[{"code": code}],
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 201, response.text

    responses = _together(
        pg.base_url, [("GET", f"/v1/items/{code}", maker.headers, None)] * FRESH_CONNECTIONS
    )

    answers = Counter(f"{r.status_code} {r.json().get('custodian', '')}" for r in responses)
    assert set(answers) == {f"200 {maker.id}"}, answers
