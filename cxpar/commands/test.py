"""``cxpar test [PATH…]``: run golden tests of CX programs (see :mod:`cxpar.golden`)."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import click

from cxpar.commands.common import FiniteFloat
from cxpar.driver import UsageError


@click.command("test")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--update", is_flag=True,
              help="Rewrite each test's NAME.out (and NAME.code) from what it printed.")
@click.option("-j", "--jobs", type=click.IntRange(1), default=None,
              help="Tests run at once (default: the number of CPUs, at most 4).")
@click.option("--timeout", "timeout_s", type=FiniteFloat(min=0, min_open=True),
              default=120.0, show_default=True, help="Seconds of wall time per test.")
def test(paths: tuple[str, ...], update: bool, jobs: int | None, timeout_s: float) -> None:
    """Run every NAME.cx that has a golden NAME.out next to it (default: under the current
    directory) on the virtual clock and compare its stdout and exit code.

    Optional companions: NAME.code (expected exit code, default 0), NAME.jsonl (batch
    input), NAME.journal (replayed with --replay), NAME.args (more `cxpar run` options).
    Exit 0 only if every test passes.
    """
    from cxpar import golden

    try:
        cases = golden.discover(list(paths) or ["."], update=update)
    except golden.GoldenError as exc:
        raise UsageError(str(exc)) from None
    workers = jobs or max(1, min(4, os.cpu_count() or 1))
    colour = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None
    passed = failed = changed = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(golden.run_case, c, timeout_s=timeout_s) for c in cases]
        for fut in futures:
            out = fut.result()
            if update and out.problem is None:
                did = golden.update(out)
                changed += did
                golden_name = os.path.splitext(out.case.shown)[0] + ".out"
                click.echo(f"{'updated' if did else 'same   '} {golden_name}")
                continue
            problems = golden.compare(out)
            if problems:
                failed += 1
                click.echo(click.style("FAIL", fg="red", bold=True) if colour else "FAIL",
                           nl=False)
                click.echo(f" {out.case.shown}")
                for line in problems:
                    click.echo("    " + line)
            else:
                passed += 1
                click.echo((click.style("ok  ", fg="green") if colour else "ok  ")
                           + f" {out.case.shown}")
    if update:
        click.echo(f"{changed} updated, {len(cases) - changed - failed} unchanged"
                   + (f", {failed} failed" if failed else ""))
    else:
        click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
