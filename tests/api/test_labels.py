"""QR labels: render, decode with a real QR reader (zxing-cpp), follow, and detect tampering."""

from __future__ import annotations

import io
import random
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image

from api.labels import (
    ErrorCorrection,
    LabelFormat,
    LabelSpec,
    Verdict,
    label_url,
    qr_version,
    render_label,
    sign_label,
    verify_label,
)
from ledger import note
from schemas.codes import BatteryType, ProductType, generate_code
from schemas.errors import SchemaError
from tests.api.conftest import Api
from trace.engine import parse_event

BASE = "http://testserver"
SVG_NS = "{http://www.w3.org/2000/svg}"
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-\d+z")
# Storage-independent tests (rendering, parameters, the heavy render loop) run on SQLite
# alone; those that read keys, custody or checkpoints run on every backend.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def codes(n: int, *, seed: int = 7, manufacturer: str = "001") -> list[str]:
    rng = random.Random(seed)
    return [
        generate_code(rng, manufacturer=manufacturer, product_type=ProductType.PACK,
                      battery_type=BatteryType.TERNARY)
        for _ in range(n)
    ]  # fmt: skip


def register(api: Api, key: str, items: list[str]) -> None:
    response = api.post("/v1/items", key, json=[{"code": c, "mass_kg": 400} for c in items])
    assert response.status_code == 201, response.text


def qr_texts(image: Image.Image) -> list[str]:
    """Every QR symbol zxing-cpp finds in the image (other symbologies are not searched)."""
    return [str(b.text) for b in zxingcpp.read_barcodes(image, formats=QR_ONLY)]


def decode(png: bytes) -> str:
    (text,) = qr_texts(Image.open(io.BytesIO(png)))
    return text


def rasterise(svg: str, scale: int = 4) -> Image.Image:
    """Draw the SVG symbol's dark runs (the one path) at ``scale`` px per module."""
    root = ET.fromstring(svg)
    width = int(root.attrib["viewBox"].split()[2])
    image = Image.new("L", (width * scale, width * scale), 255)
    d = root.find(f"{SVG_NS}path").attrib["d"]  # type: ignore[union-attr]
    for x, y, w in _RUN.findall(d):
        x0, y0 = int(x) * scale, int(y) * scale
        image.paste(0, (x0, y0, x0 + int(w) * scale, y0 + scale))
    return image


def follow(api: Api, url: str) -> dict:  # type: ignore[type-arg]
    parts = urlsplit(url)
    response = api.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@sqlite_only
def test_thirty_labels_decode_and_resolve_to_genuine_passports(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    items = codes(30)
    register(api, catl, items)
    for code in items:
        png = api.get(f"/v1/items/{code}/label.png", catl)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        url = decode(png.content)
        assert url.startswith(f"{BASE}/p/{code}?s=")
        passport = follow(api, url)
        assert passport["code"] == code
        assert passport["label"]["verdict"] == "genuine" and passport["label"]["genuine"]

        svg = api.get(f"/v1/items/{code}/label.svg", catl, params={"size": 4})
        assert svg.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(svg.text)
        assert root.tag == f"{SVG_NS}svg" and root.attrib["role"] == "img"
        assert code in root.find(f"{SVG_NS}title").text  # type: ignore[union-attr, operator]
        assert root.find(f"{SVG_NS}text").text == code  # type: ignore[union-attr]
        # The SVG's geometry is the same symbol: rasterised, it decodes to the same URL.
        assert qr_texts(rasterise(svg.text)) == [url]


@sqlite_only
def test_the_payload_is_short_enough_for_a_version_7_symbol_at_m(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    code = codes(1)[0]
    register(api, catl, [code])
    url = decode(api.get(f"/v1/items/{code}/label.png", catl).content)
    signer = api.services.custodial.signer_for("catl")
    assert url == label_url(BASE, code, sign_label(code, signer))
    assert len(url) == 156
    assert qr_version(url, ErrorCorrection.M) == 7
    assert qr_version(url, ErrorCorrection.H) > qr_version(url, ErrorCorrection.L)


def _flip(token: str, at: int) -> str:
    replacement = "A" if token[at] != "A" else "B"
    return token[:at] + replacement + token[at + 1 :]


@sqlite_only
@pytest.mark.parametrize("at", [0, 10, 60, 107])
def test_a_tampered_signature_is_not_genuine(api: Api, at: int) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    code = codes(1)[0]
    register(api, catl, [code])
    url = decode(api.get(f"/v1/items/{code}/label.png", catl).content)
    base, _, token = url.partition("?s=")
    label = follow(api, f"{base}?s={_flip(token, at)}")["label"]
    assert not label["genuine"]
    # The first 7 characters carry the key hash: flipping them loses the signer.
    expected = "unknown-signer" if at < 7 else "mismatch"
    assert label["verdict"] == expected


@sqlite_only
def test_a_label_moved_to_another_code_is_not_genuine(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    first, second = codes(2)
    register(api, catl, [first, second])
    url = decode(api.get(f"/v1/items/{first}/label.png", catl).content)
    altered = url.replace(first, second)
    label = follow(api, altered)["label"]
    assert label["verdict"] == "mismatch" and not label["genuine"]
    assert follow(api, url.split("?")[0])["label"]["verdict"] == "absent"
    garbled = follow(api, url.split("?")[0] + "?s=not-base32!")["label"]
    assert garbled["verdict"] == "malformed"


def test_offline_verification_with_the_issuers_keys() -> None:
    issuer = note.Signer.generate("catl")
    other = note.Signer.generate("mallory")
    code = codes(1)[0]
    url = label_url("https://id.example.cn/", code, sign_label(code, issuer))
    assert url.startswith("https://id.example.cn/p/")
    check = verify_label(url, [issuer.verifier])
    assert check.verdict is Verdict.GENUINE and check.key_id == issuer.key_id
    assert verify_label(url, [other.verifier]).verdict is Verdict.UNKNOWN_SIGNER
    revoked = verify_label(url, [issuer.verifier], revoked={issuer.key_id})
    assert revoked.verdict is Verdict.REVOKED_SIGNER and not revoked.genuine
    forged = label_url("https://id.example.cn", code, sign_label(code, other))
    assert verify_label(
        forged, [issuer.verifier, other.verifier]
    ).genuine  # others' keys: caller's choice
    assert verify_label(forged, [issuer.verifier]).verdict is Verdict.UNKNOWN_SIGNER
    # A lower-case token is the same token; a different code is not the same label.
    token = url.split("?s=")[1]
    assert verify_label({"code": code, "s": token.lower()}, [issuer.verifier]).genuine
    assert (
        verify_label({"code": codes(2)[1], "s": token}, [issuer.verifier]).verdict
        is Verdict.MISMATCH
    )


def test_only_battery_codes_and_lot_ids_are_signed() -> None:
    with pytest.raises(SchemaError, match="position 4"):
        sign_label("001XEAB0000001G1C0000001", note.Signer.generate("catl"))
    with pytest.raises(ValueError, match="not a label URL"):
        verify_label("https://id.example.cn/q/ABC", [])


def test_labels_need_a_key_that_can_read_the_item(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    stranger = api.actor("gem", "recycler", "420000")
    auditor = api.actor("miit", "auditor", "110000")
    code = codes(1)[0]
    register(api, catl, [code])
    path = f"/v1/items/{code}/label.png"
    public = api.get(path)
    assert public.status_code == 401
    assert public.headers["content-type"] == "application/problem+json"
    hidden = api.get(path, stranger)
    assert hidden.status_code == 404 and hidden.json()["type"] == "/problems/not-found"
    assert api.get(path, auditor).status_code == 200
    assert api.get(path, api.admin_key).status_code == 200
    assert api.get("/v1/items/001PEAB0000001G1C0000009/label.svg", catl).status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    "params", [{"size": 1}, {"size": 99}, {"ec": "X"}, {"text": "maybe"}, {"s": "x" * 201}]
)
def test_out_of_range_parameters_are_problems(api: Api, params: dict[str, object]) -> None:
    response = api.get(f"/v1/items/{codes(1)[0]}/label.png", api.admin_key, params=params)
    assert response.status_code == 422 and response.json()["type"] == "/problems/invalid-request"


@sqlite_only
def test_rendered_labels_are_cached_and_revalidated(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    code = codes(1)[0]
    register(api, catl, [code])
    render_label.cache_clear()
    path = f"/v1/items/{code}/label.png"
    first = api.get(path, catl, params={"size": 5, "ec": "Q"})
    second = api.get(path, catl, params={"size": 5, "ec": "Q"})
    assert first.content == second.content
    info = render_label.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    other = api.get(path, catl, params={"size": 5, "ec": "H"})
    assert other.content != first.content and render_label.cache_info().misses == 2
    etag = first.headers["etag"]
    cached = api.client.get(
        path,
        params={"size": 5, "ec": "Q"},
        headers={"Authorization": f"Bearer {catl}", "If-None-Match": etag},
    )
    assert cached.status_code == 304 and not cached.content


def test_render_is_deterministic_per_spec() -> None:
    spec = LabelSpec(f"{BASE}/p/{codes(1)[0]}?s=AB", LabelFormat.PNG, 3, ErrorCorrection.L)
    assert render_label(spec) is render_label(spec)
    assert render_label(spec) == render_label.__wrapped__(spec)


def _self_signed_issuer(api: Api) -> tuple[str, note.Signer]:
    own = note.Signer.generate("byd")
    key = api.actor("byd", "automaker", "440000", custodial_key=False,
                    verifier_keys=[own.verifier.to_string()])  # fmt: skip
    return key, own


def _commission_signed(api: Api, key: str, signer: note.Signer, code: str) -> None:
    event = parse_event({
        "actor": "byd", "event_time": datetime.now(UTC).isoformat(), "region": "440000",
        "idempotency_key": f"c-{code}", "prev": {code: None},
        "data": {"type": "commission", "item": code, "mass_kg": 350},
    })  # fmt: skip
    submission = api.services.tracer.sign(event, key_id=signer.key_id, key=signer.private_key)
    response = api.post("/v1/events", key, json=[submission.to_json()])
    assert response.status_code == 201, response.text


def test_an_issuer_without_a_custodial_key_signs_and_revokes_its_own_labels(api: Api) -> None:
    key, own = _self_signed_issuer(api)
    code = codes(1, manufacturer="BYD")[0]
    _commission_signed(api, key, own, code)
    path = f"/v1/items/{code}/label.png"
    refused = api.get(path, key)
    assert refused.status_code == 422 and refused.json()["type"] == "/problems/invalid-key"
    assert "sign_label" in refused.json()["detail"]

    token = sign_label(code, own)
    url = decode(api.get(path, key, params={"s": token}).content)
    assert url == label_url(BASE, code, token)
    assert follow(api, url)["label"]["verdict"] == "genuine"

    forged = sign_label(code, note.Signer.generate("byd"))
    bad = api.get(path, key, params={"s": forged})
    assert bad.status_code == 422 and bad.json()["verdict"] == "unknown-signer"

    # Revoking the key (it may be compromised) makes every label it signed not genuine.
    revoked = api.post(f"/v1/signing-keys/{own.key_id}/revoke", api.admin_key,
                        json={"reason": "lost"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert follow(api, url)["label"]["verdict"] == "revoked-signer"
    assert api.get(path, key, params={"s": token}).status_code == 422


@sqlite_only
def test_a_sheet_is_a_printable_a4_page_of_inline_svgs(api: Api) -> None:
    catl = api.actor("catl", "battery_maker", "350000")
    items = codes(5)
    register(api, catl, items)
    query = [("codes", ",".join(items[:3])), ("codes", items[3]), ("codes", items[4])]
    page = api.get("/v1/labels/sheet", catl, params=query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert text.count("<svg ") == 5 and '<html lang="en">' in text
    assert "size: A4" in text and "@media print" in text and "display: grid" in text
    for code in items:
        assert f"<figcaption>{code}</figcaption>" in text
    svgs = re.findall(r"<svg .*?</svg>", text)
    assert decode_svg(svgs[0]).startswith(f"{BASE}/p/{items[0]}?s=")
    posted = api.post("/v1/labels/sheet", catl, json={"codes": items, "ec": "H"})
    assert posted.status_code == 200 and posted.text.count("<svg ") == 5
    assert api.get("/v1/labels/sheet", params=query).status_code == 401
    missing = api.post("/v1/labels/sheet", catl, json={"codes": [*items, codes(9, seed=1)[8]]})
    assert missing.status_code == 404
    assert api.post("/v1/labels/sheet", catl, json={"codes": []}).status_code == 422


def decode_svg(svg: str) -> str:
    (text,) = qr_texts(rasterise(svg))
    return text
