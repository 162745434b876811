"""The llvm backend itself: valid IR for every example, the object cache, the CLI
(`--emit llvm-ir`, `--backend llvm`) and the message when llvmlite cannot load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cxpar.codegen.llvm import jit
from cxpar.codegen.llvm.backend import emit_ir, prepare
from cxpar.codegen.llvm.ir import tables_for
from cxpar.runtime.bus import Bus

from .harness import EXAMPLES, GOLDEN, ROOT, analyse_file, analyse_text


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_ir_is_valid(path: Path) -> None:
    llvm = jit.load_llvmlite()
    fe = analyse_file(path)
    mod = llvm.parse_assembly(emit_ir(fe.compilation))
    mod.verify()
    assert mod.get_function("cx_subscribers") is not None


def test_static_match_table_resolves_any() -> None:
    fe = analyse_file(ROOT / "examples" / "wildcard_events.cx")
    assert fe.compilation is not None
    t = tables_for(fe.compilation.info)
    ids = t.event_ids()
    pats = t.pattern_ids()
    assert t.match[ids["user.alice.input"]] == [pats["user.any.input"], pats["user.alice.input"]]
    assert t.match[ids["disk.alert"]] == [pats["any.alert"]]
    assert t.match[ids["user.alice.extra.input"]] == []


def test_native_bus_routes_like_bus() -> None:
    fe = analyse_text('on a.any (e) { } on a.b (e) { } on any.b (e) { } emit a.b {}; '
                      'emit x.b {}; emit a.c {};\n')
    assert fe.compilation is not None
    bus, ref = prepare(fe.compilation)(), Bus()

    def h(*_: object) -> None: ...

    subs = [("a.any", h), ("a.b", print), ("any.b", len), ("q.r", repr), ("a.b", h)]
    for b in (bus, ref):
        for i, (pat, fn) in enumerate(subs):
            b.subscribe(pat, fn, i)  # type: ignore[arg-type]
    for name in ["a.b", "x.b", "a.c", "q.r", "zz", "a.b.c", "a.any", "é.b", ""]:
        assert bus.subscribers(name) == ref.subscribers(name), name
        assert bus.subscribers(name) == ref.subscribers(name), name  # cached slot
    bus.subscribe("a.b", repr, 99)  # type: ignore[arg-type]
    ref.subscribe("a.b", repr, 99)  # type: ignore[arg-type]
    assert bus.subscribers("a.b") == ref.subscribers("a.b")
    with pytest.raises(TypeError):
        bus.subscribers()  # type: ignore[call-arg]


def test_object_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXPAR_CACHE_DIR", str(tmp_path))
    fe = analyse_text("on a.b (e) { print(1); } emit a.b {};\n")
    ir = emit_ir(fe.compilation)
    first = jit.jit_compile(ir)
    second = jit.jit_compile(ir)
    assert not first.cache_hit and second.cache_hit
    assert len(list((tmp_path / "llvm").glob("*.o"))) == 1
    other = jit.jit_compile(ir.replace("a.b", "a.c"))
    assert other.key != first.key and not other.cache_hit
    monkeypatch.setenv("CXPAR_LLVM_CACHE", "0")
    assert jit.cache_dir() is None


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60,
                          env={**os.environ, **env})


def test_cli_emit_llvm_ir_names_events_and_keys() -> None:
    proc = _cli("compile", "--emit", "llvm-ir", "examples/support_triage.cx")
    assert proc.returncode == 0, proc.stderr
    ir = proc.stdout
    assert "define ptr @cx_subscribers" in ir
    assert "sentiment.analyze" in ir and "key `sentiment`" in ir
    assert "on ticket.received" in ir
    jit.load_llvmlite().parse_assembly(ir).verify()


def test_cli_run_llvm_matches_golden(tmp_path: Path) -> None:
    proc = _cli("run", "--backend", "llvm", "--clock", "virtual",
                "examples/wildcard_events.cx", CXPAR_CACHE_DIR=str(tmp_path))
    assert "Traceback" not in proc.stderr
    assert proc.stdout == (GOLDEN / "wildcard_events.out").read_text(encoding="utf-8")
    assert proc.returncode == 0


def test_cli_llvm_unavailable_says_how_to_fall_back(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cxpar.cli import main

    monkeypatch.setattr(jit, "_STATE", {})
    monkeypatch.setitem(sys.modules, "llvmlite", None)
    monkeypatch.setitem(sys.modules, "llvmlite.binding", None)
    with pytest.raises(SystemExit) as info:
        main(["run", "--backend", "llvm", "--clock", "virtual",
              str(ROOT / "examples" / "wildcard_events.cx")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "llvm backend is unavailable" in err and "llvmlite could not be loaded" in err
    assert "--backend python" in err
    # the python backend is unaffected
    with pytest.raises(SystemExit) as info:
        main(["run", "--clock", "virtual", str(ROOT / "examples" / "wildcard_events.cx")])
    assert info.value.code == 0
    assert "any-user handler" in capsys.readouterr().out


def test_many_names_of_one_length_are_hashed() -> None:
    names = [f"w.e{i}" for i in range(10, 60)]
    text = "".join(f"on {n} (e) {{ }} emit {n} {{}};\n" for n in names)
    fe = analyse_text(text)
    assert fe.compilation is not None
    assert "FNV-1a" in emit_ir(fe.compilation) and "%h5.done" in emit_ir(fe.compilation)
    bus, ref = prepare(fe.compilation)(), Bus()
    for i, n in enumerate(names):
        for b in (bus, ref):
            b.subscribe(n, print, i)  # type: ignore[arg-type]
    for n in [*names, "w.e60", "w.e1", "w.f10", "x.e10"]:
        assert bus.subscribers(n) == ref.subscribers(n), n
