"""`scripts/suyuan ledger`: the commands an operator and an auditor run, with their failure modes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.commands.ledger import app
from api.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SUYUAN_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'ledger.db'}")
    monkeypatch.setenv("SUYUAN_LOG_KEY_FILE", str(tmp_path / "var" / "log.key"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _verifier_key() -> str:
    return run("init").split("verifier key: ")[1].strip()


def _signed_lines(tmp_path: Path, n: int) -> Path:
    key_file = tmp_path / "r1.key"
    verifier = run("keys", "generate", "recycler-1", "--out", str(key_file)).strip()
    run("keys", "add", verifier, "--owner", "recycler-1")
    lines = [
        run(
            "sign",
            "pack.collect",
            json.dumps({"pack": f"P{i}", "mass_kg": i}),
            "--key",
            str(key_file),
        )
        for i in range(n)
    ]
    path = tmp_path / "subs.ndjson"
    path.write_text("".join(lines))
    return path


def test_init_append_export_and_verify_offline(tmp_path: Path) -> None:
    key = _verifier_key()
    subs = _signed_lines(tmp_path, 5)
    assert "appended 5 entries: 2..6" in run("append", str(subs))
    run("export", "--out", str(tmp_path / "out" / "entries.ndjson"))
    out = run("verify", str(tmp_path / "out" / "entries.ndjson"), "--key", key, "--workers", "1")
    assert out.startswith("OK: 7 entries of suyuan.local/log")
    assert run("verify").startswith("OK: 7 entries")


def test_bundle_verifies_and_a_wrong_key_fails(tmp_path: Path) -> None:
    key = _verifier_key()
    run("append", str(_signed_lines(tmp_path, 3)))
    run("prove", "bundle", "3", "--out", str(tmp_path / "p.tlog-proof"))
    assert "OK: entry 3 (pack.collect)" in run(
        "verify-bundle", str(tmp_path / "p.tlog-proof"), "--key", key
    )
    other = run("keys", "generate", "other", "--out", str(tmp_path / "o.key")).strip()
    result = runner.invoke(app, ["verify-bundle", str(tmp_path / "p.tlog-proof"), "--key", other])
    assert result.exit_code == 1
    assert "FAILED" in result.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"kind":"x","body":{"a":1.0},"key_id":"k","sig":"AAAA"}', "not in RFC 8785 form"),
        ('{"kind":"x","body":{"a":1,"a":2},"key_id":"k","sig":"AAAA"}', "duplicate object key"),
        ('{"kind":"x","body":{}', "malformed JSON"),
        ('{"kind":"x","body":{},"key_id":"k"}', "missing ['sig']"),
        ('{"kind":"x","body":{},"key_id":"k","sig":"!!"}', "base64"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_appended(
    tmp_path: Path, line: str, message: str
) -> None:
    _verifier_key()
    subs = _signed_lines(tmp_path, 2)
    subs.write_text(subs.read_text() + line + "\n")
    result = runner.invoke(app, ["append", str(subs)])
    assert result.exit_code == 1
    assert "line 3" in result.output and message in result.output
    assert run("verify").startswith("OK: 2 entries")


def test_unknown_signer_refuses_the_whole_file(tmp_path: Path) -> None:
    _verifier_key()
    subs = _signed_lines(tmp_path, 2)
    run("keys", "generate", "stranger", "--out", str(tmp_path / "s.key"))
    stranger = run("sign", "pack.collect", "{}", "--key", str(tmp_path / "s.key"))
    subs.write_text(subs.read_text() + stranger)
    result = runner.invoke(app, ["append", str(subs)])
    assert result.exit_code == 1
    assert "not registered" in result.output
    assert run("verify").startswith("OK: 2 entries")


def test_proofs_out_of_range_are_clear_errors(tmp_path: Path) -> None:
    _verifier_key()
    result = runner.invoke(app, ["prove", "inclusion", "5"])
    assert result.exit_code == 1
    assert "not in a tree of size 1" in result.output


def test_commands_on_a_missing_log_say_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "run `suyuan ledger init` first" in result.output


def test_revoked_key_cannot_append(tmp_path: Path) -> None:
    _verifier_key()
    subs = _signed_lines(tmp_path, 1)
    key_id = next(
        line.split("\t")[0] for line in run("keys", "list").splitlines() if "recycler" in line
    )
    run("keys", "revoke", key_id, "--reason", "retired")
    result = runner.invoke(app, ["append", str(subs)])
    assert result.exit_code == 1
    assert "revoked" in result.output


def test_a_stale_expected_previous_hash_refuses_the_file(tmp_path: Path) -> None:
    import base64

    from ledger.entry import Entry

    _verifier_key()
    subs = _signed_lines(tmp_path, 2)
    stale = base64.b64encode(bytes(32)).decode()
    result = runner.invoke(app, ["append", str(subs), "--expect-prev", stale])
    assert result.exit_code == 1
    assert "the log moved" in result.output
    export = tmp_path / "e.ndjson"
    run("export", "--out", str(export))
    last = Entry.parse(export.read_bytes().splitlines()[-1])
    fresh = base64.b64encode(last.leaf_hash).decode()
    assert "appended 2 entries" in run("append", str(subs), "--expect-prev", fresh)
