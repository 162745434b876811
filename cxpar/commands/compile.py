"""``cxpar compile``: emit the AST, stream graph, Python module or LLVM IR."""

from __future__ import annotations

import sys

import click

from cxpar.commands.common import (
    check_output,
    plugin_services,
    print_diagnostics,
    program_path,
    write_output,
)
from cxpar.driver import front_end
from cxpar.settings import config_option

EMITTERS = ("ast", "graph", "python", "llvm-ir")


@click.command("compile")
@click.argument("file", type=click.Path())
@click.option("--emit", type=click.Choice(EMITTERS), default="python", show_default=True,
              help="What to produce.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="For --emit ast/graph: readable text or JSON.")
@click.option("-o", "--output", metavar="FILE", type=click.Path(), default=None,
              help="Write to this file instead of stdout.")
@config_option
def compile_cmd(file: str, emit: str, fmt: str, output: str | None,
                config_path: str | None) -> None:
    """Compile FILE and print (or write with -o) the chosen representation."""
    path = program_path(file, "compile")
    check_output(output)
    extra = plugin_services(path, config_path=config_path) if emit != "ast" else {}
    fe = front_end(path, file, syntax_only=(emit == "ast"), extra_services=extra)
    print_diagnostics(fe, "text")
    if fe.has_errors or fe.program is None:
        sys.exit(1)
    if emit == "ast":
        from cxpar.ast.dump import dump_json, dump_text

        text = dump_json(fe.program) if fmt == "json" else dump_text(fe.program)
    else:
        from cxpar.commands import emitters

        text = emitters.emit(emit, fe, fmt)
    if output:
        write_output(output, text)
    else:
        sys.stdout.write(text)
