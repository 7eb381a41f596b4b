"""``scripts/suyuan serve | db upgrade | admin create-key``: run and administer the service."""

from __future__ import annotations

from typing import Annotated

import typer

from api.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The database schema.")
admin_app = typer.Typer(no_args_is_help=True, help="Administrator API keys.")


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int | None, typer.Option(help="default: SUYUAN_WORKERS")] = None,
) -> None:
    """Run the HTTP service with uvicorn (migrations run at start-up)."""
    import uvicorn

    from api.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)  # once, before the workers start
    count = workers or settings.workers
    # uvloop + httptools (uvicorn[standard]): with several workers the asyncio + h11 pair
    # loses TCP_NODELAY and collapses to ~700 req/s (perf-limits.md §7, uvicorn#3149).
    uvicorn.run(
        "api.server:app",
        host=host,
        port=port,
        workers=count if count > 1 else None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        # Workers import the whole service and replay the log before answering.
        timeout_worker_healthcheck=60,
        timeout_keep_alive=settings.keep_alive_seconds,
    )


@app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply schema migrations (Alembic) to the configured database."""
    from api.migrate import current_revision, upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    typer.echo(f"database at revision {current_revision(url)}")


@admin_app.command("create-key")
def create_admin_key(label: Annotated[str, typer.Option()] = "administrator") -> None:
    """Issue an administrator's API key (printed once)."""
    from api.keys import KeyStore
    from api.migrate import upgrade
    from trace.projections import Projections

    settings = get_settings()
    upgrade(settings.database_url)
    projections = Projections(settings.database_url)
    try:
        issued = KeyStore(projections.engine).issue(None, label=label)
    finally:
        projections.close()
    typer.echo(issued.token)
