"""Native loops through the CLI and in standalone modules: `--explain`, `--emit llvm-ir`,
the loop guard, and `cxpar compile -o out.py` with and without llvmlite."""

from __future__ import annotations

import io
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

from cxpar.codegen.llvm import jit
from cxpar.codegen.llvm.native import bind, load_loops
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory

from .harness import ROOT

PROGRAM = """\
var h = 7; var i = 0; var ok = true;
while (i < 200000) { h = (h * 31 + i) % 1000003; i++; }
on report (e) {
    var n = 0; var best = -1;
    for (var k = 0; k < 1000; k++) { if (k % 7 == 3 && k > best) { best = k; n += 1; } }
    print("report", n, best);
}
var names = ["a", "b"]; var j = 0;
while (j < len(names)) { print(names[j]); j += 1; }
print(h, i, ok);
emit report;
"""


def _cli(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          env={**os.environ, **env})


def _write(tmp_path: Path, text: str = PROGRAM) -> Path:
    path = tmp_path / "loops.cx"
    path.write_text(text, encoding="utf-8")
    return path


def test_explain_says_what_was_lifted_and_why_not(tmp_path: Path) -> None:
    path = _write(tmp_path)
    py = _cli("run", "--clock", "virtual", str(path))
    r = _cli("run", "--clock", "virtual", "--backend", "llvm", "--explain", str(path))
    assert (r.stdout, r.returncode) == (py.stdout, py.returncode) == (
        "a\nb\n604574 200000 true\nreport 143 997\n", 0)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("llvm: 2 of 3 loops lifted to native code")
    assert "while loop at " + str(path) + ":2:1 (top level): lifted to native code " \
        "(i: number, h: number)" in r.stderr
    assert f"for loop at {path}:5:5 (on report): lifted" in r.stderr
    assert f"while loop at {path}:9:1 (top level): not lifted: a call to `len` " \
        f"(at {path}:9:12)" in r.stderr
    assert lines[-1].startswith("llvm: events are routed in Python until this process has "
                                "routed 524,288 of them, then by the JIT-compiled router")
    off = _cli("run", "--backend", "llvm", "--explain", str(path), CXPAR_NATIVE_LOOPS="0",
               CXPAR_NATIVE_ROUTING_AFTER="0")
    assert off.stdout == py.stdout and "native loops are off" in off.stderr
    assert off.stderr.splitlines()[-1] == "llvm: events are routed by the JIT-compiled router"


def test_emit_llvm_ir_shows_the_lifted_loops(tmp_path: Path) -> None:
    path = _write(tmp_path)
    r = _cli("compile", "--emit", "llvm-ir", str(path))
    assert r.returncode == 0, r.stderr
    ir = r.stdout
    assert "; ModuleID = 'cxpar.loops'" in ir
    assert "define internal { i32, double, double } @cx_loop_0(i32 %resume" in ir
    assert "define ptr @cx_loop_0_py(ptr %self, ptr %args, i64 %nargs)" in ir
    assert "frem double" in ir and "@cx_loop_2" in ir and "@cx_loop_1" not in ir
    assert "not lifted: a call to `len`" in ir
    mod = jit.load_llvmlite().parse_assembly(ir)  # one valid module: dispatch + loops
    mod.verify()


def test_loop_guard_stops_a_native_loop_like_a_python_one(tmp_path: Path) -> None:
    """The native loop returns to Python every 65 536 iterations, where the python
    backend's guard stops a loop that never finishes: same report, same exit code."""
    path = _write(tmp_path, "var x = 0;\nwhile (true) { x += 1; }\nprint(x);\n"
                            "on system.start (e) { print(x > 0); }\n")
    runs = [_cli("run", "--backend", b, str(path), CXPAR_LOOP_LIMIT_S="0.3")
            for b in ("python", "llvm")]
    for r in runs:
        assert r.returncode == 3
        assert r.stdout == "true\n"
        assert "loop ran for more than 0.3 s without finishing" in r.stderr
        assert f"--> {path}:2:1" in r.stderr
    assert runs[0].stderr == runs[1].stderr


def test_standalone_module_runs_native_loops_and_falls_back(tmp_path: Path) -> None:
    path = _write(tmp_path)
    out = tmp_path / "out.py"
    assert _cli("compile", str(path), "-o", str(out)).returncode == 0
    expected = _cli("run", "--clock", "virtual", str(path))
    native = subprocess.run([sys.executable, str(out), "--clock", "virtual"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert (native.stdout, native.stderr, native.returncode) == (
        expected.stdout, expected.stderr, 0)
    # Without llvmlite the same module runs its Python loops, with the same output.
    blocked = tmp_path / "blocked"
    (blocked / "llvmlite").mkdir(parents=True)
    (blocked / "llvmlite" / "__init__.py").write_text(
        "raise ImportError('llvmlite is not installed here')\n")
    fallback = subprocess.run([sys.executable, str(out), "--clock", "virtual"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(blocked)})
    assert (fallback.stdout, fallback.stderr, fallback.returncode) == (
        expected.stdout, expected.stderr, 0)


def test_standalone_module_really_calls_native_code(tmp_path: Path) -> None:
    path = _write(tmp_path)
    out = tmp_path / "out.py"
    assert _cli("compile", str(path), "-o", str(out)).returncode == 0
    ns = runpy.run_path(str(out), run_name="not_main")
    loops = load_loops(ns["__cx_loops_ir__"], ns["__cx_loop_symbols__"])
    assert loops is not None and len(loops) == 2
    calls: list[int] = []

    def counting(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            calls.append(args[0])
            return fn(*args)
        return call

    stdout = io.StringIO()
    code = run_factory(bind(ns["__cx_program__"], [counting(f) for f in loops]),
                       ns["__cx_spans__"], {ns["__cx_file__"]: ns["__cx_source__"]},
                       RunSettings(clock="virtual"), stdout=stdout, stderr=io.StringIO())
    assert code == 0 and stdout.getvalue() == "a\nb\n604574 200000 true\nreport 143 997\n"
    # 200 000 iterations: four calls (three pauses every 65 536), then the handler's loop.
    assert calls == [0, 1, 1, 1, 0]


def test_explain_needs_the_llvm_backend(tmp_path: Path) -> None:
    r = _cli("run", "--explain", str(_write(tmp_path)))
    assert r.returncode == 2 and "use it with `--backend llvm`" in r.stderr
    assert r.stdout == ""
