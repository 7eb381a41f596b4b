"""``suyuan code check``: one JSON report per code, exit status 0 only when all are valid."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from typer.testing import CliRunner

from api.commands.code import app
from tests.conftest import ROOT

VALID = "001PB1A0000001H6F0000042"
CASCADE = "001PB1AH6F0000042RM"
AMBIGUOUS = "001PB1A0000001H1V0000042"  # day 'V': 28 (table with U) or 27 (without U)
INVALID = "001PX1A0000001H0F0000000"  # battery type X, month 0, serial 0000000
REQUIRED_KEYS = {
    "code",
    "valid",
    "errors",
    "form",
    "manufacturer",
    "product_type",
    "battery_type",
    "spec",
    "trace_code",
    "production_date",
    "serial",
    "ambiguous",
}

runner = CliRunner()


def reports(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_a_valid_code_prints_its_fields_and_exits_0() -> None:
    result = runner.invoke(app, ["check", VALID])
    assert result.exit_code == 0, result.output
    [report] = reports(result.stdout)
    assert set(report) >= REQUIRED_KEYS
    assert report == report | {
        "code": VALID,
        "valid": True,
        "errors": [],
        "form": "full",
        "manufacturer": "001",
        "product_type": "P",
        "battery_type": "B",
        "spec": "1A",
        "trace_code": "0000001",
        "production_date": "2027-06-15",
        "serial": 42,
        "ambiguous": [],
    }


def test_an_invalid_code_lists_every_error_and_exits_1() -> None:
    result = runner.invoke(app, ["check", INVALID])
    assert result.exit_code == 1
    [report] = reports(result.stdout)
    assert report["valid"] is False
    assert [error["position"] for error in report["errors"]] == [5, 16, 18]
    assert "month 0 does not exist" in report["errors"][1]["reason"]
    assert report["production_date"] is None
    assert report["serial"] is None
    assert report["manufacturer"] == "001"


def test_an_ambiguous_code_is_valid_and_names_the_field() -> None:
    result = runner.invoke(app, ["check", AMBIGUOUS])
    assert result.exit_code == 0
    [report] = reports(result.stdout)
    assert report["ambiguous"] == ["production_date"]
    assert report["production_date"] is None
    assert report["production_dates"] == ["2027-01-27", "2027-01-28"]


def test_a_cascade_code_reports_its_form() -> None:
    result = runner.invoke(app, ["check", CASCADE])
    assert result.exit_code == 0
    [report] = reports(result.stdout)
    assert (report["form"], report["trace_code"], report["cascade_suffix"]) == (
        "cascade",
        None,
        "M",
    )


@pytest.mark.parametrize(
    ("codes", "exit_code", "valid"),
    [
        ([VALID, CASCADE], 0, [True, True]),
        ([VALID, INVALID, CASCADE], 1, [True, False, True]),
        (["short", VALID.lower()], 1, [False, False]),
    ],
)
def test_one_line_per_code_in_order(codes: list[str], exit_code: int, valid: list[bool]) -> None:
    result = runner.invoke(app, ["check", *codes])
    assert result.exit_code == exit_code
    lines = reports(result.stdout)
    assert [line["code"] for line in lines] == codes
    assert [line["valid"] for line in lines] == valid


def test_dash_reads_codes_from_stdin() -> None:
    result = runner.invoke(app, ["check", "-"], input=f"{VALID}\n\n{CASCADE}\r\n{INVALID}\n")
    assert result.exit_code == 1
    assert [line["code"] for line in reports(result.stdout)] == [VALID, CASCADE, INVALID]


def test_stdin_lines_keep_their_spaces() -> None:
    result = runner.invoke(app, ["check", "-"], input=f" {VALID}\n")
    assert result.exit_code == 1
    [report] = reports(result.stdout)
    assert report["code"] == f" {VALID}"


def test_empty_stdin_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check", "-"], input="\n")
    assert result.exit_code == 2
    assert "no codes to check" in result.stderr


def test_no_argument_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2


def test_the_real_command_line_checks_codes() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts/suyuan"), "code", "check", VALID, "-"],
        input=f"{INVALID}\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )
    lines = reports(result.stdout)
    assert [(line["code"], line["valid"]) for line in lines] == [(VALID, True), (INVALID, False)], (
        result.stderr
    )
    assert result.returncode == 1
