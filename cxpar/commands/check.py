"""``cxpar check``: parse and analyse, report diagnostics, run nothing."""

from __future__ import annotations

import sys

import click

from cxpar.commands.common import count, plugin_services, print_diagnostics
from cxpar.diagnostics.render import summary
from cxpar.driver import collect_paths, front_end
from cxpar.settings import config_option


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--syntax-only", is_flag=True, help="Parse only; skip name and event analysis.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Diagnostics as rustc-style text (stderr) or JSON lines (stdout).")
@click.option("--provider", default=None, metavar="NAME",
              help="A plug-in provider (MODULE:ATTR or entry point) whose services to know.")
@config_option
def check(paths: tuple[str, ...], syntax_only: bool, fmt: str, provider: str | None,
          config_path: str | None) -> None:
    """Check CX files (or directories of *.cx files) without running them."""
    files = collect_paths(list(paths))
    extra: dict[str, str] = {}
    if not syntax_only:
        extra = plugin_services(files[0][0] if files else None, provider, config_path)
    errors = warnings = 0
    for path, name in files:
        fe = front_end(path, name, syntax_only=syntax_only, extra_services=extra)
        print_diagnostics(fe, fmt)
        e, w = count(fe.diagnostics)
        errors += e
        warnings += w
    sys.stdout.flush()
    if fmt == "text" or errors or warnings:
        click.echo(summary(len(files), errors, warnings), err=True)
    sys.exit(1 if errors else 0)
