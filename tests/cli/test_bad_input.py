"""Bad input through the real command line (SPEC §7): a clear message, the right exit
code, and never a Python traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

JSON_KEYS = ["file", "line", "col", "end_line", "end_col", "severity", "code", "message"]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines()]


def cxpar(*args: str | Path, cwd: Path | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CXPAR_DEBUG",
                                                            "CXPAR_MAX_FILE_BYTES")}
    env["NO_COLOR"] = "1"
    proc = subprocess.run([sys.executable, "-m", "cxpar", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", errors="replace", env=env, cwd=cwd,
                          timeout=60)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in run.out + run.err, run.err
    assert "internal error" not in run.err, run.err
    return run


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, encoding="utf-8", newline="")
    return p


# ------------------------------------------------------------------ paths


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    r = cxpar("check", tmp_path / "nope.cx")
    assert r.code == 2
    assert "no such file or directory" in r.err and r.out == ""


def test_no_path_is_a_usage_error() -> None:
    assert cxpar("check").code == 2


def test_directory_without_cx_files(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "hello")
    r = cxpar("check", tmp_path)
    assert r.code == 2 and "no `.cx` files" in r.err


def test_directory_recursion(tmp_path: Path) -> None:
    write(tmp_path, "a.cx", "print(1);\n")
    write(tmp_path, "sub/deeper/b.cx", "var x = ;\n")
    write(tmp_path, "sub/c.txt", "var x = ;\n")
    r = cxpar("check", "--syntax-only", "--format", "json", ".", cwd=tmp_path)
    assert r.code == 1
    [d] = r.json_lines()
    assert d["file"] == str(Path("sub/deeper/b.cx")) and d["code"] == "CX101"
    text = cxpar("check", "--syntax-only", tmp_path)
    assert "checked 2 files: 1 error, 0 warnings" in text.err


def test_file_name_as_given(tmp_path: Path) -> None:
    write(tmp_path, "x.cx", "var x = ;\n")
    r = cxpar("check", "--format", "json", "./x.cx", cwd=tmp_path)
    assert r.json_lines()[0]["file"] == "./x.cx"


# ---------------------------------------------------------------- contents


def test_empty_file_warns(tmp_path: Path) -> None:
    r = cxpar("check", write(tmp_path, "empty.cx", ""))
    assert r.code == 0
    assert "warning[CX004]: empty file" in r.err


def test_whitespace_only_file_warns(tmp_path: Path) -> None:
    r = cxpar("check", "--format", "json", "--syntax-only",
              write(tmp_path, "blank.cx", "\n  \n// only a comment\n"))
    assert r.code == 0
    assert [d["code"] for d in r.json_lines()] == ["CX004"]


def test_binary_file(tmp_path: Path) -> None:
    r = cxpar("check", write(tmp_path, "bin.cx", b"\x7fELF\x00\x01\x02\x03"))
    assert r.code == 1 and "error[CX002]: binary file" in r.err


def test_invalid_utf8(tmp_path: Path) -> None:
    r = cxpar("check", "--format", "json",
              write(tmp_path, "bad.cx", b'print(1);\nvar s = "\xff\xfe";\n'))
    assert r.code == 1
    [d] = r.json_lines()
    assert (d["code"], d["line"], d["col"]) == ("CX002", 2, 10)
    assert "invalid UTF-8" in d["message"]
    text = cxpar("check", tmp_path / "bad.cx")
    assert "error[CX002]" in text.err


def test_utf8_bom(tmp_path: Path) -> None:
    r = cxpar("check", "--syntax-only", write(tmp_path, "bom.cx", "\ufeffprint(\"hi\");\n"))
    assert r.code == 0, r.err
    r = cxpar("check", "--format", "json", "--syntax-only",
              write(tmp_path, "bom2.cx", "\ufeffvar x = ;\n"))
    assert (r.json_lines()[0]["line"], r.json_lines()[0]["col"]) == (1, 9)


def test_crlf(tmp_path: Path) -> None:
    p = write(tmp_path, "crlf.cx", b"var x = 1;\r\nvar y = 2\r\nprint(x);\r\n")
    [d] = cxpar("check", "--format", "json", p).json_lines()
    assert (d["code"], d["line"], d["col"], d["end_col"]) == ("CX102", 3, 1, 6)
    text = cxpar("check", p)
    assert "\r" not in text.err
    assert "2 | var y = 2\n" in text.err


def test_tabs(tmp_path: Path) -> None:
    p = write(tmp_path, "tabs.cx", "on a.b (e) {\n\t\tvar x = ;\n}\n")
    [d] = cxpar("check", "--format", "json", p).json_lines()
    assert (d["line"], d["col"], d["end_col"]) == (2, 11, 12)
    text = cxpar("check", p).err
    # Tabs are expanded to 4 columns in the excerpt; the caret sits under the `;`.
    assert "2 |         var x = ;\n  |                 ^" in text


def test_ten_megabyte_file(tmp_path: Path) -> None:
    p = write(tmp_path, "big.cx", "var x = 1;\n" * 1_000_000)
    assert p.stat().st_size >= 10 * 10**6
    r = cxpar("check", "--format", "json", p)
    assert r.code == 1
    [d] = r.json_lines()
    assert d["code"] == "CX003" and "too large" in d["message"]


@pytest.mark.parametrize("kind", ["parens", "blocks", "brackets", "objects"])
def test_ten_thousand_deep_nesting(tmp_path: Path, kind: str) -> None:
    depth = 10_000
    text = {
        "parens": "var x = " + "(" * depth + "1" + ")" * depth + ";\n",
        "blocks": "{" * depth + "}" * depth + "\n",
        "brackets": "var x = " + "[" * depth + "]" * depth + ";\n",
        "objects": "var x = " + "{ a: " * depth + "1" + " }" * depth + ";\n",
    }[kind]
    r = cxpar("check", write(tmp_path, f"{kind}.cx", text))
    assert r.code == 1
    assert "error[CX108]: nesting too deep" in r.err
    assert max(len(line) for line in r.err.splitlines()) < 200


@pytest.mark.parametrize("command", ["check", "run"])
def test_very_long_operator_chain(tmp_path: Path, command: str) -> None:
    # No brackets at all, but 50 000 operators nest the syntax tree 50 000 levels deep.
    p = write(tmp_path, "chain.cx", "var x = " + " + ".join(["1"] * 50_000) + ";\nprint(x);\n")
    r = cxpar(command, p)
    assert r.code == 1
    assert "error[CX108]" in r.err and "nested too deeply" in r.err
    assert "internal error" not in r.err and "Traceback" not in r.err


def test_long_but_reasonable_chain_runs(tmp_path: Path) -> None:
    p = write(tmp_path, "chain.cx", "var x = " + " + ".join(["1"] * 1_500) + ";\nprint(x);\n")
    r = cxpar("run", "--clock", "virtual", p)
    assert r.code == 0 and r.out == "1500\n"


def test_unterminated_string_at_eof(tmp_path: Path) -> None:
    [d] = cxpar("check", "--format", "json",
                write(tmp_path, "s.cx", 'print("abc')).json_lines()
    assert (d["code"], d["line"], d["col"], d["end_col"]) == ("CX104", 1, 7, 11)


def test_unterminated_comment_at_eof(tmp_path: Path) -> None:
    [d] = cxpar("check", "--format", "json",
                write(tmp_path, "c.cx", "print(1); /* abc")).json_lines()
    assert (d["code"], d["line"], d["col"], d["end_col"]) == ("CX106", 1, 11, 13)


def test_lone_control_characters(tmp_path: Path) -> None:
    r = cxpar("check", "--format", "json", write(tmp_path, "ctl.cx", "var x = 1;\x07\x1b\n"))
    assert r.code == 1
    assert {d["code"] for d in r.json_lines()} == {"CX103"}


# ------------------------------------------------------------------ formats


def test_json_lines_have_exactly_the_spec_keys(tmp_path: Path) -> None:
    p = write(tmp_path, "m.cx", "var a = 1\nvar b = ;\nprint('x');\n")
    r = cxpar("check", "--format", "json", p)
    assert r.code == 1
    lines = r.out.splitlines()
    assert len(lines) == 3
    for line in lines:
        d = json.loads(line)
        assert list(d) == JSON_KEYS
        assert d["file"] == str(p) and d["severity"] == "error"
        assert all(isinstance(d[k], int) for k in ("line", "col", "end_line", "end_col"))
    assert "error[" not in r.err


def test_json_clean_file_prints_nothing(tmp_path: Path) -> None:
    r = cxpar("check", "--format", "json", "--syntax-only", write(tmp_path, "ok.cx", "print(1);\n"))
    assert (r.code, r.out, r.err) == (0, "", "")


def test_text_goes_to_stderr(tmp_path: Path) -> None:
    r = cxpar("check", write(tmp_path, "t.cx", "var x = ;\n"))
    assert r.out == ""
    assert r.err.startswith("error[CX101]: ")
    assert r.err.rstrip().endswith("checked 1 file: 1 error, 0 warnings")


def test_syntax_only(tmp_path: Path) -> None:
    p = write(tmp_path, "s.cx", "on a.b (e) {\n    print(e.x);\n}\nvar y = ;\n")
    r = cxpar("check", "--syntax-only", "--format", "json", p)
    assert r.code == 1
    assert [d["code"] for d in r.json_lines()] == ["CX101"]


def test_explain() -> None:
    r = cxpar("explain", "CX102")
    assert r.code == 0
    assert r.out.startswith("## CX102: missing `;`")
    assert "var x = 1" in r.out
    assert cxpar("explain", "cx104").code == 0
    bad = cxpar("explain", "CX999")
    assert bad.code == 2 and "unknown diagnostic code" in bad.err


def test_compile_emit_ast_text(tmp_path: Path) -> None:
    p = write(tmp_path, "a.cx", "\nvar x = 1;\non a.b (e) { emit c.d { k: x }; }\n")
    r = cxpar("compile", "--emit", "ast", p)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("Program")
    assert any(line.strip().startswith("body: VarDecl") and "@2:1-2:11" in line for line in lines)
    assert any("EventName" in line and "parts=['c', 'd']" in line for line in lines)


def test_compile_emit_ast_json(tmp_path: Path) -> None:
    p = write(tmp_path, "a.cx", "var x: number = 1;\non a.b (e) { emit c.d; }\n")
    r = cxpar("compile", "--emit", "ast", "--format", "json", p)
    assert r.code == 0, r.err
    tree = json.loads(r.out)
    assert tree["node"] == "Program"
    var, handler = tree["body"]
    assert var["node"] == "VarDecl" and var["span"] == [1, 1, 1, 19]
    assert var["type"]["node"] == "TypeRef" and var["type"]["name"] == "number"
    assert handler["node"] == "OnHandler"
    assert handler["event"]["parts"] == ["a", "b"]


def test_compile_with_syntax_error(tmp_path: Path) -> None:
    r = cxpar("compile", "--emit", "ast", write(tmp_path, "e.cx", "var x = ;\n"))
    assert r.code == 1 and r.out == ""
    assert "error[CX101]" in r.err


def test_compile_missing_file(tmp_path: Path) -> None:
    r = cxpar("compile", "--emit", "ast", tmp_path / "missing.cx")
    assert r.code == 2 and "no such file" in r.err


def test_compile_binary_file(tmp_path: Path) -> None:
    r = cxpar("compile", "--emit", "ast", write(tmp_path, "b.cx", b"\x00\x00"))
    assert r.code == 1 and "CX002" in r.err
