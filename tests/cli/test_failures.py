"""SPEC rule 6 through the real CLI: failures recorded only in `_errors` are summarised
on stderr, `--strict` makes them exit 3, retried-then-recovered attempts are warnings."""

from __future__ import annotations

import socket
from pathlib import Path

from .test_settings import cx, project

FAILING = """on check.a (e) { await { durationMs: 5000 }; return 1; }
var r = think { prompt: "x", a: check.a, b: nobody.here, timeout: 100 };
print(r._parallel.failed);
"""


def test_summary_on_stderr_and_exit_0(tmp_path: Path) -> None:
    prog = project(tmp_path, None, FAILING)
    proc = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "2\n")
    assert "warning: 3 call failures recorded only in `_errors` (2 timeout, 1 no_handler)" \
        in proc.stderr
    assert f"first timeout: `think` at {prog}:2:9: `think` timed out after 100 ms" \
        in proc.stderr
    assert "first no_handler: `b` of `think`" in proc.stderr
    assert "`--strict` makes these failures exit 3" in proc.stderr


def test_strict_from_every_source(tmp_path: Path) -> None:
    prog = project(tmp_path, None, FAILING)
    for args, env in ((["--strict"], {}), ([], {"CXPAR_STRICT": "1"})):
        proc = cx("run", "--clock", "virtual", *args, str(prog), cwd=tmp_path, env=env)
        assert (proc.returncode, proc.stdout) == (3, "2\n"), proc.stderr
        assert "error: 3 call failures recorded only in `_errors`" in proc.stderr
    project(tmp_path, "[run]\nstrict = true\n", FAILING)
    proc = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert proc.returncode == 3
    clean = project(tmp_path, "[run]\nstrict = true\n", "var r = think { prompt: \"x\" };\n")
    proc = cx("run", "--clock", "virtual", str(clean), cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_model_is_not_silent(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    prog = project(tmp_path, None, 'var r = think { prompt: "hi" };\nprint(r.result);\n')
    proc = cx("run", "--provider", "openai", "--base-url", url, "--model", "m", str(prog),
              cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "null\n")
    assert "1 call failure recorded only in `_errors` (1 provider)" in proc.stderr
    assert f"cannot reach {url}" in proc.stderr
    strict = cx("run", "--strict", "--provider", "openai", "--base-url", url, "--model", "m",
                str(prog), cwd=tmp_path)
    assert strict.returncode == 3


RECOVERS = """var n = 0;
on flaky.x (e) {
    n += 1;
    if (n < 3) { var bad = null; return bad.field; }
    return "ok on attempt " + n;
}
var r = think { prompt: "x", v: flaky.x, retries: 3 };
print(r.v);
print(r._errors);
"""


def test_recovered_attempts_are_warnings(tmp_path: Path) -> None:
    prog = project(tmp_path, None, RECOVERS)
    proc = cx("run", "--clock", "virtual", "--strict", str(prog), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "ok on attempt 3\nnull\n"), proc.stderr
    assert "warning[CX501]: attempt 1 of 4 failed: cannot read property `field` of null; " \
        "retrying" in proc.stderr
    assert "warning[CX501]: attempt 2 of 4 failed" in proc.stderr
    assert "= note: in handler `on flaky.x` (branch `v` of `think`, event `flaky.x`)" \
        in proc.stderr
    assert "error" not in proc.stderr
    assert f"--> {prog}:4:" in proc.stderr


def test_final_failed_attempt_is_an_error(tmp_path: Path) -> None:
    prog = project(tmp_path, None, RECOVERS.replace("retries: 3", "retries: 1"))
    proc = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert proc.returncode == 3
    assert "warning[CX501]: attempt 1 of 2 failed" in proc.stderr
    assert "error[CX501]: cannot read property `field` of null" in proc.stderr


def test_batch_summary_names_the_record(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"ok": true}\n{"ok": false}\n', encoding="utf-8")
    prog = project(tmp_path, None, """/// @external
on input.record (e) {
    var r = think { prompt: "x", v: nobody.here };
    emit output.record { failed: r._parallel.failed };
}
""")
    proc = cx("run", "--clock", "virtual", "--input", "in.jsonl", "--no-progress", "--ordered",
              str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 call failures recorded only in `_errors` (2 no_handler)" in proc.stderr
    assert "(record 0): no handler for `nobody.here`" in proc.stderr
    strict = cx("run", "--clock", "virtual", "--input", "in.jsonl", "--no-progress",
                "--strict", str(prog), cwd=tmp_path)
    assert strict.returncode == 3
