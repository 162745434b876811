"""``cxpar run``: compile a CX program and run it on the runtime scheduler."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cxpar.commands.batch import batch_options, check_batch, critical_services, run_batch_cli
from cxpar.commands.common import print_diagnostics
from cxpar.commands.resilience import build_resilience, resilience_options
from cxpar.driver import UsageError, front_end


@click.command("run")
@click.argument("file")
@click.option("--clock", type=click.Choice(["real", "virtual"]), default="real",
              show_default=True, help="Real time, or deterministic simulated time.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the sim provider, random() and retry jitter.")
@click.option("--provider", default=None, metavar="NAME",
              help="AI provider: sim (default), openai, MODULE:ATTR or an entry-point name "
                   "[env CXPAR_PROVIDER].")
@click.option("--base-url", default=None, metavar="URL",
              help="openai: the endpoint, e.g. http://localhost:11434/v1 [env CXPAR_BASE_URL].")
@click.option("--model", default=None, help="openai: the model name [env CXPAR_MODEL].")
@click.option("--latency", default=None, metavar="SVC=MS,...",
              help="Sim latency per service, e.g. think=100,infer=50.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Sim provider: probability that a call fails.")
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Sim provider: probability that a call never answers.")
@click.option("--max-concurrency", type=click.IntRange(1), default=None,
              help="Global limit on provider calls in flight (handlers never count).")
@click.option("--timeout", "timeout_ms", type=click.FloatRange(0), default=600_000,
              show_default=True, help="Stop the program after this many ms (exit 3).")
@click.option("--backend", type=click.Choice(["python", "llvm"]), default="python",
              show_default=True, help="Code generator for the dispatch layer.")
@click.option("--stats", is_flag=True, help="Print a table per service and handler to stderr.")
@click.option("--trace", type=click.Path(dir_okay=False), default=None,
              help="Write Chrome/Perfetto trace events to this file.")
@batch_options
@resilience_options
def run(file: str, clock: str, seed: int, provider: str | None, base_url: str | None,
        model: str | None, latency: str | None, fail_rate: float,
        timeout_rate: float, max_concurrency: int | None, timeout_ms: float, backend: str,
        stats: bool, trace: str | None, breaker: str | None, limits: str | None,
        adaptive: bool | None, capacity: str | None, **batch: Any) -> None:
    """Compile FILE and run it; exit 0, 1 (diagnostics), 3 (runtime errors) or 130."""
    from cxpar.runtime.standalone import parse_latency

    path = Path(file)
    if not path.exists():
        raise UsageError(f"no such file: `{file}`")
    check_batch(batch)
    try:
        lat = parse_latency(latency)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from cxpar.plugins import prepare_run

    prov, extra_services = prepare_run(
        path, {"name": provider, "base_url": base_url, "model": model}, clock=clock,
        seed=seed, latency=lat, fail_rate=fail_rate, timeout_rate=timeout_rate)
    resilience = build_resilience(path, prov, breaker, limits, adaptive, capacity)
    fe = front_end(path, file, extra_services=extra_services)
    if fe.diagnostics:
        print_diagnostics(fe, "text")
    if fe.has_errors or fe.compilation is None:
        sys.exit(1)
    from cxpar.codegen.module import compile_program
    from cxpar.runtime.standalone import run_factory

    compiled = compile_program(fe.compilation)
    program = compiled.program
    if backend == "llvm":
        from cxpar.codegen.llvm import backend as llvm_backend

        try:
            router = llvm_backend.prepare(fe.compilation)
        except llvm_backend.BackendUnavailable as exc:
            raise UsageError(f"the llvm backend is unavailable on this platform: {exc}; "
                             f"{llvm_backend.UNAVAILABLE_HELP}") from None
        program = llvm_backend.with_router(program, router)
    critical = critical_services(fe.compilation) if batch["dashboard"] else []
    if batch["input_path"] is not None:
        code = run_batch_cli(program, compiled, batch, timeout_ms=timeout_ms, critical=critical,
                             clock=clock, seed=seed, provider=prov,
                             max_concurrency=max_concurrency, stats=stats, trace=trace,
                             resilience=resilience)
        sys.exit(code)
    code = run_factory(program, compiled.spans, compiled.sources, clock=clock,
                       seed=seed, latency=lat, fail_rate=fail_rate, timeout_rate=timeout_rate,
                       max_concurrency=max_concurrency, timeout_ms=timeout_ms, stats=stats,
                       trace=trace, provider=prov, dashboard=batch["dashboard"],
                       critical=critical, resilience=resilience)
    sys.exit(code)
