"""Code generation hygiene: no user text becomes Python syntax, no two names clash.

The property test generates programs whose identifiers come from CX's whole
identifier alphabet (``$``, ``_``, digits), Python keywords and builtins, and the
names the code generator itself uses; every variable holds a distinct value and the
generator knows which declaration each ``print`` sees, so a clash shows up as a wrong
line. Every program runs compiled in-process (``cxpar run``), as the written module
(``python out.py``) and through the LLVM dispatch layer, and the module re-parses.
"""

from __future__ import annotations

import ast
import functools
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.codegen.llvm import backend as llvm_backend
from cxpar.codegen.module import compile_program, python_source
from cxpar.codegen.names import FIXED, Mangler, sanitize
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile

CXPAR = Path(sys.executable).with_name("cxpar")

#: Names a generated module uses or could derive, Python keywords and builtins.
HOSTILE = sorted(FIXED | {
    "def", "class", "lambda", "None", "True", "False", "pass", "import", "from", "global",
    "nonlocal", "yield", "async", "del", "try", "except", "raise", "with", "as", "assert",
    "elif", "or", "and", "match", "case", "type", "list", "dict", "exec", "eval",
    "__import__", "id", "super", "open", "object_", "_t", "_t_2", "_t1", "_k", "_k_2", "_k0",
    "g_x", "v_x", "x_1", "x_2", "v_x_2", "on_e0_a", "on_e0_a_sync", "realize_W", "g_",
    "v_", "v_v_x", "x", "a$b", "$", "$$", "_", "__", "a_", "x$1", "$x", "G_", "cx_self_2",
    "_v_2", "rt_2", "on", "e", "event", "self_", "W",
})

IDENT = st.one_of(st.sampled_from(HOSTILE),
                  st.from_regex(r"[A-Za-z_$][A-Za-z0-9_$]{0,5}", fullmatch=True))


@functools.cache
def usable(name: str) -> bool:
    """Whether ``name`` can be a variable, a handler parameter and a key in CX."""
    probe = (f"var {name} = 1; print({name});\n"
             f"on e0.{name} ({name}) {{ print({name}.{name}); }}\n"
             f"emit e0.{name} {{ {name}: 2 }};\n")
    fe = front_end_source(SourceFile("probe.cx", probe))
    return not fe.has_errors


NAMES = IDENT.filter(usable)
usable("warm_up")  # the parser raises the recursion limit once, before hypothesis runs


@dataclass
class Box:
    """One declared variable: its current value (None for a counter not to assign)."""

    value: str
    writable: bool = True
    printable: bool = True


@dataclass
class Sim:
    """Builds a program and the output it must print."""

    draw: Any
    globals_: dict[str, Box] = field(default_factory=dict)
    counter: int = 0
    out: list[str] = field(default_factory=list)

    def value(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def visible(self, scopes: list[dict[str, Box]]) -> dict[str, Box]:
        seen: dict[str, Box] = dict(self.globals_)
        for scope in scopes:
            seen.update(scope)
        return seen

    def block(self, scopes: list[dict[str, Box]], depth: int, size: int) -> list[str]:
        """Statements of one block (the innermost scope is ``scopes[-1]``); the printed
        output is appended to ``self.out`` in execution order as they are drawn."""
        code: list[str] = []
        for _ in range(size):
            kinds = ["var", "var", "print", "print", "assign"]
            if depth < 2:
                kinds += ["if", "for", "forc"]
            kind = self.draw(st.sampled_from(kinds))
            seen = self.visible(scopes)
            if kind == "var":
                name = self.draw(NAMES.filter(lambda x: x not in scopes[-1]))
                box = Box(self.value())
                code.append(f'var {name} = "{box.value}";')
                scopes[-1][name] = box
            elif kind == "print" and any(b.printable for b in seen.values()):
                name = self.draw(st.sampled_from(sorted(k for k, b in seen.items()
                                                        if b.printable)))
                code.append(f"print({name});")
                self.out.append(seen[name].value)
            elif kind == "assign":
                targets = sorted(k for k, b in seen.items() if b.writable)
                if targets:
                    name = self.draw(st.sampled_from(targets))
                    seen[name].value = self.value()
                    code.append(f'{name} = "{seen[name].value}";')
            elif kind == "if":
                inner = self.block(scopes + [{}], depth + 1, self.draw(st.integers(1, 3)))
                code.append("if (true) { " + " ".join(inner) + " }")
            elif kind == "for":
                name = self.draw(NAMES)
                box = Box(self.value())
                inner = self.block(scopes + [{name: box}], depth + 1,
                                   self.draw(st.integers(1, 3)))
                code.append(f'for (var {name} in ["{box.value}"]) {{ ' + " ".join(inner) + " }")
            elif kind == "forc":
                name = self.draw(NAMES)
                box = Box("0", writable=False)
                inner = self.block(scopes + [{name: box}], depth + 1,
                                   self.draw(st.integers(1, 3)))
                code.append(f"for (var {name} = 0; {name} < 1; {name} += 1) {{ "
                            + " ".join(inner) + " }")
        return code


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, list[str]]:
    sim = Sim(draw)
    lines: list[str] = []
    # Globals first (declared at the top level, visible in every function).
    top: list[str] = []
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        box = Box(sim.value())
        sim.globals_[name] = box
        top.append(f'var {name} = "{box.value}";')
    top += sim.block([sim.globals_], 1, draw(st.integers(0, 4)))
    # An entity whose realize parameters have hostile names.
    if draw(st.booleans()):
        ent = draw(NAMES.filter(lambda x: x not in sim.globals_))
        params = draw(st.lists(NAMES, max_size=2, unique=True))
        args = [sim.value() for _ in params]
        scope = {p: Box(a) for p, a in zip(params, args, strict=True)}
        printed = [f"print({p});" for p in params]
        sim.out.extend(args)
        body = sim.block([scope], 1, draw(st.integers(0, 3)))
        lines.append(f"object {ent} {{ realize(self: object{''.join(', ' + p for p in params)})"
                     f" {{ {' '.join(printed + body)} }} }}")
        extra = "".join(f', "{a}"' for a in args)
        top.append(f"new {ent}({{ id: 1 }}{extra});")
    # Handlers run after the top level, in emit order.
    handlers: list[tuple[str, str, str]] = []
    for i in range(draw(st.integers(0, 3))):
        part, param, key = draw(NAMES), draw(NAMES), draw(NAMES)
        handlers.append((f"e{i}.{part}", param, key))
    payloads = [sim.value() for _ in handlers]
    emits = [f'emit {event} {{ {key}: "{payload}" }};'
             for (event, _, key), payload in zip(handlers, payloads, strict=True)]
    for (event, param, key), payload in zip(handlers, payloads, strict=True):
        sim.out.append(payload)
        event_box = Box("", writable=False, printable=False)
        body = sim.block([{param: event_box}], 1, draw(st.integers(0, 4)))
        lines.append(f"on {event} ({param}) {{ print({param}.{key}); {' '.join(body)} }}")
    return "\n".join(lines + top + emits) + "\n", sim.out


def analysed(text: str) -> Any:
    fe = front_end_source(SourceFile("gen.cx", text))
    assert not fe.has_errors, [(d.code, d.message) for d in fe.diagnostics]
    return fe.compilation


def run(program: Any, spans: Any, sources: Any) -> list[str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_factory(program, spans, sources, RunSettings(clock="virtual"), stdout=out,
                       stderr=err)
    assert code == 0, err.getvalue()
    return out.getvalue().splitlines()


def run_source(source: str) -> list[str]:
    """Run the text of ``out.py`` as ``python out.py`` would (its main is argv parsing)."""
    ns: dict[str, Any] = {"__name__": "out"}
    exec(compile(source, "out.py", "exec"), ns)  # noqa: S102 - the module under test
    return run(ns["__cx_program__"], ns["__cx_spans__"], {ns["__cx_file__"]: ns["__cx_source__"]})


SETTINGS = settings(max_examples=80, derandomize=True, deadline=timedelta(seconds=20),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                    database=None)


@SETTINGS
@given(programs())
def test_generated_names_never_clash(prog: tuple[str, list[str]]) -> None:
    text, expected = prog
    comp = analysed(text)
    source = python_source(comp)
    ast.parse(source)
    c = compile_program(comp)
    assert run(c.program, c.spans, c.sources) == expected, text
    assert run_source(source) == expected, text
    native = llvm_backend.with_router(c.program, llvm_backend.prepare(comp))
    assert run(native, c.spans, c.sources) == expected, text


@settings(max_examples=4, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(programs())
def test_cli_run_and_out_py_print_the_same(tmp_path: Path, prog: tuple[str, list[str]]) -> None:
    text, expected = prog
    src = tmp_path / "gen.cx"
    src.write_text(text)
    out = tmp_path / "out.py"
    runs = [
        _cli("run", "--clock", "virtual", str(src)),
        _cli("run", "--clock", "virtual", "--backend", "llvm", str(src)),
    ]
    assert _cli("compile", str(src), "-o", str(out)).returncode == 0
    ast.parse(out.read_text())
    runs.append(subprocess.run([sys.executable, str(out), "--clock", "virtual"],
                               capture_output=True, text=True, timeout=60))
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == expected, text


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CXPAR), *args], capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------------- the issue's cases

CLASH = 'var x=1; on system.start(e){ var x_1="mine"; var x=2; print(x_1); }\n'


@pytest.mark.parametrize("backend", ["python", "llvm"])
def test_shadowing_never_takes_a_users_name(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "clash.cx"
    src.write_text(CLASH)
    r = _cli("run", "--backend", backend, str(src))
    assert (r.returncode, r.stdout) == (0, "mine\n"), r.stderr


def test_dollar_names_compile_to_a_runnable_module(tmp_path: Path) -> None:
    src = tmp_path / "d.cx"
    src.write_text("var a$b = 1; var a_b = 2; print(a$b); print(a_b);\n" + CLASH)
    out = tmp_path / "out.py"
    assert _cli("compile", str(src), "-o", str(out)).returncode == 0
    r = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "1\n2\nmine\n"), r.stderr


HOSTILE_FILES = [
    'x"""; __import__("os").system("echo PWNED"); """.cx',
    "x'''; __import__('os').system('echo PWNED'); '''.cx",
    "a\\N.cx",
    "new\nline\\.cx",
    "tab\there\\u0041.cx",
]


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_file_names_never_become_code(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_text('print("ok");\n')
    out = tmp_path / "out.py"
    r = _cli("compile", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    module = ast.parse(text)
    doc = ast.get_docstring(module, clean=False)
    assert doc is not None and str(src) in doc
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode, run.stdout) == (0, "ok\n"), run.stderr


def test_undecodable_file_name(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/b\xff\xfe.cx"
    Path(os.fsdecode(raw)).write_text("print(2);\n")
    out = tmp_path / "out.py"
    r = subprocess.run([os.fsencode(CXPAR), b"compile", raw, b"-o", os.fsencode(out)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ast.parse(out.read_text(encoding="utf-8"))
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode, run.stdout) == (0, "2\n"), run.stderr


def test_mangler_hands_out_each_name_once() -> None:
    m = Mangler()
    names = [m.fresh(h) for h in ["x", "x", "x_2", "a$b", "a_b", "rt", "def", "1x", "print"]]
    assert len(set(names)) == len(names)
    assert not set(names) & FIXED
    assert all(n.isidentifier() and n.isascii() for n in names)
    assert m.of("k", "x") == m.of("k", "other")
    assert sanitize("a$b") == "a_b"
