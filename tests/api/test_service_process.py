"""The real server and the schema migrations, run as an operator would, from another directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from api.migrate import current_revision, upgrade
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrations_create_the_schema_once_and_keep_the_log_append_only(store_url: str) -> None:
    import sqlalchemy

    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    upgrade(url)
    upgrade(url)  # idempotent
    assert current_revision(url) == "0001"
    from ledger import Log, note, open_store
    from trace.projections import sqlalchemy_url

    Log.create(open_store(url), signer=note.Signer.generate("suyuan-log")).close()
    engine = sqlalchemy.create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            names = set(sqlalchemy.inspect(conn).get_table_names())
            assert {"ledger_entries", "trace_items", "api_keys", "custodial_keys"} <= names
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                conn.execute(sqlalchemy.text("DELETE FROM ledger_nodes"))
    finally:
        engine.dispose()


def test_the_server_starts_from_another_directory_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "SUYUAN_DATABASE_URL": f"sqlite:///{tmp_path / 'srv.db'}",
        "SUYUAN_LOG_KEY_FILE": str(tmp_path / "log.key"),
    }
    admin = subprocess.run(
        [str(ROOT / "scripts" / "suyuan"), "admin", "create-key"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = admin.stdout.strip()
    assert key.startswith("sy_")
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "suyuan"), "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        actors = httpx.get(
            f"http://127.0.0.1:{port}/v1/actors",
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        assert actors.status_code == 200 and actors.json() == {"data": [], "next_cursor": None}
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
