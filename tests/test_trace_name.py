"""suyuan's `trace` package must win over the standard library's module everywhere it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trace
from tests.conftest import ROOT


def test_pytest_imports_the_projects_trace() -> None:
    assert Path(trace.__file__).resolve() == ROOT / "trace" / "__init__.py"


def test_cli_from_another_directory_imports_the_projects_trace(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "suyuan"), "where"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    paths = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert Path(paths["trace"]).resolve() == ROOT / "trace" / "__init__.py"
    assert Path(paths["ledger"]).resolve() == ROOT / "ledger" / "__init__.py"


def test_without_the_checkout_on_the_path_the_api_refuses_to_start(tmp_path: Path) -> None:
    # Simulates an installed copy: the standard library's `trace` is found first.
    code = (
        f"import sys; sys.path.remove(''); import trace; sys.path.append({str(ROOT)!r}); import api"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "shadows suyuan's `trace` package" in result.stderr
