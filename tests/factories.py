"""Factories for tests: logs on either backend, registered signers, signed submissions."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import note
from ledger.entry import Submission, sign_submission
from ledger.log import Log
from ledger.postgres_store import PostgresStore
from ledger.sqlite_store import SQLiteStore
from ledger.store import LogStore
from schemas.actors import Actor, Role
from schemas.codes import ProductType, generate_code
from schemas.events import Event

ORIGIN = "suyuan.test/log"


def open_store(backend: str, *, tmp_path: Path, postgres_url: str | None = None) -> LogStore:
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "ledger.db")
    assert postgres_url is not None
    return PostgresStore(postgres_url)


def new_log(store: LogStore, *, name: str = "suyuan-log") -> tuple[Log, note.Signer]:
    signer = note.Signer.generate(name)
    return Log.create(store, signer=signer, origin=ORIGIN), signer


def registered_signer(log: Log, name: str = "recycler-1") -> note.Signer:
    signer = note.Signer.generate(name)
    log.register_key(signer.verifier.to_string(), owner=name)
    return signer


def submission(
    signer: note.Signer, i: int = 0, *, kind: str = "test.event", **extra: Any
) -> Submission:
    body = {"i": i, "pack": "001PEAB0000001G1C0000001", "mass_kg": 420, **extra}
    return sign_submission(kind, body, key_id=signer.key_id, key=signer.private_key)


# --- the domain: actors with keys, events signed by them, a tracer on either backend ---


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ROLE_REGIONS = {
    Role.BATTERY_MAKER: "350000",
    Role.AUTOMAKER: "440000",
    Role.DEALER: "440000",
    Role.COLLECTOR: "440000",
    Role.CASCADE_OPERATOR: "320000",
    Role.RECYCLER: "430000",
    Role.SCRAP_PROCESSOR: "430000",
    Role.AUDITOR: "110000",
}


@dataclass
class Party:
    actor: Actor
    signer: note.Signer


@dataclass
class Scene:
    """A tracer with one registered actor per role and a clock for event times."""

    tracer: Any
    parties: dict[str, Party] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(34014))
    clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, actor_id: str, role: Role, region: str | None = None) -> Party:
        actor = Actor(
            id=actor_id,
            name=actor_id.replace("-", " ").title(),
            role=role,
            region=region or ROLE_REGIONS[role],
        )
        signer = note.Signer.generate(actor_id)
        self.tracer.register_actor(actor, [signer.verifier.to_string()])
        self.parties[actor_id] = Party(actor, signer)
        return self.parties[actor_id]

    def code(self, product: ProductType = ProductType.PACK) -> str:
        return generate_code(self.rng, product_type=product)

    def now(self) -> datetime:
        return T0 + timedelta(hours=next(self.clock))

    def event(
        self,
        actor_id: str,
        data: dict[str, Any],
        *,
        when: datetime | None = None,
        key: str | None = None,
        prev: dict[str, str | None] | None = None,
    ) -> Event:
        party = self.parties[actor_id]
        from pydantic import TypeAdapter

        from schemas.events import EventData

        parsed = TypeAdapter(EventData).validate_python(data)
        if prev is None:
            self.tracer.catch_up()  # another engine may have moved the items
            prev = {}
            for item in parsed.items():
                state = self.tracer.world.item(item)
                prev[item] = None if state is None else state.head
        return Event(
            actor=actor_id,
            event_time=when or self.now(),
            region=party.actor.region,
            idempotency_key=key or f"k-{self.rng.getrandbits(64):016x}",
            prev=prev,
            data=parsed,
        )

    def sign(self, actor_id: str, event: Event) -> Submission:
        party = self.parties[actor_id]
        return self.tracer.sign(event, key_id=party.signer.key_id, key=party.signer.private_key)

    def submit(self, actor_id: str, data: dict[str, Any], **kw: Any) -> Any:
        event = self.event(actor_id, data, **kw)
        return self.tracer.submit([self.sign(actor_id, event)])[0]
