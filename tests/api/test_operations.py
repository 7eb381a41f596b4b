"""Typed operations over HTTP: a pack's life from inspection to refined material, and refusals."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from schemas.codes import recode_for_cascade
from schemas.lots import new_lot_id
from tests.api.conftest import Api
from tests.api.test_handovers import BACKENDS, Orgs, fresh_code, problem, register, serving, write
from trace.engine import parse_event

_rng = random.SystemRandom()


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    with serving(request, tmp_path_factory.mktemp("operations")) as api:
        yield api


def lot(material: str, kg: float, **extra: Any) -> dict[str, Any]:
    return {"lot": {"id": new_lot_id(_rng), "material": material, "mass_kg": kg, **extra}}


def op(api: Api, orgs: Orgs, who: str, path: str, body: Any, *, idem: str | None = None) -> Any:
    """Record an operation as ``who`` under a new idempotency key (unless given)."""
    key = None if who == "public" else orgs.keys[who]
    return write(api, path, key, body, idem=idem or f"k-{_rng.getrandbits(64):x}")


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def commission(api: Api, orgs: Orgs, who: str, mass_kg: float = 400.0) -> str:
    pack = fresh_code()
    ok(api.post("/v1/items", orgs.keys[who], json=[{"code": pack, "mass_kg": mass_kg}]))
    return pack


def give(api: Api, orgs: Orgs, sender: str, receiver: str, item: str) -> None:
    offer = {"items": [item], "to": orgs.ids[receiver]}
    digest = ok(op(api, orgs, sender, "/v1/handovers", offer))["handover"]
    ok(op(api, orgs, receiver, f"/v1/handovers/{digest}/accept", None))


def test_a_pack_from_inspection_to_refined_material(service: Api) -> None:
    orgs = register(service, maker="battery_maker", auto="automaker", coll="collector",
                    recy="recycler")  # fmt: skip
    pack = commission(service, orgs, "maker")
    give(service, orgs, "maker", "auto", pack)
    inspection = {"item": pack, "soh_pct": 62.5, "grade": "C", "remaining_capacity_kwh": 40}
    ok(op(service, orgs, "auto", "/v1/inspections", inspection))
    ok(op(service, orgs, "auto", "/v1/retirements", {"item": pack, "reason": "end of first life"}))
    give(service, orgs, "auto", "coll", pack)
    ok(op(service, orgs, "coll", "/v1/collections", {"item": pack, "mass_kg": 399}))
    give(service, orgs, "coll", "recy", pack)
    black = lot("black_mass", 150)
    recycling = {"inputs": [{"item": pack, "mass_kg": 399}], "outputs": [black]}
    ok(op(service, orgs, "recy", "/v1/recyclings", recycling))
    parts = [lot("black_mass", 75), lot("black_mass", 75)]
    ok(op(service, orgs, "recy", "/v1/lots/splits", {"lot": black["lot"]["id"], "parts": parts}))
    merged = lot("black_mass", 150)
    merging = {"lots": [p["lot"]["id"] for p in parts], "into": merged}
    ok(op(service, orgs, "recy", "/v1/lots/merges", merging))
    carbonate = lot("lithium_carbonate", 20, content_kg={"Li": 3.7})
    smelting = {"inputs": [{"item": merged["lot"]["id"], "mass_kg": 150}],
                "outputs": [carbonate], "reagents_kg": 5}  # fmt: skip
    ok(op(service, orgs, "recy", "/v1/lots/smelts", smelting))

    recy = orgs.keys["recy"]
    product = service.get(f"/v1/items/{carbonate['lot']['id']}", recy).json()
    assert product["custodian"] == orgs.ids["recy"] and product["content_kg"] == {"Li": 3.7}
    assert product["sources"] == [merged["lot"]["id"]]
    assert service.get(f"/v1/items/{pack}", recy).json()["status"] == "recycled"
    history = [
        e["event"]["data"]["type"] for e in service.get(f"/v1/items/{pack}/history", recy).json()
    ]
    assert history == ["commission", "handover", "accept", "inspect", "retire", "handover",
                       "accept", "collect", "handover", "accept", "recycle"]  # fmt: skip


def test_cascade_use_recodes_a_graded_pack(service: Api) -> None:
    orgs = register(service, maker="battery_maker", casc="cascade_operator")
    pack = commission(service, orgs, "maker")
    give(service, orgs, "maker", "casc", pack)
    recoded = recode_for_cascade(
        pack, manufacturer="T9X", spec="2B", date=date(2031, 5, 1), serial=int(pack[-7:])
    ).code.text
    repurposing = {"item": pack, "new_code": recoded, "new_use": "energy_storage"}
    problem(op(service, orgs, "casc", "/v1/repurposings", repurposing), 409, "not-inspected")
    ok(op(service, orgs, "casc", "/v1/inspections", {"item": pack, "soh_pct": 81, "grade": "B"}))
    ok(op(service, orgs, "casc", "/v1/repurposings", repurposing))
    reborn = service.get(f"/v1/items/{recoded}", orgs.keys["casc"]).json()
    assert (reborn["original"], reborn["eu_status"], reborn["grade"]) == (pack, "Repurposed", "B")
    assert service.get(f"/v1/items/{pack}", orgs.keys["maker"]).json()["successor"] == recoded


def test_dismantling_takes_retired_packs_and_balances_the_masses(service: Api) -> None:
    orgs = register(service, maker="battery_maker", recy="recycler")
    pack = commission(service, orgs, "maker", mass_kg=400)
    give(service, orgs, "maker", "recy", pack)
    grade = {"standard": "GB/T 39733-2024", "designation": "LRS304"}
    steel = lot("steel_scrap", 100, grade=grade)
    dismantling = {"item": pack, "mass_kg": 400, "outputs": [steel, lot("black_mass", 250)]}
    problem(op(service, orgs, "recy", "/v1/dismantlings", dismantling), 409, "not-retired")
    ok(op(service, orgs, "recy", "/v1/retirements", {"item": pack, "reason": "crash damage"}))
    heavy = {**dismantling, "outputs": [lot("steel_scrap", 300), lot("black_mass", 150)]}
    problem(op(service, orgs, "recy", "/v1/dismantlings", heavy), 409, "mass-balance")
    ok(op(service, orgs, "recy", "/v1/dismantlings", dismantling))
    made = service.get(f"/v1/items/{steel['lot']['id']}", orgs.keys["recy"]).json()
    assert made["grade"] == "GB/T 39733-2024 LRS304" and made["sources"] == [pack]


def test_scrap_lots_are_created_split_and_retried(service: Api) -> None:
    orgs = register(service, scrap="scrap_processor", dealer="dealer")
    log = service.services.tracer.log
    created = lot("steel_scrap", 100)
    first = op(service, orgs, "scrap", "/v1/lots", created, idem="lot-1")
    size = len(log)
    again = op(service, orgs, "scrap", "/v1/lots", created, idem="lot-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["event_id"] == first.json()["event_id"] and len(log) == size
    splitting = {
        "lot": created["lot"]["id"],
        "parts": [lot("steel_scrap", 30), lot("steel_scrap", 30)],
    }
    problem(op(service, orgs, "scrap", "/v1/lots/splits", splitting), 409, "mass-lost")
    splitting["parts"] = [lot("steel_scrap", 60), lot("steel_scrap", 40)]
    ok(op(service, orgs, "scrap", "/v1/lots/splits", splitting))
    tonnes = {"lot": {**lot("steel_scrap", 1)["lot"], "unit": "t"}}
    assert "kg" in problem(op(service, orgs, "scrap", "/v1/lots", tonnes), 422)["detail"]
    refused = problem(op(service, orgs, "dealer", "/v1/lots", lot("steel_scrap", 5)), 403)
    assert "recycler, scrap_processor" in refused["detail"]


def test_corrections_point_at_an_event_of_their_item(service: Api) -> None:
    orgs = register(service, maker="battery_maker", auto="automaker")
    pack, other = commission(service, orgs, "maker"), commission(service, orgs, "maker")
    inspection = {"item": pack, "soh_pct": 95, "grade": "A"}
    inspected = ok(op(service, orgs, "maker", "/v1/inspections", inspection))["event_id"]
    fix = {"corrects": inspected, "item": pack, "reason": "misread", "fields": {"soh_pct": 96}}
    ok(op(service, orgs, "maker", "/v1/corrections", fix))
    assert service.get(f"/v1/items/{pack}", orgs.keys["maker"]).json()["soh_pct"] == 96
    elsewhere = problem(op(service, orgs, "maker", "/v1/corrections", {**fix, "item": other}), 422)
    assert elsewhere["field"] == "data.corrects"
    custody = {**fix, "fields": {"custodian": "someone"}}
    problem(op(service, orgs, "maker", "/v1/corrections", custody), 422)
    problem(op(service, orgs, "auto", "/v1/corrections", fix), 404)


def test_signed_events_are_checked_then_forwarded(service: Api) -> None:
    orgs = register(service, maker="battery_maker", auto="automaker")
    pack = commission(service, orgs, "maker")
    tracer = service.services.tracer
    signer = service.services.custodial.signer_for(orgs.ids["maker"])

    def signed(soh: float, key: str) -> dict[str, Any]:
        event = parse_event({
            "actor": orgs.ids["maker"], "event_time": datetime.now(UTC).isoformat(),
            "region": "440000", "idempotency_key": key,
            "prev": {pack: tracer.world.items[pack].head},
            "data": {"type": "inspect", "item": pack, "soh_pct": soh, "grade": "A"},
        })  # fmt: skip
        return tracer.sign(event, key_id=signer.key_id, key=signer.private_key).to_json()

    first = signed(90, "s-1")
    maker = orgs.keys["maker"]
    answers = [write(service, "/v1/inspections", maker, first, idem="s-1") for _ in "12"]
    assert [a.status_code for a in answers] == [201, 200] and answers[1].json()["replayed"]
    problem(write(service, "/v1/retirements", maker, first, idem="s-1"), 422)
    second = signed(91, "s-2")
    problem(write(service, "/v1/inspections", maker, second, idem="other"), 422)
    problem(write(service, "/v1/inspections", orgs.keys["auto"], second, idem="s-2"), 403)
    tampered = {
        **second,
        "body": {**second["body"], "data": {**second["body"]["data"], "soh_pct": 99}},
    }
    problem(write(service, "/v1/inspections", maker, tampered, idem="s-2"), 422)
    assert write(service, "/v1/inspections", maker, second, idem="s-2").status_code == 201


def test_refusals_before_and_by_the_custody_rules(service: Api) -> None:
    orgs = register(service, maker="battery_maker", dealer="dealer", coll="collector",
                    audit="auditor")  # fmt: skip
    pack = commission(service, orgs, "maker")
    inspect = {"item": pack, "soh_pct": 90, "grade": "A"}
    bad = problem(op(service, orgs, "maker", "/v1/inspections", {**inspect, "soh_pct": 120}), 422)
    assert bad["errors"][0]["field"] == "body.typed.soh_pct"
    problem(op(service, orgs, "maker", "/v1/inspections", {**inspect, "colour": "red"}), 422)
    recycling = {"inputs": [{"item": pack, "mass_kg": 1}], "outputs": [lot("black_mass", 1)]}
    assert (
        "recycler"
        in problem(op(service, orgs, "dealer", "/v1/recyclings", recycling), 403)["detail"]
    )
    problem(op(service, orgs, "coll", "/v1/collections", {"item": pack}), 404)
    problem(op(service, orgs, "audit", "/v1/inspections", inspect), 403)
    problem(op(service, orgs, "public", "/v1/inspections", inspect), 401)
    ok(op(service, orgs, "maker", "/v1/inspections", inspect, idem="i-1"))
    retry = op(service, orgs, "maker", "/v1/inspections", {**inspect, "grade": "B"}, idem="i-1")
    assert problem(retry, 422)["field"] == "idempotency_key"
    give(service, orgs, "maker", "coll", pack)
    problem(op(service, orgs, "coll", "/v1/collections", {"item": pack}), 409, "not-retired")


def test_openapi_documents_every_answer(service: Api) -> None:
    paths = service.client.get("/openapi.json").json()["paths"]
    writes = ["/v1/inspections", "/v1/retirements", "/v1/collections", "/v1/repurposings",
              "/v1/dismantlings", "/v1/recyclings", "/v1/lots", "/v1/lots/splits",
              "/v1/lots/merges", "/v1/lots/smelts", "/v1/corrections", "/v1/handovers",
              "/v1/handovers/{digest}/accept", "/v1/handovers/{digest}/reject",
              "/v1/handovers/{digest}/cancel", "/v1/handovers/{digest}/dispute"]  # fmt: skip
    for path in writes:
        answers = paths[path]["post"]["responses"]
        assert {"200", "201", "401", "403", "404", "409", "422"} <= set(answers), path
        assert "application/problem+json" in answers["409"]["content"]
        parameters = {p["name"]: p for p in paths[path]["post"]["parameters"]}
        assert parameters["Idempotency-Key"]["required"] is True
    body = paths["/v1/inspections"]["post"]["requestBody"]["content"]["application/json"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in body["schema"]["oneOf"]} == {
        "Inspection", "SignedEvent"}  # fmt: skip
    for path in ("/v1/bulk/items", "/v1/bulk/events"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert {"multipart/form-data", "application/x-ndjson"} <= set(content)
    assert "text/csv" in paths["/v1/bulk/items"]["post"]["requestBody"]["content"]
