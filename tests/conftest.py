"""Shared fixtures: fixed test vectors and a private PostgreSQL schema per test run."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
CONFORMANCE = ASSETS / "conformance"
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def load_vector(relative: str) -> Any:
    """Load a published test-vector file from ``tests/assets/conformance``."""
    return json.loads((CONFORMANCE / relative).read_text(encoding="utf-8"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_url() -> str:
    return os.environ.get("SUYUAN_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The test server's URL; skips (or, under CI, fails) when PostgreSQL cannot be reached."""
    import psycopg

    url = _postgres_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if in_ci():
            pytest.fail(f"CI=true and PostgreSQL at {url} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable ({exc}); set SUYUAN_TEST_DATABASE_URL")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own, dropped afterwards."""
    import psycopg

    schema = f"suyuan_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_server_url else "?"
    try:
        yield f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each database suyuan runs on: SQLite always, PostgreSQL when reachable (always under CI)."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database of the backend's kind: a SQLite path, or a PostgreSQL URL with its own schema."""
    if backend == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("postgres_url"))
