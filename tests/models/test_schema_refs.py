"""`schema:` values whose `$ref`s cannot work, through the real CLI: a literal one is
CX314 at check time (exit 1); a computed one fails the call (type `provider`, in
`_errors`, with the call's location) with the same message — never a Python exception
name or a RecursionError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BAD = {
    "ref to nowhere": ('{ type: "object", properties: { a: { "$ref": "#/nope" } } }',
                       "`$ref` `#/nope` does not point to anything in the schema"),
    "missing def": ('{ "$defs": { n: { type: "integer" } }, "$ref": "#/$defs/m" }',
                    "`$ref` `#/$defs/m` does not point to anything"),
    "remote ref": ('{ "$ref": "http://127.0.0.1:9/x.json" }',
                   "`$ref` `http://127.0.0.1:9/x.json` does not point to anything"),
    "self loop": ('{ "$ref": "#", type: "object" }', "its `$ref`s loop"),
    "two-step loop": ('{ "$defs": { a: { "$ref": "#/$defs/b" }, b: { "$ref": "#/$defs/a" } },'
                      ' "$ref": "#/$defs/a" }', "its `$ref`s loop"),
}


def cx(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "p.cx").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual",
                           "p.cx"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("schema", "message"), list(BAD.values()), ids=list(BAD))
@pytest.mark.parametrize("form", ["literal", "computed"])
def test_a_schema_whose_refs_cannot_work_is_reported_at_its_location(
        tmp_path: Path, schema: str, message: str, form: str) -> None:
    if form == "literal":
        source = f'var r = think {{ prompt: "p", schema: {schema} }};\nprint("ran");\n'
    else:
        source = (f"var s = {schema};\n"
                  'var r = think { prompt: "p", schema: s };\nprint("ran");\n')
    r = cx(tmp_path, source)
    assert "Traceback" not in r.stderr and "Recursion" not in r.stderr
    assert message in r.stderr, r.stderr
    if form == "literal":
        assert r.returncode == 1 and "error[CX314]" in r.stderr and "p.cx:1:" in r.stderr
        assert r.stdout == ""
    else:
        assert r.returncode == 0 and r.stdout == "ran\n"
        assert "`think` at p.cx:2:9: `think` failed: `schema` is not a valid" in r.stderr


def test_a_ref_into_defs_works(tmp_path: Path) -> None:
    r = cx(tmp_path, 'var r = think { prompt: "p", schema: { type: "object", '
                     '"$defs": { n: { type: "integer", minimum: 1 } }, '
                     'properties: { a: { "$ref": "#/$defs/n" } }, required: ["a"] } };\n'
                     'print(r.result.a >= 1, r._errors);\n')
    assert r.returncode == 0 and r.stdout == "true null\n", (r.stdout, r.stderr)
