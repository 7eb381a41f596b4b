"""``scripts/suyuan ledger ...``: create, append to, prove, export and verify the log."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from api.runtime import write_secret
from api.settings import get_settings
from ledger import LedgerError, Log, note, open_store
from ledger.bundle import verify_bundle
from ledger.entry import parse_submission, sign_submission
from ledger.export import export_log, read_chunks, verify_export
from ledger.keys import KeyRole

app = typer.Typer(no_args_is_help=True, help="The tamper-evident log.")
keys_app = typer.Typer(no_args_is_help=True, help="Keys that may sign entries and checkpoints.")
prove_app = typer.Typer(no_args_is_help=True, help="Inclusion and consistency proofs.")
app.add_typer(keys_app, name="keys")
app.add_typer(prove_app, name="prove")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="sqlite:///PATH or postgresql:// URL [SUYUAN_DATABASE_URL]"),
]
KeyFileOption = Annotated[
    Path | None, typer.Option("--log-key", help="the log's signer key file [SUYUAN_LOG_KEY_FILE]")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_log_signer(key_file: Path | None, *, create: bool = False) -> note.Signer | None:
    """The log's signer from its key file; created (mode 0600) when ``create`` and missing."""
    path = key_file or get_settings().log_key_file
    if not path.exists():
        if not create:
            return None
        signer = note.Signer.generate(get_settings().log_origin.replace("/", "-"))
        write_secret(path, signer.to_string())
        return signer
    return note.Signer.from_string(path.read_text().strip())


@contextmanager
def open_log(db: str | None, key_file: Path | None, *, create: bool = False) -> Iterator[Log]:
    """Open the configured log; ledger errors become a clear message and exit status 1."""
    url = db or get_settings().database_url
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not create and not path.exists():
            raise _fail(f"no log at {url}: run `suyuan ledger init` first")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        signer = load_log_signer(key_file, create=create)
        store = open_store(url)
        if create:
            if signer is None:
                raise _fail("no log key")
            log = Log.create(store, signer=signer, origin=get_settings().log_origin)
        else:
            log = Log(store, signer=signer)
            try:
                size = store.head().size
            except Exception:  # no tables: sqlite3 and psycopg raise their own errors
                size = 0
            if size == 0:
                store.close()
                raise _fail(f"no log at {url}: run `suyuan ledger init` first")
    except LedgerError as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:
        if isinstance(exc, typer.Exit):
            raise
        raise _fail(f"cannot open {url}: {exc}") from exc
    try:
        yield log
    except LedgerError as exc:
        raise _fail(str(exc)) from exc
    finally:
        log.close()


@app.command()
def init(db: DbOption = None, log_key: KeyFileOption = None) -> None:
    """Create the log (and its key, if the key file does not exist yet)."""
    with open_log(db, log_key, create=True) as log:
        typer.echo(f"log {log.origin}: {len(log)} entries; log key {log.signer.key_id}")  # type: ignore[union-attr]
        typer.echo(f"verifier key: {log.signer.verifier.to_string()}")  # type: ignore[union-attr]


@app.command()
def append(
    source: Annotated[
        Path, typer.Argument(help="NDJSON of {kind, body, key_id, sig}; - for stdin")
    ],
    db: DbOption = None,
    log_key: KeyFileOption = None,
    expect_prev: Annotated[
        str | None,
        typer.Option(help="base64 leaf hash of the entry this file must follow (refuses if stale)"),
    ] = None,
) -> None:
    """Append signed submissions in one transaction: all of the file, or nothing on any error."""
    lines = (
        sys.stdin.buffer.read().splitlines()
        if str(source) == "-"
        else source.read_bytes().splitlines()
    )
    submissions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            submissions.append(parse_submission(line))
        except LedgerError as exc:
            raise _fail(f"line {number}: {exc}") from exc
    prev = None
    if expect_prev is not None:
        try:
            prev = base64.b64decode(expect_prev, validate=True)
        except ValueError as exc:
            raise _fail(f"--expect-prev is not base64: {exc}", 2) from exc
    with open_log(db, log_key) as log:
        first = len(log)
        log.append(submissions, expect_prev=prev)
        typer.echo(f"appended {len(submissions)} entries: {first}..{len(log) - 1}")


@app.command()
def sign(
    kind: Annotated[str, typer.Argument(help="entry kind, e.g. pack.commission")],
    body: Annotated[str, typer.Argument(help="the body as a JSON object")],
    key: Annotated[Path, typer.Option("--key", help="signer key file (C2SP PRIVATE+KEY+...)")],
) -> None:
    """Print one signed submission line for `ledger append`."""
    try:
        signer = note.Signer.from_string(key.read_text().strip())
        submission = sign_submission(
            kind, json.loads(body), key_id=signer.key_id, key=signer.private_key
        )
    except (LedgerError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(submission.to_json(), ensure_ascii=False, separators=(",", ":")))


@app.command()
def checkpoint(db: DbOption = None, log_key: KeyFileOption = None) -> None:
    """Sign and print a checkpoint of the current head."""
    with open_log(db, log_key) as log:
        if log.signer is None:
            raise _fail("the log key is needed to sign a checkpoint")
        typer.echo(log.checkpoint(), nl=False)


@prove_app.command("inclusion")
def prove_inclusion(
    seq: int, db: DbOption = None, log_key: KeyFileOption = None, size: int | None = None
) -> None:
    """Print the audit path of entry SEQ (base64, one hash per line)."""
    with open_log(db, log_key) as log:
        for h in log.inclusion_proof(seq, size):
            typer.echo(base64.b64encode(h).decode())


@prove_app.command("consistency")
def prove_consistency(
    old_size: int, db: DbOption = None, log_key: KeyFileOption = None, new_size: int | None = None
) -> None:
    """Print the consistency proof from OLD_SIZE to the current (or given) size."""
    with open_log(db, log_key) as log:
        for h in log.consistency_proof(old_size, new_size):
            typer.echo(base64.b64encode(h).decode())


@prove_app.command("bundle")
def prove_bundle(
    seq: int,
    db: DbOption = None,
    log_key: KeyFileOption = None,
    out: Annotated[Path | None, typer.Option(help="write the .tlog-proof here")] = None,
) -> None:
    """Write a self-contained C2SP tlog-proof for entry SEQ (entry, path, cosigned checkpoint)."""
    with open_log(db, log_key) as log:
        text = log.proof_bundle(seq)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


@app.command()
def export(
    out: Annotated[
        Path, typer.Option(help="NDJSON file to write; the checkpoint goes to OUT.checkpoint")
    ],
    db: DbOption = None,
    log_key: KeyFileOption = None,
) -> None:
    """Export every entry and the matching signed checkpoint."""
    with open_log(db, log_key) as log:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            signed = export_log(log, f)
    Path(f"{out}.checkpoint").write_text(signed)
    typer.echo(f"wrote {out} and {out}.checkpoint")


@app.command()
def verify(
    export_file: Annotated[
        Path | None, typer.Argument(help="an NDJSON export; omit to verify the database")
    ] = None,
    checkpoint_file: Annotated[Path | None, typer.Option("--checkpoint")] = None,
    key: Annotated[list[str] | None, typer.Option("--key", help="trusted log verifier key")] = None,
    db: DbOption = None,
    log_key: KeyFileOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 2,
) -> None:
    """Replay every entry and check chain, keys, signatures, tree and checkpoint."""
    try:
        if export_file is None:
            with open_log(db, log_key) as log:
                result = log.verify(workers=workers)
            typer.echo(f"OK: {result.size} entries, root {result.root.hex()}")
            return
        if not key:
            raise _fail("--key (the log's verifier key) is required to verify an export", 2)
        cp_path = checkpoint_file or Path(f"{export_file}.checkpoint")
        verdict = verify_export(read_chunks(export_file), cp_path.read_text(), key, workers=workers)
    except LedgerError as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"OK: {verdict.size} entries of {verdict.checkpoint.origin}, root {verdict.root.hex()}"
    )


@app.command("verify-bundle")
def verify_bundle_command(
    bundle: Path,
    key: Annotated[list[str], typer.Option("--key", help="trusted log verifier key")],
    witness_key: Annotated[list[str] | None, typer.Option("--witness-key")] = None,
    min_witnesses: int = 0,
) -> None:
    """Verify a .tlog-proof offline and print the entry it proves."""
    try:
        verified = verify_bundle(
            bundle.read_text(), key, witness_keys=witness_key or [], min_witnesses=min_witnesses
        )
    except (LedgerError, OSError) as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"OK: entry {verified.entry.seq} ({verified.entry.kind}) is in {verified.checkpoint.origin} "
        f"at size {verified.checkpoint.size}; witnesses: {', '.join(verified.witnesses) or 'none'}"
    )
    typer.echo(verified.entry.raw.decode())


@keys_app.command("generate")
def keys_generate(
    name: str, out: Annotated[Path, typer.Option(help="where to write the private key (0600)")]
) -> None:
    """Generate an Ed25519 key pair; print the verifier key."""
    try:
        signer = note.Signer.generate(name)
        write_secret(out, signer.to_string())
    except (LedgerError, FileExistsError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(signer.verifier.to_string())


@keys_app.command("list")
def keys_list(db: DbOption = None, log_key: KeyFileOption = None) -> None:
    """List registered keys with their validity span."""
    with open_log(db, log_key) as log:
        for k in log.key_records():
            revoked = "" if k.revoked_seq is None else f" revoked@{k.revoked_seq}"
            typer.echo(f"{k.key_id}\t{k.role}\tadded@{k.added_seq}{revoked}\t{k.owner}")


@keys_app.command("add")
def keys_add(
    verifier_key: str,
    role: Annotated[KeyRole, typer.Option()] = KeyRole.ENTRY,
    owner: str = "",
    db: DbOption = None,
    log_key: KeyFileOption = None,
) -> None:
    """Register a verifier key (signed by the log key)."""
    with open_log(db, log_key) as log:
        receipt = log.register_key(verifier_key, role=role, owner=owner)
        typer.echo(f"registered at entry {receipt.seq}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str,
    reason: Annotated[str, typer.Option()],
    db: DbOption = None,
    log_key: KeyFileOption = None,
) -> None:
    """Revoke a key: later entries signed by it are refused."""
    with open_log(db, log_key) as log:
        receipt = log.revoke_key(key_id, reason=reason)
        typer.echo(f"revoked at entry {receipt.seq}")
