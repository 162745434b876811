"""``--executor``, ``--ray-address`` and ``--workers`` on the command line (no cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, cli, write_jsonl


def _files(tmp_path: Path) -> tuple[str, str]:
    prog = tmp_path / "p.cx"
    prog.write_text('on input.record (event) { emit output.record { n: event.n }; }\n')
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": 1}])
    return str(prog), str(inp)


def test_without_ray_installed_exit_2_with_the_install_command(tmp_path: Path) -> None:
    prog, inp = _files(tmp_path)
    code = ("import sys; sys.modules['ray'] = None; sys.argv[0] = 'cxpar'; "
            "from cxpar.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code, "run", prog, "--input", inp,
                          "--executor", "ray"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stderr
    assert "pip install 'cxpar[ray]'" in res.stderr
    assert "Traceback" not in res.stderr


def test_ray_options_need_the_ray_executor_and_a_batch(tmp_path: Path) -> None:
    prog, inp = _files(tmp_path)
    for args, msg in (
            (["--input", inp, "--workers", "2"], "`--workers` needs `--executor ray`"),
            (["--input", inp, "--ray-address", "auto"],
             "`--ray-address` needs `--executor ray`"),
            (["--executor", "ray"], "needs `--input"),
            (["--input", inp, "--executor", "ray", "--workers", "0"], "--workers must be >= 1"),
            (["--input", inp, "--executor", "dask"], "'dask' is not one of"),
    ):
        res = cli("run", prog, *args, timeout=60)
        assert res.returncode == 2, (args, res.stderr)
        assert msg in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr


def test_an_address_where_no_cluster_runs_is_a_clear_error(tmp_path: Path) -> None:
    prog, inp = _files(tmp_path)
    res = cli("run", prog, "--input", inp, "--executor", "ray", "--ray-address",
              "127.0.0.1:9", timeout=120)
    assert res.returncode == 2, res.stderr
    assert "--ray-address 127.0.0.1:9: no Ray cluster answers at" in res.stderr
    assert "Traceback" not in res.stderr


def test_default_starts_a_local_ray_runtime_and_stops_it(tmp_path: Path) -> None:
    """No ``--ray-address``: cxpar starts a Ray runtime sized to the machine (here with
    the llvm backend, compiled by each worker) and shuts it down after the run."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        import pytest

        pytest.skip("Ray is not installed: pip install -e '.[test]' (or 'cxpar[ray]')")
    prog = tmp_path / "p.cx"
    prog.write_text("""
on input.record (event) {
    var total = 0;
    for (var i = 0; i < event.n; i++) { total += i; }
    emit output.record { n: event.n, total: total };
}
""")
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(12)])
    out = tmp_path / "out.jsonl"
    from bench.ray_executor import ray_machine_lock

    with ray_machine_lock():  # no other test process runs Ray meanwhile
        before = _raylets()
        res = cli("run", str(prog), "--input", str(inp), "--output", str(out),
                  "--ordered", "--executor", "ray", "--backend", "llvm", "--stats",
                  "--no-progress", timeout=300)
        after = _raylets()
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["output"]["total"] for x in lines] == [n * (n - 1) / 2 for n in range(12)]
    assert "started Ray in" in res.stderr
    assert after <= before  # the runtime it started is gone


def _raylets() -> int:
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if "raylet" in line.split(" ", 1)[0])
