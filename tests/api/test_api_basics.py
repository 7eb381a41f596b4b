"""The service's first contact: health, problem+json errors, keys, recording events."""

from __future__ import annotations

from tests.api.conftest import Api

CODE = "001PEAB0000001G1C0000001"


def test_health_and_checkpoint_are_public(api: Api) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    checkpoint = api.get("/v1/ledger/checkpoint").text
    assert checkpoint.startswith("suyuan.local/log\n")


def test_unknown_paths_and_bad_keys_answer_problem_json(api: Api) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/not-found"
    response = api.get("/v1/actors", "sy_0000_nope")
    assert response.status_code == 401 and response.json()["type"] == "/problems/unauthenticated"


def test_register_commission_hand_over_and_accept(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    byd = api.actor("byd", "automaker")
    registered = api.post("/v1/items", catl, json=[{"code": CODE, "mass_kg": 400}])
    assert registered.status_code == 201, registered.text
    offer = api.post(
        "/v1/events/custodial",
        catl,
        json=[{"idempotency_key": "h1",
               "data": {"type": "handover", "items": [CODE], "to": "byd"}}],
    )  # fmt: skip
    assert offer.status_code == 201, offer.text
    handover_id = offer.json()[0]["event_id"]
    accept = api.post(
        "/v1/events/custodial",
        byd,
        json=[{"idempotency_key": "a1",
               "data": {"type": "accept", "handover": handover_id, "items": [CODE]}}],
    )  # fmt: skip
    assert accept.status_code == 201, accept.text
    item = api.get(f"/v1/items/{CODE}", byd).json()
    assert item["custodian"] == "byd"


def test_refused_events_are_problems_naming_the_rule(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    byd = api.actor("byd", "automaker")
    api.post("/v1/items", catl, json=[{"code": CODE}])
    retire = [
        {"idempotency_key": "x", "data": {"type": "retire", "item": CODE, "reason": "stolen?"}}
    ]
    # A stranger is not told the item exists.
    response = api.post("/v1/events/custodial", byd, json=retire)
    assert response.status_code == 404 and response.json()["type"] == "/problems/not-found"
    offer = api.post(
        "/v1/events/custodial", catl,
        json=[{"idempotency_key": "h", "data": {"type": "handover", "items": [CODE], "to": "byd"}}],
    ).json()[0]["event_id"]  # fmt: skip
    api.post(
        "/v1/events/custodial", byd,
        json=[{"idempotency_key": "a", "data": {"type": "accept", "handover": offer, "items": [CODE]}}],
    )  # fmt: skip
    # The maker still sees its pack, but only the custodian may act on it.
    response = api.post("/v1/events/custodial", catl, json=retire)
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "/problems/custody-refused" and body["rule"] == "custodian-only"
