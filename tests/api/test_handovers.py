"""Handovers over HTTP: offer, then accept, reject, cancel or dispute; retries; pending lists.

Also the helpers the HTTP tests of handovers, operations, bulk import and authorisation
share: one service per test module and backend (starting one costs about a second), the
routes of those modules mounted, and organisations registered afresh for every test.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import NoMatchFound

from api.app import create_app
from api.routes import bulk, handovers, operations
from api.services import Services
from api.settings import Settings
from tests.api.conftest import Api

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_serial = itertools.count(1)


def mount(app: FastAPI) -> None:
    """Add the handover, operation and bulk routes unless the application has them already."""
    try:
        app.url_path_for("get_handover", digest="0" * 64)
    except NoMatchFound:
        for module in (handovers, operations, bulk):
            app.include_router(module.router, prefix="/v1")


@contextmanager
def serving(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Api]:
    """The service on ``request.param``'s backend (a private PostgreSQL schema), routes mounted."""
    import psycopg

    url, server, schema = f"sqlite:///{tmp / 'suyuan.db'}", None, None
    if request.param == "postgres":
        server = str(request.getfixturevalue("postgres_server_url"))
        schema = f"suyuan_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{schema}"
    settings = Settings(database_url=url, log_key_file=tmp / "log.key",
                        base_url="http://testserver", rate_limit_per_minute=1_000_000)  # fmt: skip
    services = Services.start(settings)
    try:
        app = create_app(settings, services=services)
        mount(app)
        with TestClient(app) as client:
            yield Api(client, services, services.keys.issue(None, label="test admin").token)
    finally:
        services.close()
        if server is not None:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass(frozen=True)
class Orgs:
    """Organisations registered for one test: API keys and ids by short name."""

    keys: dict[str, str]
    ids: dict[str, str]


def register(api: Api, **roles: str) -> Orgs:
    """Fresh organisations: ``name=role`` registers ``name-<n>``, ``n`` new for each call."""
    n = next(_serial)
    ids = {name: f"{name}-{n}" for name in roles}
    return Orgs({name: api.actor(ids[name], role) for name, role in roles.items()}, ids)


def fresh_code() -> str:
    """A pack code no other test uses."""
    return f"001PEAB0000001G1C{next(_serial):07d}"


def write(api: Api, path: str, key: str | None, body: Any = None, *, idem: str | None) -> Any:
    headers = api.headers(key) | ({} if idem is None else {"Idempotency-Key": idem})
    return api.client.post(path, headers=headers, json=body)


def problem(response: Any, status: int, rule: str | None = None) -> dict[str, Any]:
    """Check a problem+json answer; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    if rule is not None:
        assert body["rule"] == rule, body
    return body


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    with serving(request, tmp_path_factory.mktemp("handovers")) as api:
        yield api


@dataclass(frozen=True)
class Scene:
    api: Api
    keys: dict[str, str]
    ids: dict[str, str]
    packs: list[str]

    def offer(
        self, sender: str, receiver: str, item: str, *, idem: str | None, **extra: Any
    ) -> Any:
        body = {"items": [item], "to": self.ids[receiver], **extra}
        return write(self.api, "/v1/handovers", self.keys.get(sender), body, idem=idem)

    def answer(
        self, who: str, digest: str, verb: str, *, idem: str, reason: str | None = None
    ) -> Any:
        body = None if reason is None else {"reason": reason}
        url = f"/v1/handovers/{digest}/{verb}"
        return write(self.api, url, self.keys.get(who), body, idem=idem)


@pytest.fixture
def scene(service: Api) -> Scene:
    """New organisations, and five packs held by the battery maker."""
    orgs = register(service, catl="battery_maker", byd="automaker", dealer="dealer",
                    recy="recycler", audit="auditor")  # fmt: skip
    packs = [fresh_code() for _ in range(5)]
    registered = service.post("/v1/items", orgs.keys["catl"], json=[{"code": c} for c in packs])
    assert registered.status_code == 201, registered.text
    return Scene(service, orgs.keys, orgs.ids, packs)


def test_an_offer_accepted_moves_custody(scene: Scene) -> None:
    api, keys, pack = scene.api, scene.keys, scene.packs[0]
    offered = scene.offer("catl", "byd", pack, idem="h-1", reference="PO 7")
    assert offered.status_code == 201, offered.text
    digest = offered.json()["handover"]
    assert offered.headers["location"] == f"/v1/handovers/{digest}"
    for viewer in ("catl", "byd", "audit"):
        seen = api.get(f"/v1/handovers/{digest}", keys[viewer]).json()
        assert seen["status"] == "pending" and seen["items"] == [pack]
    assert api.get(f"/v1/items/{pack}", keys["catl"]).json()["pending_handover"] == seen["id"]
    accepted = scene.answer("byd", digest, "accept", idem="a-1")
    assert accepted.status_code == 201, accepted.text
    assert api.get(f"/v1/items/{pack}", keys["byd"]).json()["custodian"] == scene.ids["byd"]
    closed = api.get(f"/v1/handovers/{digest}", api.admin_key).json()
    assert closed["status"] == "accepted" and closed["closed_by"] == accepted.json()["event_id"]


def test_a_retry_with_the_same_key_returns_the_original_receipt(scene: Scene) -> None:
    log = scene.api.services.tracer.log
    first = scene.offer("catl", "byd", scene.packs[0], idem="h-1")
    size = len(log)
    again = scene.offer("catl", "byd", scene.packs[0], idem="h-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["event_id"] == first.json()["event_id"] and again.json()["replayed"]
    other = scene.offer("catl", "dealer", scene.packs[0], idem="h-1")
    assert "used for another event" in problem(other, 422)["detail"]
    digest = first.json()["handover"]
    answers = [scene.answer("byd", digest, "accept", idem="a") for _ in "12"]
    assert [a.status_code for a in answers] == [201, 200]
    assert len(log) == size + 1


@pytest.fixture(scope="module")
def maker(service: Api) -> str:
    """One battery maker's key, for checks that precede any custody rule."""
    return register(service, maker="battery_maker").keys["maker"]


@pytest.mark.parametrize("idem", [None, "", "has space", "x" * 129])
def test_writes_need_a_well_formed_idempotency_key(
    service: Api, maker: str, idem: str | None
) -> None:
    body = {"items": [fresh_code()], "to": "anyone"}
    answer = problem(write(service, "/v1/handovers", maker, body, idem=idem), 422)
    assert answer["errors"][0]["field"] == "header.Idempotency-Key"


def test_only_the_custodian_offers_and_only_the_owner_transfers(scene: Scene) -> None:
    pack = scene.packs[0]
    digest = scene.offer("catl", "byd", pack, idem="h-1").json()["handover"]
    scene.answer("byd", digest, "accept", idem="a-1")
    # The maker placed it on the market and still reads it, but no longer holds it.
    problem(scene.offer("catl", "dealer", pack, idem="h-2"), 409, "custodian-only")
    # A stranger is not told the item exists.
    problem(scene.offer("recy", "dealer", pack, idem="h-3"), 404)
    sold = scene.offer("byd", "dealer", pack, idem="h-4", transfer_ownership=True)
    problem(sold, 409, "owner-only")
    problem(scene.offer("audit", "byd", scene.packs[1], idem="h-5"), 403)
    problem(scene.offer("public", "byd", scene.packs[1], idem="h-6"), 401)


def test_answers_belong_to_the_parties(scene: Scene) -> None:
    api, keys = scene.api, scene.keys
    digests = [scene.offer("catl", "byd", p, idem=f"h-{p}").json()["handover"] for p in scene.packs]
    why = "damaged casing"
    problem(scene.answer("catl", digests[0], "accept", idem="x1"), 409, "receiver-only")
    problem(scene.answer("byd", digests[0], "cancel", idem="x2", reason=why), 409, "sender-only")
    problem(scene.answer("recy", digests[0], "accept", idem="x3"), 404)
    problem(scene.answer("audit", digests[0], "accept", idem="x4"), 403)
    problem(api.get(f"/v1/handovers/{digests[0]}", keys["recy"]), 404)
    problem(api.get(f"/v1/handovers/{digests[0]}"), 401)
    assert scene.answer("byd", digests[0], "reject", idem="r", reason=why).status_code == 201
    assert scene.answer("catl", digests[1], "cancel", idem="c", reason=why).status_code == 201
    for pack in scene.packs[:2]:
        item = api.get(f"/v1/items/{pack}", keys["catl"]).json()
        assert item["custodian"] == scene.ids["catl"] and item["pending_handover"] is None
    problem(scene.answer("byd", digests[0], "accept", idem="x5"), 409, "handover-closed")
    scene.answer("byd", digests[2], "accept", idem="a")
    assert scene.answer("catl", digests[2], "dispute", idem="d", reason=why).status_code == 201
    assert api.get(f"/v1/handovers/{digests[2]}", keys["byd"]).json()["disputed"] is True
    problem(scene.answer("catl", digests[2], "dispute", idem="d2"), 422)  # a dispute says why


def test_pending_lists_incoming_and_outgoing_a_page_at_a_time(scene: Scene) -> None:
    api, keys, packs = scene.api, scene.keys, scene.packs
    for pack in packs[:3]:
        scene.offer("catl", "byd", pack, idem=f"h-{pack}")
    own = fresh_code()
    api.post("/v1/items", keys["byd"], json=[{"code": own}])
    scene.offer("byd", "catl", own, idem="h-own")

    def listed(key: str | None, **params: Any) -> list[str]:
        out: list[str] = []
        cursor = None
        while True:
            query = params if cursor is None else {**params, "cursor": cursor}
            page = api.get("/v1/handovers/pending", key, params=query)
            assert page.status_code == 200, page.text
            out += [item for h in page.json()["data"] for item in h["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return out

    assert listed(keys["byd"], direction="incoming", limit=2) == packs[:3]
    assert listed(keys["byd"], direction="outgoing") == [own]
    assert sorted(listed(keys["byd"], limit=1)) == sorted([*packs[:3], own])
    assert listed(keys["dealer"]) == []
    byd = scene.ids["byd"]
    assert len(listed(keys["audit"], actor=byd)) == len(listed(api.admin_key, actor=byd)) == 4
    assert len(listed(keys["audit"])) >= 4  # auditors see every organisation's
    problem(api.get("/v1/handovers/pending", keys["catl"], params={"actor": byd}), 403)
    problem(api.get("/v1/handovers/pending", keys["audit"], params={"actor": "nobody"}), 404)
    problem(api.get("/v1/handovers/pending", keys["byd"], params={"cursor": "!!"}), 422)
    problem(api.get("/v1/handovers/pending"), 401)


def test_racing_offers_of_one_item_record_exactly_one(scene: Scene) -> None:
    pack = scene.packs[4]

    def attempt(n: int) -> int:
        return int(scene.offer("catl", "byd", pack, idem=f"race-{n}").status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [201] + [409] * 7
    item = scene.api.get(f"/v1/items/{pack}", scene.keys["catl"]).json()
    assert item["pending_handover"] is not None
