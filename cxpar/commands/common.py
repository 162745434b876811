"""Helpers shared by commands: printing diagnostics with source lines."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from cxpar.diagnostics.model import Diagnostic
from cxpar.diagnostics.render import render_json, render_text
from cxpar.driver import FrontEnd


def use_colour(stream: TextIO) -> bool:
    """Colour only on a TTY, and never with ``NO_COLOR`` set."""
    if os.environ.get("NO_COLOR") is not None:
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_diagnostics(fe: FrontEnd, fmt: str = "text", *, out: TextIO | None = None,
                      err: TextIO | None = None) -> None:
    """Text to stderr (rustc style) or JSON lines to stdout (SPEC §7)."""
    out = out or sys.stdout
    err = err or sys.stderr
    lines = fe.source.text.split("\n") if fe.source is not None else []

    def source_line(_file: str, line: int) -> str:
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    colour = use_colour(err)
    for d in fe.diagnostics:
        if fmt == "json":
            out.write(render_json(d) + "\n")
        else:
            err.write(render_text(d, source_line, colour) + "\n")


def count(diags: list[Diagnostic]) -> tuple[int, int]:
    """``(errors, warnings)``."""
    errors = sum(1 for d in diags if d.is_error)
    return errors, sum(1 for d in diags if d.severity.value == "warning")


def plugin_services(path: Path | None, provider: str | None = None,
                    config_path: str | None = None) -> dict[str, str]:
    """Plug-in service names (``name → stem``) the checker should know for ``path``.

    ``[services]`` of the ``cxpar.toml`` found for ``path`` (or ``--config``), the
    ``cxpar.services`` entry points and, only when ``provider`` is given on the command
    line, the services that plug-in provider declares; provider code named by the
    config file or the environment is never imported here. The plug-in machinery is
    imported only when plug-ins can exist, which keeps `cxpar check` start-up small.
    """
    from cxpar.config import ConfigError, find_config, load_config

    target = Path(config_path) if config_path else find_config(path)
    if not provider and target is None:
        from importlib.metadata import entry_points

        if not entry_points(group="cxpar.services"):
            return {}
    try:
        config = load_config(target) if target is not None else None
    except ConfigError as exc:
        from cxpar.driver import UsageError

        raise UsageError(str(exc)) from None
    from cxpar.plugins import prepare_check

    return prepare_check(config, provider)


def check_output(path: str | None, flag: str = "-o") -> None:
    """A usage error (exit 2) naming ``path`` when it cannot be written; before any work."""
    if path is None:
        return
    from cxpar.driver import UsageError
    from cxpar.runtime.outputs import output_problem

    why = output_problem(path)
    if why:
        raise UsageError(f"{flag} `{path}`: cannot write there: {why}")


def write_output(path: str, text: str, flag: str = "-o") -> None:
    """Write ``text`` to ``path``; a failure is a usage error naming the path."""
    from cxpar.driver import UsageError

    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"{flag} `{path}`: cannot write there: {exc.strerror or exc}") \
            from None


def program_path(file: str, command: str) -> Path:
    """The one CX program a command takes; a usage error (with a hint) otherwise."""
    from cxpar.driver import UsageError

    path = Path(file)
    if not path.exists():
        raise UsageError(f"no such file: `{file}`")
    if path.is_dir():
        found = sorted(path.glob("*.cx"))
        example = f" (e.g. `cxpar {command} {found[0]}`)" if found else ""
        also = "; `cxpar check` takes directories" if command != "check" else ""
        raise UsageError(f"`{file}` is a directory: `cxpar {command}` takes one `.cx` file"
                         f"{example}{also}")
    if path.suffix and path.suffix.lower() != ".cx":
        raise UsageError(f"`{file}` is not a CX program: `cxpar {command}` takes one `.cx` "
                         "file (the examples are in `examples/*.cx`)")
    return path


class FiniteFloat(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (a usage error, exit 2,
    instead of an internal error where the value is used)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number, got {number}", param, ctx)
        return float(number)
