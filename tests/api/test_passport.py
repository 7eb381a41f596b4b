"""Passports: the public one (JSON and HTML, with a verifiable inclusion proof) and the Battery Pass."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
from typing import Any

import pytest

from api.labels import label_url, sign_label
from api.routes.passport import wants_html
from ledger.checkpoint import verify_checkpoint
from ledger.entry import Entry
from ledger.merkle import verify_inclusion
from schemas.codes import recode_for_cascade
from schemas.composition import estimate_composition
from schemas.lots import new_lot_id
from tests.api.conftest import Api

CODE = "001PEAB0000001G1C0000001"
OTHER = "001PEAB0000001G1C0000002"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Presentation-only tests run on SQLite alone; those reading keys, history or checkpoints
# run on every backend.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def custodial(api: Api, key: str, data: dict[str, Any], idem: str) -> list[dict[str, Any]]:
    response = api.post("/v1/events/custodial", key, json=[{"idempotency_key": idem, "data": data}])
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def commission(api: Api, key: str, code: str = CODE) -> None:
    composition = estimate_composition("NCM622", 60).model_dump(mode="json")
    body = [{"code": code, "composition": composition}]
    response = api.post("/v1/items", key, json=body)
    assert response.status_code == 201, response.text


def hand_over(api: Api, sender: str, receiver: str, to: str, code: str = CODE) -> None:
    offer = custodial(api, sender, {"type": "handover", "items": [code], "to": to}, f"h-{code}")
    accept = {"type": "accept", "handover": offer[0]["event_id"], "items": [code]}
    custodial(api, receiver, accept, f"a-{code}")


def repurpose_for_storage(api: Api, maker: str, operator: str) -> str:
    """CODE made by ``maker``, handed to ``operator`` (org ``ess``), inspected and re-coded; the new code."""
    commission(api, maker)
    hand_over(api, maker, operator, "ess")
    custodial(api, operator, {"type": "inspect", "item": CODE, "soh_pct": 78, "grade": "B"}, "i1")
    new = recode_for_cascade(
        CODE, manufacturer="T9X", spec="2B", date=dt.date(2026, 5, 1), serial=7
    ).code.text
    repurpose = {"type": "repurpose", "item": CODE, "new_code": new, "new_use": "energy_storage"}
    custodial(api, operator, repurpose, "r1")
    return new


def test_the_json_passport_carries_a_proof_that_verifies(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    response = api.get(f"/p/{CODE}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    doc = response.json()
    assert doc["identity"] == {
        "code_form": "full", "product_type": "pack", "manufacturer_code": "001",
        "battery_type": {"letter": "E", "name": "ternary", "confirmed": True},
        "production_date": "2026-01-12",
    }  # fmt: skip
    assert (doc["chemistry"], doc["rated_energy_kwh"], doc["rated_capacity_ah"]) == (
        "NCM622",
        60.0,
        None,
    )
    assert doc["status"] == {"eu": "Original", "suyuan": "in_stock"}
    assert doc["holder"] == {"role": "battery_maker", "region": "350000"}
    assert doc["label"]["verdict"] == "absent" and not doc["label"]["genuine"]

    proof = doc["proof"]
    log = api.services.tracer.log
    # The log's key comes out of band (here: from the log itself), never from the page.
    checkpoint = verify_checkpoint(proof["checkpoint"], log.log_verifiers())
    assert checkpoint.size == proof["tree_size"] > proof["index"]
    entry = base64.b64decode(proof["entry"])
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    verify_inclusion(entry, proof["index"], checkpoint.size, hashes, checkpoint.root_hash)
    assert Entry.parse(entry).body["data"] == {**Entry.parse(entry).body["data"], "item": CODE}
    assert proof["log_keys"] == [v.to_string() for v in log.log_verifiers()]

    # A later event is not under that checkpoint: the next scan signs a new one.
    custodial(api, catl, {"type": "inspect", "item": CODE, "soh_pct": 97, "grade": "A"}, "i1")
    later = api.get(f"/p/{CODE}").json()["proof"]
    assert later["index"] > proof["index"] and later["tree_size"] > later["index"]
    assert verify_checkpoint(later["checkpoint"], log.log_verifiers()).size == later["tree_size"]


@sqlite_only
def test_the_public_passport_names_the_holders_role_not_the_holder(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    byd = api.actor("byd-auto", "automaker", "440000")
    commission(api, catl)
    hand_over(api, catl, byd, "byd-auto")
    text = api.get(f"/p/{CODE}").text
    doc = json.loads(text)
    assert doc["holder"] == {"role": "automaker", "region": "440000"}
    assert "byd-auto" not in text and "BYD-AUTO" not in text


@sqlite_only
def test_the_html_passport_loads_nothing_from_elsewhere_and_states_the_verdict(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    commission(api, catl)
    url = label_url("", CODE, sign_label(CODE, api.services.custodial.signer_for("catl")))
    response = api.client.get(url, headers={"Accept": BROWSER})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="en">' in page and 'name="viewport"' in page
    assert "<h1>Battery passport</h1>" in page and "<h2>Identity</h2>" in page
    assert "Genuine label" in page and "signed by the organisation" in page
    assert "<dt>Current holder</dt><dd>battery maker</dd>" in page
    # Nothing is fetched from elsewhere: no stylesheet links, images or scripts by URL.
    # Nothing from elsewhere: the only resources are the same-origin verification script and style.
    outside = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(link.startswith("/static/") for link in outside), outside
    assert not re.search(r"<img|@import|url\(|https?://", page)
    data = re.search(
        r'<script type="application/json" id="passport-data">(.*?)</script>', page, re.S
    )
    assert data is not None and json.loads(data.group(1))["code"] == CODE

    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    page = api.client.get(tampered, headers={"Accept": BROWSER}).text
    assert "Not genuine" in page and "changed after signing" in page


@sqlite_only
@pytest.mark.parametrize("accept", [None, "application/json", BROWSER])
def test_an_unknown_code_is_a_404_in_either_language(api: Api, accept: str | None) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = api.client.get(f"/p/{OTHER}", headers=headers)
    assert response.status_code == 404
    if accept == BROWSER:
        assert response.headers["content-type"].startswith("text/html")
        assert "No such battery" in response.text and OTHER in response.text
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/not-found"
    assert api.get(f"/v1/items/{OTHER}/passport").status_code == 404


@sqlite_only
def test_the_html_pages_escape_what_the_caller_sent(api: Api) -> None:
    attack = "/p/%3Cimg%20src=x%20onerror=alert(1)%3E"
    response = api.client.get(attack, headers={"Accept": BROWSER})
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "<img" not in response.text and "&lt;img src=x onerror=alert(1)&gt;" in response.text


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        (BROWSER, True),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.9, application/json;q=0.8", True),
        ("text/*;q=1, application/json;q=0.2", True),
        ("text/html;q=oops", False),
    ],
)
def test_content_negotiation_prefers_json_unless_html_is_preferred(
    accept: str | None, html: bool
) -> None:
    assert wants_html(accept) is html


RESTRICTED = {
    "custodyChain",
    "materialComposition.batteryMaterials",
    "materialComposition.compositionBasis",
    "performanceAndDurability.stateOfCertifiedEnergy",
    "performanceAndDurability.stateOfHealthHistory",
}


def test_restricted_battery_pass_attributes_are_withheld_from_strangers(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    stranger = api.actor("gem", "recycler", "420000")
    auditor = api.actor("miit", "auditor", "110000")
    commission(api, catl)
    custodial(api, catl, {"type": "inspect", "item": CODE, "soh_pct": 96.5, "grade": "A"}, "i1")
    path = f"/v1/items/{CODE}/passport"
    for key in (None, stranger):
        doc = api.get(path, key).json()
        assert doc["access"]["level"] == "public"
        assert (
            set(doc["access"]["withheld"]) == RESTRICTED
            and "legitimate interest" in doc["access"]["note"]
        )
        assert "custodyChain" not in doc and "batteryMaterials" not in doc["materialComposition"]
        assert doc["performanceAndDurability"] == {"ratedEnergy": 60.0}
        assert doc["generalProductInformation"]["batteryStatus"] == "Original"
        assert doc["carbonFootprint"] is None and "dueDiligence" not in doc
    for key in (catl, auditor, api.admin_key):
        doc = api.get(path, key).json()
        assert doc["access"] == {"level": "legitimate-interest", "withheld": []}
        materials = {
            m["materialName"]: m["materialWeight"]
            for m in doc["materialComposition"]["batteryMaterials"]
        }
        assert materials["Ni"] == pytest.approx(31923.0)  # grams, from the 31.923 kg composition
        assert doc["materialComposition"]["compositionBasis"]["estimated"] is True
        assert doc["performanceAndDurability"]["stateOfCertifiedEnergy"] == 96.5
        assert [e["type"] for e in doc["custodyChain"]] == ["commission", "inspect"]


def test_recycled_content_is_traced_from_the_lots_a_pack_was_built_with(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    brunp = api.actor("brunp", "recycler", "440000")
    lot = new_lot_id(random.Random(3))
    record = {"id": lot, "material": "black_mass", "mass_kg": 100,
              "content_kg": {"Ni": 20, "Co": 5, "Li": 3}}  # fmt: skip
    custodial(api, brunp, {"type": "lot_create", "lot": record}, "lot")
    hand_over(api, brunp, catl, "catl", lot)
    composition = estimate_composition("NCM622", 60).model_dump(mode="json")
    built = {"type": "commission", "item": CODE, "composition": composition,
             "materials": [{"item": lot, "mass_kg": 40}]}  # fmt: skip
    custodial(api, catl, built, "c1")
    doc = api.get(f"/v1/items/{CODE}/passport").json()
    recycled = {r["recycledMaterial"]: r for r in doc["circularity"]["recycledContent"]}
    assert set(recycled) == {"Co", "Li", "Ni"}
    assert recycled["Ni"]["recycledMass"] == pytest.approx(8.0)  # 40 kg x 20 %
    assert recycled["Ni"]["recycledShare"] == pytest.approx(100 * 8.0 / 31.923, abs=0.01)
    assert recycled["Li"]["recycledMass"] == pytest.approx(1.2)
    assert "recycledContentSources" not in doc["circularity"]
    own = api.get(f"/v1/items/{CODE}/passport", catl).json()
    assert own["circularity"]["recycledContentSources"] == [{"lot": lot, "massTaken": 40.0}]


def test_a_recoded_pack_links_its_lives_and_is_signed_by_its_operator(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    ess = api.actor("ess", "cascade_operator", "320000")
    new = repurpose_for_storage(api, catl, ess)

    reborn = api.get(f"/p/{new}").json()
    assert reborn["earlier_lives"] == [CODE] and reborn["successor"] is None
    assert reborn["status"]["eu"] == "Repurposed"
    assert reborn["identity"]["code_form"] == "cascade"
    old = api.get(f"/p/{CODE}").json()
    assert old["successor"] == new and old["status"]["suyuan"] == "repurposed"

    operator_label = sign_label(new, api.services.custodial.signer_for("ess"))
    assert api.get(f"/p/{new}", params={"s": operator_label}).json()["label"]["genuine"]
    makers_label = sign_label(new, api.services.custodial.signer_for("catl"))
    assert (
        api.get(f"/p/{new}", params={"s": makers_label}).json()["label"]["verdict"]
        == "unknown-signer"
    )

    bp = api.get(f"/v1/items/{new}/passport").json()
    assert bp["generalProductInformation"]["batteryCategory"] == "stationary"
    assert bp["generalProductInformation"]["operatorInformation"]["operatorIdentifier"] == "ess"
    assert bp["circularity"]["endOfLifeInformation"]["originalBatteryIdentifier"] == CODE
    legit = api.get(f"/v1/items/{new}/passport", ess).json()
    assert legit["performanceAndDurability"]["stateOfCertifiedEnergy"] == 78


@sqlite_only
def test_lots_have_no_battery_passport(api: Api) -> None:
    brunp = api.actor("brunp", "recycler", "440000")
    lot = new_lot_id(random.Random(4))
    custodial(api, brunp, {"type": "lot_create",
                           "lot": {"id": lot, "material": "copper_scrap", "mass_kg": 50}}, "lot")  # fmt: skip
    response = api.get(f"/v1/items/{lot}/passport")
    assert response.status_code == 404 and "lot" in response.json()["detail"]
    public = api.get(f"/p/{lot}").json()
    assert public["kind"] == "lot" and public["identity"]["material"] == "copper_scrap"


def test_the_public_passport_tells_custody_by_role_and_place_never_by_name(api: Api) -> None:
    catl = api.actor("catl-custody", "battery_maker", "350000")
    byd = api.actor("byd-custody", "automaker", "440000")
    code = "001PEAB0000001G1C0000077"
    assert api.post("/v1/items", catl, json=[{"code": code, "mass_kg": 400}]).status_code == 201
    offer = api.post(
        "/v1/events/custodial", catl,
        json=[{"idempotency_key": "t-h", "data": {"type": "handover", "items": [code], "to": "byd-custody"}}],
    ).json()[0]["event_id"]  # fmt: skip
    accepted = api.post(
        "/v1/events/custodial", byd,
        json=[{"idempotency_key": "t-a", "data": {"type": "accept", "handover": offer, "items": [code]}}],
    )  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    doc = api.get(f"/p/{code}").json()
    assert [(c["role"], c["region"]) for c in doc["custody"]] == [
        ("battery_maker", "350000"),
        ("automaker", "440000"),
    ]
    assert doc["custody"][0]["until"] == doc["custody"][1]["since"]
    assert "catl-custody" not in str(doc["custody"]) and "byd-custody" not in str(doc["custody"])
