"""``scripts/suyuan analytics ...``: rates with their evidence, flows, lineage, anomalies, EPR reports."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from api.commands.common import fail, tracer
from trace.evidence import Period, Rate, Total
from trace.rates import compute_rates
from trace.reports import epr_report

app = typer.Typer(no_args_is_help=True, help="Rates, flows, lineage, anomalies and EPR reports.")

YearOption = Annotated[int | None, typer.Option("--year", help="a calendar year (CST)")]
ProducerOption = Annotated[str | None, typer.Option("--producer", help="a producer's actor id")]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="a GB/T 2260 province code, e.g. 440000")
]


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


class FlowsBy(StrEnum):
    STAGE = "stage"
    ROLE = "role"
    ACTOR = "actor"


class Direction(StrEnum):
    DOWN = "down"
    UP = "up"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _scope_text(scope: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(scope.items()) if v is not None)


def _rate_text(rate: Rate) -> str:
    shown = f"undefined ({rate.undefined_reason})" if rate.value is None else f"{rate.value:.1%}"
    judged = ", ".join(
        f"{t.threshold:.0%} {t.status}" for t in rate.targets if t.passed is not None
    )
    tail = f"  [{judged}]" if judged else ""
    return (
        f"{rate.name:<28} {rate.unit:<5} {_scope_text(dict(rate.scope)):<52} {shown} "
        f"= {rate.numerator:.6g}/{rate.denominator:.6g}{tail}"
    )


def _total_text(total: Total) -> str:
    return (
        f"{total.name:<28} {total.unit:<5} {_scope_text(dict(total.scope)):<52} {total.amount:.6g}"
    )


@app.command("rates")
def rates(
    year: YearOption = None,
    producer: ProducerOption = None,
    region: RegionOption = None,
    chemistry: Annotated[str | None, typer.Option("--chemistry", help="e.g. LFP, NCM811")] = None,
    start: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day (CST)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day (CST)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="every rate with its evidence")] = False,
    evidence: Annotated[int, typer.Option("--evidence", min=0, help="items listed per side")] = 50,
    tree_size: Annotated[
        int | None,
        typer.Option(
            "--tree-size", min=0, help="as the log stood at a checkpoint of this many entries"
        ),
    ] = None,
) -> None:
    """Collection, cascade-use, recycling and recovery rates, recycled content, scrap totals."""
    period = None
    if start is not None or end is not None:
        if start is None or end is None or year is not None:
            raise fail("a date range needs --from and --to, and no --year")
        try:
            period = Period.between(start.date(), end.date())
        except ValueError as exc:
            raise fail(str(exc)) from exc
    with tracer() as t:
        try:
            report = compute_rates(
                t,
                year=year,
                period=period,
                producer=producer,
                region=region,
                chemistry=chemistry,
                evidence_limit=evidence,
                tree_size=tree_size,
            )
        except ValueError as exc:
            raise fail(str(exc)) from exc
    if as_json:
        typer.echo(_dump(report.to_json()))
        return
    for total in report.totals:
        typer.echo(_total_text(total))
    for rate in report.rates:
        typer.echo(_rate_text(rate))


@app.command("flows")
def flows(
    by: Annotated[
        FlowsBy, typer.Option("--by", help="between stages, roles or actors")
    ] = FlowsBy.STAGE,
    region: RegionOption = None,
    producer: ProducerOption = None,
    start: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="exclusive")
    ] = None,
    measure: Annotated[str, typer.Option("--measure", help="packs, kwh or kg")] = "kg",
) -> None:
    """Sankey data (D3 shape) of packs, kWh and kg between stages or organisations."""
    from trace.flows import actor_flows, stage_flows
    from trace.graph import LifecycleGraph

    start_day = None if start is None else start.date()
    end_day = None if end is None else end.date()
    with tracer() as t:
        graph = LifecycleGraph.from_tracer(t)
    if by is FlowsBy.STAGE:
        result = stage_flows(graph, region=region, producer=producer, start=start_day, end=end_day)
    else:
        result = actor_flows(
            graph,
            by="role" if by is FlowsBy.ROLE else "actor",
            region=region,
            producer=producer,
            start=start_day,
            end=end_day,
        )
    try:
        typer.echo(result.to_json(measure=measure))
    except ValueError as exc:
        raise fail(str(exc)) from exc


@app.command("lineage")
def lineage(
    code: Annotated[str, typer.Argument(help="a battery code or lot id")],
    direction: Annotated[
        Direction, typer.Option("--direction", help="what it became, or where it came from")
    ] = Direction.DOWN,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
) -> None:
    """An item's lives, custodians, parts and material lineage, as JSON."""
    from trace.graph import LifecycleGraph
    from trace.lineage import custody_chain, downstream, lives, parts, upstream

    with tracer() as t:
        graph = LifecycleGraph.from_tracer(t)
        walk = downstream if direction is Direction.DOWN else upstream
        out = {
            "item": code,
            "lives": list(lives(graph, code, limit=limit).items),
            "custody": [asdict(c) for c in custody_chain(graph, code, limit=limit).items],
            "parts": [asdict(p) for p in parts(graph, code, limit=limit).items],
            direction.value + "stream": [asdict(r) for r in walk(graph, code, limit=limit).items],
        }
    typer.echo(_dump(out))


@app.command("anomalies")
def anomalies(
    as_json: Annotated[
        bool, typer.Option("--json", help="every finding with its evidence")
    ] = False,
    now: Annotated[
        datetime | None, typer.Option("--now", help="the time to age pending steps against")
    ] = None,
) -> None:
    """Leakage, custody gaps, double custody, mass balance, recovery and late reporting."""
    from trace.anomalies import find_anomalies

    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    with tracer() as t:
        found = find_anomalies(t, now=moment)
    if as_json:
        typer.echo(_dump([a.to_json() for a in found]))
        return
    for a in found:
        typer.echo(f"{a.kind.value:<16} {a.check.value:<24} {a.severity.value:<6} {a.summary}")
    typer.echo(f"{len(found)} anomalies")


@app.command("report")
def report(
    producer: Annotated[str, typer.Argument(help="the producer's actor id")],
    year: Annotated[int, typer.Argument(help="the calendar year (CST)")],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="json, csv or html")
    ] = ReportFormat.HTML,
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: stdout)")] = None,
) -> None:
    """The EPR report of a producer for a year: figures, targets, evidence."""
    with tracer() as t:
        made = epr_report(t, producer, year)
    if fmt is ReportFormat.JSON:
        content = _dump(made.to_json()) + "\n"
    elif fmt is ReportFormat.CSV:
        content = made.to_csv()
    else:
        content = made.to_html()
    if out is None:
        typer.echo(content, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc}") from exc
    typer.echo(f"wrote {fmt.value} report of {producer} for {year} to {out}")
