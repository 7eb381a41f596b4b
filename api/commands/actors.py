"""``scripts/suyuan actors ...``: register organisations and manage their signing keys."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from api.commands.common import fail, tracer
from schemas.actors import Actor, Role

app = typer.Typer(no_args_is_help=True, help="Organisations and their keys.")


@app.command("register")
def register(
    actor_id: str,
    name: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    region: Annotated[str, typer.Option(help="GB/T 2260 province code, e.g. 440000")],
    key: Annotated[list[str] | None, typer.Option(help="verifier key (repeatable)")] = None,
) -> None:
    """Register an organisation with its verifier keys (signed with the log key)."""
    try:
        actor = Actor(id=actor_id, name=name, role=role, region=region)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    with tracer() as t:
        t.register_actor(actor, key or [])
        typer.echo(f"registered {actor.id} ({actor.role}, {actor.region})")


@app.command("list")
def list_actors() -> None:
    """List registered organisations."""
    with tracer() as t:
        for actor in sorted(t.world.actors.values(), key=lambda a: a.id):
            typer.echo(f"{actor.id}\t{actor.role}\t{actor.region}\t{actor.name}")


@app.command("add-key")
def add_key(actor_id: str, verifier_key: str) -> None:
    """Add a signing key to an organisation (rotation: add the new key, then revoke the old)."""
    with tracer() as t:
        t.add_key(actor_id, verifier_key)
        typer.echo(f"added a key for {actor_id}")


@app.command("revoke-key")
def revoke_key(key_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Revoke a key: events it signed stay valid, later ones are refused."""
    with tracer() as t:
        receipt = t.log.revoke_key(key_id, reason=reason)
        typer.echo(f"revoked {key_id} at entry {receipt.seq}")
