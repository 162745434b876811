"""Tiered routing (`cxpar.codegen.llvm.tiered`): `--backend llvm` routes in Python until
the process has routed enough events, then switches to the JIT'd router in mid-run —
with exactly the python backend's behaviour before, during and after the switch; and a
program that never gets there never imports llvmlite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cxpar.codegen.llvm import jit
from cxpar.codegen.llvm.tiered import DEFAULT_ROUTING_AFTER, TieredBus, TieredRouter
from cxpar.runtime.bus import Bus

from .harness import (
    EXAMPLES,
    ROOT,
    analyse_file,
    analyse_text,
    assert_same,
    run_traced,
    single_run_golden,
)


@pytest.mark.parametrize("after", [1, 5])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_switch_in_mid_run_changes_nothing(path: Path, after: int) -> None:
    fe = analyse_file(path)
    py = run_traced(fe, "python")
    native = run_traced(fe, "llvm", routing_after=after)
    assert_same(py, native)
    router = native.router
    assert isinstance(router, TieredRouter)
    assert (router.native is not None) == (router.left < 0)
    if after == 1 and py.emits:  # the first emit's routing switches
        assert router.native is not None


def test_below_the_threshold_nothing_is_jit_compiled() -> None:
    fe = analyse_file(ROOT / "examples" / "wildcard_events.cx")
    native = run_traced(fe, "llvm", routing_after=10_000)
    assert_same(run_traced(fe, "python"), native)
    assert native.router.native is None and 0 < native.router.left < 10_000


def _h(label: str) -> object:
    async def handler(rt: object, inst: object, ev: object) -> None:
        return None

    handler.__qualname__ = label
    return handler


def test_bus_keeps_order_and_later_subscriptions_across_the_switch() -> None:
    text = ("on a.b (e) { } on a.any (e) { } on any.b (e) { } on c.d (e) { }\n"
            "emit a.b {}; emit c.d {}; emit x.b {};\n")
    fe = analyse_text(text)
    assert fe.compilation is not None
    router = TieredRouter(fe.compilation, 3)
    bus, ref = router(), Bus()
    assert isinstance(bus, TieredBus)
    names = ["a.b", "c.d", "x.b", "a.zz", "never.seen", "a.b"]
    early = [("a.b", _h("h1")), ("a.any", _h("h2")), ("c.d", _h("h3"))]
    late = [("any.b", _h("h4")), ("a.b", _h("h5")), ("dyn.any", _h("h6"))]
    for pattern, fn in early:
        for b in (bus, ref):
            b.subscribe(pattern, fn, None)  # type: ignore[arg-type]
    held = bus.subscribers  # a caller that kept the Python routing (the coordinator does)
    seen = [(bus.subscribers(n), ref.subscribers(n)) for n in names]
    assert all(a == b for a, b in seen)
    assert bus.native and router.native is not None
    for pattern, fn in late:
        for b in (bus, ref):
            b.subscribe(pattern, fn, None)  # type: ignore[arg-type]
    for n in [*names, "dyn.x", "z.b"]:
        assert bus.subscribers(n) == ref.subscribers(n) == held(n)
        assert bus.has_subscribers(n) == ref.has_subscribers(n)
    assert bus.names() == ref.names()
    # the next run of the program starts on the native router at once
    assert not isinstance(router(), TieredBus)


def test_a_router_that_cannot_be_jit_compiled_keeps_python_routing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fe = analyse_file(ROOT / "examples" / "wildcard_events.cx")
    py = run_traced(fe, "python")
    monkeypatch.setattr(jit, "_STATE", {})
    monkeypatch.setitem(sys.modules, "llvmlite.binding", None)  # installed, cannot load
    native = run_traced(fe, "llvm", routing_after=2)
    assert_same(py, native)
    assert native.router.native is None and "llvmlite could not be loaded" in \
        native.router.failed


def test_default_threshold_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxpar.codegen.llvm.tiered import routing_after

    monkeypatch.delenv("CXPAR_NATIVE_ROUTING_AFTER", raising=False)
    assert routing_after() == DEFAULT_ROUTING_AFTER
    monkeypatch.setenv("CXPAR_NATIVE_ROUTING_AFTER", "0")
    assert routing_after() == 0
    monkeypatch.setenv("CXPAR_NATIVE_ROUTING_AFTER", "lots")
    assert routing_after() == DEFAULT_ROUTING_AFTER


_PROBE = """
import sys
from cxpar.cli import main
try:
    main(["run", "--backend", "llvm", "--clock", "virtual", sys.argv[1]])
except SystemExit as exc:
    sys.stdout.flush()
    print("llvmlite" in sys.modules, "ctypes" in sys.modules, exc.code, file=sys.stderr)
"""


@pytest.mark.parametrize("example, imported", [
    ("support_triage.cx", "False False 0"),   # no loops, few routings: no JIT at all
    ("scoring_loops.cx", "True True 0"),      # lifted loops: JIT'd at start
])
def test_llvmlite_is_imported_only_when_something_is_jit_compiled(
        example: str, imported: str, tmp_path: Path) -> None:
    env = {"CXPAR_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(ROOT / "examples" / example)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.stderr.strip().splitlines()[-1] == imported, proc.stderr
    want = single_run_golden(ROOT / "examples" / example)
    assert want is not None and proc.stdout == want[0]
