"""``--executor ray`` vs ``--executor local`` (issue 23), through the real CLI.

A 2-CPU Ray head is started once (``ray start --head --block``, its start-up time is
reported on its own) and every Ray run joins it with ``--ray-address``, as a user with
a running cluster does. Rows (ratios from one run; the machine's other load shows as
noise, so re-measure on an idle machine):

- ``ray.cpu_heavy_ratio``: records that each run a CX loop of ~250 ms CPU; wall time
  of ``--executor ray`` (2 workers) / ``--executor local``. Target ≤ 0.7. The note
  gives the machine's CPU utilisation during each run (from ``/proc/stat``, so other
  processes count too).
- ``ray.io_bound_ratio``: 1 000 records of sim-provider calls on the real clock; the
  records phase (workers ready → last record, from ``--stats``) / local wall time.
  Target ≤ 1.1.
- ``ray.overhead_ms_per_record``: trivial records on 1 worker: (Ray records phase −
  local run) / records. Target ≤ 2 ms.
- ``ray.start_s``: ``ray start --head`` until it accepts drivers; ``ray.join_s``: a
  driver joining it and its workers ready (from ``--stats``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .core import ROOT, Row, compare, skipped

#: A CPU-bound record: ``n`` loop iterations (``n`` calibrated at run time).
CPU_LOOP = """
on input.record (event) {{
    var s = 0;
    var i = 0;
    while (i < {n}) {{
        s = (s + i * 7) % 1000003;
        i = i + 1;
    }}
    emit output.record {{ n: event.n, s: s }};
}}
"""
IO_BOUND = """
on input.record (event) {
    var r = think { prompt: "item " + event.n, a: part.a };
    emit output.record { n: event.n, a: r.a };
}
on part.a (event) { var x = infer { prompt: event.prompt }; return x.result; }
"""
TRIVIAL = """
on input.record (event) { emit output.record { n: event.n }; }
"""


_held = 0
_lock_file: Any = None


@contextlib.contextmanager
def ray_machine_lock() -> Iterator[None]:
    """One process at a time runs Ray for the bench or the tests on this machine (the
    test suite runs in parallel processes; the tests count and kill Ray's processes and
    the bench's timings need the cores). Re-entrant within a process."""
    global _held, _lock_file
    if _held == 0:
        _lock_file = open(Path(tempfile.gettempdir()) / "cxpar-ray.lock", "w")  # noqa: SIM115
        fcntl.flock(_lock_file, fcntl.LOCK_EX)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0:
            fcntl.flock(_lock_file, fcntl.LOCK_UN)
            _lock_file.close()
            _lock_file = None


@contextlib.contextmanager
def local_head(cpus: int = 2, timeout_s: float = 180.0) -> Iterator[str]:
    """A Ray head on this machine (``ray start --head --block`` in its own process
    group, a free port); yields its address and stops it (by that process's id). Holds
    :func:`ray_machine_lock` meanwhile."""
    with ray_machine_lock():
        yield from _head(cpus, timeout_s)


def _head(cpus: int, timeout_s: float) -> Iterator[str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         "--port=0", f"--num-cpus={cpus}", "--include-dashboard=false",
         "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True)
    assert proc.stdout is not None
    seen: list[str] = []
    address = None
    deadline = time.monotonic() + timeout_s
    try:
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"--address='([^']+)'", line)
            if m:
                address = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        if address is None:
            raise RuntimeError("ray start --head did not start:\n" + "".join(seen[-30:]))
        yield address
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # --block: stops what it started
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        proc.stdout.close()


def _load() -> str:
    """The machine's 1-minute load average (how busy it was: say it with the numbers)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def _busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def _cli(tmp: Path, program: str, records: int, *extra: str) -> dict[str, Any]:
    """One ``cxpar run`` batch: wall seconds, machine CPU utilisation, stderr."""
    prog = tmp / "bench.cx"
    prog.write_text(program, encoding="utf-8")
    inp = tmp / "in.jsonl"
    if not inp.exists() or sum(1 for _ in inp.open()) != records:
        inp.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(records)))
    out = tmp / "out.jsonl"
    b0, t0 = _busy()
    w0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "cxpar", "run", str(prog), "--input",
                          str(inp), "--output", str(out), "--no-progress", *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - w0
    b1, t1 = _busy()
    if res.returncode != 0:
        raise RuntimeError(f"cxpar run failed ({res.returncode}): {res.stderr[-800:]}")
    lines = out.read_text().splitlines()
    if len(lines) != records:
        raise RuntimeError(f"{len(lines)} result lines for {records} records")
    util = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    phases = {k: float(v) for k, v in re.findall(
        r"(Ray in|ready in|records in) ([\d.]+) s", res.stderr)}
    m = re.search(r"worker CPU [\d.]+ s = (\d+)%", res.stderr)
    if m:
        phases["worker_util"] = int(m.group(1)) / 100
    return {"wall": wall, "util": util, "stderr": res.stderr, "phases": phases}


def _calibrate(tmp: Path, target_ms: float) -> int:
    """Loop iterations for ``target_ms`` of CPU per record (local executor, 3 records)."""
    n = 50_000
    short = _cli(tmp, CPU_LOOP.format(n=n), 3, "--streams", "1")["wall"]
    long = _cli(tmp, CPU_LOOP.format(n=3 * n), 3, "--streams", "1")["wall"]
    per_iter = max(long - short, 0.01) / (3 * 2 * n)  # the CLI's start-up cancels out
    return max(1000, int(target_ms / 1000 / per_iter))


def run(mode: str) -> list[Row]:
    try:
        import ray  # noqa: F401
    except ImportError:
        why = "Ray is not installed (pip install 'cxpar[ray]')"
        return [skipped("ray.cpu_heavy_ratio", {}, why, target="ratio <= 0.7")]
    size = {"tiny": (4, 20.0, 40, 40), "quick": (40, 250.0, 1000, 500),
            "full": (200, 250.0, 1000, 2000)}[mode]
    cpu_records, cpu_ms, io_records, trivial = size
    rows: list[Row] = []
    load0 = _load()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        with local_head(2) as address:
            start_s = time.perf_counter() - t0
            ray_args = ("--executor", "ray", "--ray-address", address, "--stats")
            n = _calibrate(tmp, cpu_ms)
            prog = CPU_LOOP.format(n=n)
            local = _cli(tmp, prog, cpu_records, "--streams", "2")
            on_ray = _cli(tmp, prog, cpu_records, *ray_args, "--workers", "2",
                          "--streams", "2")
            rows.append(compare(
                "ray.cpu_heavy_ratio", {"records": cpu_records, "cpu_ms": cpu_ms,
                                        "workers": 2}, [on_ray["wall"]], [local["wall"]],
                "s", baseline_name="--executor local", target="ratio <= 0.7",
                check=lambda r: r <= 0.7,
                note=f"Ray workers used {on_ray['phases'].get('worker_util', 0):.0%} of 2 "
                     f"cores; machine busy (all processes): ray run {on_ray['util']:.0%}, "
                     f"local run {local['util']:.0%}; joined in "
                     f"{on_ray['phases'].get('Ray in', 0):.1f} s, workers ready in "
                     f"{on_ray['phases'].get('ready in', 0):.1f} s; load average "
                     f"{load0} before the bench, {_load()} after this row"))
            io_args = ("--clock", "real", "--latency", "think=100,infer=50", "--streams",
                       "100")
            local = _cli(tmp, IO_BOUND, io_records, *io_args)
            on_ray = _cli(tmp, IO_BOUND, io_records, *io_args, *ray_args)
            phase = on_ray["phases"].get("records in", on_ray["wall"])
            rows.append(compare(
                "ray.io_bound_ratio", {"records": io_records, "latency_ms": 100},
                [phase], [local["wall"]], "s", baseline_name="--executor local (wall)",
                target="ratio <= 1.1", check=lambda r: r <= 1.1,
                note=f"Ray wall time with joining and start-up: {on_ray['wall']:.1f} s"))
            local = _cli(tmp, TRIVIAL, trivial, "--streams", "100")
            on_ray = _cli(tmp, TRIVIAL, trivial, *ray_args, "--workers", "1")
            phase = on_ray["phases"].get("records in", on_ray["wall"])
            base = _cli(tmp, TRIVIAL, 1, "--streams", "100")["wall"]  # the CLI alone
            local_records = max(local["wall"] - base, 0.0)
            per = (phase - local_records) / trivial * 1000  # noise can make it negative
            rows.append(compare("ray.overhead_ms_per_record", {"records": trivial,
                                                               "workers": 1},
                                [per], None, "ms", target="value <= 2",
                                check=lambda v: v <= 2, on="value",
                                note=f"records phase on 1 Ray worker {phase:.2f} s vs "
                                     f"{local_records:.2f} s locally (CLI start-up "
                                     f"{base:.2f} s taken off)"))
            rows.append(compare("ray.start_s", {"cpus": 2}, [start_s], None, "s",
                                note="ray start --head until it accepts drivers"))
            join = on_ray["phases"].get("Ray in", 0) + on_ray["phases"].get("ready in", 0)
            rows.append(compare("ray.join_s", {"workers": 1}, [join], None, "s",
                                note="a driver joining the cluster + its workers ready"))
    return rows
