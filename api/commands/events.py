"""``scripts/suyuan events ...`` and ``items ...``: submit signed events, register items, read history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from api.commands.common import fail, tracer
from ledger import LedgerError, note
from ledger.entry import parse_submission
from schemas.epcis_io import export_document, import_document
from schemas.events import EVENT_KIND_PREFIX
from trace.engine import parse_event
from trace.errors import TraceError
from trace.history import verify_history

app = typer.Typer(no_args_is_help=True, help="Signed lifecycle events.")
items_app = typer.Typer(no_args_is_help=True, help="Packs, modules, cells and lots.")

KeyOption = Annotated[Path, typer.Option("--key", help="the actor's signer key file")]


def _signer(path: Path) -> note.Signer:
    try:
        return note.Signer.from_string(path.read_text().strip())
    except (OSError, LedgerError) as exc:
        raise fail(f"cannot read the key {path}: {exc}") from exc


def _with_prev(t: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Fill ``prev`` with each touched item's current head when the file leaves it out."""
    if "prev" in body:
        return body
    from pydantic import TypeAdapter

    from schemas.events import EventData

    data = TypeAdapter(EventData).validate_python(body.get("data"))
    prev = {}
    for item in data.items():
        state = t.world.item(item)
        prev[item] = None if state is None else state.head
    return {**body, "prev": prev}


@app.command("submit")
def submit(
    source: Annotated[
        Path,
        typer.Argument(help="a JSON event (signed with --key) or NDJSON of signed submissions"),
    ],
    key: Annotated[
        Path | None, typer.Option("--key", help="sign unsigned events with this key")
    ] = None,
) -> None:
    """Check and record events: all of the file, or nothing."""
    text = source.read_text()
    with tracer() as t:
        try:
            if key is None:
                submissions = [parse_submission(line) for line in text.splitlines() if line.strip()]
            else:
                signer = _signer(key)
                body = json.loads(text)
                prior = None
                if isinstance(body, dict) and "prev" not in body:
                    # A retried file: its prev would now be filled differently; the key decides.
                    prior = t.receipt(str(body.get("actor")), str(body.get("idempotency_key")))
                if prior is not None:
                    typer.echo(f"{prior.event_id} at entry {prior.seq} (already recorded)")
                    return
                body = _with_prev(t, body)
                event = parse_event(body)
                submissions = [t.sign(event, key_id=signer.key_id, key=signer.private_key)]
        except (ValueError, LedgerError, TraceError) as exc:
            raise fail(str(exc)) from exc
        for receipt in t.submit(submissions):
            late = (
                ""
                if not receipt.late_working_days
                else f" (late by {receipt.late_working_days} working days)"
            )
            again = " (already recorded)" if receipt.replayed else ""
            typer.echo(f"{receipt.event_id} at entry {receipt.seq}{late}{again}")


@items_app.command("register")
def register(
    codes: list[str],
    actor: Annotated[str, typer.Option(help="the producing organisation")],
    key: KeyOption,
    mass_kg: Annotated[float | None, typer.Option()] = None,
    when: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"], help="production time (default: now)"),
    ] = None,
) -> None:
    """Commission packs, modules or cells by their GB/T 34014 codes (all or none)."""
    signer = _signer(key)
    moment = when or datetime.now(UTC)
    with tracer() as t:
        producer = t.world.actor(actor)
        if producer is None:
            raise fail(f"actor {actor!r} is not registered")
        submissions = []
        for i, code in enumerate(codes):
            data: dict[str, Any] = {"type": "commission", "item": code}
            if mass_kg is not None:
                data["mass_kg"] = mass_kg
            body = {
                "actor": actor,
                "event_time": moment.isoformat(),
                "region": producer.region,
                "idempotency_key": f"commission-{code}",
                "prev": {code: None},
                "data": data,
            }
            try:
                event = parse_event(body)
            except TraceError as exc:
                raise fail(f"code {i + 1} ({code}): {exc}") from exc
            submissions.append(t.sign(event, key_id=signer.key_id, key=signer.private_key))
        receipts = t.submit(submissions)
        typer.echo(f"registered {len(receipts)} items")


@items_app.command("show")
def show(item: str) -> None:
    """An item's current state and its history, oldest first."""
    with tracer() as t:
        state = t.world.item(item)
        if state is None:
            raise fail(f"{item} is not known")
        typer.echo(
            f"{state.id}: {state.kind} {state.status} ({state.eu_status}); custodian {state.custodian}, "
            f"owner {state.owner}, region {state.region}"
        )
        for entry in t.history(item):
            e = parse_event(entry.body)
            typer.echo(f"  {entry.seq:>8}  {e.event_time.isoformat()}  {e.type:<12} by {e.actor}")


@items_app.command("prove")
def prove(
    item: str,
    out: Annotated[Path, typer.Option(help="directory for history.ndjson and head.tlog-proof")],
) -> None:
    """Write an item's history and a proof of its newest event, for offline checking."""
    with tracer() as t:
        entries, bundle = t.history_proof(item)
        out.mkdir(parents=True, exist_ok=True)
        (out / "history.ndjson").write_bytes(b"".join(e.raw + b"\n" for e in entries))
        (out / "head.tlog-proof").write_text(bundle)
        typer.echo(f"wrote {len(entries)} events and the head's proof to {out}")


@items_app.command("verify")
def verify(
    item: str,
    directory: Path,
    log_key: Annotated[list[str], typer.Option("--log-key", help="the log's verifier key")],
) -> None:
    """Check offline that a history is complete and ordered up to its proven head."""
    try:
        raws = (directory / "history.ndjson").read_bytes().splitlines()
        verified = verify_history(item, raws, (directory / "head.tlog-proof").read_text(), log_key)
    except (OSError, LedgerError, TraceError, ValueError) as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"OK: {len(verified.events)} events of {item}, complete up to log size {verified.checkpoint_size}"
    )


@app.command("export-epcis")
def export_epcis(
    out: Annotated[Path, typer.Option(help="the EPCIS 2.0 JSON-LD document to write")],
    item: Annotated[str | None, typer.Option(help="only this item's history")] = None,
) -> None:
    """Export events as an EPCIS 2.0 document (each event carrying its CBV 2.0 hash as eventID)."""
    with tracer() as t:
        t.catch_up()
        if item is not None:
            entries = t.history(item)
        else:
            entries = [
                e
                for lo in range(0, len(t.log), 4096)
                for e in t.log.entries(lo, min(len(t.log), lo + 4096))
                if e.kind.startswith(EVENT_KIND_PREFIX)
            ]
        events = [parse_event(e.body) for e in entries]
    document = export_document(events, creation_date=datetime.now(UTC))
    out.write_text(json.dumps(document, ensure_ascii=False, indent=2))
    typer.echo(f"wrote {len(events)} events to {out}")


@app.command("import-epcis")
def import_epcis(
    document: Path,
    key: KeyOption,
    actor: Annotated[str | None, typer.Option(help="actor of events that name none")] = None,
) -> None:
    """Map an EPCIS 2.0 document's events, sign them with --key and record them (all or none)."""
    signer = _signer(key)
    try:
        doc = json.loads(document.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {document}: {exc}") from exc
    with tracer() as t:
        owner = next((k.owner for k in t.log.key_records() if k.key_id == signer.key_id), None)
        if owner is None:
            raise fail(f"key {signer.key_id} is not registered")
        actor_state = t.world.actor(actor or owner)
        region = actor_state.region if actor_state is not None else None

        def prev_for(item: str) -> str | None:
            state = t.world.item(item)
            return None if state is None else state.head

        try:
            report = import_document(doc, prev_for=prev_for, actor=actor or owner, region=region)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        for refused in report.refused:
            typer.echo(f"refused event {refused.index}: {refused.reason}", err=True)
        foreign = [e for e in report.events if e.actor != owner]
        if foreign:
            raise fail(f"{len(foreign)} events name another actor than the key's owner {owner!r}")
        submissions = [
            t.sign(e, key_id=signer.key_id, key=signer.private_key) for e in report.events
        ]
        receipts = t.submit(submissions) if submissions else []
        typer.echo(f"recorded {len(receipts)} events; refused {len(report.refused)}")
        if report.refused:
            raise typer.Exit(1)
