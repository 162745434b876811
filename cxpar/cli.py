"""The `cxpar` command line: a thin click group; one ``main()`` maps outcomes to exit codes.

Exit codes (SPEC §7): 0 success, 1 diagnostics with errors, 2 usage error,
3 runtime errors, 130 interrupted, 70 internal error (a bug in cxpar).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import click

from cxpar import __version__

EXIT_OK, EXIT_DIAGNOSTICS, EXIT_USAGE, EXIT_RUNTIME = 0, 1, 2, 3
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130

#: command name -> "module:attribute", imported only when that command runs.
COMMANDS = {
    "check": "cxpar.commands.check:check",
    "compile": "cxpar.commands.compile:compile_cmd",
    "explain": "cxpar.commands.explain:explain",
    "fmt": "cxpar.commands.fmt:fmt",
    "lsp": "cxpar.commands.lsp:lsp",
    "run": "cxpar.commands.run:run",
    "graph": "cxpar.commands.graph:graph",
    "repl": "cxpar.commands.repl:repl",
    "serve": "cxpar.commands.serve:serve",
    "journal": "cxpar.commands.journal:journal",
    "test": "cxpar.commands.test:test",
}


class LazyGroup(click.Group):
    """Imports a sub-command's module only when it is used (fast `cxpar check`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise
        cmd: click.Command = getattr(mod, attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxpar")
def cli() -> None:
    """cxpar: compile and run CX programs with parallel handler parameters."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `cxpar` script."""
    from cxpar.driver import UsageError

    try:
        cli.main(args=argv, prog_name="cxpar", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except UsageError as exc:
        from cxpar.display import safe

        click.echo(f"error: {safe(str(exc))}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        click.echo(f"internal error: {exc!r}\nThis is a bug in cxpar {__version__}; please "
                   "report it with the input that caused it.", err=True)
        if os.environ.get("CXPAR_DEBUG") == "1":
            traceback.print_exc()
        else:
            click.echo("(set CXPAR_DEBUG=1 to see the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
