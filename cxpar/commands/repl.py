"""``cxpar repl``: try CX interactively; state persists between entries."""

from __future__ import annotations

import sys

import click


@click.command("repl")
@click.option("--clock", type=click.Choice(["real", "virtual"]), default="real",
              show_default=True, help="Real time, or deterministic simulated time.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the sim provider, random() and retry jitter.")
def repl(clock: str, seed: int) -> None:
    """Read CX entries, run each on one long-lived runtime, print results.

    On a terminal: a prompt with highlighting, completion and history. Piped
    (`printf 'print(1);' | cxpar repl`): entries from stdin, no prompts or colours;
    exits 1 if an entry had errors, 3 if one had runtime errors, else 0.
    """
    from cxpar.commands.common import use_colour
    from cxpar.repl.session import Session, run_piped

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    session = Session(clock=clock, seed=seed, colour=interactive and use_colour(sys.stderr))
    if not interactive:
        sys.exit(run_piped(session, sys.stdin))
    from cxpar.repl.app import run_interactive

    sys.exit(run_interactive(session))
