"""A tracer (log + projections in one database) on each backend, with one actor per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import Log, note, open_store
from schemas.actors import Role
from tests.factories import ORIGIN, Scene
from trace.engine import Tracer
from trace.projections import Projections


def open_tracer(store_url: str, signer: note.Signer) -> Tracer:
    log = Log.create(open_store(store_url), signer=signer, origin=ORIGIN)
    return Tracer(log, Projections(store_url))


@pytest.fixture
def log_signer() -> note.Signer:
    return note.Signer.generate("suyuan-log")


@pytest.fixture
def tracer(store_url: str, log_signer: note.Signer) -> Iterator[Tracer]:
    t = open_tracer(store_url, log_signer)
    yield t
    t.close()


@pytest.fixture
def scene(tracer: Tracer) -> Scene:
    s = Scene(tracer)
    s.add("catl", Role.BATTERY_MAKER)
    s.add("byd", Role.AUTOMAKER)
    s.add("gz-collect", Role.COLLECTOR)
    s.add("js-storage", Role.CASCADE_OPERATOR)
    s.add("brunp", Role.RECYCLER)
    s.add("auditor", Role.AUDITOR)
    return s
