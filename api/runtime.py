"""Opening suyuan's parts from settings: the log, its key, and the engine on one database."""

from __future__ import annotations

import os
from pathlib import Path

from api.settings import Settings
from ledger import Log, note, open_store
from trace.engine import Tracer
from trace.projections import Projections

__all__ = ["load_or_create_log_key", "open_log", "open_tracer", "write_secret"]


def write_secret(path: Path, text: str) -> None:
    """Write a private key readable by its owner only (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def load_or_create_log_key(settings: Settings, *, create: bool) -> note.Signer | None:
    path = settings.log_key_file
    if path.exists():
        return note.Signer.from_string(path.read_text().strip())
    if not create:
        return None
    signer = note.Signer.generate(settings.log_origin.replace("/", "-"))
    write_secret(path, signer.to_string())
    return signer


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def open_log(settings: Settings, *, create: bool = False) -> Log:
    """The configured log; ``create`` makes the tables, the key and the genesis entry if missing."""
    _ensure_sqlite_dir(settings.database_url)
    signer = load_or_create_log_key(settings, create=create)
    store = open_store(settings.database_url)
    if create:
        assert signer is not None
        return Log.create(store, signer=signer, origin=settings.log_origin)
    return Log(store, signer=signer)


def open_tracer(settings: Settings, *, create: bool = True) -> Tracer:
    """The engine over the configured database (log and projections side by side)."""
    log = open_log(settings, create=create)
    return Tracer(log, Projections(settings.database_url))
