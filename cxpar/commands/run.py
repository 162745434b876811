"""``cxpar run``: compile a CX program and run it on the runtime scheduler."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cxpar.commands.batch import check_input, critical_services
from cxpar.commands.common import print_diagnostics
from cxpar.driver import UsageError, front_end
from cxpar.settings import config_option, resolve, settings_options


@click.command("run")
@click.argument("file")
@settings_options()
@config_option
@click.option("--explain", is_flag=True,
              help="With --backend llvm: say which loops run as native code, and why the "
                   "others do not.")
@click.option("--show-settings", is_flag=True,
              help="Print every setting, its value and where it came from (JSON), then "
                   "exit without running.")
def run(file: str, config_path: str | None, explain: bool, show_settings: bool,
        **params: Any) -> None:
    """Compile FILE and run it; exit 0, 1 (diagnostics), 3 (runtime errors) or 130.

    Every option can also come from the environment or cxpar.toml (docs/cli.md,
    "Settings"); the command line wins.
    """
    path = Path(file)
    if not path.exists():
        raise UsageError(f"no such file: `{file}`")
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
        from cxpar.otel import OtelMissing, available

        missing = available()
        if missing is not None:
            raise UsageError(str(OtelMissing(missing)))
    if explain and settings.backend != "llvm":
        raise UsageError("`--explain` reports which loops the llvm backend runs natively; "
                         "use it with `--backend llvm`")
    from cxpar.plugins import prepare_run

    provider, extra_services = prepare_run(settings, resolved.config)
    from cxpar.lang import SERVICE_STEMS, check_latency_services

    try:
        check_latency_services(settings.latency or {}, {**SERVICE_STEMS, **extra_services})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fe = front_end(path, file, extra_services=extra_services)
    if fe.diagnostics:
        print_diagnostics(fe, "text")
    if fe.has_errors or fe.compilation is None:
        sys.exit(1)
    from cxpar.codegen.module import compile_program

    if settings.backend == "llvm":
        from cxpar.codegen.llvm import backend as llvm_backend

        try:
            compiled, program = llvm_backend.compile_native(fe.compilation, compile_program,
                                                            explain=explain)
        except llvm_backend.BackendUnavailable as exc:
            raise UsageError(f"the llvm backend is unavailable on this platform: {exc}; "
                             f"{llvm_backend.UNAVAILABLE_HELP}") from None
    else:
        compiled = compile_program(fe.compilation)
        program = compiled.program
    critical = critical_services(fe.compilation) if settings.dashboard else []

    def go(prov: Any) -> int:
        if settings.input is not None:
            from cxpar.runtime.batchfile import BatchFileError
            from cxpar.runtime.streams import run_batch

            try:
                return run_batch(program, compiled.spans, compiled.sources, settings,
                                 provider=prov, critical=critical)
            except BatchFileError as exc:  # the output is locked, or holds other results
                raise UsageError(str(exc)) from None
        from cxpar.runtime.standalone import run_factory

        return run_factory(program, compiled.spans, compiled.sources, settings,
                           provider=prov, critical=critical)

    if settings.journal is None and settings.replay is None:
        sys.exit(go(provider))
    from cxpar.journal import JournalError, run_with_journal

    assert fe.source is not None
    try:
        code = run_with_journal(settings, provider, go, program=file, source=fe.source.text,
                                kind="run" if settings.input is None else "batch")
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    sys.exit(code)
