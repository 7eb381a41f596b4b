"""QR labels of items (PNG, SVG) and printable label sheets; the payload is in :mod:`api.labels`."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api.custodial import CustodialKeyError
from api.deps import CallerDep, Principal, ServicesDep
from api.errors import ProblemError
from api.labels import (
    DEFAULT_SIZE,
    MAX_SIZE,
    MIN_SIZE,
    ErrorCorrection,
    LabelFormat,
    LabelSpec,
    label_url,
    render_label,
    sign_label,
    verify_issued,
)
from api.services import Services
from api.visibility import check_can_read
from trace.state import ItemState

__all__ = ["MAX_SHEET", "SheetRequest", "router"]

router = APIRouter(tags=["labels"])

MAX_SHEET: Final = 240  # ten A4 pages of 24 labels
_CACHE_CONTROL: Final = "private, max-age=3600"
_MEDIA: Final = {LabelFormat.PNG: "image/png", LabelFormat.SVG: "image/svg+xml"}
_ETAG_HEX: Final = 32

Size = Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="pixels per module")]
Text = Annotated[bool, Query(description="print the code under the symbol")]
Token = Annotated[
    str | None,
    Query(
        max_length=200,
        description="the issuer's own label signature (api.labels.sign_label); "
        "default: signed with the issuer's custodial key",
    ),
]


class SheetRequest(BaseModel):
    """Codes to print on one sheet."""

    codes: list[str] = Field(min_length=1, max_length=MAX_SHEET)
    ec: ErrorCorrection = ErrorCorrection.M


def _readable(services: Services, caller: Principal, code: str) -> ItemState:
    item = services.tracer.world.item(code)
    if item is None:
        raise ProblemError("not-found", f"no item {code}")
    check_can_read(caller, item, services.tracer)
    return item


def _payload(services: Services, item: ItemState, supplied: str | None) -> str:
    """The label URL, signed by the item's issuer: its own token, or its custodial key."""
    if supplied is not None:
        records = services.tracer.log.key_records()
        check = verify_issued(records, issuer=item.producer, code=item.id, token=supplied)
        if not check.genuine:
            raise ProblemError(
                "invalid-signature",
                f"the supplied label signature is not {item.producer}'s for {item.id}: "
                f"{check.verdict.words}",
                verdict=check.verdict.value,
            )
        token = supplied.strip().upper()
    else:
        try:
            signer = services.custodial.signer_for(item.producer)
        except CustodialKeyError as exc:
            raise ProblemError(
                "invalid-key",
                f"{exc}: the issuer signs labels itself (api.labels.sign_label) "
                "and passes the token as ?s=",
            ) from exc
        token = sign_label(item.id, signer)
    return label_url(services.settings.base_url, item.id, token)


def _image(request: Request, spec: LabelSpec) -> Response:
    body = render_label(spec)
    etag = f'"{hashlib.sha256(body).hexdigest()[:_ETAG_HEX]}"'
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_MEDIA[spec.format], headers=headers)


def _label(
    request: Request,
    services: Services,
    caller: Principal,
    code: str,
    *,
    fmt: LabelFormat,
    size: int,
    ec: ErrorCorrection,
    text: bool,
    supplied: str | None,
) -> Response:
    item = _readable(services, caller, code)
    payload = _payload(services, item, supplied)
    return _image(request, LabelSpec(payload, fmt, size, ec, item.id if text else None))


_SHEET = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>suyuan labels ({count})</title>
<style>
@page {{ size: A4; margin: 10mm; }}
body {{ margin: 0; padding: 1rem; font-family: system-ui, sans-serif; color: #111; background: #fff; }}
.sheet {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: 4mm; }}
figure {{ margin: 0; padding: 2mm; border: 0.3mm dashed #767676; text-align: center;
  break-inside: avoid; page-break-inside: avoid; }}
figure svg {{ display: block; width: 100%; height: auto; }}
figcaption {{ font: 9pt/1.2 ui-monospace, monospace; overflow-wrap: anywhere; }}
@media print {{ header {{ display: none; }} body {{ padding: 0; }} }}
@media (max-width: 40rem) {{ .sheet {{ grid-template-columns: repeat(2, 1fr); }} }}
</style>
</head>
<body>
<header><h1>Labels</h1><p>{count} {noun}. Print on A4 at 100 % scale; cut along the dashed lines.</p></header>
<main class="sheet">
{figures}
</main>
</body>
</html>
"""


def _sheet_html(labels: Sequence[tuple[str, str]]) -> str:
    """A printable A4 page of ``(code, inline SVG)`` labels in a CSS grid."""
    figures = "\n".join(
        f"<figure>{svg}<figcaption>{html.escape(code)}</figcaption></figure>"
        for code, svg in labels
    )
    noun = "label" if len(labels) == 1 else "labels"
    return _SHEET.format(count=len(labels), noun=noun, figures=figures)


_IMAGE_DOC: Final = "Labels are cached; an unchanged label answers 304 to If-None-Match."


@router.get(
    "/items/{code}/label.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": _IMAGE_DOC}},
)
def label_png(
    code: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    size: Size = DEFAULT_SIZE,
    ec: ErrorCorrection = ErrorCorrection.M,
    text: Text = True,
    s: Token = None,
) -> Response:
    """The item's QR label as PNG: a signed link to its public passport."""
    return _label(
        request,
        services,
        caller,
        code,
        fmt=LabelFormat.PNG,
        size=size,
        ec=ec,
        text=text,
        supplied=s,
    )


@router.get(
    "/items/{code}/label.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": _IMAGE_DOC}},
)
def label_svg(
    code: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    size: Size = DEFAULT_SIZE,
    ec: ErrorCorrection = ErrorCorrection.M,
    text: Text = True,
    s: Token = None,
) -> Response:
    """The item's QR label as SVG: a signed link to its public passport."""
    return _label(
        request,
        services,
        caller,
        code,
        fmt=LabelFormat.SVG,
        size=size,
        ec=ec,
        text=text,
        supplied=s,
    )


def _sheet(services: Services, caller: Principal, body: SheetRequest) -> HTMLResponse:
    codes = list(dict.fromkeys(c.strip() for part in body.codes for c in part.split(",")))
    codes = [c for c in codes if c]
    if not 1 <= len(codes) <= MAX_SHEET:
        raise ProblemError("invalid-request", f"a sheet holds 1 to {MAX_SHEET} labels")
    labels = []
    for code in codes:
        item = _readable(services, caller, code)
        spec = LabelSpec(_payload(services, item, None), LabelFormat.SVG, DEFAULT_SIZE, body.ec)
        labels.append((item.id, render_label(spec).decode()))
    return HTMLResponse(_sheet_html(labels))


@router.get("/labels/sheet", response_class=HTMLResponse)
def label_sheet(
    services: ServicesDep,
    caller: CallerDep,
    codes: Annotated[
        list[str], Query(max_length=MAX_SHEET, description="repeat, or comma-separate")
    ],
    ec: ErrorCorrection = ErrorCorrection.M,
) -> HTMLResponse:
    """A printable A4 sheet of labels (HTML, inline SVG, print stylesheet)."""
    if not codes:
        raise ProblemError("invalid-request", "name at least one code")
    return _sheet(services, caller, SheetRequest(codes=codes, ec=ec))


@router.post("/labels/sheet", response_class=HTMLResponse)
def label_sheet_post(body: SheetRequest, services: ServicesDep, caller: CallerDep) -> HTMLResponse:
    """A printable A4 sheet of labels for the codes in the body."""
    return _sheet(services, caller, body)
