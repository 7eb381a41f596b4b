"""``scripts/demo``: build an embedded log of signed battery events, checkpoint it and verify it offline."""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import sys
import time
from pathlib import Path

from api.settings import DEFAULT_VAR
from ledger import Log, note
from ledger.entry import sign_submission
from ledger.export import export_log, verify_export
from ledger.sqlite_store import SQLiteStore

DEMO_DIR = DEFAULT_VAR / "demo"
ORIGIN = "suyuan.demo/log"
ACTORS = [
    ("catl-ningde", "battery_maker", "350000"),
    ("byd-shenzhen", "automaker", "440000"),
    ("guangzhou-collect-01", "collector", "440000"),
    ("hunan-brunp", "recycler", "430000"),
    ("jiangsu-storage-02", "cascade_operator", "320000"),
]
PACKS = 500


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _build(path: Path, rng: random.Random) -> Log:
    log_signer = note.Signer.generate("suyuan.demo-log")
    key_file = os.open(DEMO_DIR / "log.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(key_file, "w") as f:
        f.write(log_signer.to_string() + "\n")
    log = Log.create(SQLiteStore(path), signer=log_signer, origin=ORIGIN)
    signers = {}
    for name, role, region in ACTORS:
        signer = note.Signer.generate(name)
        log.register_key(signer.verifier.to_string(), owner=f"{name} ({role}, {region})")
        signers[role] = signer
    steps = [
        ("battery_maker", "pack.commission", "commissioning"),
        ("automaker", "pack.install", "installing"),
        ("collector", "pack.collect", "collecting"),
        ("recycler", "pack.recycle", "recycling"),
    ]
    batch = []
    for i in range(PACKS):
        code = f"001PEAB{i:07d}G1C{i + 1:07d}"
        for role, kind, biz_step in steps:
            signer = signers[role]
            body = {"pack": code, "bizStep": biz_step, "mass_kg": 380 + rng.randrange(60)}
            batch.append(sign_submission(kind, body, key_id=signer.key_id, key=signer.private_key))
    started = time.perf_counter()
    log.append(batch)
    elapsed = time.perf_counter() - started
    _say(f"appended {len(batch)} signed events for {PACKS} packs in {elapsed:.2f} s")
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--check", action="store_true", help="build, verify offline and exit")
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo log from scratch")
    args = parser.parse_args(argv)
    path = DEMO_DIR / "ledger.db"
    if args.fresh and DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    if path.exists() and (DEMO_DIR / "log.key").exists():
        signer = note.Signer.from_string((DEMO_DIR / "log.key").read_text().strip())
        log = Log(SQLiteStore(path), signer=signer)
        _say(f"reusing {path} ({len(log)} entries; --fresh rebuilds it)")
    else:
        log = _build(path, random.Random(34014))
    with log:
        signed = log.checkpoint()
        _say("\nsigned checkpoint (C2SP tlog-checkpoint):\n" + signed)
        buf = io.BytesIO()
        signed = export_log(log, buf)
        lines = buf.getvalue().splitlines()
        chunks = [lines[i : i + 4096] for i in range(0, len(lines), 4096)]
        verdict = verify_export(chunks, signed, log.signer.verifier)  # type: ignore[union-attr]
        _say(
            f"offline verification: OK, {verdict.size} entries, root {verdict.root.hex()}\n"
            f"log verifier key: {log.signer.verifier.to_string()}"  # type: ignore[union-attr]
        )
    if not args.check:
        _say(f"\ndatabase: {path}\ntry: scripts/suyuan ledger verify --db sqlite:///{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
