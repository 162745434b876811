"""``cxpar fmt``: rewrite CX files in the canonical style (docs/style.md)."""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from cxpar.commands.common import print_diagnostics
from cxpar.diagnostics.model import Diagnostic
from cxpar.driver import FrontEnd, collect_paths
from cxpar.fmt import FormatError, format_file
from cxpar.span import SourceFile
from cxpar.syntax.source import decode, read_source


@dataclass
class Outcome:
    """What formatting one input gave."""

    name: str
    original: str
    formatted: str | None  # None: not formatted (diagnostics say why)
    diagnostics: list[Diagnostic]
    source: SourceFile | None = None

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def _restore_layout(raw: str, formatted: str) -> str:
    """Keep the file's line endings (CRLF) and byte-order mark as they were."""
    if "\r\n" in raw:
        formatted = formatted.replace("\n", "\r\n")
    if raw.startswith("\ufeff"):
        formatted = "\ufeff" + formatted
    return formatted


def format_one(data: bytes, name: str) -> Outcome:
    """Format the bytes of one file (or stdin) named ``name`` in messages."""
    raw = data.decode("utf-8", errors="replace")
    decoded = decode(data, name)
    if isinstance(decoded, Diagnostic):
        return Outcome(name, raw, None, [decoded])
    try:
        text = format_file(decoded)
    except FormatError as exc:
        return Outcome(name, raw, None, exc.diagnostics, decoded)
    return Outcome(name, raw, _restore_layout(raw, text), [], decoded)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, keeping its permissions; a symbolic link stays a link
    and its target gets the new text."""
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fmt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _diff(o: Outcome) -> str:
    assert o.formatted is not None
    return "".join(difflib.unified_diff(
        o.original.splitlines(keepends=True), o.formatted.splitlines(keepends=True),
        fromfile=o.name, tofile=o.name))


def _out(text: str) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def _report(o: Outcome) -> None:
    print_diagnostics(FrontEnd(o.name, o.source, diagnostics=o.diagnostics))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", is_flag=True,
              help="Write nothing; list files that would change and exit 1 if any would.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Write nothing; print a unified diff of the changes and exit 1 if any.")
def fmt(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format CX files (or directories of *.cx files) in place; `-` reads stdin and writes
    stdout. Files with syntax errors are left untouched and reported (exit 1)."""
    if "-" in paths:
        if len(paths) > 1:
            raise click.UsageError("`-` (stdin) cannot be combined with other paths")
        sys.exit(_format_stdin(check, show_diff))
    files = collect_paths(list(paths))
    changed = unchanged = failed = 0
    for path, name in files:
        src = read_source(path, name)
        if isinstance(src, Diagnostic):
            print_diagnostics(FrontEnd(name, None, diagnostics=[src]))
            failed += 1
            continue
        o = format_one(path.read_bytes(), name)
        if o.formatted is None:
            _report(o)
            failed += 1
        elif not o.changed:
            unchanged += 1
        else:
            changed += 1
            if show_diff:
                _out(_diff(o))
            elif check:
                click.echo(f"would reformat: {name}")
            else:
                try:
                    _write(path, o.formatted)
                except OSError as exc:
                    click.echo(f"error: cannot write `{name}`: {exc.strerror or exc}",
                               err=True)
                    changed -= 1
                    failed += 1
    sys.stdout.flush()
    parts = []
    if changed:
        verb = "would be reformatted" if check or show_diff else "reformatted"
        parts.append(f"{_plural(changed, 'file')} {verb}")
    if unchanged:
        word = "already formatted" if check or show_diff else "left unchanged"
        parts.append(f"{_plural(unchanged, 'file')} {word}")
    if failed:
        parts.append(f"{_plural(failed, 'file')} not formatted (errors)")
    click.echo(", ".join(parts), err=True)
    sys.exit(1 if failed or (changed and (check or show_diff)) else 0)


def _format_stdin(check: bool, show_diff: bool) -> int:
    data = sys.stdin.buffer.read()
    o = format_one(data, "<stdin>")
    if o.formatted is None:
        _report(o)
        if not (check or show_diff):
            _out(o.original)  # left untouched
        return 1
    if show_diff:
        _out(_diff(o))
    elif check:
        if o.changed:
            click.echo("would reformat: -")
    else:
        _out(o.formatted)
    return 1 if o.changed and (check or show_diff) else 0
