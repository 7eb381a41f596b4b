"""``suyuan serve`` takes its connection settings from the environment."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from api.settings import Settings
from tests.api.load_client import LOOPBACK, RATE_LIMIT, ServerProcess, seed, server_env

pytestmark = pytest.mark.slow

KEEP_ALIVE_S = 8
IDLE_S = 6.0  # past uvicorn's own 5 s, within the configured keep-alive

HEALTH = f"GET /healthz HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode()


def _response(conn: socket.socket) -> bytes:
    """One whole response to ``/healthz`` (small: its headers and a short JSON body)."""
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = conn.recv(4096)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    return data


def test_an_idle_connection_stays_open_as_long_as_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'suyuan.db'}"
    settings = Settings(
        database_url=url, log_key_file=tmp_path / "log.key", rate_limit_per_minute=RATE_LIMIT
    )
    seed(settings, [])
    env = {**server_env(url, settings.log_key_file), "SUYUAN_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_S)}
    with ServerProcess(env, tmp_path, workers=1) as server:
        server.start()
        with socket.create_connection((LOOPBACK, server.port), timeout=30) as conn:
            conn.sendall(HEALTH)
            assert _response(conn).startswith(b"HTTP/1.1 200")
            time.sleep(IDLE_S)  # uvicorn's default would have closed it by now
            conn.sendall(HEALTH)
            assert _response(conn).startswith(b"HTTP/1.1 200")
