"""`scripts/suyuan actors | items | events`: the domain from the command line, with its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.settings import get_settings

runner = CliRunner()
CODE = "001PEAB0000001G1C0000001"


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SUYUAN_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'suyuan.db'}")
    monkeypatch.setenv("SUYUAN_LOG_KEY_FILE", str(tmp_path / "var" / "log.key"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _actor(tmp_path: Path, actor_id: str, role: str, region: str) -> Path:
    key = tmp_path / f"{actor_id}.key"
    verifier = run("ledger", "keys", "generate", actor_id, "--out", str(key)).strip()
    run(
        "actors",
        "register",
        actor_id,
        "--name",
        actor_id.upper(),
        "--role",
        role,
        "--region",
        region,
        "--key",
        verifier,
    )
    return key


def test_register_items_hand_over_and_verify_the_history_offline(tmp_path: Path) -> None:
    log_key = run("ledger", "init").split("verifier key: ")[1].strip()
    catl = _actor(tmp_path, "catl", "battery_maker", "350000")
    byd = _actor(tmp_path, "byd", "automaker", "440000")
    assert "catl\tbattery_maker\t350000" in run("actors", "list")
    assert "registered 1 items" in run(
        "items",
        "register",
        CODE,
        "--actor",
        "catl",
        "--key",
        str(catl),
        "--mass-kg",
        "410",
        "--when",
        "2026-03-01T08:00:00+0800",
    )
    handover = tmp_path / "handover.json"
    handover.write_text(json.dumps({
        "actor": "catl", "event_time": "2026-03-02T10:00:00+08:00", "region": "350000",
        "idempotency_key": "ship-1", "data": {"type": "handover", "items": [CODE], "to": "byd"},
    }))  # fmt: skip
    offer_id = run("events", "submit", str(handover), "--key", str(catl)).split()[0]
    accept = tmp_path / "accept.json"
    accept.write_text(json.dumps({
        "actor": "byd", "event_time": "2026-03-03T10:00:00+08:00", "region": "440000",
        "idempotency_key": "recv-1", "data": {"type": "accept", "handover": offer_id, "items": [CODE]},
    }))  # fmt: skip
    run("events", "submit", str(accept), "--key", str(byd))
    assert "already recorded" in run("events", "submit", str(accept), "--key", str(byd))
    shown = run("items", "show", CODE)
    assert "custodian byd" in shown and "accept" in shown
    run("items", "prove", CODE, "--out", str(tmp_path / "proof"))
    assert "OK: 3 events" in run(
        "items", "verify", CODE, str(tmp_path / "proof"), "--log-key", log_key
    )
    run("events", "export-epcis", "--out", str(tmp_path / "doc.jsonld"))
    doc = json.loads((tmp_path / "doc.jsonld").read_text())
    assert len(doc["epcisBody"]["eventList"]) == 3
    assert doc["epcisBody"]["eventList"][1]["eventID"] == offer_id


def test_refusals_are_clear_and_append_nothing(tmp_path: Path) -> None:
    run("ledger", "init")
    catl = _actor(tmp_path, "catl", "battery_maker", "350000")
    out = run(
        "items",
        "register",
        "001PEAB0000001G1C000000",
        "--actor",
        "catl",
        "--key",
        str(catl),
        code=1,
    )
    assert "code 1" in out and "a full code has 24 characters" in out
    out = run(
        "actors",
        "register",
        "x1",
        "--name",
        "X",
        "--role",
        "recycler",
        "--region",
        "999999",
        code=1,
    )
    assert "GB/T 2260" in out
    run(
        "items",
        "register",
        CODE,
        "--actor",
        "catl",
        "--key",
        str(catl),
        "--when",
        "2026-03-01T08:00:00+0800",
    )
    retire = tmp_path / "retire.json"
    retire.write_text(json.dumps({
        "actor": "catl", "event_time": "2026-03-02T10:00:00+08:00", "region": "350000",
        "idempotency_key": "r-1", "data": {"type": "install", "item": CODE, "vin": "LGXCE4CB5N0000001"},
    }))  # fmt: skip
    out = run("events", "submit", str(retire), "--key", str(catl), code=1)
    assert "[role]" in out
    assert "OK: " in run("ledger", "verify")
    size = run("ledger", "verify").split()[1]
    assert size == "4"  # genesis, actor, its key, the commission; nothing of the refused event


def test_importing_an_exported_document_into_another_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("ledger", "init")
    catl = _actor(tmp_path, "catl", "battery_maker", "350000")
    run("items", "register", CODE, "--actor", "catl", "--key", str(catl))
    run("events", "export-epcis", "--out", str(tmp_path / "doc.jsonld"))
    monkeypatch.setenv("SUYUAN_DATABASE_URL", f"sqlite:///{tmp_path / 'other' / 'suyuan.db'}")
    monkeypatch.setenv("SUYUAN_LOG_KEY_FILE", str(tmp_path / "other" / "log.key"))
    get_settings.cache_clear()
    run("ledger", "init")
    verifier = run("ledger", "keys", "generate", "catl2", "--out", str(tmp_path / "c2.key")).strip()
    del verifier
    verifier = (tmp_path / "catl.key").read_text()  # the same organisation, the same key
    from ledger import note

    public = note.Signer.from_string(verifier.strip()).verifier.to_string()
    run(
        "actors",
        "register",
        "catl",
        "--name",
        "CATL",
        "--role",
        "battery_maker",
        "--region",
        "350000",
        "--key",
        public,
    )
    assert "recorded 1 events; refused 0" in run(
        "events", "import-epcis", str(tmp_path / "doc.jsonld"), "--key", str(catl)
    )
    assert "in_stock" in run("items", "show", CODE)
