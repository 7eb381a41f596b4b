"""Auditors' questions: lineage, flows (Sankey), rates with evidence, anomalies, EPR reports.

Who may ask: auditors and administrators everything; a producer (battery maker
or automaker) its own products' flows, rates and EPR report; anyone with a key
the lineage of an item visible to it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from api.deps import CallerDep, Principal, ServicesDep
from api.errors import ProblemError
from api.visibility import check_can_read
from schemas.actors import Role
from trace import flows as flow_queries
from trace import lineage as lineage_queries
from trace.anomalies import find_anomalies
from trace.rates import compute_rates
from trace.reports import epr_report

router = APIRouter(tags=["analytics"])

_PRODUCERS = (Role.BATTERY_MAKER, Role.AUTOMAKER)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _scope(caller: Principal, producer: str | None) -> str | None:
    """The producer the caller may ask about (auditors and admins: any, or all)."""
    if caller.public:
        raise ProblemError("unauthenticated", "analytics need an API key")
    if caller.admin or caller.is_auditor():
        return producer
    assert caller.actor is not None
    if caller.role in _PRODUCERS:
        if producer not in (None, caller.actor.id):
            raise ProblemError("forbidden", "a producer sees its own products' figures only")
        return caller.actor.id
    raise ProblemError("forbidden", "flows, rates and reports are for auditors and producers")


def _page(page: Any) -> dict[str, Any]:
    return {"data": _jsonable(list(page.items)), "next_cursor": page.next_cursor}


@router.get("/lineage/{code}")
def lineage(
    code: str,
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """A pack's parts, earlier and later lives, custody chain, and the materials it became or came from."""
    state = services.tracer.world.item(code)
    if state is None:
        raise ProblemError("not-found", f"no item {code}")
    check_can_read(caller, state, services.tracer)
    g = services.graph
    # The graph is updated under the write lock; queries must not see it half-applied.
    with services.lock:
        return {
            "item": code,
            "parts": _page(lineage_queries.parts(g, code, limit=limit)),
            "lives": _page(lineage_queries.lives(g, code, limit=limit)),
            "custody": _page(lineage_queries.custody_chain(g, code, limit=limit)),
            "downstream": _page(lineage_queries.downstream(g, code, limit=limit)),
            "upstream": _page(lineage_queries.upstream(g, code, limit=limit)),
        }


@router.get("/flows")
def flows(
    services: ServicesDep,
    caller: CallerDep,
    by: Literal["stage", "role", "actor"] = "stage",
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    start: date | None = None,
    end: date | None = None,
    producer: Annotated[str | None, Query(max_length=64)] = None,
    measure: Literal["packs", "kwh", "kg"] = "kg",
) -> dict[str, Any]:
    """Flows between lifecycle stages or organisations, ready for a Sankey diagram."""
    producer = _scope(caller, producer)
    g = services.graph
    with services.lock:  # the graph is updated under the write lock
        if by == "stage":
            result = flow_queries.stage_flows(
                g, region=region, start=start, end=end, producer=producer
            )
        else:
            result = flow_queries.actor_flows(
                g, by=by, region=region, start=start, end=end, producer=producer
            )
    return result.to_dict(measure=measure)


@router.get("/rates")
def rates(
    services: ServicesDep,
    caller: CallerDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    producer: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    chemistry: Annotated[str | None, Query(max_length=20)] = None,
    tree_size: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Collection, cascade-use, recycling-efficiency, recovery and recycled-content rates, with evidence.

    ``tree_size`` gives the rates as the log stood at a signed checkpoint of that size.
    """
    producer = _scope(caller, producer)
    try:
        report = compute_rates(
            services.tracer,
            year=year,
            producer=producer,
            region=region,
            chemistry=chemistry,
            tree_size=tree_size,
        )
    except ValueError as exc:  # an unknown chemistry, a checkpoint the log has not reached
        raise ProblemError("invalid-request", str(exc)) from exc
    return dict(report.to_json())


@router.get("/anomalies")
def anomalies(
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Leakage, custody gaps, double custody, mass-balance, recovery and late-reporting findings."""
    if caller.public:
        raise ProblemError("unauthenticated", "anomalies need an auditor's API key")
    if not (caller.admin or caller.is_auditor()):
        raise ProblemError("forbidden", "anomalies are for auditors")
    found = find_anomalies(services.tracer, now=datetime.now(UTC))
    return {"count": len(found), "data": [a.to_json() for a in found[:limit]]}


@router.get("/reports/epr/{producer}/{year}")
def epr(
    producer: str,
    year: int,
    services: ServicesDep,
    caller: CallerDep,
    fmt: Annotated[Literal["json", "csv", "html"], Query(alias="format")] = "json",
) -> Response:
    """A producer's extended-producer-responsibility report for a year: JSON, CSV or printable HTML."""
    _scope(caller, producer)
    if services.tracer.world.actor(producer) is None:
        raise ProblemError("unknown-actor", f"no organisation {producer!r}")
    report = epr_report(services.tracer, producer, year)
    if fmt == "csv":
        return PlainTextResponse(report.to_csv(), media_type="text/csv")
    if fmt == "html":
        return HTMLResponse(report.to_html())
    import json

    return Response(json.dumps(report.to_json(), ensure_ascii=False), media_type="application/json")
