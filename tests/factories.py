"""Factories for tests: logs on either backend, registered signers, signed submissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger import note
from ledger.entry import Submission, sign_submission
from ledger.log import Log
from ledger.postgres_store import PostgresStore
from ledger.sqlite_store import SQLiteStore
from ledger.store import LogStore

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


def submission(signer: note.Signer, i: int = 0, *, kind: str = "test.event", **extra: Any) -> Submission:
    body = {"i": i, "pack": "001PEAB0000001G1C0000001", "mass_kg": 420, **extra}
    return sign_submission(kind, body, key_id=signer.key_id, key=signer.private_key)
