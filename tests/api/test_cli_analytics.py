"""`scripts/suyuan analytics`: rates, flows, lineage, anomalies and EPR reports on a simulated log."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.commands.analytics import app
from api.runtime import write_secret
from api.settings import get_settings
from ledger import note
from trace.simulate import GroundTruth, SimClock, SimConfig, open_simulation_tracer, simulate

runner = CliRunner()
ORIGIN = "suyuan.local/log"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    """A small simulated log whose key file the command line can open it with."""
    var = tmp_path_factory.mktemp("var")
    signer = note.Signer.generate("suyuan.local-log")
    write_secret(var / "log.key", signer.to_string())
    tracer = open_simulation_tracer(
        str(var / "ledger.db"), clock=SimClock(), signer=signer, origin=ORIGIN
    )
    try:
        truth = simulate(tracer, SimConfig.small(total_packs=40, last_year=2024, seed=7))
    finally:
        tracer.close()
    return var, truth


@pytest.fixture(autouse=True)
def settings(
    simulated: tuple[Path, GroundTruth], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    var, _ = simulated
    monkeypatch.setenv("SUYUAN_DATABASE_URL", f"sqlite:///{var / 'ledger.db'}")
    monkeypatch.setenv("SUYUAN_LOG_KEY_FILE", str(var / "log.key"))
    monkeypatch.setenv("SUYUAN_LOG_ORIGIN", ORIGIN)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_rates_as_json_carry_their_evidence(simulated: tuple[Path, GroundTruth]) -> None:
    _, truth = simulated
    data = json.loads(run("rates", "--year", "2024", "--json", "--evidence", "5"))
    assert data["query"]["periods"] == ["2024"]
    placed = [
        t for t in data["totals"]
        if t["name"] == "placed" and t["unit"] == "count" and t["scope"]["producer"] == "bm-01"
    ]  # fmt: skip
    assert placed[0]["amount"] == truth.producers["bm-01"][2024].placed_packs
    rate = next(r for r in data["rates"] if r["name"] == "collection_rate" and r["unit"] == "kg")
    assert len(rate["evidence"]["items"]) <= 5
    assert rate["evidence"]["total_items"] >= len(rate["evidence"]["items"])


def test_rates_as_text_with_filters() -> None:
    out = run("rates", "--year", "2024", "--producer", "bm-01", "--region", "440000")
    assert "collection_rate" in out and "producer=bm-01" in out and "region=440000" in out
    assert "recycling_efficiency" not in out  # not a producer's rate
    ranged = run("rates", "--from", "2024-01-01", "--to", "2024-06-30")
    assert "period=2024-01-01..2024-06-30" in ranged and "collection_rate " not in ranged


def _log_size(var: Path) -> int:
    """How many log entries the simulated log's tables hold."""
    with sqlite3.connect(var / "ledger.db") as db:
        (size,) = db.execute("SELECT seq FROM trace_projection_state").fetchone()
    return int(size)


def _collected(data: dict[str, object]) -> float:
    """Packs collected nationally over every period of a rates report."""
    return sum(
        t["amount"] for t in data["totals"]  # type: ignore[attr-defined]
        if t["name"] == "collected" and t["unit"] == "count" and t["scope"]["producer"] is None
    )  # fmt: skip


def test_rates_as_the_log_stood_at_a_checkpoint(simulated: tuple[Path, GroundTruth]) -> None:
    var, _ = simulated
    with sqlite3.connect(var / "ledger.db") as db:
        (first,) = db.execute("SELECT min(seq) FROM trace_events WHERE type = 'collect'").fetchone()
    size = _log_size(var)
    before = json.loads(run("rates", "--json", "--tree-size", str(first)))
    after = json.loads(run("rates", "--json", "--tree-size", str(first + 1)))
    whole = json.loads(run("rates", "--json"))
    assert (before["tree_size"], after["tree_size"], whole["tree_size"]) == (first, first + 1, size)
    # The cut falls exactly at the first collection: none before it, one with it.
    assert (_collected(before), _collected(after)) == (0, 1)
    assert _collected(whole) > 1
    assert json.loads(run("rates", "--json", "--tree-size", str(size)))["rates"] == whole["rates"]


def test_rates_at_a_checkpoint_the_log_has_not_reached(
    simulated: tuple[Path, GroundTruth],
) -> None:
    size = _log_size(simulated[0])
    result = runner.invoke(app, ["rates", "--tree-size", str(size + 1)])
    assert result.exit_code == 1
    assert f"the log holds {size} entries: no checkpoint of size {size + 1} yet" in result.output
    assert runner.invoke(app, ["rates", "--tree-size", "-1"]).exit_code == 2  # a usage error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rates", "--from", "2024-01-01"), "needs --from and --to"),
        (("rates", "--from", "2024-06-01", "--to", "2024-01-01"), "ends after it starts"),
        (("rates", "--chemistry", "NCM955"), "unknown chemistry"),
        (("lineage", "001PB1A0000001E390000042"), "is not in the lifecycle graph"),
    ],
)
def test_bad_requests_fail_with_a_message(args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1
    assert message in result.output


def test_report_in_each_format(tmp_path: Path, simulated: tuple[Path, GroundTruth]) -> None:
    _, truth = simulated
    assert "wrote html" in run("report", "am-01", "2024", "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http" not in page
    data = json.loads(run("report", "am-01", "2024", "--format", "json"))
    placed = next(x for x in data["lines"] if x["figure"] == "placed" and x["unit"] == "count")
    assert placed["value"] == truth.producers["am-01"][2024].placed_packs
    rows = list(csv.DictReader(io.StringIO(run("report", "am-01", "2024", "--format", "csv"))))
    assert len(rows) == len(data["lines"]) and rows[0]["figure"] == "placed"


def test_flows_lineage_and_anomalies(simulated: tuple[Path, GroundTruth]) -> None:
    flows = json.loads(run("flows", "--measure", "packs"))
    assert "production" in [n["name"] for n in flows["nodes"]] and flows["links"]
    by_role = json.loads(run("flows", "--by", "role", "--from", "2021-01-01", "--to", "2025-01-01"))
    assert by_role["links"]
    found = json.loads(run("anomalies", "--json", "--now", "2025-01-01T00:00:00+08:00"))
    assert isinstance(found, list)
    assert run("anomalies", "--now", "2025-01-01").rstrip().endswith("anomalies")
    data = json.loads(run("rates", "--year", "2024", "--json", "--evidence", "1"))
    recycled = next(t for t in data["totals"] if t["name"] == "recycled" and t["evidence"]["items"])
    code = recycled["evidence"]["items"][0]
    lineage = json.loads(run("lineage", code))
    assert lineage["item"] == code and lineage["custody"] and lineage["downstream"]
    assert json.loads(run("lineage", code, "--direction", "up"))["upstream"] is not None
