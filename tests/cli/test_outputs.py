"""Output files are checked before anything runs (exit 2, the path named); writes that
fail mid-run say so clearly (batches: how to resume) — through the real CLI."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from .test_settings import ROOT, cx, project

PROGRAM = 'var r = think { prompt: "x" };\nprint("ran");\n'


def _bad_paths(tmp: Path) -> list[tuple[str, str]]:
    (tmp / "afile").write_text("x", encoding="utf-8")
    bad = [(str(tmp / "nodir" / "t.json"), "does not exist"),
           (str(tmp / "afile" / "t.json"), "is not a directory"),
           (str(tmp), "it is a directory"),
           ("/dev/full", "No space left on device")]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp / "readonly.json"
        ro.write_text("keep", encoding="utf-8")
        ro.chmod(0o444)
        bad.append((str(ro), "Permission denied"))
    return bad


@pytest.mark.parametrize("command", ["run --trace", "run --stats-json", "run --output",
                                     "graph -o", "compile -o"])
def test_bad_output_paths_fail_before_running(tmp_path: Path, command: str) -> None:
    prog = project(tmp_path, None, PROGRAM)
    (tmp_path / "in.jsonl").write_text("{}\n", encoding="utf-8")
    name, flag = command.split()
    for path, why in _bad_paths(tmp_path):
        extra = ["--input", "in.jsonl"] if flag == "--output" else []
        proc = cx(name, "--clock", "virtual", *extra, flag, path, str(prog), cwd=tmp_path) \
            if name == "run" else cx(name, flag, path, str(prog), cwd=tmp_path)
        assert proc.returncode == 2, (command, path, proc.stderr)
        assert f"{flag} `{path}`: cannot write there" in proc.stderr and why in proc.stderr
        assert "ran" not in proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "nodir").exists()


def test_good_paths_still_work_and_nothing_is_left_on_failure(tmp_path: Path) -> None:
    prog = project(tmp_path, None, PROGRAM)
    trace = tmp_path / "t.json"
    ok = cx("run", "--clock", "virtual", "--trace", str(trace), str(prog), cwd=tmp_path)
    assert ok.returncode == 0 and trace.stat().st_size > 0
    broken = project(tmp_path, None, "print(1)\nprint(2);\n", "broken.cx")
    fresh = tmp_path / "fresh.json"
    bad = cx("run", "--trace", str(fresh), str(broken), cwd=tmp_path)
    assert bad.returncode == 1 and not fresh.exists()  # the check leaves no file behind
    dev_null = cx("run", "--clock", "virtual", "--trace", "/dev/null", str(prog), cwd=tmp_path)
    assert dev_null.returncode == 0, dev_null.stderr


def test_standalone_module_checks_its_trace_path(tmp_path: Path) -> None:
    prog = project(tmp_path, None, PROGRAM)
    out_py = tmp_path / "out.py"
    assert cx("compile", str(prog), "-o", str(out_py), cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, str(out_py), "--clock", "virtual", "--trace",
                           str(tmp_path / "nodir" / "t.json")], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_batch_output_that_fills_up_mid_run(tmp_path: Path) -> None:
    prog = project(tmp_path, None, "/// @external\non input.record (e) {\n"
                                   "    emit output.record { n: e.n, pad: \"xxxxxxxxxxxxxxxx\" };\n}\n")
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(200)),
                                       encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)

    def limit() -> None:  # a 2 KB file-size limit: writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    proc = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual",
                           "--input", "in.jsonl", "--output", "out.jsonl", "--no-progress",
                           "--ordered", str(prog)], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60, preexec_fn=limit)
    assert proc.returncode == 3, proc.stderr
    assert "cannot write results to `out.jsonl`: File too large" in proc.stderr
    assert "run again with --resume to finish" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("command", ["run", "graph", "compile"])
def test_one_cx_file_hint(tmp_path: Path, command: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.cx").write_text("print(1);\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# hello\n", encoding="utf-8")
    proc = cx(command, "dir", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"`dir` is a directory: `cxpar {command}` takes one `.cx` file" in proc.stderr
    assert f"cxpar {command} dir/a.cx" in proc.stderr
    proc = cx(command, "README.md", cwd=tmp_path)
    assert proc.returncode == 2
    assert "`README.md` is not a CX program" in proc.stderr and "Traceback" not in proc.stderr


def test_stdout_that_cannot_be_written(tmp_path: Path) -> None:
    prog = project(tmp_path, None, 'print("a");\nprint("b");\nthink { prompt: "x" };\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual",
                               str(prog)], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.count("cannot write the program's output (stdout): No space left on "
                             "device") == 1
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
