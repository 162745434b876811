"""`cxpar serve` under load: requests/s and latency percentiles with the sim provider.

* ``serve.requests_per_s``: a real ``cxpar serve`` process on 127.0.0.1 (any free port)
  answers ``POST /v1/runs`` for a one-call program (``think`` at 10 ms on the sim), sent
  by an httpx client with ``concurrency`` requests in flight. The baseline is the same
  runs through the Python API in one process (``program.run`` with the same number in
  flight), so the ratio is what HTTP, JSON and the server cost, measured within one run.
* ``serve.cpu_ms_per_request_vs_bare``: the same server CPU per request against a bare
  Starlette app on uvicorn answering the same request with a constant (HTTP parsing,
  routing and JSON: the framework's floor).
* ``serve.latency_p50_ms`` / ``serve.latency_p99_ms``: per-request latency of the same
  load, seen by the client (the sim's 10 ms included).
* ``serve.cpu_ms_per_request``: CPU time the server process spent per request (from
  ``/proc``), against the CPU time per run of the in-process baseline — the number that
  holds on a busy machine (``1000 / value`` is the requests/s one idle core sustains).

Two shared cores: the client, the server and everything else on the machine compete,
so absolute numbers move with load; the ratio is the number to compare.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .core import ROOT, Row, compare

PROGRAM = """
/// @external
on input.record (e) {
    var r = think { prompt: "Classify: " + e.text };
    emit output.record { id: e.id, answer: r.result };
}
"""

#: A bare Starlette app that answers like the server (the framework's floor).
BARE = """
import socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def run(request):
    record = await request.json()
    return JSONResponse({"id": "r1", "output": {"id": record["id"], "answer": "x"}})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sys.stderr.write(f"bare on http://127.0.0.1:{sock.getsockname()[1]}/ \\n")
sys.stderr.flush()
server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/runs", run,
                        methods=["POST"])]), log_level="warning"))
server.run(sockets=[sock])
"""

SIZES = {"tiny": (20, 10, 1), "quick": (400, 50, 3), "full": (2000, 100, 5)}


def _start(path: Path | None) -> tuple[subprocess.Popen[str], str]:
    """``cxpar serve path`` (or, for None, the bare app) and its URL."""
    env = {k: v for k, v in os.environ.items() if k != "CXPAR_SERVE_TOKEN"}
    args = ["-c", BARE] if path is None else \
        ["-m", "cxpar", "serve", str(path), "--port", "0", "--latency", "think=10"]
    proc = subprocess.Popen([sys.executable, *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"on (http://\S+?)/ ", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"cxpar serve did not start: {line}{proc.stderr.read()}")
    return proc, m.group(1)


async def _http(url: str, n: int, concurrency: int) -> tuple[float, list[float]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        async def one(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await c.post("/v1/runs", json={"id": i, "text": "hello"})
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200 or r.json()["output"]["id"] != i:
                    raise RuntimeError(f"bad answer: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(min(n, concurrency))))  # warm up
        lat.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0, lat


async def _api(path: Path, n: int, concurrency: int) -> float:
    import cxpar

    program = cxpar.load(path)
    sem = asyncio.Semaphore(concurrency)
    async with cxpar.Runtime(cxpar.RunSettings(latency={"think": 10})) as rt:
        async def one(i: int) -> None:
            async with sem:
                r = await program.run({"id": i, "text": "hello"}, runtime=rt)
                assert r.output["id"] == i

        await asyncio.gather(*(one(i) for i in range(min(n, concurrency))))
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))]


def run(mode: str) -> list[Row]:
    n, concurrency, reps = SIZES[mode]
    params = {"requests": n, "concurrency": concurrency, "think_ms": 10}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "serve_bench.cx"
        path.write_text(PROGRAM, encoding="utf-8")
        proc, url = _start(path)
        bare, bare_url = _start(None)
        try:
            http_rps, api_rps, p50, p99, cpu, api_cpu = [], [], [], [], [], []
            bare_rps, bare_cpu = [], []
            for _ in range(reps):
                c0 = _cpu_s(bare.pid)
                bare_rps.append(n / asyncio.run(_http(bare_url, n, concurrency))[0])
                bare_cpu.append((_cpu_s(bare.pid) - c0) * 1000 / (n + min(n, concurrency)))
                c0 = _cpu_s(proc.pid)
                wall, lat = asyncio.run(_http(url, n, concurrency))
                cpu.append((_cpu_s(proc.pid) - c0) * 1000 / (n + min(n, concurrency)))
                http_rps.append(n / wall)
                p50.append(_pct(lat, 0.5) * 1000)
                p99.append(_pct(lat, 0.99) * 1000)
                c0 = time.process_time()
                api_rps.append(n / asyncio.run(_api(path, n, concurrency)))
                api_cpu.append((time.process_time() - c0) * 1000 / (n + min(n, concurrency)))
        finally:
            for p in (proc, bare):
                p.terminate()
                p.wait(timeout=60)
    return [
        compare("serve.requests_per_s", params, http_rps, api_rps, "req/s",
                baseline_name="same runs through the Python API, in process",
                note="ratio = HTTP req/s ÷ in-process runs/s"),
        compare("serve.requests_per_s_vs_bare", params, http_rps, bare_rps, "req/s",
                baseline_name="a bare Starlette app on uvicorn answering the same request",
                note="ratio = cxpar serve ÷ the framework's floor, same client and load"),
        compare("serve.cpu_ms_per_request", params, cpu, api_cpu, "ms",
                baseline_name="CPU per run through the Python API, in process",
                note="server process CPU per request (load-independent)"),
        compare("serve.cpu_ms_per_request_vs_bare", params, cpu, bare_cpu, "ms",
                baseline_name="CPU per request of the bare Starlette app",
                note="server process CPU per request: cxpar serve ÷ the framework's floor"),
        compare("serve.latency_p50_ms", params, p50, None, "ms",
                note="client-side latency, sim think 10 ms included"),
        compare("serve.latency_p99_ms", params, p99, None, "ms",
                note="client-side latency, sim think 10 ms included"),
    ]


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "quick"):
        print(json.dumps(row.to_json()))
