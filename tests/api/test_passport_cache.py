"""Kept public passports: the next scan after a change shows it, whoever made the change."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.labels import sign_label
from api.passport_cache import LedgerView, Passport, PassportCache, family
from api.services import Services
from api.settings import Settings
from ledger.checkpoint import verify_checkpoint
from ledger.merkle import verify_inclusion
from tests.api.conftest import Api
from tests.api.test_passport import (
    CODE,
    OTHER,
    commission,
    custodial,
    hand_over,
    repurpose_for_storage,
)
from trace.state import ItemKind, ItemState, MemoryWorld, Status

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def scan(api: Api, code: str = CODE, **params: str) -> dict[str, Any]:
    response = api.get(f"/p/{code}", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def proven(api: Api, doc: dict[str, Any]) -> int:
    """Check the passport's proof against the log's keys; return the checkpoint's size."""
    proof = doc["proof"]
    checkpoint = verify_checkpoint(proof["checkpoint"], api.services.tracer.log.log_verifiers())
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    entry = base64.b64decode(proof["entry"])
    verify_inclusion(entry, proof["index"], checkpoint.size, hashes, checkpoint.root_hash)
    return checkpoint.size


@pytest.fixture
def other_worker(settings: Settings, api: Api) -> Iterator[Api]:
    """A second service process on the same database, as uvicorn's other worker is."""
    services = Services.start(settings)
    with TestClient(create_app(settings, services=services)) as client:
        yield Api(client, services, api.admin_key)
    services.close()


def test_the_next_scan_after_an_event_shows_it(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    byd = api.actor("byd-auto", "automaker", "440000")
    commission(api, catl)
    before = scan(api)
    assert scan(api) == before  # kept, and served the same
    assert before["holder"] == {"role": "battery_maker", "region": "350000"}

    hand_over(api, catl, byd, "byd-auto")
    after = scan(api)
    assert after["holder"] == {"role": "automaker", "region": "440000"}
    assert [c["role"] for c in after["custody"]] == ["battery_maker", "automaker"]
    assert after["proof"]["index"] > before["proof"]["index"]
    assert proven(api, after) > after["proof"]["index"]
    page = api.client.get(f"/p/{CODE}", headers={"Accept": BROWSER})
    assert page.headers["content-type"].startswith("text/html") and "automaker" in page.text


def test_the_next_scan_after_a_new_checkpoint_proves_against_it(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    commission(api, catl, OTHER)
    first = proven(api, scan(api))
    custodial(api, catl, {"type": "inspect", "item": OTHER, "soh_pct": 97, "grade": "A"}, "i1")
    signed = api.post("/v1/ledger/checkpoint", catl)
    assert signed.status_code == 200, signed.text
    size = int(signed.text.split("\n")[1])
    assert size > first
    doc = scan(api)
    assert doc["proof"]["tree_size"] == proven(api, doc) == size


def test_an_event_under_a_later_code_changes_the_earlier_codes_passport(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    ess = api.actor("ess", "cascade_operator", "320000")
    recycler = api.actor("brunp", "recycler", "440000")
    new = repurpose_for_storage(api, catl, ess)
    old = scan(api)
    assert old["successor"] == new and "recycler" not in [c["role"] for c in old["custody"]]

    hand_over(api, ess, recycler, "brunp", code=new)  # touches the new code only
    assert scan(api)["custody"][-1]["role"] == "recycler"


def test_what_another_worker_appends_is_in_the_next_scan(api: Api, other_worker: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    assert scan(api)["holder"]["role"] == "battery_maker"

    byd = other_worker.actor("byd-auto", "automaker", "440000")
    hand_over(other_worker, catl, byd, "byd-auto")
    doc = scan(api)
    assert doc["holder"] == {"role": "automaker", "region": "440000"}
    assert proven(api, doc) > doc["proof"]["index"]

    # A checkpoint signed by the other worker over the same head replaces the kept proof.
    commission(other_worker, catl, OTHER)
    signed = other_worker.post("/v1/ledger/checkpoint", catl).text
    assert scan(api)["proof"]["checkpoint"] == signed


def test_kept_label_verdicts_tell_genuine_from_tampered(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    commission(api, catl, OTHER)
    token = sign_label(CODE, api.services.custodial.signer_for("catl"))
    flipped = ("A" if token[10] != "A" else "B").join((token[:10], token[11:]))
    for _ in range(2):  # built, then kept
        assert scan(api, s=token)["label"]["verdict"] == "genuine"
        assert scan(api, s=flipped)["label"]["verdict"] == "mismatch"
        assert scan(api, OTHER, s=token)["label"]["verdict"] == "mismatch"
        assert scan(api)["label"]["verdict"] == "absent"


def test_an_overlong_label_token_is_refused_as_its_parameter_says(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    response = api.get(f"/p/{CODE}", params={"s": "A" * 201})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.s"]
    spec = api.get("/openapi.json").json()["paths"]["/p/{code}"]["get"]
    (s,) = [p for p in spec["parameters"] if p["name"] == "s"]
    assert s["in"] == "query" and s["schema"]["anyOf"][0]["maxLength"] == 200


# --- the cache alone ---

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def state(code: str, **kw: Any) -> ItemState:
    fields: dict[str, Any] = {"kind": ItemKind.PACK, "status": Status.IN_STOCK,
                              "custodian": "a", "owner": "a", "producer": "a", "head": "e",
                              "last_time": NOW, "region": "440000"}  # fmt: skip
    return ItemState(id=code, **(fields | kw))


def world_of(*states: ItemState) -> MemoryWorld:
    world = MemoryWorld()
    world.items.update({s.id: s for s in states})
    return world


def test_a_passports_family_is_its_lives_and_what_each_sits_in() -> None:
    world = world_of(
        state("old", successor="new", parent="pack-1"),
        state("new", original="old", successor="newer"),
        state("newer", original="new"),
        state("pack-1", parent="rack"),
        state("rack"),
        state("cell", parent="old"),
        state("stranger"),
    )
    expected = {"old", "new", "newer", "pack-1", "rack"}
    assert family(world, world.items["new"]) == expected
    assert family(world, world.items["cell"]) == {"cell", "old", "pack-1", "rack"}


def test_the_cache_drops_what_a_change_makes_stale() -> None:
    world = world_of(state("pack"), state("module", parent="pack"), state("other"))
    cache = PassportCache(size=2)
    view = LedgerView(10, 9, ())
    cache.refresh(view)

    def keep(code: str) -> Passport:
        item = world.items[code]
        kept = Passport(item, b'{"code":"%s"}' % code.encode(), family(world, item))
        cache.keep(code, kept, cache.generation)
        return kept

    module = keep("module")
    assert cache.document("module", world.items["module"]) is module
    assert module.with_label(b'{"verdict":"absent"}') == (
        b'{"code":"module","label":{"verdict":"absent"}}'
    )
    # A new state of the item itself is never answered from the old one.
    assert cache.document("module", dataclasses.replace(world.items["module"])) is None

    # An event on the pack the module sits in drops the module's passport.
    cache.drop(["pack"])
    assert cache.document("module", world.items["module"]) is None
    # A build that overlapped a drop is not kept.
    generation = cache.generation
    cache.drop(["other"])
    cache.keep("module", module, generation)
    assert cache.document("module", world.items["module"]) is None

    # The oldest passports make room for new ones, and leave the index with them.
    keep("module")
    keep("pack")
    keep("other")
    assert cache.document("module", world.items["module"]) is None
    assert "module" not in set().union(*cache._dependents.values())
    none_kept = PassportCache(size=0)
    none_kept.keep("module", module, none_kept.generation)
    assert none_kept.document("module", world.items["module"]) is None
    assert not none_kept._dependents

    # A checkpoint drops the documents (their proofs) but not the label verdicts.
    cache.keep_label("pack", None, {"verdict": "absent"}, cache.registry_generation)
    cache.refresh(LedgerView(10, 10, ()))
    assert cache.document("pack", world.items["pack"]) is None
    assert cache.label("pack", None) == b'{"verdict":"absent"}'
    # Entries that are not events (the registry: organisations, keys) drop everything.
    keep("pack")
    cache.refresh(LedgerView(11, 10, ()))
    assert cache.label("pack", None) is None
    assert cache.document("pack", world.items["pack"]) is None
    # An older view (a slower concurrent refresh) is not adopted.
    cache.refresh(view)
    assert cache.view == LedgerView(11, 10, ())


def test_the_ledger_watch_sees_what_other_connections_commit(api: Api, other_worker: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    watch = api.services.watch
    first = watch.current()
    assert watch.current() == first == LedgerView.read(api.services.tracer.log)

    other = other_worker.services.tracer.log
    other.checkpoint()
    signed = watch.current()
    assert signed.size == first.size and signed.checkpoint == first.size
    other.store.add_cosignature(first.size, "witness.example", "a cosigned note")
    assert watch.current().cosignatures == (("witness.example", "a cosigned note"),)
    commission(other_worker, catl, OTHER)
    assert watch.current().size > first.size
