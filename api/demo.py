"""``scripts/demo``: a simulated world of 10,000 packs on the embedded log, then the service.

The first run simulates five years of a fleet (about 70,000 signed events, 20
organisations in six provinces: sales, use, retirement, collection with leakage,
cascade use, dismantling, recycling, smelting, recycled material in new packs)
into ``var/demo/suyuan.db``; later runs reuse it unless ``--fresh``. It then
prints the headline rates and the signed checkpoint, verifies an export of the
log offline, and serves the API and the web pages on 127.0.0.1 with an API key
per role. ``--check`` does everything but serve.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from api.settings import DEFAULT_VAR, Settings
from ledger import note
from ledger.export import export_log, verify_export
from schemas.actors import Role

DEMO_DIR = DEFAULT_VAR / "demo"
ORIGIN = "suyuan.demo/log"
_BAR = 32


def _say(message: str = "") -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class _ProgressBar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_tenth = -1

    def __call__(self, progress: Any) -> None:
        fraction = min(max(float(progress.fraction), 0.0), 1.0)
        elapsed = time.perf_counter() - self.started
        filled = int(fraction * _BAR)
        line = (
            f"[{'#' * filled}{'.' * (_BAR - filled)}] {fraction:6.1%}  "
            f"{progress.events:>7,} events  {progress.simulated:%Y-%m}  {elapsed:5.0f} s"
        )
        if self.tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
        elif int(fraction * 10) != self.last_tenth:
            self.last_tenth = int(fraction * 10)
            sys.stderr.write(line + "\n")

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _build(url: str, signer: note.Signer) -> dict[str, Any]:
    """Simulate the demo world; return what later runs need (keys, a sample pack)."""
    from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate

    tracer = open_simulation_tracer(url, clock=SimClock(), signer=signer, origin=ORIGIN)
    bar = _ProgressBar()
    started = time.perf_counter()
    try:
        truth = simulate(tracer, SimConfig.demo(), progress=bar, worker=True)
        bar.done()
        elapsed = time.perf_counter() - started
        _say(
            f"simulated {truth.events:,} events in {elapsed:.0f} s ({truth.events / elapsed:,.0f}/s)"
        )
        sample = _sample_pack(tracer)
    finally:
        tracer.close()
    return {"sample_pack": sample}


def _sample_pack(tracer: Any) -> str:
    """A pack with a full story: re-coded for cascade use if one exists, else any pack."""
    items = tracer.world.items
    for state in items.values():
        if state.original is not None and state.kind.value == "pack":
            return str(state.id)
    return next(str(s.id) for s in items.values() if s.kind.value == "pack")


def _issue_keys(settings: Settings) -> dict[str, str]:
    """An administrator key and one API key for the first organisation of each role."""
    from api.services import Services

    services = Services.start(settings)
    try:
        keys = {"admin": services.keys.issue(None, label="demo admin").token}
        actors = sorted(services.tracer.world.actors.values(), key=lambda a: a.id)
        for role in Role:
            actor = next((a for a in actors if a.role is role), None)
            if actor is not None:
                keys[f"{role.value} ({actor.id})"] = services.keys.issue(
                    actor.id, label="demo"
                ).token
        if not any(a.role is Role.AUDITOR for a in actors):
            from schemas.actors import Actor

            auditor = Actor(
                id="demo-auditor", name="Demo Auditor", role=Role.AUDITOR, region="110000"
            )
            services.tracer.register_actor(auditor, [])
            keys["auditor (demo-auditor)"] = services.keys.issue(auditor.id, label="demo").token
    finally:
        services.close()
    return keys


def _headline(settings: Settings) -> None:
    from api.runtime import open_tracer
    from trace.rates import compute_rates

    tracer = open_tracer(settings, create=False)
    try:
        year = max(s.last_time.year for s in tracer.world.items.values()) - 1  # last full year
        report = compute_rates(tracer, year=year)
        _say(
            f"headline rates for {year}, all producers (`scripts/suyuan analytics rates` for more):"
        )
        seen: set[tuple[str, str]] = set()
        for rate in report.rates:
            if any(v for k, v in rate.scope.items() if k not in ("period", "element")):
                continue
            element = str(rate.scope.get("element") or "")
            if (rate.name + element, rate.unit) in seen:
                continue
            seen.add((rate.name + element, rate.unit))
            value = "undefined" if rate.value is None else f"{rate.value:.1%}"
            label = f"{rate.name} {element}".strip()
            _say(
                f"  {label:<34} {value:>10}   ({rate.numerator:,.0f} / {rate.denominator:,.0f} {rate.unit})"
            )
            if len(seen) >= 16:
                break
    finally:
        tracer.close()


def _verify_offline(settings: Settings, signer: note.Signer) -> None:
    from api.runtime import open_log

    log = open_log(settings)
    try:
        buf = io.BytesIO()
        signed = export_log(log, buf)
    finally:
        log.close()
    lines = buf.getvalue().splitlines()
    chunks = [lines[i : i + 4096] for i in range(0, len(lines), 4096)]
    verdict = verify_export(chunks, signed, signer.verifier)
    _say("\nsigned checkpoint (C2SP tlog-checkpoint):\n" + signed)
    _say(
        f"offline verification of the export: OK, {verdict.size:,} entries, root {verdict.root.hex()}\n"
        f"log verifier key: {signer.verifier.to_string()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--check", action="store_true", help="build, verify offline and exit")
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo world")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.fresh and DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    db = DEMO_DIR / "suyuan.db"
    key_file = DEMO_DIR / "log.key"
    state_file = DEMO_DIR / "demo.json"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        log_key_file=key_file,
        log_origin=ORIGIN,
        base_url=f"http://127.0.0.1:{args.port}",
    )
    if state_file.exists() and db.exists() and key_file.exists():
        state = json.loads(state_file.read_text())
        signer = note.Signer.from_string(key_file.read_text().strip())
        _say(f"reusing the demo world in {DEMO_DIR} (--fresh rebuilds it)")
    else:
        for leftover in DEMO_DIR.iterdir():
            leftover.unlink()
        signer = note.Signer.generate("suyuan.demo-log")
        _write_private(key_file, signer.to_string() + "\n")
        _say("simulating a fleet of 10,000 packs over five years (first run only) ...")
        state = _build(f"sqlite:///{db}", signer)
        state["keys"] = _issue_keys(settings)
        _write_private(state_file, json.dumps(state, indent=2))
    _headline(settings)
    _verify_offline(settings, signer)
    if args.check:
        return 0
    base = settings.base_url
    _say(f"\nserving on {base}  (Ctrl-C stops)")
    _say(f"  scanner            {base}/scan")
    _say(f"  a pack's passport  {base}/p/{state['sample_pack']}")
    _say(f"  auditor dashboard  {base}/dashboard")
    _say(f"  recycler work page {base}/work")
    _say(f"  API documentation  {base}/docs")
    _say("API keys for the demo (also in var/demo/demo.json):")
    for who, token in state["keys"].items():
        _say(f"  {who:<40} {token}")
    _serve(settings, args.port)
    return 0


def _serve(settings: Settings, port: int) -> None:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, access_log=False)


if __name__ == "__main__":
    raise SystemExit(main())
