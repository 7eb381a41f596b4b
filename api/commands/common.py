"""Helpers shared by the domain commands: open the engine, turn errors into exit status 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from api.runtime import open_tracer
from api.settings import get_settings
from ledger import LedgerError
from trace.engine import Tracer
from trace.errors import TraceError

__all__ = ["fail", "tracer"]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def tracer() -> Iterator[Tracer]:
    """The configured engine; domain and ledger errors become a message and exit status 1."""
    try:
        t = open_tracer(get_settings())
    except (LedgerError, TraceError, OSError) as exc:
        raise fail(str(exc)) from exc
    try:
        yield t
    except (LedgerError, TraceError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from exc
    finally:
        t.close()
