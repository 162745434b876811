"""``cxpar lsp``: the language server over stdio (needs the `lsp` extra)."""

from __future__ import annotations

import sys

import click

INSTALL = "pip install 'cxpar[lsp]'"


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only "
              "transport; accepted because editors pass it).")
def lsp(stdio: bool) -> None:
    """Run the CX language server (diagnostics, go to definition, references, hover,
    completion, symbols, rename, formatting, quick fixes) over stdio."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError as exc:
        click.echo(f"error: `cxpar lsp` needs pygls and lsprotocol ({exc.name} is not "
                   f"installed); install them with: {INSTALL}", err=True)
        sys.exit(2)
    from cxpar.lsp.server import main

    main()
