"""Loop lifting, part 2: LLVM IR for the loops :mod:`.loops` found eligible.

Each lifted loop becomes two functions:

- ``{i32, <state>} @cx_loop_K(i32 %resume, <state>)``: the loop itself over its
  variables (``double`` for numbers, ``i1`` for booleans), returning a status and the
  variables. Status 0: the loop finished; ``s > 0``: it ran :data:`CHUNK` iterations and
  stopped at the start of a body, to be called again with ``resume = s`` (so the
  Python side can run the loop guard: ``--timeout``, the loop limit, Ctrl-C); ``s < 0``:
  the runtime error ``errors[-s - 1]`` (``/`` or ``%`` by zero, SPEC rule 24) happened,
  and the variables are exactly what they were at that point.
- ``ptr @cx_loop_K_py(ptr self, ptr *args, i64 nargs)``: the same as a CPython
  ``METH_FASTCALL`` builtin (the bridge of :mod:`.bridge`): it unboxes ``(resume,
  *state)``, calls ``cx_loop_K`` and returns ``(status, *written state)`` as a tuple.

Semantics are the python backend's (:mod:`cxpar.runtime.values`), operation by
operation: IEEE double arithmetic without fast-math (so NaN, infinities and signed
zeros behave as in Python), ``%`` is ``frem`` (C ``fmod``: the dividend's sign), a
comparison with NaN is false, ``==`` of a number and a boolean is false, truthiness is
"not 0 and not NaN", ``&&``/``||``/``?:`` short-circuit and ``x += e`` reads ``x``
before evaluating ``e``, as the generated Python does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cxpar.analysis.model import ProgramInfo
from cxpar.ast import nodes as n
from cxpar.span import Span

from .loops import BOOL, LOGIC, NUM, Loop, LoopNode, LoopVar

__all__ = ["CHUNK", "LoopCode", "generate_loops_ir", "loop_code"]

#: Iterations (body starts, over the whole nest) per native call. The python backend's
#: loop guard checks the clock every 65 536 iterations; the native loop returns to it
#: exactly as often.
CHUNK = 1 << 16

_LL = {NUM: "double", BOOL: "i1"}
_FCMP = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "une"}
_ARITH_OP = {"+": "fadd", "-": "fsub", "*": "fmul", "/": "fdiv", "%": "frem"}

DIVISION_BY_ZERO = "division by zero"


def ll_double(v: float) -> str:
    """An exact LLVM ``double`` constant (hex: NaN, infinities and -0 included)."""
    bits = struct.unpack("<Q", struct.pack("<d", v))[0]
    return f"0x{bits:016X}"


def _comment(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


@dataclass
class LoopCode:
    """The IR of one lifted loop and what the Python side needs to call it."""

    loop: Loop
    ir: str
    #: Runtime errors by index (status ``-1 - i``): message and CX span.
    errors: list[tuple[str, Span]] = field(default_factory=list)

    @property
    def returned(self) -> list[LoopVar]:
        """The state the wrapper returns after the status: written entry values, then the
        loop's own variables."""
        return [v for v in self.loop.state if v.written or not v.outer]


class _Gen:
    """Emit the IR text of one loop nest."""

    def __init__(self, loop: Loop, info: ProgramInfo, source_lines: list[str]) -> None:
        self.loop = loop
        self.info = info
        self.source_lines = source_lines
        self.types = {id(v.binding): v.type for v in loop.vars}
        self.slots = {id(v.binding): f"%v{i}.{_ident(v.name)}" for i, v in enumerate(loop.state)}
        self.allocas: list[str] = []
        self.body: list[str] = []
        self.tmp = 0
        self.labels = 0
        self.block = "entry"
        self.terminated = False
        self.targets: list[tuple[str, str]] = []    #: (continue, break) per loop
        self.resumes: list[str] = []                #: body label per resume point
        self.errors: list[tuple[str, Span]] = []
        self.last_line = 0

    # -- emission helpers

    def t(self) -> str:
        self.tmp += 1
        return f"%t{self.tmp}"

    def label(self, hint: str) -> str:
        self.labels += 1
        return f"{hint}{self.labels}"

    def emit(self, text: str) -> None:
        self.body.append("  " + text)

    def start(self, label: str) -> None:
        self.body.append(f"{label}:")
        self.block = label
        self.terminated = False

    def br(self, target: str) -> None:
        self.emit(f"br label %{target}")
        self.terminated = True

    def cbr(self, cond: str, yes: str, no: str) -> None:
        self.emit(f"br i1 {cond}, label %{yes}, label %{no}")
        self.terminated = True

    def note(self, node: n.Node) -> None:
        """A comment with the CX source line, once per line."""
        line = node.span.line
        if line != self.last_line and 1 <= line <= len(self.source_lines):
            self.last_line = line
            self.body.append(f"  ; {line}: {_comment(self.source_lines[line - 1].strip())}")

    def ret(self, status: int) -> None:
        state = self.loop.state
        agg = "{ i32" + "".join(f", {_LL[v.type]}" for v in state) + " }"
        cur = "undef"
        cur_t = self.t()
        self.emit(f"{cur_t} = insertvalue {agg} {cur}, i32 {status}, 0")
        cur = cur_t
        for i, v in enumerate(state, 1):
            val = self.t()
            ty = _LL[v.type]
            self.emit(f"{val} = load {ty}, ptr {self.slots[id(v.binding)]}")
            nxt = self.t()
            self.emit(f"{nxt} = insertvalue {agg} {cur}, {ty} {val}, {i}")
            cur = nxt
        self.emit(f"ret {agg} {cur}")
        self.terminated = True

    def fail(self, message: str, span: Span) -> str:
        """A block that returns runtime error ``message`` at ``span``; its label."""
        self.errors.append((message, span))
        lab = self.label("error")
        saved = (self.body, self.block, self.terminated)
        self.body = []
        self.start(lab)
        self.ret(-len(self.errors))
        self.deferred.extend(self.body)
        self.body, self.block, self.terminated = saved
        return lab

    # -- the function

    def function(self) -> str:
        loop = self.loop
        state = loop.state
        self.deferred: list[str] = []
        agg = "{ i32" + "".join(f", {_LL[v.type]}" for v in state) + " }"
        params = ", ".join(["i32 %resume"] + [f"{_LL[v.type]} %in{i}"
                                               for i, v in enumerate(state)])
        for i, v in enumerate(state):
            slot = self.slots[id(v.binding)]
            self.allocas.append(f"  {slot} = alloca {_LL[v.type]}")
            self.allocas.append(f"  store {_LL[v.type]} %in{i}, ptr {slot}")
        self.allocas.append("  %count = alloca i64")
        self.allocas.append("  store i64 0, ptr %count")
        first = self.label("start")
        self.start(first)
        self.loop_stmt(loop.node, top=True)
        if not self.terminated:
            self.ret(0)
        cases = " ".join(f"i32 {i + 1}, label %{lab}" for i, lab in enumerate(self.resumes))
        head = [f"define internal {agg} @{loop.symbol}({params}) {{", "entry:", *self.allocas,
                f"  switch i32 %resume, label %{first} [ {cases} ]"]
        return "\n".join(head + self.body + self.deferred + ["}"])

    # -- statements

    def loop_stmt(self, s: LoopNode, top: bool = False) -> None:
        self.note(s)
        if isinstance(s, n.ForC) and s.init is not None and not top:
            self.stmt(s.init)
        head, tick, body = self.label("head"), self.label("tick"), self.label("body")
        cont = self.label("update") if isinstance(s, n.ForC) and s.update is not None \
            else head
        done, pause = self.label("done"), self.label("pause")
        self.br(head)
        self.start(head)
        cond = s.cond
        if cond is None:
            self.br(tick)
        else:
            self.cbr(self.truth(cond), tick, done)
        # One more iteration: count it; every CHUNK, return to Python (resume at `body`).
        self.start(tick)
        c0, c1, full = self.t(), self.t(), self.t()
        self.emit(f"{c0} = load i64, ptr %count")
        self.emit(f"{c1} = add i64 {c0}, 1")
        self.emit(f"store i64 {c1}, ptr %count")
        self.emit(f"{full} = icmp sge i64 {c1}, {CHUNK}")
        self.cbr(full, pause, body)
        self.resumes.append(body)
        self.start(pause)
        self.ret(len(self.resumes))
        self.start(body)
        self.targets.append((cont, done))
        self.stmt(s.body)
        self.targets.pop()
        if not self.terminated:
            self.br(cont)
        if isinstance(s, n.ForC) and s.update is not None:
            self.start(cont)
            self.effect(s.update)
            self.br(head)
        self.start(done)

    def stmt(self, s: n.Stmt) -> None:
        if isinstance(s, n.Block):
            for x in s.body:
                if self.terminated:
                    return  # after break/continue: unreachable, as in Python
                self.stmt(x)
            return
        self.note(s)
        if isinstance(s, n.VarDecl):
            b = self.info.binding_of(s)
            assert b is not None and s.init is not None
            v, ty = self.value(s.init)
            self.emit(f"store {_LL[ty]} {v}, ptr {self.slots[id(b)]}")
        elif isinstance(s, n.ExprStmt):
            self.effect(s.expr)
        elif isinstance(s, n.If):
            c = self.truth(s.cond)
            then, other, end = self.label("then"), self.label("else"), self.label("endif")
            self.cbr(c, then, other if s.orelse is not None else end)
            self.start(then)
            self.stmt(s.then)
            if not self.terminated:
                self.br(end)
            if s.orelse is not None:
                self.start(other)
                self.stmt(s.orelse)
                if not self.terminated:
                    self.br(end)
            self.start(end)
        elif isinstance(s, (n.While, n.ForC)):
            self.loop_stmt(s)
        elif isinstance(s, n.Break):
            self.br(self.targets[-1][1])
        elif isinstance(s, n.Continue):
            self.br(self.targets[-1][0])
        elif isinstance(s, n.Empty):
            pass
        else:  # pragma: no cover - excluded by the eligibility check
            raise AssertionError(type(s).__name__)

    # -- expressions

    def type_of(self, e: n.Expr) -> str:
        """The static type of ``e`` (the checker made it unambiguous where it is used)."""
        if isinstance(e, n.Number):
            return NUM
        if isinstance(e, n.Bool):
            return BOOL
        if isinstance(e, n.Name):
            return self.types[id(self.binding(e))]
        if isinstance(e, n.Unary):
            return BOOL if e.op == "!" else NUM
        if isinstance(e, n.Binary):
            if e.op in LOGIC:
                return self.type_of(e.left)
            return NUM if e.op in _ARITH_OP else BOOL
        if isinstance(e, n.Conditional):
            return self.type_of(e.then)
        if isinstance(e, n.Assign):
            return self.types[id(self.binding(e.target))] if e.op == "=" else NUM
        return NUM  # num(x)

    def binding(self, e: n.Expr) -> object:
        ref = self.info.ref(e)
        assert ref is not None and ref.binding is not None
        return ref.binding

    def effect(self, e: n.Expr) -> None:
        """Evaluate ``e`` for its effects (its value may be of either type)."""
        if isinstance(e, (n.Binary, n.Conditional)) and (
                isinstance(e, n.Conditional) or e.op in LOGIC):
            self.truth(e)
        else:
            self.value(e)

    def truth(self, e: n.Expr) -> str:
        """An ``i1``: whether ``e`` is truthy (rule 23: not false, 0 or NaN)."""
        if isinstance(e, n.Unary) and e.op == "!":
            v = self.truth(e.operand)
            r = self.t()
            self.emit(f"{r} = xor i1 {v}, true")
            return r
        if isinstance(e, n.Binary) and e.op in LOGIC:
            return self.branchy(lambda: self.truth(e.left), lambda: self.truth(e.right),
                                "i1", e.op == "&&", lambda v: v)
        if isinstance(e, n.Conditional):
            return self.select(e, self.truth, "i1")
        v, ty = self.value(e)
        return self.to_truth(v, ty)

    def to_truth(self, v: str, ty: str) -> str:
        if ty == BOOL:
            return v
        r = self.t()
        self.emit(f"{r} = fcmp one double {v}, 0.0")
        return r

    def merged(self, ll: str) -> tuple[str, Callable[[str], None], Callable[[str], str]]:
        """A stack slot for a value computed on several paths (mem2reg makes it a phi):
        its name, ``put(value)`` (store it, in the current block) and ``get(end)``
        (start block ``end`` and load it)."""
        slot = self.t() + ".slot"
        self.allocas.append(f"  {slot} = alloca {ll}")

        def put(v: str) -> None:
            self.emit(f"store {ll} {v}, ptr {slot}")

        def get(end: str) -> str:
            self.start(end)
            out = self.t()
            self.emit(f"{out} = load {ll}, ptr {slot}")
            return out

        return slot, put, get

    def branchy(self, left: Callable[[], str], right: Callable[[], str], ll: str,
                is_and: bool, test: Callable[[str], str]) -> str:
        """``left && right`` / ``left || right``: the left value unless it decides,
        else the right one."""
        _, put, get = self.merged(ll)
        lv = left()
        put(lv)
        t = test(lv)
        rhs, end = self.label("rhs"), self.label("end")
        if is_and:
            self.cbr(t, rhs, end)
        else:
            self.cbr(t, end, rhs)
        self.start(rhs)
        put(right())
        self.br(end)
        return get(end)

    def select(self, e: n.Conditional, arm: Callable[[n.Expr], str], ll: str) -> str:
        """``c ? a : b`` with ``arm`` compiling each branch."""
        _, put, get = self.merged(ll)
        c = self.truth(e.cond)
        yes, no, end = self.label("then"), self.label("else"), self.label("end")
        self.cbr(c, yes, no)
        for lab, branch in ((yes, e.then), (no, e.orelse)):
            self.start(lab)
            put(arm(branch))
            self.br(end)
        return get(end)

    def value(self, e: n.Expr) -> tuple[str, str]:  # noqa: C901 - dispatch
        """``(llvm value, type)`` of ``e``."""
        if isinstance(e, n.Number):
            return ll_double(e.value), NUM
        if isinstance(e, n.Bool):
            return ("true" if e.value else "false"), BOOL
        if isinstance(e, n.Name):
            b = self.binding(e)
            ty = self.types[id(b)]
            r = self.t()
            self.emit(f"{r} = load {_LL[ty]}, ptr {self.slots[id(b)]}")
            return r, ty
        if isinstance(e, n.Unary):
            if e.op == "!":
                return self.truth(e), BOOL
            v, _ = self.value(e.operand)
            if e.op == "+":
                return v, NUM
            r = self.t()
            self.emit(f"{r} = fneg double {v}")
            return r, NUM
        if isinstance(e, n.Binary):
            return self.binary(e)
        if isinstance(e, n.Conditional):
            ty = self.type_of(e)
            return self.select(e, lambda x: self.value(x)[0], _LL[ty]), ty
        if isinstance(e, n.Assign):
            return self.assign(e)
        if isinstance(e, n.Call):  # num(x) of a number is x
            return self.value(e.args[0])
        raise AssertionError(type(e).__name__)  # pragma: no cover

    def arith(self, op: str, a: str, b: str, span: Span) -> str:
        if op in ("/", "%"):
            zero, ok = self.t(), self.label("nonzero")
            self.emit(f"{zero} = fcmp oeq double {b}, 0.0")
            self.cbr(zero, self.fail(DIVISION_BY_ZERO, span), ok)
            self.start(ok)
        r = self.t()
        self.emit(f"{r} = {_ARITH_OP[op]} double {a}, {b}")
        return r

    def binary(self, e: n.Binary) -> tuple[str, str]:
        op = e.op
        if op in LOGIC:
            ty = self.type_of(e.left)
            return self.branchy(lambda: self.value(e.left)[0], lambda: self.value(e.right)[0],
                                _LL[ty], op == "&&", lambda v: self.to_truth(v, ty)), ty
        a, ta = self.value(e.left)
        b, tb = self.value(e.right)
        if op in _ARITH_OP:
            return self.arith(op, a, b, e.span), NUM
        r = self.t()
        if ta != tb:  # `==` never coerces: a number is never equal to a boolean
            return ("false" if op == "==" else "true"), BOOL
        if ta == NUM:
            self.emit(f"{r} = fcmp {_FCMP[op]} double {a}, {b}")
        else:
            self.emit(f"{r} = icmp {'eq' if op == '==' else 'ne'} i1 {a}, {b}")
        return r, BOOL

    def assign(self, e: n.Assign) -> tuple[str, str]:
        b = self.binding(e.target)
        ty = self.types[id(b)]
        slot = self.slots[id(b)]
        if e.op == "=":
            v, _ = self.value(e.value)
        else:
            cur = self.t()
            self.emit(f"{cur} = load double, ptr {slot}")
            rhs, _ = self.value(e.value)
            v = self.arith(e.op[0], cur, rhs, e.span)
            if getattr(e, "postfix", False):  # `x++`: the old value (rule 48)
                self.emit(f"store double {v}, ptr {slot}")
                return cur, NUM
        self.emit(f"store {_LL[ty]} {v}, ptr {slot}")
        return v, ty


def _ident(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)


_BOX = {NUM: "PyFloat_FromDouble(double {v})", BOOL: "PyBool_FromLong(i64 {v})"}


def _wrapper(loop: Loop, returned: list[LoopVar]) -> str:
    """The ``METH_FASTCALL`` builtin around ``cx_loop_K`` (unbox, call, box)."""
    state = loop.state
    agg = "{ i32" + "".join(f", {_LL[v.type]}" for v in state) + " }"
    nargs = 1 + len(state)
    out = [f"define ptr @{loop.symbol}_py(ptr %self, ptr %args, i64 %nargs) {{",
           "entry:",
           f"  %ok = icmp eq i64 %nargs, {nargs}",
           "  br i1 %ok, label %unbox, label %bad",
           "bad:",
           "  %ignored = call i32 @PyErr_BadArgument()",
           "  ret ptr null",
           "unbox:",
           "  %o0 = load ptr, ptr %args",
           "  %r64 = call i64 @PyLong_AsSsize_t(ptr %o0)",
           "  %resume = trunc i64 %r64 to i32"]
    args = ["i32 %resume"]
    for i, v in enumerate(state, 1):
        out.append(f"  %p{i} = getelementptr ptr, ptr %args, i64 {i}  ; {_comment(v.name)}")
        out.append(f"  %o{i} = load ptr, ptr %p{i}")
        if v.type == NUM:
            out.append(f"  %a{i} = call double @PyFloat_AsDouble(ptr %o{i})")
            args.append(f"double %a{i}")
        else:
            out.append(f"  %a{i} = icmp eq ptr %o{i}, @cx_py_true")
            args.append(f"i1 %a{i}")
    out.append(f"  %res = call {agg} @{loop.symbol}({', '.join(args)})")
    out.append(f"  %tuple = call ptr @PyTuple_New(i64 {1 + len(returned)})")
    out.append("  %nomem = icmp eq ptr %tuple, null")
    out.append("  br i1 %nomem, label %fail, label %box0")
    out.append("box0:")
    out.append("  %s = extractvalue " + agg + " %res, 0")
    out.append("  %s64 = sext i32 %s to i64")
    out.append("  %b0 = call ptr @PyLong_FromSsize_t(i64 %s64)")
    pos = {id(v.binding): i for i, v in enumerate(state, 1)}
    for k, v in enumerate(returned, 1):
        prev = k - 1
        out.append(f"  %n{prev} = icmp eq ptr %b{prev}, null")
        out.append(f"  br i1 %n{prev}, label %drop, label %set{prev}")
        out.append(f"set{prev}:")
        out.append(f"  %x{prev} = call i32 @PyTuple_SetItem(ptr %tuple, i64 {prev}, ptr %b{prev})")
        out.append(f"  %e{k} = extractvalue {agg} %res, {pos[id(v.binding)]}  ; "
                   f"{_comment(v.name)}")
        if v.type == BOOL:
            out.append(f"  %z{k} = zext i1 %e{k} to i64")
            out.append(f"  %b{k} = call ptr @" + _BOX[BOOL].format(v=f"%z{k}"))
        else:
            out.append(f"  %b{k} = call ptr @" + _BOX[NUM].format(v=f"%e{k}"))
    last = len(returned)
    out.append(f"  %n{last} = icmp eq ptr %b{last}, null")
    out.append(f"  br i1 %n{last}, label %drop, label %set{last}")
    out.append(f"set{last}:")
    out.append(f"  %x{last} = call i32 @PyTuple_SetItem(ptr %tuple, i64 {last}, ptr %b{last})")
    out.append("  ret ptr %tuple")
    out.append("drop:")
    out.append("  call void @Py_DecRef(ptr %tuple)")
    out.append("  br label %fail")
    out.append("fail:")
    out.append("  ret ptr null")
    out.append("}")
    return "\n".join(out)


_DECLS = """\
@cx_py_true = external global i8
declare double @PyFloat_AsDouble(ptr)
declare ptr @PyFloat_FromDouble(double)
declare ptr @PyBool_FromLong(i64)
declare i64 @PyLong_AsSsize_t(ptr)
declare ptr @PyLong_FromSsize_t(i64)
declare ptr @PyTuple_New(i64)
declare i32 @PyTuple_SetItem(ptr, i64, ptr)
declare void @Py_DecRef(ptr)
declare i32 @PyErr_BadArgument()
"""


def loop_code(loop: Loop, info: ProgramInfo, source_lines: list[str]) -> LoopCode:
    """The IR (native loop + its builtin wrapper) of one lifted loop."""
    gen = _Gen(loop, info, source_lines)
    fn = gen.function()
    code = LoopCode(loop, "", gen.errors)
    header = [f"; {_comment(loop.describe())}"]
    for i, (msg, span) in enumerate(gen.errors):
        header.append(f";   status {-1 - i}: {msg} at {span}")
    header.append(f";   status k > 0: paused after {CHUNK} iterations, resume at body k")
    code.ir = "\n".join(header) + "\n" + fn + "\n\n" + _wrapper(loop, code.returned)
    return code


def generate_loops_ir(codes: list[LoopCode], source: str, not_lifted: list[str],
                      declarations: bool = True) -> str:
    """The loops module: every lifted loop and, as comments, why the others were not."""
    lines = ["; ModuleID = 'cxpar.loops'", f"; native loops of {_comment(source)}",
             "; generated from the analysed program; see cxpar/codegen/llvm/loop_ir.py"]
    lines.extend(f"; {_comment(r)}" for r in not_lifted)
    if declarations:
        lines.append("")
        lines.append(_DECLS)
    for c in codes:
        lines.append(c.ir)
        lines.append("")
    return "\n".join(lines)
