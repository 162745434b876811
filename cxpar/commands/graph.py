"""``cxpar graph``: the stream execution graph (text, Mermaid, Graphviz dot or JSON)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from cxpar.commands.common import (
    check_output,
    plugin_services,
    print_diagnostics,
    program_path,
    use_colour,
    write_output,
)
from cxpar.driver import FrontEnd, UsageError, front_end
from cxpar.lang import SERVICE_STEMS, check_latency_services
from cxpar.settings import config_option, resolve, settings_options


def render_graph(fe: FrontEnd, fmt: str, latency: Mapping[str, float] | None = None, *,
                 colour: bool = False, limit: int | None = None) -> str:
    """The graph of an analysed program in ``fmt`` (text, mermaid, dot, json), with
    ``latency`` estimates over the defaults; ``limit``: with the makespan estimated under
    ``--max-concurrency limit``."""
    from cxpar.analysis.graph import build_graph
    from cxpar.analysis.graph_format import render

    comp = fe.compilation
    if comp is None:
        raise UsageError("no analysed program to draw")
    lat = dict(latency or {})
    graph = comp.graph if (not lat and comp.graph is not None) else \
        build_graph(comp.info, comp.program, {**comp.latency, **lat})
    estimate = None
    if limit is not None:
        from cxpar.analysis.schedule import makespan_under_limit

        estimate = makespan_under_limit(graph, limit)
    return render(graph, fmt, colour=colour, limit=estimate)


def render_cost(fe: FrontEnd, fmt: str, settings: Any) -> str:
    """``--cost``: the estimate of one run's tokens and cost, as text or JSON."""
    from cxpar.commands.cost_estimate import estimate_cost

    if fmt not in ("text", "json"):
        raise UsageError(f"--cost prints text or json, not {fmt}")
    est = estimate_cost(fe.compilation, settings)
    if fmt == "json":
        import json

        return json.dumps(est.to_data(), indent=2) + "\n"
    return "\n".join(est.lines()) + "\n"


def graph_latency(path: Path, latency: str | None, config_path: str | None,
                  ) -> dict[str, float]:
    """The latencies to estimate with: ``[sim] latency`` of the program's cxpar.toml (as
    the sim uses them in a run), then ``--latency``. Nothing else of the file is used
    (and no provider code is imported)."""
    from cxpar.config import Config, ConfigError, load_config

    try:
        config = load_config(Path(config_path) if config_path else None, start=path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    sim = config.section("sim")
    only_sim = Config(config.path, {"sim": sim} if sim else {})
    return dict(resolve({"latency": latency}, config=only_sim, env={}).settings.latency)


@click.command("graph")
@click.argument("file", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json"]),
              default="text", show_default=True, help="Output format.")
@click.option("--latency", default=None, metavar="SVC=MS,...",
              help="Per-service latency estimates in ms, e.g. think=800,infer=300.")
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N",
              help="Also estimate the time with at most N provider calls at once "
                   "(--max-concurrency N), in program and fifo order.")
@click.option("--cost", "cost", is_flag=True,
              help="Estimate the tokens and cost of one run instead (sim token estimates, "
                   "priced by --price or [pricing.MODEL]); JSON with --format json.")
@settings_options("price", "provider.model")
@click.option("-o", "--output", metavar="FILE", type=click.Path(), default=None,
              help="Write to this file instead of stdout.")
@config_option
def graph(file: str, fmt: str, latency: str | None, limit: int | None, cost: bool,
          output: str | None, config_path: str | None, **params: Any) -> None:
    """Show the stream execution graph of FILE: parallel batches and the critical path."""
    path = program_path(file, "graph")
    check_output(output)
    extra = plugin_services(path, config_path=config_path)
    settings = resolve(params, program=path, config_path=config_path).settings \
        if cost else None
    lat = graph_latency(path, latency, config_path)  # validated before any work
    try:
        check_latency_services(lat, {**SERVICE_STEMS, **extra})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fe = front_end(path, file, extra_services=extra)
    print_diagnostics(fe, "text")
    if fe.has_errors or fe.compilation is None:
        sys.exit(1)
    if settings is not None:
        text = render_cost(fe, fmt, settings)
    else:
        colour = fmt == "text" and output is None and use_colour(sys.stdout)
        text = render_graph(fe, fmt, lat, colour=colour, limit=limit)
    if output:
        write_output(output, text)
    else:
        sys.stdout.write(text)
