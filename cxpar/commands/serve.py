"""``cxpar serve FILE``: a CX program as an HTTP service with a live web page (needs the
`serve` extra: Starlette + uvicorn)."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

import click

from cxpar.commands.common import FiniteFloat
from cxpar.driver import UsageError
from cxpar.settings import config_option, resolve, settings_options

INSTALL = "pip install 'cxpar[serve]'"
TOKEN_ENV = "CXPAR_SERVE_TOKEN"

#: `cxpar run` options that have no meaning for a server: batch files, terminal displays,
#: one trace file for a process that never ends, and the clock (a server runs in real time).
NOT_FOR_SERVE = {"input", "output", "ordered", "resume", "progress", "dashboard", "stats",
                 "trace", "clock"}


def _serve_settings() -> list[str]:
    from cxpar.runtime.settings import RunSettings, setting_fields

    return [name for name, f in setting_fields(RunSettings)
            if f.metadata.get("cli") and name not in NOT_FOR_SERVE]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_missing() -> None:
    """Exit 2 with the pip command when Starlette, uvicorn or prometheus_client is missing."""
    missing = []
    for mod in ("starlette", "uvicorn", "prometheus_client"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        click.echo(f"error: `cxpar serve` needs {', '.join(missing)} (not installed); "
                   f"install them with: {INSTALL}", err=True)
        sys.exit(2)


@click.command("serve")
@click.argument("file")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Other than loopback needs --token (or --insecure).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--token", default=None, metavar="TOKEN",
              help=f"Require `Authorization: Bearer TOKEN` on the API [env {TOKEN_ENV}].")
@click.option("--insecure", is_flag=True,
              help="Allow listening on a non-loopback address without a token.")
@click.option("--max-body", type=click.IntRange(1), default=1024 * 1024, show_default=True,
              metavar="BYTES", help="Largest request body accepted (413 past it).")
@click.option("--grace", type=FiniteFloat(0), default=10.0, show_default=True,
              metavar="SECONDS",
              help="On SIGTERM/Ctrl-C: time in-flight runs get to finish before they are "
                   "cancelled.")
@click.option("--keep-runs", type=click.IntRange(1), default=1000, show_default=True,
              metavar="N", help="Finished runs kept for GET /v1/runs/{id}.")
@settings_options(*_serve_settings())
@config_option
def serve(file: str, host: str, port: int, token: str | None, insecure: bool,
          max_body: int, grace: float, keep_runs: int, config_path: str | None,
          **params: Any) -> None:
    """Serve FILE over HTTP: POST /v1/runs runs one stream per JSON record, with live
    events (SSE), batches, metrics and a web page at / (docs/serve.md).

    Takes the `cxpar run` options that make sense for a server (provider, sim, limits,
    breakers, timeout …), also from the environment and cxpar.toml.
    """
    check_missing()
    path = Path(file)
    if not path.exists():
        raise UsageError(f"no such file: `{file}`")
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is not None and not token.strip():
        raise UsageError("--token must not be empty")
    if not is_loopback(host) and token is None and not insecure:
        raise UsageError(f"refusing to listen on `{host}` without a token: anyone who can "
                         f"reach it could run the program (and spend your provider quota); "
                         f"pass --token (or set {TOKEN_ENV}), or --insecure")
    resolved = resolve(params, program=path, config_path=config_path)
    settings = resolved.settings.replace(clock="real")
    notice = resolved.config_notice()
    if notice:
        click.echo(notice, err=True)
    from cxpar.commands.run import load_for_cli
    from cxpar.plugins import prepare_run

    provider, extra_services = prepare_run(settings, resolved.config)
    program = load_for_cli(path, file, settings, services=extra_services)
    from cxpar.serve.server import serve_forever

    serve_forever(program, settings, host=host, port=port, token=token, max_body=max_body,
                  grace_s=grace, keep=keep_runs, provider=provider)
