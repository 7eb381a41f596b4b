"""The pages in a real browser: scan a label, verify a passport, read flows, accept a handover.

Each test leaves a screenshot in ``var/screenshots/``. Until ``api/templates/passport.html``
includes the verification script, the passport tests inject its tags into the page the
browser receives (``conftest.serve_passport``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from api.errors import ProblemError
from api.routes.pages import WEB_ROOT, static_file
from schemas.actors import PROVINCES
from tests.e2e.conftest import PASSPORT_TAGS, World, flip_base64, serve_passport
from trace.state import ItemKind

VERDICT_TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 900}
REGION = "440000"  # Guangdong: a battery maker and the recycler of the small world


def _sample_pack(world: World) -> str:
    """A re-coded pack (earlier lives, materials) if there is one, else any pack."""
    items = world.services.tracer.world.items.values()
    packs = sorted((s for s in items if s.kind is ItemKind.PACK), key=lambda s: s.id)
    recoded = [s for s in packs if s.original is not None]
    return (recoded or packs)[0].id


def _label_png(world: World, code: str) -> bytes:
    response = world.get(f"/v1/items/{code}/label.png", world.keys["auditor"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return response.content


def _decode(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


def _number(text: str) -> float:
    return float(text.replace(",", "").strip())


def test_a_scanned_label_opens_a_passport_whose_record_the_browser_verifies(
    world: World, page: Any, screenshots: Path
) -> None:
    code = _sample_pack(world)
    url = _decode(_label_png(world, code))
    assert url.startswith(f"{world.base_url}/p/{code}?s=")
    serve_passport(page)

    page.goto(url)
    badge = page.locator("#record-check")
    badge.locator("xpath=self::*[@data-state!='checking']").wait_for(timeout=VERDICT_TIMEOUT_MS)
    assert badge.get_attribute("data-state") == "verified", badge.inner_text()
    assert badge.get_attribute("data-signature") == "checked"  # Chromium has Ed25519
    assert "Record verified" in badge.inner_text()
    assert "Genuine label" in page.locator(".verdict.genuine:not(#record-check)").inner_text()
    life = page.locator("#life")
    assert "Earlier lives" in life.inner_text()
    page.screenshot(path=screenshots / "passport.png", full_page=True)


def test_the_scan_page_reads_a_photo_of_a_label_and_keeps_its_signature(
    world: World, page: Any, screenshots: Path, tmp_path: Path
) -> None:
    code = _sample_pack(world)
    png = _label_png(world, code)
    photo = tmp_path / "label.png"
    photo.write_bytes(png)

    page.goto("/scan")
    page.screenshot(path=screenshots / "scan.png", full_page=True)
    with page.expect_navigation(url=re.compile(rf"/p/{code}\?s=")):
        page.get_by_label("Or choose a photo of the label").set_input_files(photo)
    assert page.url == _decode(png)


# Browsers without Ed25519 in WebCrypto, and pages opened over plain http elsewhere than
# 127.0.0.1 (no crypto.subtle at all), simulated by replacing the API before any script runs.
_NO_ED25519 = """
const importKey = SubtleCrypto.prototype.importKey;
SubtleCrypto.prototype.importKey = function (format, key, algorithm, ...rest) {
  if ((algorithm?.name || algorithm) === "Ed25519") {
    return Promise.reject(new DOMException("Unrecognized name.", "NotSupportedError"));
  }
  return importKey.call(this, format, key, algorithm, ...rest);
};
"""
_NO_WEBCRYPTO = 'Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined });'


@pytest.mark.parametrize(
    ("script", "state", "words"),
    [
        (_NO_ED25519, "verified", "signature was not checked by this browser"),
        (_NO_WEBCRYPTO, "unchecked", "only over a secure (https) connection"),
    ],
    ids=["without-ed25519", "without-webcrypto"],
)
def test_a_browser_that_cannot_check_everything_says_so(
    world: World, page: Any, script: str, state: str, words: str
) -> None:
    page.add_init_script(script)
    serve_passport(page)
    page.goto(f"/p/{_sample_pack(world)}")
    badge = page.locator("#record-check")
    badge.locator("xpath=self::*[@data-state!='checking']").wait_for(timeout=VERDICT_TIMEOUT_MS)
    assert badge.get_attribute("data-state") == state
    assert words in badge.inner_text()


def test_a_record_with_one_changed_proof_byte_is_refused(
    world: World, page: Any, screenshots: Path
) -> None:
    code = _sample_pack(world)
    url = _decode(_label_png(world, code))
    tampered: list[str] = []

    def flip_first_hash(doc: dict[str, Any]) -> None:
        hashes = doc["proof"]["hashes"]
        hashes[0] = flip_base64(hashes[0])
        tampered.append(hashes[0])

    serve_passport(page, tamper=flip_first_hash)
    page.goto(url)
    badge = page.locator("#record-check")
    badge.locator("xpath=self::*[@data-state!='checking']").wait_for(timeout=VERDICT_TIMEOUT_MS)
    assert tampered, "the passport page was not intercepted"
    assert badge.get_attribute("data-state") == "failed"
    text = badge.inner_text()
    assert "Record not verified" in text
    assert "audit path does not lead to the signed root" in text
    page.screenshot(path=screenshots / "passport-tampered.png", full_page=True)


def test_the_dashboard_shows_a_provinces_flows_as_the_api_reports_them(
    world: World, page: Any, screenshots: Path
) -> None:
    expected = world.get("/v1/flows", world.keys["auditor"], region=REGION).json()
    assert expected["links"], "the small world has no flows in the province"

    page.goto("/dashboard")
    page.get_by_label("API key").fill(world.keys["auditor"])
    page.get_by_role("button", name="Log in").click()
    flows = page.locator("#flows")
    page.locator("#flows[data-query='?by=stage&measure=kg']").wait_for()
    page.get_by_label("Province", exact=True).select_option(REGION)
    page.get_by_role("button", name="Apply filters").click()
    page.locator(f"#flows[data-query='?by=stage&region={REGION}&measure=kg']").wait_for()
    assert flows.get_attribute("aria-busy") == "false"

    names = [node["name"] for node in expected["nodes"]]
    want = [
        (names[link["source"]], names[link["target"]], link["value"], link["packs"], link["kwh"], link["kg"])
        for link in expected["links"]
    ]  # fmt: skip
    got = []
    for row in page.locator("#flow-table tbody tr").all():
        cells = [
            _number(row.locator(f"td[data-field={f}]").inner_text())
            for f in ("value", "packs", "kwh", "kg")
        ]
        raw = [float(row.locator(f"td[data-field={f}]").get_attribute("data-value") or "nan")
               for f in ("value", "packs", "kwh", "kg")]  # fmt: skip
        assert cells == [round(v, 3) for v in raw]  # what is shown is what was sent
        got.append((row.get_attribute("data-source"), row.get_attribute("data-target"), *raw))
    assert got == want
    assert page.locator("#sankey svg path.link").count() == sum(1 for w in want if w[2] > 0)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)


def test_the_dashboard_drills_into_evidence_anomalies_lineage_and_reports(
    world: World, page: Any
) -> None:
    page.goto("/dashboard")
    page.get_by_label("API key").fill(world.keys["auditor"])
    page.get_by_role("button", name="Log in").click()
    page.locator("#flows[data-query]").wait_for()

    page.get_by_role("button", name="Show evidence").first.click()
    page.locator("#rate-table tr.evidence:not([hidden])").first.wait_for()

    anomaly = page.locator("#anomaly-table tbody button[data-lineage]").first
    code = anomaly.get_attribute("data-lineage")
    anomaly.click()
    page.get_by_role("heading", name=f"Lineage of {code}").wait_for()
    assert page.locator("#lineage-result caption", has_text="Custody").count() == 1

    maker = next(
        a.id for a in world.services.tracer.world.actors.values() if a.role.value == "battery_maker"
    )
    page.get_by_label("Producer to report on").fill(maker)
    page.get_by_label("Year").fill("2024")
    page.get_by_label("Format").select_option("csv")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the report").click()
    assert download.value.suggested_filename == f"epr-{maker}-2024.csv"
    assert "Downloaded" in page.locator("#epr-message").inner_text()


def _offer_to_recycler(world: World, recycler: str) -> tuple[str, str]:
    """Offer the recycler an item a collector holds; return (digest, code)."""
    items = world.services.tracer.world.items.values()
    held = sorted(
        (s for s in items if s.custodian.startswith("col-") and s.pending_handover is None
         and s.kind is ItemKind.PACK),
        key=lambda s: s.id,
    )  # fmt: skip
    refusals = []
    for state in held:
        body = {"items": [state.id], "to": recycler}
        response = world.post(
            "/v1/handovers", world.keys[state.custodian], body, idempotency_key=f"e2e-{state.id}"
        )
        if response.status_code == 201:
            return str(response.json()["handover"]), state.id
        refusals.append(response.json().get("detail"))
    pytest.fail(f"no collector could hand a pack over: {refusals[:3]}")


def test_a_recycler_accepts_a_handover_on_the_work_page(
    world: World, page: Any, screenshots: Path
) -> None:
    recycler = "rec-01"
    digest, code = _offer_to_recycler(world, recycler)

    page.goto("/work")
    page.get_by_label("API key").fill(world.keys[recycler])
    page.get_by_role("button", name="Log in").click()
    offer = page.locator(f"#handover-list li[data-digest='{digest}']")
    offer.get_by_role("button", name="Accept").click()
    message = page.locator("#handover-message.ok")
    message.wait_for()
    assert f"now holds {code}" in message.inner_text()
    page.locator("#current-custodian").wait_for()
    assert page.locator("#current-custodian").inner_text() == recycler

    item = world.get(f"/v1/items/{code}", world.keys["auditor"]).json()
    assert item["custodian"] == recycler

    # An inspection out of range is refused in the page, in words, before any request.
    page.get_by_label("State of health (%)").fill("150")
    page.get_by_role("button", name="Record the inspection").click()
    assert "0 to 100" in page.locator("#inspection-message.error").inner_text()
    page.get_by_label("State of health (%)").fill("71.5")
    page.get_by_label("Grade").select_option("C")
    page.get_by_role("button", name="Record the inspection").click()
    done = page.locator("#inspection-message:not(.info)")
    done.wait_for()
    assert "ok" in (done.get_attribute("class") or ""), done.inner_text()
    assert world.get(f"/v1/items/{code}", world.keys["auditor"]).json()["soh_pct"] == 71.5
    page.screenshot(path=screenshots / "work.png", full_page=True)


def test_the_work_page_shows_the_services_refusal_in_words(world: World, page: Any) -> None:
    page.goto("/work")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Log in").click()
    refusal = page.locator("#login-message.error")
    refusal.wait_for()
    assert "unknown or revoked" in refusal.inner_text()


def test_the_pages_mount_and_static_files_stay_inside_the_web_folder(world: World) -> None:
    for path in (
        "/scan",
        "/dashboard",
        "/work",
        "/static/passport.js",
        "/static/vendor/jsqr/jsQR.js",
    ):
        response = world.get(path)
        assert response.status_code == 200, path
    assert world.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert world.get("/static/verify.js").headers["content-type"].startswith("text/javascript")
    assert "default-src 'self'" in world.get("/scan").headers["content-security-policy"]
    for path in (
        "/static/../routes/pages.py",
        "/static/%2e%2e/routes/pages.py",
        "/static/vendor/jsqr/LICENSE",
    ):
        assert world.get(path).status_code == 404, path


@pytest.mark.parametrize(
    "relative",
    ["../routes/pages.py", "../../pyproject.toml", "/etc/passwd", "vendor/jsqr/LICENSE", "vendor"],
)
def test_only_files_of_listed_types_inside_the_web_folder_are_served(relative: str) -> None:
    with pytest.raises(ProblemError, match="no static file"):
        static_file(relative)


def test_the_pages_name_the_same_provinces_as_the_service() -> None:
    text = (WEB_ROOT / "regions.js").read_text(encoding="utf-8")
    assert set(re.findall(r'"(\d{6})":', text)) == set(PROVINCES)


def test_the_tags_for_the_passport_template_name_files_that_exist() -> None:
    for name in re.findall(r"/static/([\w.]+)", PASSPORT_TAGS):
        assert (WEB_ROOT / name).is_file(), name
