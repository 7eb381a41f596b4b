"""The suyuan command line (``scripts/suyuan``): one typer app, one sub-app per topic."""

from __future__ import annotations

import typer

from api.commands import actors, analytics, code, events, ledger, service

app = typer.Typer(
    no_args_is_help=True, help="suyuan: traceability for power batteries and scrap metal"
)
app.add_typer(ledger.app, name="ledger")
app.add_typer(code.app, name="code")
app.add_typer(actors.app, name="actors")
app.add_typer(events.app, name="events")
app.add_typer(events.items_app, name="items")
app.add_typer(service.app, name="db")
app.add_typer(analytics.app, name="analytics")
app.add_typer(service.admin_app, name="admin")
app.command("serve")(service.serve)


@app.command("where")
def where() -> None:
    """Print where the `trace` and `ledger` packages were imported from."""
    import ledger as ledger_pkg
    import trace

    typer.echo(f"trace {trace.__file__}")
    typer.echo(f"ledger {ledger_pkg.__file__}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
