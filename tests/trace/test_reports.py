"""The EPR report: its figures and targets, and its JSON, CSV and printable HTML forms."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from tests.trace.test_rates import EdgeWorld, open_edge_world
from trace.engine import Tracer
from trace.rates_facts import RateFacts
from trace.reports import EprReport, epr_report

MIN_CONTRAST = 4.5  # WCAG 2.1 AA for body text
_VOID = frozenset({"meta", "br", "rect", "line"})


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tracer, EdgeWorld]]:
    tracer, world = open_edge_world(str(tmp_path_factory.mktemp("report") / "edge.db"))
    yield tracer, world
    tracer.close()


@pytest.fixture(scope="module")
def report_2025(edge: tuple[Tracer, EdgeWorld]) -> EprReport:
    return epr_report(edge[0], "catl", 2025)


def test_the_report_lists_every_figure_with_its_targets(edge: tuple[Tracer, EdgeWorld]) -> None:
    report = epr_report(edge[0], "catl", 2024)
    assert (report.producer, report.role, report.year) == ("catl", "battery_maker", 2024)
    # 5 figures in 3 units, 3 rates in 2 units, 7 elements recovered, 4 of recycled content.
    assert len(report.lines) == 5 * 3 + 3 * 2 + 7 + 4
    assert report.line("collected", "count").value == 3
    assert report.line("recycled", "count").value == 2
    assert report.line("recovery_Li", "kg").value == pytest.approx(0.9, abs=1e-3)
    # China's Li norm binds from 24 December 2024: not for the year 2024 as a whole.
    china = report.line("recovery_Li", "kg").targets[0]
    assert (china.status, china.note) == ("not_applicable", "binds from 2024-12-24")
    assert report.line("recycled_content_Li", "kg").value == pytest.approx(0.113, abs=1e-3)


def test_a_missed_target_fails_and_an_impossible_rate_is_not_judged(report_2025: EprReport) -> None:
    li = report_2025.line("recovery_Li", "kg")
    assert li.status == "fail" and li.targets[0].passed is False
    ni = report_2025.line("recovery_Ni", "kg")
    assert ni.value is None and "physically impossible" in (ni.undefined_reason or "")
    assert ni.status == "not_applicable"


def test_json_and_csv_have_one_entry_per_figure(report_2025: EprReport) -> None:
    data = json.loads(json.dumps(report_2025.to_json()))
    assert data["producer"] == "catl" and len(data["lines"]) == len(report_2025.lines)
    rows = list(csv.DictReader(io.StringIO(report_2025.to_csv())))
    assert len(rows) == len(report_2025.lines)
    li = next(r for r in rows if r["figure"] == "recovery_Li")
    assert li["status"] == "fail" and ">= 90%" in li["targets"]
    assert float(li["value"]) == pytest.approx(report_2025.line("recovery_Li", "kg").value)
    assert rows[0]["evidence_items"] == "" or rows[0]["evidence_total"].isdigit()


class _Page(HTMLParser):
    """Collects tags, attributes and nesting errors of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"</{tag}> closes nothing open")


def test_the_html_page_is_self_contained_printable_and_accessible(report_2025: EprReport) -> None:
    page = report_2025.to_html()
    parser = _Page()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    tags = [t for t, _ in parser.tags]
    attrs = [a for _, a in parser.tags]
    assert not re.search(r"(?i)\b(src|href)\s*=|url\(|@import|https?://", page)
    assert "script" not in tags and "link" not in tags
    assert ("html", {"lang": "en"}) in parser.tags
    assert tags.count("caption") == tags.count("table") > 0
    assert all(a.get("scope") in ("col", "row") for t, a in parser.tags if t == "th")
    assert any(a.get("role") == "img" and a.get("aria-labelledby") for a in attrs)
    assert "@media print" in page and "break-inside: avoid" in page
    assert "fail" in page and "physically impossible" in page  # status in words, not colour only


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize("background", ["#ffffff", "#e8e8e8"])
def test_every_text_colour_has_sufficient_contrast(report_2025: EprReport, background: str) -> None:
    colours = set(re.findall(r"color: (#[0-9a-f]{6})", report_2025.to_html())) - {"#ffffff"}
    colours |= set(re.findall(r'fill="(#[0-9a-f]{6})"', report_2025.to_html()))
    assert colours
    for colour in colours:
        light, dark = sorted((_luminance(colour), _luminance(background)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= MIN_CONTRAST, colour


def test_text_from_the_log_is_escaped() -> None:
    facts = RateFacts(role_of=lambda actor: "<b>maker</b>", resolve=lambda seqs: {})
    facts.add(1, "e1", "commission", "bm-01", "440000", "2025-05-01T09:00:00+08:00",
              {"item": "001PB1A0000001E390000042", "mass_kg": 400.0})  # fmt: skip
    page = epr_report(facts, "bm-01", 2025).to_html()
    assert "<b>maker</b>" not in page and "&lt;b&gt;maker&lt;/b&gt;" in page


def test_a_producer_with_no_packs_gets_an_empty_report(edge: tuple[Tracer, EdgeWorld]) -> None:
    report = epr_report(edge[0], "nobody", 2024)
    assert report.role == "unknown" and report.line("placed", "count").value == 0
    assert report.line("collection_rate", "kg").value is None
