"""Runaway programs through the real CLI: event floods, loops that never suspend,
Ctrl-C, resource exhaustion and ``--streams`` far above the record count.

Each test proves *what* ended the program from its message (a timeout, not the loop
limit; a flood, not a stall), so no test measures wall time; the subprocess timeouts
only turn a hang into a failure. ``bench/runaway.py`` measures how close to the
deadline programs end.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CXPAR = Path(sys.executable).with_name("cxpar")

#: Let only the mechanism under test end a program.
NO_LIMITS = {"CXPAR_LOOP_LIMIT_S": "600"}


def cxpar(tmp_path: Path, text: str, *args: str, env: dict[str, str] | None = None,
          timeout: float = 120, preexec: object = None) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "p.cx"
    src.write_text(text)
    return subprocess.run([str(CXPAR), "run", str(src), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          preexec_fn=preexec)  # type: ignore[arg-type]


def batch(tmp_path: Path, text: str, records: list[str], *args: str,
          **kw: Any) -> subprocess.CompletedProcess[str]:
    """``cxpar run`` over ``records`` (JSON lines), results on stdout."""
    path = tmp_path / "r.jsonl"
    path.write_text("".join(f"{line}\n" for line in records))
    return cxpar(tmp_path, text, "--input", str(path), "--no-progress", *args, **kw)


def assert_cx_error(r: subprocess.CompletedProcess[str], message: str) -> None:
    assert r.returncode == 3, r.stderr
    assert message in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------ floods

FLOOD = "on a.b (e) { emit a.b; emit a.b; }\nemit a.b;\n"


@pytest.mark.parametrize("clock", ["virtual", "real"])
def test_emit_flood_is_a_runtime_error_naming_the_event(tmp_path: Path, clock: str) -> None:
    r = cxpar(tmp_path, FLOOD, "--clock", clock, env={**NO_LIMITS, "CXPAR_FLOOD_LIMIT": "50000"})
    assert_cx_error(r, "event flood: more than 50000 handlers")
    assert "`a.b` is emitted faster" in r.stderr
    assert "p.cx:1:24" in r.stderr  # the emit that crossed the bound
    assert r.stderr.count("error[") == 1, r.stderr


@pytest.mark.parametrize(("toml", "message"), [
    ("flood_limit = 20000", "event flood: more than 20000 handlers"),
    ("loop_limit_s = 0.5", "loop ran for more than 0.5 s"),
])
def test_limits_from_cxpar_toml(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "cxpar.toml").write_text(f"[run]\n{toml}\n")
    text = FLOOD if "flood" in toml else "while (true) { }\n"
    r = cxpar(tmp_path, text, "--clock", "virtual", env={"CXPAR_LOOP_LIMIT_S": ""})
    assert_cx_error(r, message)
    assert "in [run] of cxpar.toml" in r.stderr


def test_standalone_module_reads_the_limits_from_the_environment(tmp_path: Path) -> None:
    src = tmp_path / "p.cx"
    src.write_text("while (true) { }\n")
    out = tmp_path / "out.py"
    subprocess.run([str(CXPAR), "compile", "-o", str(out), str(src)], check=True)
    r = subprocess.run([sys.executable, str(out)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "CXPAR_LOOP_LIMIT_S": "0.5"})
    assert_cx_error(r, "loop ran for more than 0.5 s")
    bad = subprocess.run([sys.executable, str(out)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "CXPAR_FLOOD_LIMIT": "many"})
    assert bad.returncode == 2 and "CXPAR_FLOOD_LIMIT" in bad.stderr, bad.stderr


def test_flood_of_async_handlers(tmp_path: Path) -> None:
    text = ("on a.b (e) { emit a.b; emit a.b; await { durationMs: 1 }; }\n"
            "emit a.b;\n")
    r = cxpar(tmp_path, text, "--clock", "virtual",
              env={**NO_LIMITS, "CXPAR_FLOOD_LIMIT": "20000"})
    assert_cx_error(r, "event flood")


def test_a_big_legitimate_fan_out_is_not_a_flood(tmp_path: Path) -> None:
    text = ("var n = 0;\non a.b (e) { n += 1; }\n"
            "for (var i = 0; i < 200000; i += 1) { emit a.b; }\n"
            "on system.start { print(n); }\n")
    # the loop limit (20 s by default) must not end a slow run on a loaded machine
    r = cxpar(tmp_path, text, "--clock", "virtual", env=NO_LIMITS)
    assert (r.returncode, r.stdout) == (0, "200000\n"), r.stderr


def test_real_clock_timeout_ends_a_flood(tmp_path: Path) -> None:
    r = cxpar(tmp_path, FLOOD, "--clock", "real", "--timeout", "1000",
              env={**NO_LIMITS, "CXPAR_FLOOD_LIMIT": "100000000"})
    assert_cx_error(r, "program timed out after 1000 ms")


# ------------------------------------------------------------------------ loops

LOOPS = {
    "while": "while (true) { }",
    "c-for": "for (var i = 0; ; i += 1) { }",
    "for-in": "var a = []; for (var i = 0; i < 30000; i += 1) { a[i] = i; }\n"
              "var n = 0; for (var x in a) { for (var y in a) { n += 1; } }",
    "nested-while": "var k = 0; while (true) { while (k >= 0) { k += 1; } }",
}

PLACES = {
    "top level": "{loop}\n",
    "handler": "on a.b (e) {{ {loop} }}\nemit a.b;\n",
    "async handler": "on a.b (e) {{ await {{ durationMs: 1 }}; {loop} }}\nemit a.b;\n",
    "realize": "object W {{ realize(self: object) {{ {loop} }} }}\nvar w = new W({{}});\n",
    "branch": "on a.b (e) {{ {loop} }}\nvar r = think {{ prompt: \"p\", k: a.b }};\n",
}


#: Every loop form in a handler, and the simplest loop in every place code runs.
CASES = sorted({(loop, "handler") for loop in LOOPS} | {("while", p) for p in PLACES}
               | {("for-in", "top level")})


@pytest.mark.parametrize(("loop", "place"), CASES)
def test_every_loop_honours_the_timeout(tmp_path: Path, loop: str, place: str) -> None:
    text = PLACES[place].format(loop=LOOPS[loop])
    r = cxpar(tmp_path, text, "--clock", "real", "--timeout", "700", env=NO_LIMITS)
    assert_cx_error(r, "program timed out after 700 ms")


@pytest.mark.parametrize("loop", ["while (true) { var x = 1; }",
                                  "var n = 0; for (var i = 0; ; i += 1) { n += i; }"])
def test_native_loops_honour_the_timeout(tmp_path: Path, loop: str) -> None:
    r = cxpar(tmp_path, PLACES["handler"].format(loop=loop), "--backend", "llvm",
              "--timeout", "700", env=NO_LIMITS)
    assert_cx_error(r, "program timed out after 700 ms")


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_every_loop_honours_the_loop_limit(tmp_path: Path, loop: str) -> None:
    text = PLACES["handler"].format(loop=LOOPS[loop])
    r = cxpar(tmp_path, text, "--clock", "virtual", env={"CXPAR_LOOP_LIMIT_S": "0.5"})
    assert_cx_error(r, "loop ran for more than 0.5 s without finishing")
    line = LOOPS[loop].count("\n") + 1  # the last loop of the text is the endless one
    assert f"p.cx:{line}:" in r.stderr, r.stderr


def test_a_loop_that_waits_is_not_a_runaway(tmp_path: Path) -> None:
    text = ("var n = 0;\nwhile (n < 300) { await { durationMs: 5 }; n += 1; }\n"
            "print(n);\n")
    r = cxpar(tmp_path, text, "--clock", "real", env={"CXPAR_LOOP_LIMIT_S": "0.5"})
    assert (r.returncode, r.stdout) == (0, "300\n"), r.stderr


@pytest.mark.parametrize(("loop", "place", "clock"), [
    ("while", "top level", "real"), ("while", "handler", "virtual"),
    ("for-in", "async handler", "real"), ("c-for", "realize", "virtual"),
    ("nested-while", "branch", "real"),
])
def test_first_ctrl_c_stops_a_loop(tmp_path: Path, loop: str, place: str,
                                   clock: str) -> None:
    src = tmp_path / "p.cx"
    src.write_text('print("go");\n' + PLACES[place].format(loop=LOOPS[loop]))
    p = subprocess.Popen([str(CXPAR), "run", "--clock", clock, str(src)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, **NO_LIMITS, "PYTHONUNBUFFERED": "1"})
    try:
        assert p.stdout is not None and p.stdout.readline() == "go\n"
        p.send_signal(signal.SIGINT)  # once
        _out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ------------------------------------------------------------ resources, printing

def test_new_in_realize_recursing_is_a_runtime_error(tmp_path: Path) -> None:
    text = ("object A { realize(self: object) { var b = new A({}); } }\n"
            "var a = new A({});\nprint(\"done\");\n")
    r = cxpar(tmp_path, text)
    assert_cx_error(r, "`new A` nested 200 deep inside `realize`")
    assert "p.cx:1:44" in r.stderr
    assert r.stdout == "done\n"


def test_runaway_string_growth_is_a_runtime_error(tmp_path: Path) -> None:
    # No memory limit: Linux overcommits, so only the string bound stops this early.
    text = 'var s = "xxxxxxxxxxxxxxxx";\nwhile (true) { s = s + s; }\n'
    r = cxpar(tmp_path, text)
    assert_cx_error(r, "string too long: `+` would build 536,870,912 characters")
    assert "p.cx:2:20" in r.stderr


@pytest.mark.parametrize(("use", "where"), [
    ("print(o);", "p.cx:3:1"), ("var t = \"a\" + o;", "p.cx:3:9"),
    ("var t = str(o);", "p.cx:3:9"),
])
def test_printing_a_value_shared_2_to_the_40_times_is_a_runtime_error(
        tmp_path: Path, use: str, where: str) -> None:
    # 40 objects, each holding the previous one twice: printed, 2^40 leaves.
    text = ('var o = {x: 1}; var i = 0;\nwhile (i < 40) { o = {a: o, b: o}; i += 1; }\n'
            + use + "\n")
    r = cxpar(tmp_path, text, timeout=60)
    assert_cx_error(r, "the printed value would be longer than 268,435,456 characters")
    assert where in r.stderr


def test_a_record_whose_output_is_too_long_fails_alone(tmp_path: Path) -> None:
    text = ("on input.record (e) { var o = {x: 1}; var i = 0;\n"
            "  while (i < e.n) { o = {a: o, b: o}; i += 1; }\n"
            "  emit output.record { n: e.n, o: o }; }\n")
    r = batch(tmp_path, text, ['{"n": 1}', '{"n": 40}', '{"n": 2}'], "--ordered", timeout=60)
    assert r.returncode == 3, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2], r.stderr
    assert lines[0]["output"]["n"] == 1 and lines[2]["output"]["n"] == 2
    assert "longer than 268,435,456 characters" in lines[1]["error"]["message"]


def test_running_out_of_memory_is_a_runtime_error(tmp_path: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    # Each string is below the length bound; together they pass the 1 GiB limit.
    text = ('var s = "x"; var i = 0; while (i < 20) { s = s + s; i += 1; }\n'
            'var a = []; i = 0;\nwhile (true) { a[i] = s + i; i += 1; }\n')
    r = cxpar(tmp_path, text, preexec=limit, env=NO_LIMITS)
    assert_cx_error(r, "out of memory: a value grew too large")
    assert "p.cx:3:" in r.stderr


def test_a_lone_surrogate_is_never_a_crash(tmp_path: Path) -> None:
    """A literal cannot hold one (CX105, rule 31); data can, and prints escaped."""
    r = cxpar(tmp_path, 'print("ok");\nvar s = "a\\ud800";\nprint(s);\n')
    assert r.returncode == 1 and "CX105" in r.stderr and "p.cx:2:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    r = batch(tmp_path, 'on input.record (e) {\n  print(e.s);\n}\n', ['{"s": "a\\ud800"}'])
    assert r.returncode == 0 and "a\\ud800" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_printing_a_lone_surrogate_is_a_runtime_error(tmp_path: Path) -> None:
    # A CX string cannot hold one (CX105); a JSON record can.
    text = "on input.record (e) {\n  print(e.s);\n}\n"
    r = batch(tmp_path, text, ['{"s": "ok"}', '{"s": "a\\ud800"}'], "--ordered",
              "--output", str(tmp_path / "out.jsonl"))
    assert_cx_error(r, "cannot print \\ud800")
    assert "p.cx:2:3" in r.stderr
    assert r.stdout == "ok\n"


# ------------------------------------------------------------------------ batches

def test_streams_far_above_the_record_count(tmp_path: Path) -> None:
    # A million idle workers would take gigabytes; 50 take nothing. The run is measured
    # from a fresh parent, whose children's peak is this run's alone.
    measure = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "print(r.returncode, len(r.stdout.splitlines()),\n"
               "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    (tmp_path / "p.cx").write_text("on input.record (e) { emit output.record { n: e.n }; }\n")
    (tmp_path / "r.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(50)))
    r = subprocess.run([sys.executable, "-c", measure, str(CXPAR), "run", str(tmp_path / "p.cx"),
                        "--input", str(tmp_path / "r.jsonl"), "--no-progress",
                        "--streams", "1000000"], capture_output=True, text=True, timeout=120)
    code, lines, peak_kb = map(int, r.stdout.split())
    assert (code, lines) == (0, 50), r.stderr
    assert peak_kb < 1_000_000, peak_kb


def test_a_flooding_record_fails_alone(tmp_path: Path) -> None:
    text = ("on a.b (e) { emit a.b; emit a.b; }\n"
            "on input.record (e) { if (e.flood) { emit a.b; } "
            "emit output.record { ok: true }; }\n")
    r = batch(tmp_path, text, ['{"flood": false}', '{"flood": true}', '{"flood": false}'],
              "--clock", "virtual", "--ordered",
              env={**NO_LIMITS, "CXPAR_FLOOD_LIMIT": "20000"})
    lines = r.stdout.splitlines()
    assert r.returncode == 3, r.stderr
    assert lines[0] == '{"index": 0, "output": {"ok": true}}'
    assert lines[1].startswith('{"index": 1, "error": {"type": "runtime", "message": '
                               '"event flood')
    assert lines[2] == '{"index": 2, "output": {"ok": true}}'
