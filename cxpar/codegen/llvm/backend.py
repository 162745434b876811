"""Entry points for the commands: ``--emit llvm-ir`` and ``run --backend llvm``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .jit import BackendUnavailable
from .loops import LoopPlan, plan_loops

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

    from .bridge import NativeRouter
    from .loop_ir import LoopCode
    from .tiered import TieredRouter

__all__ = ["BackendUnavailable", "emit_ir", "prepare", "with_router", "UNAVAILABLE_HELP",
           "LiftedLoops", "lift_loops", "load_native_loops", "compile_native",
           "explain_loops", "explain_routing"]

UNAVAILABLE_HELP = ("run it with `--backend python` (the default) instead: it runs the "
                    "same program with the same behaviour; only event dispatch is slower")


@dataclass
class LiftedLoops:
    """The loops of one program: the plan, and the IR of the lifted ones."""

    plan: LoopPlan
    codes: list[LoopCode] = field(default_factory=list)
    source: str = "<program>"
    _by_node: dict[int, LoopCode] = field(default_factory=dict, repr=False)

    def code_for(self, node: Any) -> LoopCode | None:
        """The lifted loop compiled for this ``while``/``for`` node, if any."""
        return self._by_node.get(id(node))

    @property
    def symbols(self) -> list[str]:
        return [c.loop.symbol for c in self.codes]

    def ir(self, declarations: bool = True) -> str:
        """The loops module's IR (comments say why the other loops were not lifted)."""
        from .loop_ir import generate_loops_ir

        others = [lp.describe() for lp in self.plan.loops if not lp.lifted]
        return generate_loops_ir(self.codes, self.source, others, declarations)


def lift_loops(comp: Compilation) -> LiftedLoops:
    """Find the native-eligible loops of ``comp`` and generate their IR (no llvmlite)."""
    plan = plan_loops(comp.program, comp.info)
    if plan.lifted_loops:  # the IR generator is imported only when there is IR to make
        from .loop_ir import loop_code
    lines = comp.source.text.split("\n")
    out = LiftedLoops(plan, source=comp.source.name)
    for loop in plan.lifted_loops:
        code = loop_code(loop, comp.info, lines)
        out.codes.append(code)
        out._by_node[id(loop.node)] = code
    return out


def load_native_loops(lifted: LiftedLoops) -> Sequence[Any] | None:
    """JIT the lifted loops (None when there are none or ``CXPAR_NATIVE_LOOPS=0``)."""
    from .native import load_loops

    if not lifted.codes:
        return None
    try:
        return load_loops(lifted.ir(), lifted.symbols, strict=True)
    except BackendUnavailable:
        raise
    except (OSError, RuntimeError, AttributeError, KeyError) as exc:
        raise BackendUnavailable(f"JIT compilation of the loops failed: {exc}") from exc


def emit_ir(comp: Compilation | None) -> str:
    """The dispatch layer's IR text, then the lifted loops' (needs no llvmlite)."""
    if comp is None:
        raise ValueError("the program was not analysed")
    from .ir import generate_ir

    text = generate_ir(comp.info, comp.source.name) + "\n"
    lifted = lift_loops(comp)
    if lifted.plan.loops:
        text += "\n" + lifted.ir() + "\n"
    return text


def prepare(comp: Compilation) -> NativeRouter:
    """JIT the dispatch layer; :class:`BackendUnavailable` when llvmlite cannot load."""
    from .jit import load_llvmlite

    load_llvmlite()
    from .bridge import build_router

    try:
        return build_router(comp)
    except BackendUnavailable:
        raise
    except (OSError, RuntimeError, AttributeError) as exc:
        raise BackendUnavailable(f"JIT compilation failed: {exc}") from exc


def compile_native(comp: Compilation, compile_program: Callable[..., Any], *,
                   explain: bool = False,
                   routing_after: int | None = None) -> tuple[Any, Callable[[Any], Any]]:
    """``run --backend llvm``: the compiled program (with a native path for every lifted
    loop) and its factory (the lifted loops JIT'd; the router tiered, :mod:`.tiered`:
    JIT-compiled once the process has routed ``routing_after`` events, default
    :func:`.tiered.routing_after`; 0 = now). ``explain``: report on stderr first.
    Raises :class:`BackendUnavailable` (llvmlite missing, or a JIT needed now fails)."""
    import sys

    from .jit import check_installed
    from .native import native_loops_enabled
    from .tiered import TieredRouter
    from .tiered import routing_after as default_after

    check_installed()
    after = default_after() if routing_after is None else routing_after
    lifted = lift_loops(comp) if native_loops_enabled() else None
    router = TieredRouter(comp, after)
    if explain:
        sys.stderr.write(explain_loops(lifted) + explain_routing(router))
    if after == 0:
        router.tier_up(strict=True)
    loops = load_native_loops(lifted) if lifted is not None else None
    compiled = compile_program(comp, loops=lifted if loops is not None else None)
    return compiled, with_router(compiled.program, router, loops)


def explain_routing(router: TieredRouter) -> str:
    """The ``--explain`` line on event routing (docs/decisions.md, "Tiered routing")."""
    if router.left == 0:
        return "llvm: events are routed by the JIT-compiled router\n"
    return (f"llvm: events are routed in Python until this process has routed "
            f"{router.left:,} of them, then by the JIT-compiled router (before that, "
            "loading it costs more than it saves; CXPAR_NATIVE_ROUTING_AFTER sets the "
            "threshold)\n")


def explain_loops(lifted: LiftedLoops | None) -> str:
    """The ``--explain`` report: every loop, lifted or with its first reason."""
    if lifted is None:
        return "llvm: native loops are off (CXPAR_NATIVE_LOOPS=0)\n"
    loops = lifted.plan.loops
    if not loops:
        return "llvm: no `while` or C-style `for` loops to lift\n"
    n = len(lifted.codes)
    head = f"llvm: {n} of {len(loops)} loop{'s' if len(loops) != 1 else ''} lifted to " \
           "native code (each runs in Python when a variable is not a number/boolean " \
           "on entry)\n"
    return head + "".join(f"  {line}\n" for line in lifted.plan.report())


def with_router(program: Callable[..., Any], router: NativeRouter | TieredRouter,
                loops: Sequence[Any] | None = None) -> Callable[[Any], Any]:
    """Wrap a compiled ``__cx_program__`` so its runtime routes through ``router`` (and,
    for a program compiled with lifted loops, its loops run natively)."""

    def factory(rt: Any) -> Any:
        rt.use_router(router())
        return program(rt, loops) if loops is not None else program(rt)

    factory.__wrapped__ = program  # type: ignore[attr-defined]  # its __cx_paths__ too
    factory.router = router  # type: ignore[attr-defined]  # for --stats and the tests
    return factory
