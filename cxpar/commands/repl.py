"""``cxpar repl``: try CX interactively; state persists between entries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cxpar.driver import UsageError
from cxpar.settings import config_option, resolve, settings_options


@click.command("repl")
@settings_options("clock", "seed", "journal", "replay")
@config_option
def repl(config_path: str | None, **params: Any) -> None:
    """Read CX entries, run each on one long-lived runtime, print results.

    On a terminal: a prompt with highlighting, completion and history. Piped
    (`printf 'print(1);' | cxpar repl`): entries from stdin, no prompts or colours;
    exits 1 if an entry had errors, 3 if one had runtime errors, else 0. Settings
    (clock, seed, [sim], [provider]) also come from the environment and the
    cxpar.toml of the current directory's project.
    """
    from cxpar.commands.common import use_colour
    from cxpar.repl.session import Session, run_piped

    resolved = resolve(params, program=Path.cwd(), config_path=config_path)
    settings = resolved.settings
    notice = resolved.config_notice()
    if notice:
        click.echo(notice, err=True)
    provider = None
    if settings.provider.name != "sim":
        from cxpar.plugins import prepare_run

        provider, _services = prepare_run(settings, resolved.config)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    from cxpar.journal import JournalError

    try:
        session = Session(settings, provider=provider,
                          colour=interactive and use_colour(sys.stderr))
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    if not interactive:
        sys.exit(run_piped(session, sys.stdin))
    from cxpar.repl.app import run_interactive

    sys.exit(run_interactive(session))
