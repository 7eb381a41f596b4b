"""A log on each backend: SQLite always, PostgreSQL when the server is reachable (always under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.log import Log
from ledger.store import LogStore
from tests.factories import new_log, open_store


@pytest.fixture
def store(backend: str, tmp_path: Path, store_url: str) -> Iterator[LogStore]:
    s = open_store(backend, tmp_path=tmp_path, postgres_url=store_url)
    yield s
    s.close()


@pytest.fixture
def log(store: LogStore) -> Log:
    return new_log(store)[0]
