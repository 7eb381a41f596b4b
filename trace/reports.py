"""The extended-producer-responsibility (EPR) report of one producer for one year.

China makes automakers (and battery makers) answerable for the packs they place on the
market (工信部联节 2018 No. 43, domain.md §2.1; NDRC 发改产业 2021 No. 1102 for the form of
the collection rate); the EU sets recovery and recycled-content targets (EU 2023/1542
Art. 8, Annex XII). The report lists the producer's packs placed, retired, collected,
repurposed and recycled, its collection and cascade-use rates, the recovery of each element
from its packs and the recycled content of its new packs; every figure with its targets
(pass, fail or not applicable) and the evidence behind it. Outputs: :meth:`EprReport.to_json`,
:meth:`EprReport.to_csv` (one row per figure) and :meth:`EprReport.to_html`, a printable,
self-contained page (inline CSS and SVG, no external resources).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from trace.evidence import Evidence, Rate, Target, Total
from trace.rates import Source, compute_rates, facts_of
from trace.rates_model import ELEMENTS

__all__ = ["EprReport", "Line", "epr_report"]

_FIGURES: Final = ("placed", "retired", "collected", "repurposed", "recycled")
_RATES: Final = (
    ("collection_rate", "Collection rate (China: ÷ mean placed in the 3 preceding years)"),
    ("collection_rate_eu", "Collection rate (EU: ÷ mean placed in the year and 2 before)"),
    ("cascade_use_rate", "Cascade-use rate (repurposed ÷ collected)"),
)
_CONTENT: Final = ("Co", "Li", "Ni", "Pb")
_HTML_EVIDENCE: Final = 12  # item ids printed per figure; the JSON has the full page
_BAR_WIDTH: Final = 360
_CSV_FIELDS: Final = (
    "section", "figure", "unit", "value", "numerator", "denominator", "undefined_reason",
    "status", "targets", "evidence_items", "evidence_total", "evidence_events",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One figure of the report: an amount or a rate, its targets and its evidence."""

    section: str
    figure: str
    unit: str
    value: float | None
    numerator: float | None
    denominator: float | None
    undefined_reason: str | None
    targets: tuple[Target, ...]
    evidence: Evidence

    @property
    def status(self) -> str:
        """``fail`` if any binding target fails, ``pass`` if one passes, else ``not_applicable``."""
        statuses = {t.status for t in self.targets}
        if "fail" in statuses:
            return "fail"
        return "pass" if "pass" in statuses else "not_applicable"

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "figure": self.figure,
            "unit": self.unit,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "undefined_reason": self.undefined_reason,
            "status": self.status,
            "targets": [t.to_json() for t in self.targets],
            "evidence": self.evidence.to_json(),
        }


def _total_line(section: str, total: Total) -> Line:
    return Line(section, total.name, total.unit, total.amount, None, None, None, (), total.evidence)


def _rate_line(section: str, figure: str, rate: Rate) -> Line:
    return Line(
        section, figure, rate.unit, rate.value, rate.numerator, rate.denominator,
        rate.undefined_reason, rate.targets, rate.evidence,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class EprReport:
    """A producer's EPR report for one calendar year (China Standard Time)."""

    producer: str
    role: str
    year: int
    seq: int
    lines: tuple[Line, ...]

    def line(self, figure: str, unit: str) -> Line:
        """The line of ``figure`` in ``unit`` (KeyError if there is none)."""
        for line in self.lines:
            if line.figure == figure and line.unit == unit:
                return line
        raise KeyError(f"no {figure} in {unit}")

    def to_json(self) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "role": self.role,
            "year": self.year,
            "log_seq": self.seq,
            "lines": [line.to_json() for line in self.lines],
        }

    def to_csv(self) -> str:
        """One row per figure; targets and evidence ids flattened into text cells."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_CSV_FIELDS)
        for line in self.lines:
            writer.writerow(
                [
                    line.section, line.figure, line.unit, _num(line.value), _num(line.numerator),
                    _num(line.denominator), line.undefined_reason or "", line.status,
                    "; ".join(_target_text(t) for t in line.targets),
                    " ".join(line.evidence.items), line.evidence.total_items,
                    " ".join(line.evidence.events),
                ]
            )  # fmt: skip
        return out.getvalue()

    def to_html(self) -> str:
        """A printable, self-contained page: tables with captions, inline SVG bar charts."""
        return _html(self)


def epr_report(source: Source, producer: str, year: int, *, evidence_limit: int = 100) -> EprReport:
    """The EPR report of ``producer`` for ``year``.

    Examples
    --------
    >>> from trace.rates_facts import RateFacts
    >>> facts = RateFacts(role_of=lambda actor: "battery_maker", resolve=lambda seqs: {})
    >>> facts.add(1, "e1", "commission", "bm-01", "440000", "2025-05-01T09:00:00+08:00",
    ...           {"item": "001PB1A0000001E390000042", "mass_kg": 400.0})
    >>> report = epr_report(facts, "bm-01", 2025)
    >>> report.line("placed", "kg").value, report.line("collection_rate", "count").status
    (400.0, 'not_applicable')
    >>> report.to_csv().splitlines()[1].split(",")[:4]
    ['Packs', 'placed', 'count', '1']
    """
    facts = facts_of(source)
    rates = compute_rates(facts, year=year, producer=producer, evidence_limit=evidence_limit)
    period = str(year)
    lines: list[Line] = []
    for figure in _FIGURES:
        for unit in ("count", "kg", "kWh"):
            lines.append(
                _total_line("Packs", rates.total(figure, unit, producer=producer, period=period))
            )
    for name, _ in _RATES:
        for unit in ("count", "kg"):
            extra = {"kind": "pack"} if name == "cascade_use_rate" else {}
            rate = rates.rate(name, unit, producer=producer, period=period, **extra)
            lines.append(_rate_line("Rates", name, rate))
    for element in ELEMENTS:
        rate = rates.rate(
            "material_recovery_of_packs", "kg", producer=producer, period=period, element=element
        )
        lines.append(_rate_line("Recovery of its packs", f"recovery_{element}", rate))
    for element in _CONTENT:
        rate = rates.rate(
            "recycled_content", "kg", producer=producer, period=period, element=element
        )
        lines.append(
            _rate_line("Recycled content of its new packs", f"recycled_content_{element}", rate)
        )
    return EprReport(producer, facts.role_of(producer) or "unknown", year, rates.seq, tuple(lines))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.12g}"


def _amount(value: float | None) -> str:
    return "" if value is None else f"{value:,.3f}".rstrip("0").rstrip(".")


def _target_text(target: Target) -> str:
    note = f" ({target.note})" if target.note else ""
    return (
        f"{target.source} >= {target.threshold:.0%} {target.deadline.isoformat()}: "
        f"{target.status}{note}"
    )


def _shown(line: Line) -> str:
    if line.value is None:
        return "undefined"
    if line.unit == "count" and line.denominator is None:
        return f"{line.value:,.0f}"
    if line.denominator is not None:
        return f"{line.value:.1%}"
    return f"{line.value:,.1f}"


_CSS: Final = """
:root { color: #111; background: #fff; font: 15px/1.45 system-ui, "Noto Sans SC", sans-serif; }
body { max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .3rem .5rem; vertical-align: top; text-align: left; }
thead th { background: #e8e8e8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #0b5d1e; font-weight: 600; } .fail { color: #a4000f; font-weight: 600; }
.not_applicable { color: #3d3d3d; } .ids { font: 12px/1.3 ui-monospace, monospace; word-break: break-all; }
svg text { font: 12px system-ui, sans-serif; fill: #111; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
  table, figure { break-inside: avoid; } a { color: inherit; text-decoration: none; } }
"""


def _bars(
    ident: str, title: str, rows: Sequence[tuple[str, float, float | None]], *, percent: bool
) -> str:
    """A horizontal bar chart: (label, value, optional threshold tick) per row."""
    top = max([v for _, v, _ in rows] + [t or 0.0 for *_, t in rows] + [1e-12])
    scale = 1.0 if percent else top
    height = 24 * len(rows) + 10
    parts = [
        f'<svg role="img" aria-labelledby="{ident}" width="{_BAR_WIDTH + 190}" '
        f'height="{height}" viewBox="0 0 {_BAR_WIDTH + 190} {height}">',
        f'<title id="{ident}">{escape(title)}</title>',
    ]
    for i, (label, value, tick) in enumerate(rows):
        y = 5 + 24 * i
        width = _BAR_WIDTH * min(value / scale, 1.0) if scale else 0.0
        shown = f"{value:.1%}" if percent else f"{value:,.0f}"
        parts.append(f'<text x="0" y="{y + 14}">{escape(label)}</text>')
        parts.append(f'<rect x="90" y="{y}" width="{width:.1f}" height="18" fill="#1f4e9c"/>')
        parts.append(f'<text x="{95 + width:.1f}" y="{y + 14}">{shown}</text>')
        if tick is not None:
            x = 90 + _BAR_WIDTH * min(tick / scale, 1.0)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + 20}" stroke="#a4000f" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _table(caption: str, lines: Sequence[Line]) -> str:
    head = (
        "<tr><th scope='col'>Figure</th><th scope='col'>Unit</th><th scope='col'>Value</th>"
        "<th scope='col'>Numerator</th><th scope='col'>Denominator</th>"
        "<th scope='col'>Targets</th></tr>"
    )
    rows = []
    for line in lines:
        targets = (
            "<br>".join(
                f"<span class='{t.status}'>{escape(t.status.replace('_', ' '))}</span>: "
                f"{escape(t.source)} ≥ {t.threshold:.0%} ({escape(t.deadline.isoformat())})"
                for t in line.targets
            )
            or "no target"
        )
        shown = escape(_shown(line)) + (
            f"<br><small>{escape(line.undefined_reason)}</small>" if line.undefined_reason else ""
        )
        rows.append(
            f"<tr><th scope='row'>{escape(line.figure)}</th><td>{escape(line.unit)}</td>"
            f"<td class='n'>{shown}</td><td class='n'>{_amount(line.numerator)}</td>"
            f"<td class='n'>{_amount(line.denominator)}</td><td>{targets}</td></tr>"
        )
    return f"<table><caption>{escape(caption)}</caption><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _evidence(lines: Sequence[Line]) -> str:
    rows = []
    for line in lines:
        ev = line.evidence
        if not ev.total_items:
            continue
        ids = " ".join(escape(i) for i in ev.items[:_HTML_EVIDENCE])
        more = ev.total_items - min(len(ev.items), _HTML_EVIDENCE)
        rows.append(
            f"<tr><th scope='row'>{escape(line.figure)} ({escape(line.unit)})</th>"
            f"<td class='n'>{ev.total_items}</td><td class='n'>{ev.total_events}</td>"
            f"<td class='ids'>{ids}{f' … and {more} more' if more else ''}</td></tr>"
        )
    head = (
        "<tr><th scope='col'>Figure</th><th scope='col'>Items</th><th scope='col'>Events</th>"
        "<th scope='col'>Item ids (first ones; the JSON report lists more)</th></tr>"
    )
    return (
        "<table><caption>Evidence: the items and events behind each figure</caption>"
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _html(report: EprReport) -> str:
    sections: dict[str, list[Line]] = {}
    for line in report.lines:
        sections.setdefault(line.section, []).append(line)
    packs: list[tuple[str, float, float | None]] = [
        (f, report.line(f, "count").value or 0.0, None) for f in _FIGURES
    ]
    recovery: list[tuple[str, float, float | None]] = [
        (line.figure.removeprefix("recovery_"), line.value, next(
            (t.threshold for t in line.targets if t.source.startswith("规范条件")), None))
        for line in sections["Recovery of its packs"]
        if line.value is not None
    ]  # fmt: skip
    counts = {s: sum(1 for line in report.lines if line.status == s) for s in ("pass", "fail")}
    title = f"EPR report {report.year}: {report.producer}"
    charts = _bars("chart-packs", f"Packs of {report.producer} in {report.year}, by stage", packs,
                   percent=False)  # fmt: skip
    if recovery:
        charts += _bars(
            "chart-recovery", "Recovery per element; red tick: China 2024 norm", recovery,
            percent=True,
        )  # fmt: skip
    body = "".join(_table(name, lines) for name, lines in sections.items())
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><main><h1>{escape(title)}</h1>"
        f"<p>Producer <strong>{escape(report.producer)}</strong> ({escape(report.role)}), calendar "
        f"year {report.year} (China Standard Time), from the log up to entry {report.seq}. "
        f"Targets met: {counts['pass']}; missed: {counts['fail']}. Rates follow docs/metrics.md; "
        "a rate whose denominator is zero is undefined, never 0.</p>"
        f"<figure><figcaption>Packs by stage, and recovery per element</figcaption>{charts}</figure>"
        f"{body}<h2>Evidence</h2>{_evidence(report.lines)}</main></body></html>\n"
    )
