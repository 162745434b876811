"""LLVM backend vs python backend: call overhead, dispatch, fan-out, JIT time.

    python -m bench.llvm_dispatch [--mode tiny|quick|full] [--json out.json]

Sections (each printed as a markdown table; docs/performance.md "LLVM backend"):

1. **Call overhead** of ways to reach native code from Python, per call: a Python
   function, ``dict.get``, ``Bus.subscribers`` (the python backend's routing), ctypes
   calls into JIT'd functions (int args; a pointer + length; marshalling a ``str``), the
   JIT'd ``METH_FASTCALL`` builtin (``NativeBus.subscribers``), and ``len`` for scale.
   cffi is measured when importable (ABI mode, same calling path as ctypes).
2. **Emit-heavy dispatch**: 1 000 000 routings (``bus.subscribers(name)``, what
   ``rt.emit`` does first) over the names an emit-heavy program emits, exact and
   ``any``-matched; then the whole program end to end (routing + asyncio tasks).
3. **10 000-branch fan-out**: routing every branch key (what the coordinator does at
   fan-out), the fan-out bookkeeping / slot mapping / join counter in native code over
   arrays (ctypes, marshalling included) vs the same in Python, and one whole service call.
4. **JIT compile time** per example: cold (no cache), warm (object cache hit), and the
   one-off llvmlite import + initialisation.

Benchmarks, not tests: numbers go to docs, nothing asserts wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SIZES = {
    "tiny": {"dispatches": 20_000, "chain": 2_000, "branches": 1_000, "reps": 3},
    "quick": {"dispatches": 1_000_000, "chain": 100_000, "branches": 10_000, "reps": 5},
    "full": {"dispatches": 1_000_000, "chain": 1_000_000, "branches": 10_000, "reps": 7},
}


def _med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _time_loop(fn: Callable[[], Any], reps: int) -> float:
    """Fastest of ``reps`` runs of ``fn()``, in seconds (GC off while timing; the
    minimum is the least disturbed by other load on a shared machine)."""
    out = []
    for _ in range(reps):
        gc.collect()
        gc.disable()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        gc.enable()
    return min(out)


def _analyse(text: str, name: str = "bench.cx") -> Any:
    from cxpar.driver import front_end_source
    from cxpar.span import SourceFile

    fe = front_end_source(SourceFile(name, text))
    assert fe.compilation is not None and not fe.has_errors, \
        [d.message for d in fe.diagnostics]
    return fe.compilation


# ---------------------------------------------------------------- 1. call overhead

EMIT_PROGRAM = """
on tick.a (event) { }
on tick.any (event) { }
on any.b (event) { }
on log.write (event) { }
object W { on tick.b (event) { } }
emit tick.a {}; emit tick.b {}; emit tick.c {}; emit log.write {}; emit other.b {};
emit nobody.here {};
"""

EMIT_NAMES = ["tick.a", "tick.b", "tick.c", "log.write", "other.b", "nobody.here"]


def _buses(comp: Any, instances: int = 3) -> tuple[Any, Any, Any]:
    """A python Bus and a NativeBus with the same subscriptions, and the router."""
    from cxpar.codegen.llvm.backend import prepare
    from cxpar.runtime.bus import Bus

    router = prepare(comp)
    py, native = Bus(), router()

    async def h(rt: Any, inst: Any, ev: Any) -> None:
        return None

    for b in (py, native):
        for info in comp.info.handlers:
            if info.entity is None:
                b.subscribe(info.event, h, None)
        for i in range(instances):
            for info in comp.info.handlers:
                if info.entity is not None:
                    b.subscribe(info.event, h, i)
    return py, native, router


def call_overhead(n: int, reps: int) -> list[dict[str, Any]]:
    comp = _analyse(EMIT_PROGRAM)
    py, native, router = _buses(comp)
    jitted = router.jitted
    name = "tick.b"
    rng = range(n)

    def f(x: Any) -> Any:
        return x

    d = {name: (1,)}
    dget = d.get
    py_sub = py.subscribers
    nat_sub = native.subscribers
    counter = ctypes.c_int64(1 << 60)
    settle = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)(jitted.address("cx_join_settle"))
    cptr = ctypes.addressof(counter)
    event_id = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_char_p, ctypes.c_int64)(
        jitted.address("cx_event_id"))
    raw = name.encode()
    nraw = len(raw)
    match = router._match
    buf = router._match_buf

    def loop_empty() -> None:
        for _ in rng:
            pass

    cases: list[tuple[str, Callable[[], None]]] = []

    def case(label: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
        def deco(fn: Callable[[], None]) -> Callable[[], None]:
            cases.append((label, fn))
            return fn
        return deco

    @case("Python function `f(x)`")
    def _pyfn() -> None:
        for _ in rng:
            f(name)

    @case("`dict.get(name)` (bound)")
    def _dget() -> None:
        for _ in rng:
            dget(name)

    @case("python backend routing `Bus.subscribers(name)`")
    def _bus() -> None:
        for _ in rng:
            py_sub(name)

    @case("ctypes: JIT'd `cx_join_settle(ptr)` (int arg)")
    def _ct_int() -> None:
        for _ in rng:
            settle(cptr)

    @case("ctypes: JIT'd `cx_event_id(bytes, len)`")
    def _ct_bytes() -> None:
        for _ in rng:
            event_id(raw, nraw)

    @case("ctypes: route a str (`encode` + `cx_event_id` + `cx_match`)")
    def _ct_route() -> None:
        for _ in rng:
            b = name.encode()
            match(event_id(b, len(b)), buf)

    @case("C-API builtin: JIT'd `cx_subscribers(name)` (llvm backend routing)")
    def _builtin() -> None:
        for _ in rng:
            nat_sub(name)

    @case("builtin `len(name)` (for scale)")
    def _len() -> None:
        for _ in rng:
            len(name)

    try:
        import cffi  # type: ignore[import-not-found]

        ffi = cffi.FFI()
        cf = ffi.cast("int64_t (*)(void *)", jitted.address("cx_join_settle"))
        cp = ffi.cast("void *", cptr)

        @case("cffi (ABI): JIT'd `cx_join_settle(ptr)`")
        def _cffi() -> None:
            for _ in rng:
                cf(cp)
    except ImportError:
        pass

    base = _time_loop(loop_empty, reps)
    rows = []
    for label, fn in cases:
        t = _time_loop(fn, reps)
        rows.append({"call": label, "ns_per_call": round((t - base) / n * 1e9, 1),
                     "ns_with_loop": round(t / n * 1e9, 1)})
    rows.append({"call": "(empty `for` loop, subtracted above)", "ns_per_call": 0.0,
                 "ns_with_loop": round(base / n * 1e9, 1)})
    return rows


# ---------------------------------------------------------------- 2. emit-heavy

def emit_dispatch(n: int, reps: int) -> dict[str, Any]:
    """``n`` routings over the program's emitted names, python Bus vs NativeBus."""
    comp = _analyse(EMIT_PROGRAM)
    py, native, _router = _buses(comp)
    trace = [EMIT_NAMES[i % len(EMIT_NAMES)] for i in range(n)]
    for name in EMIT_NAMES:
        assert py.subscribers(name) == native.subscribers(name)

    def run(sub: Callable[[str], Any]) -> Callable[[], None]:
        def go() -> None:
            for name in trace:
                sub(name)
        return go

    def empty() -> None:
        for _name in trace:
            pass

    base = _time_loop(empty, reps)
    t_py = _time_loop(run(py.subscribers), reps)
    t_nat = _time_loop(run(native.subscribers), reps)
    return {"dispatches": n, "python_s": t_py, "llvm_s": t_nat,
            "python_ns": (t_py - base) / n * 1e9, "llvm_ns": (t_nat - base) / n * 1e9,
            "speedup": (t_py - base) / (t_nat - base),
            "speedup_with_loop": t_py / t_nat}


CHAIN_PROGRAM = """
on tick.a (event) {
    if (event.n < N) { emit tick.a { n: event.n + 1 }; }
}
on tick.any (event) { }
emit tick.a { n: 1 };
"""


def _run_program(comp: Any, backend: str) -> tuple[float, str]:
    import io

    from cxpar.codegen.module import compile_program
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.standalone import run_factory

    compiled = compile_program(comp)
    program = compiled.program
    if backend == "llvm":
        from cxpar.codegen.llvm.backend import prepare, with_router

        program = with_router(program, prepare(comp))
    out = io.StringIO()
    gc.collect()
    t = time.perf_counter()
    code = run_factory(program, compiled.spans, compiled.sources, RunSettings(clock="virtual"),
                       stdout=out, stderr=sys.stderr)
    dt = time.perf_counter() - t
    assert code == 0
    return dt, out.getvalue()


def emit_end_to_end(n: int, reps: int) -> dict[str, Any]:
    """An emit chain of ``n`` emits (2 handlers each): the whole program, both backends."""
    comp = _analyse(CHAIN_PROGRAM.replace("N", str(n)))
    res: dict[str, list[float]] = {"python": [], "llvm": []}
    for _ in range(max(1, reps // 2)):
        for backend in ("python", "llvm"):
            res[backend].append(_run_program(comp, backend)[0])
    t_py, t_nat = _med(res["python"]), _med(res["llvm"])
    return {"emits": n, "dispatches": 2 * n, "python_s": t_py, "llvm_s": t_nat,
            "speedup": t_py / t_nat}


# ---------------------------------------------------------------- 3. fan-out

def _fanout_program(n: int, events: int) -> str:
    lines = [f"on w.e{j} (event) {{ return event.n; }}" for j in range(events)]
    lines.append("on w.any (event) { return 0; }")
    props = ", ".join(f"k{i}: w.e{i % events}" for i in range(n))
    lines.append(f'var r = infer {{ prompt: "p", n: 1, {props}, timeout: 1000 }};')
    lines.append('print(r._parallel.branches + " " + r._parallel.succeeded);')
    return "\n".join(lines) + "\n"


def fanout(n: int, reps: int) -> dict[str, Any]:
    events = 100
    comp = _analyse(_fanout_program(n, events), "fanout.cx")
    py, native, router = _buses(comp)
    branch_events = [f"w.e{i % events}" for i in range(n)]

    def route(sub: Callable[[str], Any]) -> Callable[[], None]:
        def go() -> None:
            for ev in branch_events:
                sub(ev)
        return go

    t_route_py = _time_loop(route(py.subscribers), reps * 4)
    t_route_nat = _time_loop(route(native.subscribers), reps * 4)

    # bookkeeping: counts -> slot ranges, no_handler flags, join counter; slot -> key
    counts = [len(py.subscribers(ev)) for ev in branch_events]

    def book_py() -> None:
        first, end, nohandler = [], [], []
        acc = 0
        for c in counts:
            first.append(acc)
            acc += c
            end.append(acc)
            nohandler.append(c == 0)
        key_of_slot = [0] * acc
        for k in range(len(counts)):
            for s in range(first[k], end[k]):
                key_of_slot[s] = k
        pending = acc
        for _ in range(acc):
            pending -= 1

    jit = router.jitted
    c_fanout = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
        jit.address("cx_fanout"))
    c_slots = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p)(jit.address("cx_slot_keys"))
    c_settle = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)(
        jit.address("cx_join_settle"))

    def book_native() -> None:
        nk = len(counts)
        c_counts = (ctypes.c_int32 * nk)(*counts)          # marshalling in
        first = (ctypes.c_int64 * nk)()
        end = (ctypes.c_int64 * nk)()
        nohandler = (ctypes.c_int8 * nk)()
        pending = c_fanout(nk, c_counts, first, end, nohandler)
        key_of_slot = (ctypes.c_int32 * max(1, pending))()
        c_slots(nk, first, end, key_of_slot)
        _ = list(key_of_slot)                              # marshalling out
        counter = ctypes.c_int64(pending)
        ptr = ctypes.addressof(counter)
        for _ in range(pending):                           # one settle per branch
            c_settle(ptr)

    def book_native_batch_only() -> None:
        nk = len(counts)
        c_counts = (ctypes.c_int32 * nk)(*counts)
        first = (ctypes.c_int64 * nk)()
        end = (ctypes.c_int64 * nk)()
        nohandler = (ctypes.c_int8 * nk)()
        pending = c_fanout(nk, c_counts, first, end, nohandler)
        key_of_slot = (ctypes.c_int32 * max(1, pending))()
        c_slots(nk, first, end, key_of_slot)
        _ = list(key_of_slot)

    t_book_py = _time_loop(book_py, reps * 4)
    t_book_nat = _time_loop(book_native, reps * 4)
    t_book_batch = _time_loop(book_native_batch_only, reps * 4)

    res: dict[str, list[float]] = {"python": [], "llvm": []}
    outs = set()
    for _ in range(max(1, reps // 2)):
        for backend in ("python", "llvm"):
            dt, out = _run_program(comp, backend)
            res[backend].append(dt)
            outs.add(out)
    assert len(outs) == 1, outs
    return {"branches": n, "route_python_s": t_route_py, "route_llvm_s": t_route_nat,
            "route_speedup": t_route_py / t_route_nat,
            "book_python_s": t_book_py, "book_llvm_ctypes_s": t_book_nat,
            "book_llvm_batch_only_s": t_book_batch,
            "call_python_s": _med(res["python"]), "call_llvm_s": _med(res["llvm"]),
            "call_speedup": _med(res["python"]) / _med(res["llvm"])}


# ---------------------------------------------------------------- 4. JIT time

def jit_times() -> dict[str, Any]:
    t = time.perf_counter()
    from cxpar.codegen.llvm import jit
    from cxpar.codegen.llvm.ir import generate_ir
    jit.load_llvmlite()
    load_s = time.perf_counter() - t
    from cxpar.driver import front_end

    cold, warm, ir_ms = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CXPAR_CACHE_DIR"] = tmp
        for path in sorted((ROOT / "examples").glob("*.cx")):
            fe = front_end(path, path.name)
            assert fe.compilation is not None
            t = time.perf_counter()
            ir = generate_ir(fe.compilation.info, path.name)
            ir_ms.append((time.perf_counter() - t) * 1000)
            j1 = jit.jit_compile(ir)
            j2 = jit.jit_compile(ir)
            assert not j1.cache_hit and j2.cache_hit
            cold.append(j1.compile_s * 1000)
            warm.append(j2.compile_s * 1000)
    return {"llvmlite_load_ms": load_s * 1000, "ir_gen_ms_median": _med(ir_ms),
            "cold_ms_median": _med(cold), "cold_ms_max": max(cold),
            "warm_ms_median": _med(warm), "warm_ms_max": max(warm), "programs": len(cold)}


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=list(SIZES), default="quick")
    ap.add_argument("--json", default=None)
    ns = ap.parse_args(argv)
    size = SIZES[ns.mode]
    reps = size["reps"]
    os.environ.setdefault("CXPAR_CACHE_DIR", tempfile.mkdtemp(prefix="cxpar-bench-"))
    asyncio.set_event_loop_policy(None)
    report: dict[str, Any] = {"mode": ns.mode, "python": sys.version.split()[0]}
    report["jit"] = jit_times()
    report["overhead"] = call_overhead(min(size["dispatches"], 1_000_000), reps)
    report["emit"] = emit_dispatch(size["dispatches"], reps)
    report["emit_e2e"] = emit_end_to_end(size["chain"], reps)
    report["fanout"] = fanout(size["branches"], reps)

    print("## call overhead (ns per call, empty-loop cost subtracted)\n")
    print("| call | ns/call | ns incl. loop |\n|---|---:|---:|")
    for row in report["overhead"]:
        print(f"| {row['call']} | {row['ns_per_call']} | {row['ns_with_loop']} |")
    e = report["emit"]
    print(f"\n## emit-heavy dispatch ({e['dispatches']:,} routings)\n")
    print(f"python {e['python_s'] * 1000:.1f} ms ({e['python_ns']:.1f} ns/dispatch), "
          f"llvm {e['llvm_s'] * 1000:.1f} ms ({e['llvm_ns']:.1f} ns/dispatch): "
          f"{e['speedup']:.2f}x (incl. loop {e['speedup_with_loop']:.2f}x)")
    e2 = report["emit_e2e"]
    print(f"end to end, {e2['emits']:,}-emit chain ({e2['dispatches']:,} handler runs): "
          f"python {e2['python_s']:.2f} s, llvm {e2['llvm_s']:.2f} s: {e2['speedup']:.2f}x")
    f = report["fanout"]
    print(f"\n## {f['branches']:,}-branch fan-out\n")
    print(f"routing all keys: python {f['route_python_s'] * 1e3:.3f} ms, "
          f"llvm {f['route_llvm_s'] * 1e3:.3f} ms: {f['route_speedup']:.2f}x")
    print(f"bookkeeping (slots, slot->key, join counter): python "
          f"{f['book_python_s'] * 1e3:.3f} ms; native via ctypes {f['book_llvm_ctypes_s'] * 1e3:.3f}"
          f" ms (batch part only {f['book_llvm_batch_only_s'] * 1e3:.3f} ms)")
    print(f"whole call (end to end): python {f['call_python_s'] * 1e3:.1f} ms, llvm "
          f"{f['call_llvm_s'] * 1e3:.1f} ms: {f['call_speedup']:.2f}x")
    j = report["jit"]
    print(f"\n## JIT ({j['programs']} examples)\n")
    print(f"llvmlite import + init {j['llvmlite_load_ms']:.0f} ms once; IR generation "
          f"{j['ir_gen_ms_median']:.2f} ms; cold compile median {j['cold_ms_median']:.0f} ms "
          f"(max {j['cold_ms_max']:.0f}); cache hit median {j['warm_ms_median']:.1f} ms "
          f"(max {j['warm_ms_max']:.1f})")
    if ns.json:
        Path(ns.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
