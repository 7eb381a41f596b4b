"""Bulk import over HTTP: a per-row report, valid rows recorded, a retried file appending nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from api.routes import bulk
from tests.api.conftest import Api
from tests.api.test_handovers import BACKENDS, fresh_code, problem, register, serving
from trace.engine import parse_event

CSV = "text/csv"
NDJSON = "application/x-ndjson"


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    with serving(request, tmp_path_factory.mktemp("bulk")) as api:
        yield api


def send(api: Api, path: str, key: str | None, text: str | bytes, media: str) -> Any:
    headers = api.headers(key) | {"Content-Type": media}
    return api.client.post(path, headers=headers, content=text)


def upload(api: Api, path: str, key: str, name: str, text: str, media: str) -> Any:
    return api.client.post(path, headers=api.headers(key), files={"file": (name, text, media)})


def generated_csv(rows: int) -> tuple[str, dict[int, str]]:
    """Packs as CSV, some rows broken on purpose: the text, and a reason for each bad line."""
    lines = ["code,mass_kg,chemistry,energy_kwh,unit"]
    bad: dict[int, str] = {}
    for i in range(rows):
        line, code, mass, chemistry, energy, unit = i + 2, fresh_code(), "400", "", "", "kg"
        if i % 97 == 1:
            code, bad[line] = code.lower(), "GB/T 34014"
        elif i % 89 == 2:
            code, bad[line] = code[:-1], "GB/T 34014"
        elif i % 83 == 3:
            mass, bad[line] = "-12.5", "positive number of kilograms"
        elif i % 79 == 4:
            unit, bad[line] = "lb", "recorded in kg"
        elif i % 3 == 0:
            chemistry, energy = "LFP", "60"
        elif i % 5 == 0:
            mass = ""
        lines.append(",".join([code, mass, chemistry, energy, unit]))
    return "\n".join(lines) + "\n", bad


def test_a_generated_csv_records_valid_rows_and_a_retry_appends_nothing(service: Api) -> None:
    key = register(service, maker="battery_maker").keys["maker"]
    text, bad = generated_csv(2000)
    log = service.services.tracer.log
    before = len(log)
    first = upload(service, "/v1/bulk/items", key, "packs.csv", text, CSV)
    assert first.status_code == 201, first.text[:500]
    report = first.json()
    assert (report["rows"], report["invalid"]) == (2000, len(bad))
    assert report["committed"] == 2000 - len(bad) and report["replayed"] == 0
    assert {o["line"]: o["status"] for o in report["outcomes"]} == dict.fromkeys(bad, "invalid")
    for outcome in report["outcomes"]:
        assert bad[outcome["line"]] in outcome["reason"], outcome
    assert len(log) == before + report["committed"]
    lfp = text.splitlines()[1].split(",")[0]  # i = 0: LFP, 60 kWh
    item = service.get(f"/v1/items/{lfp}", key).json()
    assert (item["chemistry"], item["energy_kwh"], item["mass_kg"]) == ("LFP", 60.0, 400.0)

    again = send(service, "/v1/bulk/items?all_rows=true", key, text, CSV)
    assert again.status_code == 200, again.text[:500]
    retried = again.json()
    assert (retried["committed"], retried["replayed"]) == (0, report["committed"])
    assert retried["invalid"] == len(bad) and len(retried["outcomes"]) == 2000
    assert len(log) == before + report["committed"]


def test_item_rows_from_ndjson(service: Api) -> None:
    key = register(service, maker="battery_maker").keys["maker"]
    packs = [fresh_code() for _ in range(3)]
    rows = [{"code": packs[0], "mass_kg": 410.5},
            {"code": packs[1], "chemistry": "NCM811", "energy_kwh": 75, "mass_kg": 450},
            {"code": packs[0], "mass_kg": 1},
            {"code": packs[2], "colour": "blue"},
            {"code": packs[2], "chemistry": "LFP"}]  # fmt: skip
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n[1, 2]\n"
    report = send(service, "/v1/bulk/items", key, text, NDJSON).json()
    assert (report["committed"], report["invalid"]) == (2, 4)
    reasons = {o["line"]: o["reason"] for o in report["outcomes"]}
    assert "already on line 1" in reasons[3] and "colour" in reasons[4]
    assert "go together" in reasons[5] and "JSON object" in reasons[7]


def test_event_rows_chain_refusals_are_isolated_and_a_retry_replays(service: Api) -> None:
    orgs = register(service, maker="battery_maker")
    key, maker = orgs.keys["maker"], orgs.ids["maker"]
    a, b, c = (fresh_code() for _ in range(3))
    items = "\n".join(json.dumps({"code": code, "mass_kg": 400}) for code in (a, b, c))
    assert send(service, "/v1/bulk/items", key, items, NDJSON).json()["committed"] == 3
    tracer = service.services.tracer
    signer = service.services.custodial.signer_for(maker)
    event = parse_event({
        "actor": maker, "event_time": datetime.now(UTC).isoformat(), "region": "440000",
        "idempotency_key": "sig-1", "prev": {b: tracer.world.items[b].head},
        "data": {"type": "inspect", "item": b, "soh_pct": 93, "grade": "A"},
    })  # fmt: skip
    signed = tracer.sign(event, key_id=signer.key_id, key=signer.private_key).to_json()
    inspect_a = {"data": {"type": "inspect", "item": a, "soh_pct": 88, "grade": "B"}}
    lines = [
        json.dumps(inspect_a),  # 1
        json.dumps({"data": {"type": "retire", "item": a, "reason": "end of life"}}),  # 2
        json.dumps(signed),  # 3
        json.dumps({"data": {"type": "collect", "item": a}}),  # 4: makers never collect
        json.dumps({"data": {"type": "retire", "item": a, "reason": "again"}}),  # 5
        "{not json",  # 6
        json.dumps({"data": {"type": "inspect", "item": fresh_code(), "soh_pct": 1, "grade": "D"}}),
        json.dumps({"idempotency_key": "mine-1",
                    "data": {"type": "inspect", "item": c, "soh_pct": 77, "grade": "B"}}),  # 8
        json.dumps({**inspect_a, "actor": "someone-else"}),  # 9
        json.dumps(inspect_a),  # 10: line 1 again
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    log = service.services.tracer.log
    before = len(log)
    report = send(service, "/v1/bulk/events?all_rows=true", key, text, NDJSON)
    assert report.status_code == 201, report.text
    status = {o["line"]: o["status"] for o in report.json()["outcomes"]}
    assert [n for n, s in sorted(status.items()) if s == "committed"] == [1, 2, 3, 8]
    assert len(log) == before + 4
    why = {o["line"]: o for o in report.json()["outcomes"] if o["status"] == "invalid"}
    assert set(why) == {4, 5, 6, 7, 9, 10}
    assert "collector" in why[4]["reason"] and why[5]["rule"] == "already-retired"
    assert "not known" in why[7]["reason"] and "same event as line 1" in why[10]["reason"]
    assert service.get(f"/v1/items/{a}", key).json()["status"] == "retired"

    again = send(service, "/v1/bulk/events?all_rows=true", key, text, NDJSON)
    assert again.status_code == 200
    replayed = {o["line"] for o in again.json()["outcomes"] if o["status"] == "replayed"}
    assert replayed == {1, 2, 3, 8} and len(log) == before + 4


def test_file_level_problems(service: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    orgs = register(service, maker="battery_maker", recy="recycler")
    key = orgs.keys["maker"]
    items = "/v1/bulk/items"
    assert "kilograms" in problem(send(service, items, key, "code,mass_t\n", CSV), 422)["detail"]
    problem(send(service, items, key, "code,colour\n", CSV), 422)
    problem(send(service, items, key, "", CSV), 422)
    problem(send(service, items, key, b"code\n\xff\xfe\n", CSV), 422)
    problem(send(service, items, key, "code\n" + "x" * 200_000, CSV), 422)  # past csv's field limit
    problem(send(service, items, key, "{}", "application/json"), 415)
    problem(send(service, "/v1/bulk/events", key, "code\n", CSV), 415)
    wrong_field = service.client.post(
        items, headers=service.headers(key), files={"upload": ("a.csv", "code\n", CSV)}
    )
    problem(wrong_field, 422)
    problem(send(service, items, orgs.keys["recy"], "code\n", CSV), 403)
    monkeypatch.setattr(bulk, "MAX_ROWS", 3)
    four = "code\n" + "\n".join(fresh_code() for _ in range(4))
    problem(send(service, items, key, four, CSV), 413)
    problem(send(service, items, key, "\n".join("{}" for _ in range(4)), NDJSON), 413)
    ndjson = upload(service, items, key, "packs.jsonl", json.dumps({"code": fresh_code()}), "")
    assert ndjson.status_code == 201, ndjson.text
