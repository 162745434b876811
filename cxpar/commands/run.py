"""``cxpar run``: compile a CX program and run it on the runtime scheduler."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cxpar.commands.batch import check_executor, check_input
from cxpar.commands.common import print_diagnostics, program_path
from cxpar.driver import UsageError
from cxpar.settings import config_option, resolve, settings_options


@click.command("run")
@click.argument("file", type=click.Path())
@settings_options()
@config_option
@click.option("--explain", is_flag=True,
              help="With --backend llvm: say which loops run as native code, why the "
                   "others do not, and when event routing turns native.")
@click.option("--show-settings", is_flag=True,
              help="Print every setting, its value and where it came from (JSON), then "
                   "exit without running.")
def run(file: str, config_path: str | None, explain: bool, show_settings: bool,
        **params: Any) -> None:
    """Compile FILE and run it; exit 0, 1 (diagnostics), 3 (runtime errors) or 130.

    Every option can also come from the environment or cxpar.toml (docs/cli.md,
    "Settings"); the command line wins.
    """
    path = program_path(file, "run")
    resolved = resolve(params, program=path, config_path=config_path)
    settings = resolved.settings
    if show_settings:
        from cxpar.settings import show

        click.echo(show(resolved), nl=False)
        return
    notice = resolved.config_notice()
    if notice:
        click.echo(notice, err=True)
    check_input(settings)
    if settings.otel:
        from cxpar.otel import OtelMissing, available, endpoint_problem

        missing = available()
        if missing is not None:
            raise UsageError(str(OtelMissing(missing)))
        problem = endpoint_problem(settings)
        if problem is not None:
            raise UsageError(problem)
    check_executor(resolved)
    if explain and settings.backend != "llvm":
        raise UsageError("`--explain` reports which loops the llvm backend runs natively; "
                         "use it with `--backend llvm`")
    from cxpar.runtime.outputs import check_outputs

    for problem in check_outputs(settings):
        raise UsageError(problem)
    from cxpar.plugins import prepare_run

    provider, extra_services = prepare_run(settings, resolved.config)
    program = load_for_cli(path, file, settings, services=extra_services, explain=explain)
    from cxpar.journal import JournalError
    from cxpar.runtime.batchfile import BatchFileError

    try:
        code = program.main(settings, provider=provider)
    except (JournalError, BatchFileError) as exc:  # unusable journal; locked output
        raise UsageError(str(exc)) from None
    sys.exit(code)


def load_for_cli(path: Path, shown: str, settings: Any, *, services: dict[str, str],
                 explain: bool = False) -> Any:
    """``cxpar.load`` for a command: diagnostics printed (exit 1 on errors), the llvm
    backend's absence a usage error."""
    from cxpar.api import CompileError, load
    from cxpar.driver import FrontEnd
    from cxpar.lang import SERVICE_STEMS, check_latency_services

    try:
        check_latency_services(settings.latency or {}, {**SERVICE_STEMS, **services})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    unavailable: Any = ()
    if settings.backend == "llvm":
        from cxpar.codegen.llvm import backend as llvm_backend

        unavailable = llvm_backend.BackendUnavailable
    try:
        program = load(path, name=shown, backend=settings.backend, services=services,
                       explain=explain)
    except CompileError as exc:
        print_diagnostics(FrontEnd(exc.name, exc.source, diagnostics=exc.diagnostics), "text")
        sys.exit(1)
    except unavailable as exc:
        raise UsageError(f"the llvm backend is unavailable on this platform: {exc}; "
                         f"{llvm_backend.UNAVAILABLE_HELP}") from None
    if program.diagnostics:
        print_diagnostics(FrontEnd(program.name, program.source,
                                   diagnostics=program.diagnostics), "text")
    return program
