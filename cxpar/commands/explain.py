"""``cxpar explain CODE``: the long explanation of a diagnostic code."""

from __future__ import annotations

import click

from cxpar.diagnostics.codes import CODES
from cxpar.diagnostics.codes import explain as explain_code


@click.command("explain", short_help="Explain a diagnostic code such as CX301.")
@click.argument("code")
def explain(code: str) -> None:
    """Explain a diagnostic code, e.g. `cxpar explain CX301`."""
    text = explain_code(code)
    if text is None:
        raise click.UsageError(f"unknown diagnostic code `{code}`; codes are "
                               f"{min(CODES)}..{max(CODES)} (see docs/diagnostics.md)")
    click.echo(text)
