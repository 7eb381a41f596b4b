"""Bulk import: many items or events from one uploaded file, with a report on every row.

``POST /v1/bulk/items`` registers items from CSV (header ``code,mass_kg,chemistry,
energy_kwh``; optional ``unit``, which must be ``kg``, and ``event_time``) or NDJSON objects
with the same keys. ``POST /v1/bulk/events`` records NDJSON events: signed submissions
(``kind, body, key_id, sig``) or unsigned events (``data`` with optional ``idempotency_key``,
``event_time``, ``region``, ``read_point``, ``prev``) signed with the custodial key.

Send the file as the body (``text/csv``, ``application/x-ndjson``) or as the ``file`` field of
a ``multipart/form-data`` upload. A row's idempotency key is the one it names, else
``bulk-<SHA-256 of the RFC 8785 row>``, so a retried file appends nothing twice. A file that
outlives the request time limit keeps being recorded; send it again for the report.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.bulk import (
    MAX_ROWS,
    BulkReport,
    Row,
    RowIssue,
    check_role,
    import_rows,
    parse_data,
    reason,
)
from api.deps import Principal, ServicesDep, WriterDep
from api.errors import ProblemError
from api.routes.operations import problem_responses
from api.services import Services
from ledger import LedgerError
from ledger.canonical import canonicalize
from ledger.entry import Submission
from schemas.actors import Actor
from schemas.codes import check_code
from schemas.composition import Composition, parse_chemistry
from schemas.events import CommissionData, EventType, is_lot_id
from trace.engine import parse_event
from trace.errors import TraceError

__all__ = ["ITEM_COLUMNS", "event_rows", "item_rows_csv", "item_rows_ndjson", "router"]

router = APIRouter(prefix="/bulk", tags=["bulk"])

ITEM_COLUMNS: Final = ("code", "mass_kg", "chemistry", "energy_kwh")
_ITEM_OPTIONAL: Final = ("unit", "event_time")
_EVENT_FIELDS: Final = frozenset(
    {"actor", "data", "event_time", "idempotency_key", "prev", "read_point", "region"}
)
_KEY: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_EXTRA: Final = "\0extra"  # DictReader's key for cells beyond the header
CSV: Final = "text/csv"
NDJSON: Final = "application/x-ndjson"
_MULTIPART: Final = "multipart/form-data"
_SUFFIXES: Final = {".csv": CSV, ".ndjson": NDJSON, ".jsonl": NDJSON}


# --- files to rows ---


def _row_key(obj: Any) -> str:
    """A row's own idempotency key: the same row always gets the same key."""
    return "bulk-" + hashlib.sha256(canonicalize(obj)).hexdigest()


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return reason(exc)


def _quantity(value: Any, name: str, unit: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")
    return number


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"event_time {value!r} is not ISO 8601") from exc
    if moment.tzinfo is None:
        raise ValueError(f"event_time {value!r} needs a UTC offset, e.g. +08:00")
    return moment


def _item_row(line: int, fields: Mapping[str, Any], seen: dict[str, int]) -> Row | RowIssue:
    code = str(fields.get("code") or "").strip()
    if not code:
        return RowIssue(line, "code is empty")
    if is_lot_id(code):
        return RowIssue(line, "lots are created with POST /v1/lots, not registered", code)
    report = check_code(code)
    if not report.valid:
        reasons = "; ".join(str(e) for e in report.errors)
        return RowIssue(line, f"{code!r} is not a valid GB/T 34014 code: {reasons}", code)
    if code in seen:
        return RowIssue(line, f"{code} is already on line {seen[code]}", code)
    unit = str(fields.get("unit") or "kg").strip()
    if unit != "kg":
        return RowIssue(line, f"masses are recorded in kg; unit {unit!r} refused", code)
    try:
        mass = _quantity(fields.get("mass_kg"), "mass_kg", "kilograms")
        energy = _quantity(fields.get("energy_kwh"), "energy_kwh", "kWh")
        chemistry = parse_chemistry(str(fields["chemistry"])) if fields.get("chemistry") else None
        when = _time(fields.get("event_time"))
        composition = None
        if chemistry is not None or energy is not None:
            if chemistry is None or energy is None or mass is None:
                raise ValueError("chemistry, energy_kwh and mass_kg go together (a composition)")
            composition = Composition(
                chemistry=chemistry,
                energy_kwh=energy,
                mass_kg=mass,
                content_kg={},
                estimated=False,
                basis="declared in a bulk import; element content not given",
            )
        data = CommissionData(item=code, mass_kg=mass, composition=composition)
    except ValueError as exc:  # SchemaError and pydantic's ValidationError are ValueErrors
        return RowIssue(line, _message(exc), code)
    seen[code] = line
    canonical = {
        "code": code,
        "mass_kg": mass,
        "chemistry": None if chemistry is None else chemistry.value,
        "energy_kwh": energy,
        "event_time": None if when is None else when.isoformat(),
    }
    return Row(line, _row_key(canonical), data, when=when)


def _columns(names: Sequence[str] | None) -> list[str]:
    if not names:
        raise ProblemError("invalid-request", "the file is empty; its first line names the columns")
    columns = [name.strip().lower() for name in names]
    known = (*ITEM_COLUMNS, *_ITEM_OPTIONAL)
    masses = [c for c in columns if c.startswith(("mass", "weight")) and c != "mass_kg"]
    if masses:
        raise ProblemError(
            "invalid-request", f"masses are recorded in kilograms, as mass_kg; not {masses}"
        )
    unknown = [c for c in columns if c not in known]
    if "code" not in columns or unknown or len(set(columns)) != len(columns):
        raise ProblemError(
            "invalid-request",
            f"the columns are {', '.join(ITEM_COLUMNS)} (code required; optional unit = kg, "
            f"event_time), once each; got {columns}",
        )
    return columns


def _too_many() -> ProblemError:
    return ProblemError("too-large", f"a file holds at most {MAX_ROWS} rows; split it")


def item_rows_csv(text: str) -> list[Row | RowIssue]:
    """Item rows from CSV with a header line; blank lines are skipped."""
    reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA)
    rows: list[Row | RowIssue] = []
    seen: dict[str, int] = {}
    try:
        reader.fieldnames = _columns(reader.fieldnames)
        for record in reader:
            if len(rows) >= MAX_ROWS:
                raise _too_many()
            if _EXTRA in record:
                rows.append(RowIssue(reader.line_num, "more cells than columns"))
                continue
            fields = {k: v.strip() for k, v in record.items() if isinstance(v, str) and v.strip()}
            if fields:
                rows.append(_item_row(reader.line_num, fields, seen))
    except csv.Error as exc:  # a NUL byte, a field past the size limit: the file is not CSV
        raise ProblemError("invalid-request", f"line {reader.line_num}: {exc}") from exc
    return rows


def _json_lines(text: str) -> Iterator[tuple[int, dict[str, Any] | RowIssue]]:
    count = 0
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        count += 1
        if count > MAX_ROWS:
            raise _too_many()
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            yield line, RowIssue(line, f"not JSON: {exc}")
            continue
        yield line, obj if isinstance(obj, dict) else RowIssue(line, "a row is a JSON object")


def item_rows_ndjson(text: str) -> list[Row | RowIssue]:
    """Item rows from NDJSON objects with the CSV's keys."""
    rows: list[Row | RowIssue] = []
    seen: dict[str, int] = {}
    known = {*ITEM_COLUMNS, *_ITEM_OPTIONAL}
    for line, obj in _json_lines(text):
        if isinstance(obj, RowIssue):
            rows.append(obj)
        elif unknown := sorted(set(obj) - known):
            rows.append(RowIssue(line, f"unknown keys {unknown}; expected {sorted(known)}"))
        else:
            rows.append(_item_row(line, obj, seen))
    return rows


def _event_row(line: int, obj: dict[str, Any], actor: Actor) -> Row:
    if "sig" in obj:
        signed = Submission.from_json(obj)
        event = parse_event(signed.body)
        if event.actor != actor.id:
            raise ProblemError("forbidden", f"the event is by {event.actor!r}, not {actor.id!r}")
        return Row(line, event.idempotency_key, event.data, signed=signed, event=event)
    if unknown := sorted(set(obj) - _EVENT_FIELDS):
        raise ValueError(
            f"unknown keys {unknown}; expected {sorted(_EVENT_FIELDS)} or a signed one"
        )
    if obj.get("actor", actor.id) != actor.id:
        raise ProblemError("forbidden", f"the event is by {obj['actor']!r}, not {actor.id!r}")
    key = obj.get("idempotency_key") or _row_key(obj)
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError("idempotency_key is 1 to 128 of A-Z, a-z, 0-9 and . _ : -")
    prev = obj.get("prev")
    if prev is not None and not isinstance(prev, dict):
        raise ValueError("prev maps each item to its latest event id")
    return Row(line, key, parse_data(obj.get("data")), _time(obj.get("event_time")),
               obj.get("region"), obj.get("read_point"), prev)  # fmt: skip


def event_rows(text: str, actor: Actor) -> list[Row | RowIssue]:
    """Event rows from NDJSON: signed submissions, or unsigned events for custodial signing."""
    rows: list[Row | RowIssue] = []
    for line, obj in _json_lines(text):
        if isinstance(obj, RowIssue):
            rows.append(obj)
            continue
        try:
            rows.append(_event_row(line, obj, actor))
        except (ProblemError, TraceError, LedgerError, ValueError) as exc:
            rows.append(RowIssue(line, _message(exc)))
    return rows


# --- the upload ---


def _upload_body(*media: str) -> dict[str, Any]:
    """The OpenAPI request body: the file as the body, or as a multipart ``file`` field."""
    content: dict[str, Any] = {m: {"schema": {"type": "string"}} for m in media}
    content[_MULTIPART] = {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    }
    return {"requestBody": {"required": True, "content": content}}


async def _read(request: Request, *media: str) -> tuple[str, str]:
    """The uploaded text and its media type (one of ``media``)."""
    declared = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if declared == _MULTIPART:
        async with request.form(max_files=1, max_fields=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ProblemError("invalid-request", "send the file in a form field named 'file'")
            data = await upload.read()
            name = (upload.filename or "").lower()
            kind = next((m for s, m in _SUFFIXES.items() if name.endswith(s)), None)
            declared = kind or (upload.content_type or "").partition(";")[0].strip().lower()
            if len(media) == 1 and declared in ("", "application/octet-stream"):
                declared = media[0]
    else:
        data = await request.body()
    if declared not in media:
        raise ProblemError(
            "unsupported-media-type", f"send {' or '.join(media)}, not {declared or 'no type'!r}"
        )
    try:
        return data.decode("utf-8-sig"), declared
    except UnicodeDecodeError as exc:
        raise ProblemError("invalid-request", f"the file is not UTF-8: {exc}") from exc


def _import(
    services: Services,
    caller: Principal,
    parse: Callable[[str], list[Row | RowIssue]],
    text: str,
    *,
    all_rows: bool,
) -> BulkReport:
    # Parsing and recording are CPU and database work: a worker thread, not the event loop.
    return import_rows(services, caller, parse(text), all_rows=all_rows)


def _answer(response: Response, report: BulkReport) -> BulkReport:
    if not report.committed:
        response.status_code = status.HTTP_200_OK
    return report


_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "model": BulkReport,
        "description": "Nothing new recorded (every row replayed or invalid)",
    },
    **problem_responses(401, 403, 413, 415, 422),
}
AllRows = Annotated[bool, Query(description="list every row in the report, not only invalid ones")]


@router.post("/items", status_code=status.HTTP_201_CREATED, responses=_RESPONSES,
             openapi_extra=_upload_body(CSV, NDJSON))  # fmt: skip
async def bulk_items(
    request: Request,
    response: Response,
    services: ServicesDep,
    caller: WriterDep,
    all_rows: AllRows = False,
) -> BulkReport:
    """Register items from a CSV or NDJSON file; invalid rows are reported, valid ones recorded."""
    assert caller.actor is not None
    check_role(caller.actor, EventType.COMMISSION)
    text, media = await _read(request, CSV, NDJSON)
    parse = item_rows_csv if media == CSV else item_rows_ndjson
    report = await run_in_threadpool(_import, services, caller, parse, text, all_rows=all_rows)
    return _answer(response, report)


@router.post("/events", status_code=status.HTTP_201_CREATED, responses=_RESPONSES,
             openapi_extra=_upload_body(NDJSON))  # fmt: skip
async def bulk_events(
    request: Request,
    response: Response,
    services: ServicesDep,
    caller: WriterDep,
    all_rows: AllRows = False,
) -> BulkReport:
    """Record events from an NDJSON file, signed or for custodial signing, with a per-row report."""
    assert caller.actor is not None
    text, _ = await _read(request, NDJSON)
    actor = caller.actor

    def parse(text: str) -> list[Row | RowIssue]:
        return event_rows(text, actor)

    report = await run_in_threadpool(_import, services, caller, parse, text, all_rows=all_rows)
    return _answer(response, report)
