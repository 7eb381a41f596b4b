"""Passports: the public one a label opens (``/p/{code}``, no key) and the Battery Pass document.

``/p/{code}`` negotiates its content (RFC 9110 §12.5.1): a browser, which asks for
``text/html`` first, gets a page (inline CSS, plus the same-origin script that verifies the proof);
API clients get JSON, the default. Passports are kept ready (:mod:`api.passport_cache`): while
the ledger has not moved, a scan is answered from the event loop with stored bytes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from pydantic import StringConstraints, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, ServicesDep, get_reader, services_of
from api.errors import ProblemError
from api.labels import verify_issued
from api.passport import (
    battery_pass,
    ensure_checkpoint,
    has_legitimate_interest,
    inclusion_proof,
    label_verdict,
    public_passport,
)
from api.passport_cache import Passport, dumps, family
from api.services import Services
from trace.state import ItemKind

__all__ = ["public_router", "router", "wants_html"]

router = APIRouter(prefix="/items", tags=["passport"])

_TEMPLATE: Final = Path(__file__).resolve().parent.parent / "templates" / "passport.html"
_VARY: Final = {"Vary": "Accept"}
_HTML: Final = "text/html"
_JSON: Final = "application/json"
_UNKNOWN: Final = "not recorded"
_NONE: Final = "none"


def _quality(accept: str, media: str) -> float:
    """The q-value ``accept`` gives ``media`` (exact type, then ``type/*``, then ``*/*``)."""
    kind = media.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        rank = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(name.lower())
        if rank is None or rank < best[0]:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = (rank, q)
    return best[1]


def wants_html(accept: str | None) -> bool:
    """Whether the client prefers HTML over JSON; JSON wins ties and absent headers."""
    if not accept:
        return False
    return _prefers_html(accept)


@lru_cache(maxsize=256)  # clients send a handful of distinct Accept headers
def _prefers_html(accept: str) -> bool:
    return _quality(accept, _HTML) > _quality(accept, _JSON)


# --- the page ---


@lru_cache(maxsize=1)
def _template() -> Template:
    return Template(_TEMPLATE.read_text(encoding="utf-8"))


def _text(value: Any, empty: str = _UNKNOWN) -> str:
    if value is None or value == []:
        return empty
    if isinstance(value, list):
        return ", ".join(html.escape(str(v)) for v in value)
    return html.escape(str(value))


def _rows(rows: Sequence[tuple[str, Any]], empty: str = _UNKNOWN) -> str:
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{_text(v, empty)}</dd>" for k, v in rows)
    return f"<dl>{body}</dl>"


def _section(title: str, rows: Sequence[tuple[str, Any]], empty: str = _UNKNOWN) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{_rows(rows, empty)}</section>"


def _page(title: str, main: str, data: Mapping[str, Any] | None = None) -> str:
    # JSON inside <script>: escape <, > and & so no text can close the element.
    blob = json.dumps(data or {}, ensure_ascii=False)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _template().substitute(title=html.escape(title), main=main, data=blob)


def _verdict(label: Mapping[str, Any]) -> str:
    if label["genuine"]:
        kind, heading = "genuine", "\u2713 Genuine label"
    elif label["verdict"] == "absent":
        kind, heading = "unchecked", "Label not checked"
    else:
        kind, heading = "not-genuine", "\u2717 Not genuine"
    return (
        f'<section class="verdict {kind}" role="status" aria-labelledby="verdict-heading">'
        f'<strong id="verdict-heading">{heading}</strong>'
        f"<p>{html.escape(label['explanation'])}</p></section>"
    )


def _proof(proof: Mapping[str, Any]) -> str:
    if not proof.get("checkpoint"):
        return "<section><h2>Record proof</h2><p>No signed checkpoint covers this record yet.</p></section>"
    rows = [
        ("Log entry", proof["index"]),
        ("Log size at checkpoint", proof["tree_size"]),
        ("Proof hashes", len(proof["hashes"])),
    ]
    return (
        "<section><h2>Record proof</h2>"
        f"<p>The latest record of this battery is entry {proof['index']} of an append-only "
        "log, under the signed checkpoint below. The JSON version of this address carries "
        "the entry and its audit path, so anyone can check them.</p>"
        f"{_rows(rows)}<details><summary>Signed checkpoint</summary>"
        f"<pre>{html.escape(proof['checkpoint'])}</pre></details></section>"
    )


def passport_page(doc: Mapping[str, Any]) -> str:
    """The public passport as a self-contained, phone-width HTML page."""
    identity = doc["identity"]
    battery = identity.get("battery_type") or {}
    code = html.escape(doc["code"])
    main = "".join(
        [
            f'<h1>Battery passport</h1><p class="code">{code}</p>',
            _verdict(doc["label"]),
            _section(
                "Identity",
                [
                    ("Kind", doc["kind"]),
                    ("Product type", identity.get("product_type")),
                    ("Battery type", battery.get("name")),
                    ("Manufacturer code", identity.get("manufacturer_code")),
                    ("Production date", identity.get("production_date")),
                    ("Chemistry", doc["chemistry"]),
                    ("Rated energy (kWh)", doc["rated_energy_kwh"]),
                    ("Rated capacity (Ah)", doc["rated_capacity_ah"]),
                ],
            ),
            _section(
                "Status",
                [
                    ("EU battery status", doc["status"]["eu"]),
                    ("Life stage", doc["status"]["suyuan"].replace("_", " ")),
                    ("Current holder", (doc["holder"]["role"] or "").replace("_", " ") or None),
                    ("Holder's region", doc["holder"]["region"]),
                ],
            ),
            _section(
                "Lives",
                [("Earlier codes", doc["earlier_lives"]), ("Re-coded as", doc["successor"])],
                empty=_NONE,
            ),
            _proof(doc["proof"]),
        ]
    )
    return _page(f"Battery passport {doc['code']}", main, doc)


def not_found_page(code: str) -> str:
    main = (
        "<h1>No such battery</h1>"
        f'<p>No battery or lot with the code <span class="code">{html.escape(code)}</span> '
        "is recorded here. Check the code printed under the label.</p>"
    )
    return _page("Battery not found", main)


# --- routes ---

_LABEL_TOKEN_MAX: Final = 200
_LabelToken = Annotated[str, StringConstraints(max_length=_LABEL_TOKEN_MAX)]
_label_token: Final = TypeAdapter(_LabelToken)


class _ScanRoute(APIRoute):
    """``/p/{code}`` reads its two parameters itself: FastAPI's parameter resolution
    costs more than answering with a kept passport. The endpoint's signature still
    describes the operation in OpenAPI, and ``s`` is validated as it says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            token = request.query_params.get("s")
            if token is not None:
                try:
                    _label_token.validate_python(token)
                except ValidationError as exc:
                    errors = [{**e, "loc": ("query", "s", *e["loc"])} for e in exc.errors()]
                    raise RequestValidationError(errors) from None
            return await get_public_passport(request.path_params["code"], request, token)

        return handle


public_router = APIRouter(tags=["passport"], route_class=_ScanRoute)


@public_router.get(
    "/p/{code}",
    response_model=None,
    responses={200: {"content": {_JSON: {}, _HTML: {}}}, 404: {"content": {_HTML: {}}}},
)
async def get_public_passport(
    code: str,
    request: Request,
    s: Annotated[_LabelToken | None, Query(description="label signature")] = None,
) -> Response:
    """The public passport a label opens: HTML for browsers, JSON otherwise."""
    # No key needed; the caller's address is rate-limited.
    services = services_of(request)
    await get_reader(request, services)
    as_html = wants_html(request.headers.get("accept"))
    if services.local_reads:
        # A kept passport is served from the event loop, without a thread.
        kept = _kept(services, code, s)
        if kept is not None:
            return _respond(kept, as_html)
    return await run_in_threadpool(_scan, services, code, s, as_html)


def _kept(services: Services, code: str, token: str | None) -> bytes | None:
    """The passport's JSON if it is kept for the current ledger view, else ``None``."""
    # The event loop never waits: while a writer holds the lock, a thread answers.
    if not services.lock.acquire(blocking=False):
        return None
    try:
        current = services.watch.current()
    finally:
        services.lock.release()
    if current != services.passports.view:
        return None
    item = services.tracer.world.item(code)
    if item is None:
        return None
    document = services.passports.document(code, item)
    label = services.passports.label(code, token)
    if document is None or label is None:
        return None
    return document.with_label(label)


def _scan(services: Services, code: str, token: str | None, as_html: bool) -> Response:
    services.sync()
    item = services.tracer.world.item(code)
    if item is None:
        if as_html:
            return HTMLResponse(not_found_page(code), status_code=404, headers=_VARY)
        raise ProblemError("not-found", f"no item {code}")
    passports = services.passports
    document = passports.document(code, item) or _build(services, code)
    label = passports.label(code, token)
    if label is None:
        generation = passports.registry_generation
        keys = passports.key_records(services.tracer.log.key_records)
        check = verify_issued(keys, issuer=item.producer, code=code, token=token)
        label = passports.keep_label(code, token, label_verdict(check), generation)
    return _respond(document.with_label(label), as_html)


def _build(services: Services, code: str) -> Passport:
    """Build and keep ``code``'s passport, signing a checkpoint over its latest event if none does."""
    tracer = services.tracer
    with services.lock:  # the engine and the graph change under this lock
        latest = tracer.history(code)[-1]
        covered = tracer.log.store.checkpoint()
        if covered is None or covered[0] <= latest.seq:
            ensure_checkpoint(tracer.log, latest.seq)
            services.sync()  # adopt the new checkpoint before building against it
        generation = services.passports.generation
        item = tracer.world.item(code)
        assert item is not None  # items are never removed
        doc = public_passport(tracer, item, proof=inclusion_proof(tracer.log, latest))
        doc["custody"] = _public_custody(services, code)
        passport = Passport(item, dumps(doc), family(tracer.world, item))
    services.passports.keep(code, passport, generation)
    return passport


def _respond(body: bytes, as_html: bool) -> Response:
    if as_html:
        return HTMLResponse(passport_page(json.loads(body)), headers=_VARY)
    return Response(body, media_type=_JSON, headers=_VARY)


def _public_custody(services: Services, code: str) -> list[dict[str, Any]]:
    """The custody timeline across the pack's lives, by role and place only (never names)."""
    from trace.lineage import custody_chain

    chain = custody_chain(services.graph, code, limit=500).items
    return [
        {
            "code": c.code,
            "role": c.role,
            "region": c.region,
            "since": c.since.isoformat(),
            "until": None if c.until is None else c.until.isoformat(),
        }
        for c in chain
    ]


@router.get("/{code}/passport")
def get_battery_pass(code: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    """The Battery Pass document; restricted attributes for those with a legitimate interest."""
    item = services.tracer.world.item(code)
    if item is None:
        raise ProblemError("not-found", f"no item {code}")
    if item.kind is ItemKind.LOT:
        raise ProblemError("not-found", f"{code} is a material lot; lots have no battery passport")
    return battery_pass(
        services.tracer,
        item,
        base_url=services.settings.base_url,
        legitimate=has_legitimate_interest(caller, item),
    )
