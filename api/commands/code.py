"""``suyuan code``: check GB/T 34014-2017 traction-battery codes from the command line.

``suyuan code check CODE...`` prints one JSON object per code, one per line (see
:meth:`schemas.codes.CodeCheck.as_dict` for the keys); ``-`` reads codes from standard input,
one per line. The exit status is 0 only when every code is valid, 1 otherwise, and 2 when
there is nothing to check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Annotated

import typer

from schemas.codes import check_code

__all__ = ["app", "check"]

app = typer.Typer(no_args_is_help=True, help="GB/T 34014-2017 traction-battery codes.")

STDIN_MARKER = "-"
EXIT_INVALID = 1
EXIT_USAGE = 2


@app.callback()
def _codes() -> None:
    """GB/T 34014-2017 traction-battery codes."""


def _expand(codes: Iterable[str], stdin: Iterable[str]) -> Iterator[str]:
    """The codes as given, with ``-`` replaced by the non-blank lines of standard input."""
    for code in codes:
        if code == STDIN_MARKER:
            # Only the line ending is dropped: spaces inside a line stay and are reported.
            yield from (line.rstrip("\r\n") for line in stdin if line.strip())
        else:
            yield code


@app.command("check")
def check(
    codes: Annotated[
        list[str], typer.Argument(help="Codes to check; '-' reads one code per line from stdin.")
    ],
) -> None:
    """Check codes and print one JSON report per line; exit 0 only if all are valid."""
    checked = 0
    all_valid = True
    for text in _expand(codes, typer.get_text_stream("stdin")):
        report = check_code(text)
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        checked += 1
        all_valid = all_valid and report.valid
    if checked == 0:
        typer.echo("no codes to check", err=True)
        raise typer.Exit(EXIT_USAGE)
    if not all_valid:
        raise typer.Exit(EXIT_INVALID)
