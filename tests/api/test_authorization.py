"""Who may do what: every role against every route, with the status and the reason it gets.

Each cell of :data:`MATRIX` calls one route as one role and expects one status (and, for a
refusal by the custody rules, the rule). Cells that should succeed act on a subject made for
them alone, so no cell depends on another; cells that should fail share subjects, since a
refusal changes nothing. :func:`test_the_matrix_covers_every_route` keeps the table
complete: a route added to the service without a row here fails it.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import note
from schemas.codes import recode_for_cascade
from schemas.lots import new_lot_id
from tests.api.conftest import Api
from tests.api.test_handovers import BACKENDS, fresh_code, serving
from trace.engine import parse_event

ORGS = ("battery_maker", "automaker", "dealer", "collector", "cascade_operator", "recycler",
        "scrap_processor")  # fmt: skip
ROLES = ("public", "admin", *ORGS, "auditor")
IDS = dict(zip((*ORGS, "auditor"), ("maker", "auto", "dealer", "coll", "casc", "recy", "scrap",
                                    "audit"), strict=True))  # fmt: skip
_rng = random.SystemRandom()

Expected = int | tuple[int, str]  # a status, or 409 with the rule that refuses


@dataclass
class Scene:
    """The matrix's world: one organisation per role, and subjects made on demand."""

    api: Api
    keys: dict[str, str | None] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def key(self, role: str) -> str | None:
        return self.keys[role]

    def idem(self) -> str:
        return f"m-{_rng.getrandbits(64):x}"

    def post(self, role: str, path: str, body: Any = None) -> Any:
        headers = self.api.headers(self.key(role)) | {"Idempotency-Key": self.idem()}
        response = self.api.client.post(path, headers=headers, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def subject(self, name: str, fresh: bool) -> Any:
        """A new subject for a cell that changes it, else the one shared by refused cells."""
        make: Callable[[], Any] = getattr(self, name)
        if fresh:
            return make()
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]

    # --- subjects ---

    def commission(self, role: str) -> str:
        pack = fresh_code()
        self.post(role, "/v1/items", [{"code": pack, "mass_kg": 400}])
        return pack

    def offer(self, sender: str, receiver: str, item: str) -> str:
        body = {"items": [item], "to": IDS[receiver]}
        return str(self.post(sender, "/v1/handovers", body)["handover"])

    def give(self, item: str, *path: str) -> str:
        for sender, receiver in itertools.pairwise(path):
            self.post(receiver, f"/v1/handovers/{self.offer(sender, receiver, item)}/accept")
        return item

    def market_pack(self) -> str:  # made by the battery maker, held by the automaker
        return self.give(self.commission("battery_maker"), "battery_maker", "automaker")

    def placed_pack(self) -> str:  # put on the market by the automaker, held by a dealer
        return self.give(self.commission("automaker"), "automaker", "dealer")

    def recycled_through(self) -> str:  # the automaker's, held by the recycler, then scrap
        return self.give(self.commission("automaker"), "automaker", "recycler", "scrap_processor")

    def pending(self) -> str:  # the automaker offers a pack to a dealer
        return self.offer("automaker", "dealer", self.market_pack())

    def retired_at(self, role: str, *, collect: bool = False, grade: bool = False) -> str:
        pack = self.give(self.commission("battery_maker"), "battery_maker", role)
        if grade:
            self.post(role, "/v1/inspections", {"item": pack, "soh_pct": 80, "grade": "B"})
            return pack
        self.post(role, "/v1/retirements", {"item": pack, "reason": "end of life"})
        if collect:
            self.post(role, "/v1/collections", {"item": pack})
        return pack

    def retired_at_collector(self) -> str:
        return self.retired_at("collector")

    def retired_at_recycler(self) -> str:
        return self.retired_at("recycler")

    def collected_at_recycler(self) -> str:
        return self.retired_at("recycler", collect=True)

    def graded_at_cascade(self) -> str:
        return self.retired_at("cascade_operator", grade=True)

    def scrap_lot(self) -> str:
        body = lot("lead_scrap", 100)
        self.post("scrap_processor", "/v1/lots", body)
        return str(body["lot"]["id"])

    def scrap_lots(self) -> list[str]:
        return [self.scrap_lot(), self.scrap_lot()]

    def signed_inspect(self, role: str, item: str) -> dict[str, Any]:
        actor = IDS.get(role, "auto")  # administrators and the public present the automaker's
        tracer = self.api.services.tracer
        signer = self.api.services.custodial.signer_for(actor)
        event = parse_event({
            "actor": actor, "event_time": datetime.now(UTC).isoformat(), "region": "440000",
            "idempotency_key": self.idem(), "prev": {item: tracer.world.items[item].head},
            "data": {"type": "inspect", "item": item, "soh_pct": 90, "grade": "A"},
        })  # fmt: skip
        return tracer.sign(event, key_id=signer.key_id, key=signer.private_key).to_json()


def lot(material: str, kg: float) -> dict[str, Any]:
    return {"lot": {"id": new_lot_id(_rng), "material": material, "mass_kg": kg}}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    content: str | None = None
    media: str | None = None
    idempotent: bool = False  # send an Idempotency-Key


Build = Callable[[Scene, str, bool], Call]


@dataclass(frozen=True)
class Resource:
    name: str
    route: tuple[str, str]  # method and path template, as the application declares them
    build: Build
    expected: dict[str, Expected]
    check: Callable[[str, Any], None] | None = None


def cells(default: Expected, **per_role: Expected) -> dict[str, Expected]:
    """Expectations for every role: ``default``, except the roles named."""
    unknown = set(per_role) - set(ROLES)
    assert not unknown, unknown
    return {role: per_role.get(role, default) for role in ROLES}


def writes(*, ok: Mapping[str, Expected], others: Expected) -> dict[str, Expected]:
    """A write: the public is asked for a key, administrators and auditors are refused."""
    return cells(others, public=401, admin=403, auditor=403, **ok)


def reads(*, ok: tuple[str, ...], others: Expected = 404) -> dict[str, Expected]:
    """An object read: administrators and auditors read everything; the public needs a key."""
    return cells(others, public=401, admin=200, auditor=200, **dict.fromkeys(ok, 200))


KEYED = cells(200, public=401)
ADMIN_ONLY_CREATE = cells(403, public=401, admin=201)
ADMIN_ONLY = cells(403, public=401, admin=200)
EVERYONE = cells(200)
PRODUCERS_AND_AUDITORS = cells(
    403, public=401, admin=200, auditor=200, battery_maker=200, automaker=200
)
AUDITORS = cells(403, public=401, admin=200, auditor=200)
MAKERS: dict[str, Expected] = {"battery_maker": 201, "automaker": 201}
CUSTODIAN: dict[str, Expected] = {"automaker": 201, "battery_maker": (409, "custodian-only")}


def _op(path: str, subject: str, body: Callable[[Any], Any]) -> Build:
    def build(s: Scene, role: str, fresh: bool) -> Call:
        return Call("POST", path, body(s.subject(subject, fresh)), idempotent=True)

    return build


def _answer(verb: str) -> Build:
    reason = None if verb == "accept" else {"reason": "not as described"}
    return lambda s, role, fresh: Call(
        "POST", f"/v1/handovers/{s.subject('pending', fresh)}/{verb}", reason, idempotent=True
    )


def _new_actor(s: Scene, role: str, fresh: bool) -> Call:
    body = {"id": f"new-{_rng.getrandbits(32):x}", "name": "New", "role": "dealer",
            "region": "440000"}  # fmt: skip
    return Call("POST", "/v1/actors", body)


def _signing_key(s: Scene, role: str, fresh: bool) -> Call:
    verifier = note.Signer.generate("dealer").verifier.to_string()
    return Call("POST", "/v1/actors/dealer/keys", {"verifier_key": verifier})


def _revoke_signing_key(s: Scene, role: str, fresh: bool) -> Call:
    key_id = "dealer+00000000"
    if fresh:
        signer = note.Signer.generate("dealer")
        s.api.services.tracer.add_key("dealer", signer.verifier.to_string())
        key_id = signer.key_id
    return Call("POST", f"/v1/signing-keys/{key_id}/revoke", {"reason": "rotated"})


def _api_key(verb: str) -> Build:
    def build(s: Scene, role: str, fresh: bool) -> Call:
        key_id = s.api.services.keys.issue("dealer").id if fresh else "0000000000000000"
        return Call("POST", f"/v1/api-keys/{key_id}/{verb}")

    return build


def _bulk_items(s: Scene, role: str, fresh: bool) -> Call:
    return Call("POST", "/v1/bulk/items", content=f"code,mass_kg\n{fresh_code()},400\n",
                media="text/csv")  # fmt: skip


def _bulk_events(s: Scene, role: str, fresh: bool) -> Call:
    row = {"data": {"type": "inspect", "item": s.subject("market_pack", fresh), "soh_pct": 90,
                    "grade": "A"}}  # fmt: skip
    return Call("POST", "/v1/bulk/events", content=json.dumps(row), media="application/x-ndjson")


def _found_only_by_readers(readers: tuple[str, ...]) -> Callable[[str, Any], None]:
    def check(role: str, body: Any) -> None:
        assert len(body["data"]) == (1 if role in (*readers, "admin", "auditor") else 0)

    return check


def _one_invalid_row_unless_committed(role: str, body: Any) -> None:
    assert (body["committed"], body["invalid"]) == ((1, 0) if role == "automaker" else (0, 1))


def _recode(pack: str) -> str:
    serial = _rng.randrange(1, 9_999_999)
    return recode_for_cascade(pack, manufacturer="T9X", spec="2B", date=datetime(2031, 5, 1).date(),
                              serial=serial).code.text  # fmt: skip


MATRIX: list[Resource] = [
    Resource("health", ("GET", "/healthz"), lambda s, r, f: Call("GET", "/healthz"), EVERYONE),
    # --- organisations and keys: administrators ---
    Resource("actors.create", ("POST", "/v1/actors"), _new_actor, ADMIN_ONLY_CREATE),
    Resource("actors.list", ("GET", "/v1/actors"), lambda s, r, f: Call("GET", "/v1/actors"), KEYED),
    Resource("actors.get", ("GET", "/v1/actors/{actor_id}"),
             lambda s, r, f: Call("GET", "/v1/actors/auto"), KEYED),
    Resource("signing-keys.add", ("POST", "/v1/actors/{actor_id}/keys"), _signing_key,
             ADMIN_ONLY_CREATE),
    Resource("signing-keys.revoke", ("POST", "/v1/signing-keys/{key_id}/revoke"),
             _revoke_signing_key, ADMIN_ONLY),
    Resource("api-keys.issue", ("POST", "/v1/actors/{actor_id}/api-keys"),
             lambda s, r, f: Call("POST", "/v1/actors/dealer/api-keys"), ADMIN_ONLY_CREATE),
    Resource("api-keys.rotate", ("POST", "/v1/api-keys/{key_id}/rotate"), _api_key("rotate"),
             ADMIN_ONLY_CREATE),
    Resource("api-keys.revoke", ("POST", "/v1/api-keys/{key_id}/revoke"), _api_key("revoke"),
             ADMIN_ONLY),
    # --- items: object visibility ---
    Resource("items.register", ("POST", "/v1/items"),
             lambda s, r, f: Call("POST", "/v1/items", [{"code": fresh_code()}]),
             writes(ok=MAKERS, others=(409, "role"))),
    Resource("items.get[made by the maker, held by the automaker]", ("GET", "/v1/items/{code}"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('market_pack', False)}"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("items.get[placed by the automaker, held by a dealer]", ("GET", "/v1/items/{code}"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('placed_pack', False)}"),
             reads(ok=("automaker", "dealer"))),
    Resource("items.get[held by the recycler, then scrap]", ("GET", "/v1/items/{code}"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('recycled_through', False)}"),
             reads(ok=("automaker", "recycler", "scrap_processor"))),
    Resource("items.get[unknown]", ("GET", "/v1/items/{code}"),
             lambda s, r, f: Call("GET", f"/v1/items/{fresh_code()}"),
             cells(404, public=401)),
    Resource("items.history", ("GET", "/v1/items/{code}/history"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('market_pack', False)}/history"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("items.search", ("GET", "/v1/items"),
             lambda s, r, f: Call("GET", f"/v1/items?code={s.subject('market_pack', False)}"),
             KEYED, _found_only_by_readers(("battery_maker", "automaker"))),
    # --- events: signed, or signed with the custodial key ---
    Resource("events.signed", ("POST", "/v1/events"),
             lambda s, r, f: Call("POST", "/v1/events",
                                  [s.signed_inspect(r, s.subject("market_pack", f))]),
             writes(ok=CUSTODIAN, others=404)),
    Resource("events.custodial", ("POST", "/v1/events/custodial"),
             lambda s, r, f: Call("POST", "/v1/events/custodial", [{
                 "idempotency_key": s.idem(), "data": {"type": "inspect", "soh_pct": 90,
                 "grade": "A", "item": s.subject("market_pack", f)}}]),
             writes(ok=CUSTODIAN, others=404)),
    # --- handovers ---
    Resource("handovers.create", ("POST", "/v1/handovers"),
             _op("/v1/handovers", "market_pack", lambda p: {"items": [p], "to": "recy"}),
             writes(ok=CUSTODIAN, others=404)),
    Resource("handovers.accept", ("POST", "/v1/handovers/{digest}/accept"), _answer("accept"),
             writes(ok={"dealer": 201, "automaker": (409, "receiver-only")}, others=404)),
    Resource("handovers.reject", ("POST", "/v1/handovers/{digest}/reject"), _answer("reject"),
             writes(ok={"dealer": 201, "automaker": (409, "receiver-only")}, others=404)),
    Resource("handovers.cancel", ("POST", "/v1/handovers/{digest}/cancel"), _answer("cancel"),
             writes(ok={"automaker": 201, "dealer": (409, "sender-only")}, others=404)),
    Resource("handovers.dispute", ("POST", "/v1/handovers/{digest}/dispute"), _answer("dispute"),
             writes(ok={"automaker": 201, "dealer": 201}, others=404)),
    Resource("handovers.pending", ("GET", "/v1/handovers/pending"),
             lambda s, r, f: Call("GET", "/v1/handovers/pending"), KEYED),
    Resource("handovers.get", ("GET", "/v1/handovers/{digest}"),
             lambda s, r, f: Call("GET", f"/v1/handovers/{s.subject('pending', False)}"),
             reads(ok=("automaker", "dealer"))),
    # --- operations ---
    Resource("operations.inspect", ("POST", "/v1/inspections"),
             _op("/v1/inspections", "market_pack",
                 lambda p: {"item": p, "soh_pct": 75, "grade": "B"}),
             writes(ok=CUSTODIAN, others=404)),
    Resource("operations.retire", ("POST", "/v1/retirements"),
             _op("/v1/retirements", "market_pack", lambda p: {"item": p, "reason": "worn"}),
             writes(ok=CUSTODIAN, others=404)),
    Resource("operations.collect", ("POST", "/v1/collections"),
             _op("/v1/collections", "retired_at_collector", lambda p: {"item": p}),
             writes(ok={"collector": 201, "cascade_operator": 404, "recycler": 404}, others=403)),
    Resource("operations.repurpose", ("POST", "/v1/repurposings"),
             _op("/v1/repurposings", "graded_at_cascade",
                 lambda p: {"item": p, "new_code": _recode(p), "new_use": "backup_power"}),
             writes(ok={"cascade_operator": 201}, others=403)),
    Resource("operations.dismantle", ("POST", "/v1/dismantlings"),
             _op("/v1/dismantlings", "retired_at_recycler",
                 lambda p: {"item": p, "mass_kg": 400, "outputs": [lot("steel_scrap", 100)]}),
             writes(ok={"recycler": 201, "cascade_operator": 404, "scrap_processor": 404},
                    others=403)),
    Resource("operations.recycle", ("POST", "/v1/recyclings"),
             _op("/v1/recyclings", "collected_at_recycler",
                 lambda p: {"inputs": [{"item": p, "mass_kg": 400}],
                            "outputs": [lot("black_mass", 150)]}),
             writes(ok={"recycler": 201}, others=403)),
    Resource("operations.lot-create", ("POST", "/v1/lots"),
             lambda s, r, f: Call("POST", "/v1/lots", lot("steel_scrap", 10), idempotent=True),
             writes(ok={"recycler": 201, "scrap_processor": 201}, others=403)),
    Resource("operations.lot-split", ("POST", "/v1/lots/splits"),
             _op("/v1/lots/splits", "scrap_lot",
                 lambda i: {"lot": i, "parts": [lot("lead_scrap", 50), lot("lead_scrap", 50)]}),
             writes(ok={"scrap_processor": 201, "recycler": 404}, others=403)),
    Resource("operations.lot-merge", ("POST", "/v1/lots/merges"),
             _op("/v1/lots/merges", "scrap_lots",
                 lambda ids: {"lots": ids, "into": lot("lead_scrap", 200)}),
             writes(ok={"scrap_processor": 201, "recycler": 404}, others=403)),
    Resource("operations.lot-smelt", ("POST", "/v1/lots/smelts"),
             _op("/v1/lots/smelts", "scrap_lot",
                 lambda i: {"inputs": [{"item": i, "mass_kg": 100}], "outputs": [lot("lead", 90)]}),
             writes(ok={"scrap_processor": 201, "recycler": 404}, others=403)),
    Resource("operations.correction", ("POST", "/v1/corrections"),
             lambda s, r, f: (lambda p: Call("POST", "/v1/corrections", {
                 "corrects": s.api.services.tracer.world.items[p].head, "item": p,
                 "reason": "scale fault", "fields": {"mass_kg": 401}}, idempotent=True))(
                 s.subject("market_pack", f)),
             writes(ok={"battery_maker": 201, "automaker": 201}, others=404)),
    # --- bulk import ---
    Resource("bulk.items", ("POST", "/v1/bulk/items"), _bulk_items,
             writes(ok=MAKERS, others=403)),
    Resource("bulk.events", ("POST", "/v1/bulk/events"), _bulk_events,
             writes(ok={"automaker": 201}, others=200), _one_invalid_row_unless_committed),
    # --- the log: public ---
    Resource("ledger.checkpoint", ("GET", "/v1/ledger/checkpoint"),
             lambda s, r, f: Call("GET", "/v1/ledger/checkpoint"), EVERYONE),
    Resource("ledger.checkpoint.sign", ("POST", "/v1/ledger/checkpoint"),
             lambda s, r, f: Call("POST", "/v1/ledger/checkpoint"), KEYED),
    Resource("ledger.entries", ("GET", "/v1/ledger/entries"),
             lambda s, r, f: Call("GET", "/v1/ledger/entries?start=0&end=2"), EVERYONE),
    Resource("ledger.inclusion", ("GET", "/v1/ledger/proofs/inclusion/{seq}"),
             lambda s, r, f: Call("GET", "/v1/ledger/proofs/inclusion/1"), EVERYONE),
    Resource("ledger.consistency", ("GET", "/v1/ledger/proofs/consistency"),
             lambda s, r, f: Call("GET", "/v1/ledger/proofs/consistency?old=1&new=2"), EVERYONE),
    Resource("ledger.bundle", ("GET", "/v1/ledger/bundle/{seq}"),
             lambda s, r, f: Call("GET", "/v1/ledger/bundle/1"), EVERYONE),
    Resource("ledger.export", ("GET", "/v1/ledger/export"),
             lambda s, r, f: Call("GET", "/v1/ledger/export"), EVERYONE),
    Resource("ledger.witnesses", ("GET", "/v1/ledger/witnesses/{size}"),
             lambda s, r, f: Call("GET", "/v1/ledger/witnesses/1"), EVERYONE),
    # --- the public passport, labels and the Battery Pass ---
    Resource("passport.public", ("GET", "/p/{code}"),
             lambda s, r, f: Call("GET", f"/p/{s.subject('market_pack', False)}"), EVERYONE),
    Resource("passport.battery_pass", ("GET", "/v1/items/{code}/passport"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('market_pack', False)}/passport"),
             EVERYONE),  # everyone gets the public part; restricted parts need an interest
    Resource("labels.png", ("GET", "/v1/items/{code}/label.png"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('market_pack', False)}/label.png"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("labels.svg", ("GET", "/v1/items/{code}/label.svg"),
             lambda s, r, f: Call("GET", f"/v1/items/{s.subject('market_pack', False)}/label.svg"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("labels.sheet", ("GET", "/v1/labels/sheet"),
             lambda s, r, f: Call("GET", f"/v1/labels/sheet?codes={s.subject('market_pack', False)}"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("labels.sheet.post", ("POST", "/v1/labels/sheet"),
             lambda s, r, f: Call("POST", "/v1/labels/sheet", {"codes": [s.subject("market_pack", False)]}),
             reads(ok=("battery_maker", "automaker"))),
    # --- analytics: auditors everything, producers their own products ---
    Resource("analytics.lineage", ("GET", "/v1/lineage/{code}"),
             lambda s, r, f: Call("GET", f"/v1/lineage/{s.subject('market_pack', False)}"),
             reads(ok=("battery_maker", "automaker"))),
    Resource("analytics.flows", ("GET", "/v1/flows"),
             lambda s, r, f: Call("GET", "/v1/flows"), PRODUCERS_AND_AUDITORS),
    Resource("analytics.rates", ("GET", "/v1/rates"),
             lambda s, r, f: Call("GET", "/v1/rates"), PRODUCERS_AND_AUDITORS),
    Resource("analytics.anomalies", ("GET", "/v1/anomalies"),
             lambda s, r, f: Call("GET", "/v1/anomalies"), AUDITORS),
    Resource("analytics.epr", ("GET", "/v1/reports/epr/{producer}/{year}"),
             lambda s, r, f: Call("GET", f"/v1/reports/epr/{IDS['battery_maker']}/2026"),
             cells(403, public=401, admin=200, auditor=200, battery_maker=200)),
]  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def scene(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    with serving(request, tmp_path_factory.mktemp("authorization")) as api:
        world = Scene(api, {"public": None, "admin": api.admin_key})
        for role, actor_id in IDS.items():
            world.keys[role] = api.actor(actor_id, role)
        yield world


@pytest.mark.parametrize(
    ("resource", "role"),
    [pytest.param(r, role, id=f"{r.name}-{role}") for r in MATRIX for role in ROLES],
)
def test_role_against_resource(scene: Scene, resource: Resource, role: str) -> None:
    expected = resource.expected[role]
    status, rule = expected if isinstance(expected, tuple) else (expected, None)
    call = resource.build(scene, role, 200 <= status < 300)
    headers = scene.api.headers(scene.key(role))
    if call.idempotent:
        headers["Idempotency-Key"] = scene.idem()
    if call.media is not None:
        headers["Content-Type"] = call.media
    response = scene.api.client.request(
        call.method, call.path, headers=headers, json=call.json, content=call.content
    )
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status and body["detail"], body
        assert body.get("rule") == rule, body
    elif resource.check is not None:
        resource.check(role, response.json())


def test_the_matrix_covers_every_route(scene: Scene) -> None:
    paths = scene.api.client.get("/openapi.json").json()["paths"]
    declared = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert declared == {resource.route for resource in MATRIX}


def test_every_status_in_the_matrix_is_one_the_service_gives() -> None:
    statuses = {e if isinstance(e, int) else e[0] for r in MATRIX for e in r.expected.values()}
    assert statuses == {200, 201, 401, 403, 404, 409}
