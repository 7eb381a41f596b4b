"""The deployment file is valid for Docker Compose (checked with the docker client where it exists)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _compose() -> list[str]:
    """``docker compose`` (v2 plugin) if present, else the standalone ``docker-compose``."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return [standalone]
    if docker is None:
        pytest.skip("no docker client on this machine")
    pytest.skip("docker is here but neither its compose plugin nor docker-compose is installed")


def test_compose_file_is_valid(tmp_path: Path) -> None:
    compose = _compose()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("db_password", "log.key", "secret_key"):
        (secrets / name).write_text("x\n")
    (tmp_path / "compose.yaml").write_text((ROOT / "compose.yaml").read_text())
    (tmp_path / "Dockerfile").write_text((ROOT / "Dockerfile").read_text())
    result = subprocess.run(
        [*compose, "-f", str(tmp_path / "compose.yaml"), "config", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
