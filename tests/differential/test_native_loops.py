"""Native loops (issue 24): the llvm backend lifts numeric loops to JIT'd code, and every
program behaves byte for byte as under the python backend: stdout, stderr (runtime
errors with their CX span), exit code, and every variable's value afterwards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.codegen.llvm.backend import explain_loops, lift_loops

from .harness import ROOT, analyse_file, analyse_text, assert_same, run_traced


def _runnable(path: Path) -> bool:
    from cxpar.driver import front_end

    fe = front_end(path, path.name)
    return fe.compilation is not None and not fe.has_errors


#: The syntax corpus' programs that pass analysis (some only parse: unknown functions).
CORPUS = [p for p in sorted((ROOT / "tests" / "syntax" / "programs").glob("*.cx"))
          if _runnable(p)]

SETTINGS = settings(max_examples=60, derandomize=True, deadline=timedelta(seconds=30),
                    suppress_health_check=[HealthCheck.too_slow], database=None)

# Values no literal can write: huge, tiny, subnormal, Infinity and NaN (and -0).
PROLOGUE = """\
var huge = 1000000000000000000000000000000 * 1000000000000000000000000000000;
huge = huge * huge * huge * huge * huge;
var inf = huge * huge;
var nan = inf - inf;
var tiny = 1 / huge;
var sub = tiny / huge / 10000000;
var negz = -0;
"""
SPECIALS = ["huge", "inf", "nan", "tiny", "sub", "negz", "-inf", "-huge"]
NUMBERS = ["0", "1", "2", "3", "7", "31", "0.5", "2.25", "1000003", "4294967296",
           "9007199254740993", "0.1"]
NUM_VARS = ["a", "b", "c"]

# The parser raises the recursion limit on first use; do it before hypothesis runs.
analyse_text("print(1);\n")


def same(text: str, **kw: object) -> None:
    fe = analyse_text(text)
    assert_same(run_traced(fe, "python", **kw), run_traced(fe, "llvm", **kw))


def lifted(text: str) -> int:
    fe = analyse_text(text)
    assert fe.compilation is not None
    return len(lift_loops(fe.compilation).codes)


# ------------------------------------------------------------------ generator


@st.composite
def num_expr(draw: st.DrawFn, depth: int = 0) -> str:
    leaf = depth >= 3 or draw(st.integers(0, 2)) == 0
    if leaf:
        kind = draw(st.sampled_from(["var", "var", "lit", "special", "i"]))
        if kind == "var":
            return draw(st.sampled_from(NUM_VARS))
        if kind == "i":
            return "i"
        if kind == "special":
            return draw(st.sampled_from(SPECIALS))
        return draw(st.sampled_from(NUMBERS))
    shape = draw(st.sampled_from(["bin", "bin", "bin", "neg", "cond", "num"]))
    if shape == "neg":
        return f"-({draw(num_expr(depth + 1))})"
    if shape == "num":
        return f"num({draw(num_expr(depth + 1))})"
    if shape == "cond":
        return (f"({draw(bool_expr(depth + 1))} ? {draw(num_expr(depth + 1))} : "
                f"{draw(num_expr(depth + 1))})")
    op = draw(st.sampled_from(["+", "-", "*", "/", "%", "%", "/"]))
    return f"({draw(num_expr(depth + 1))} {op} {draw(num_expr(depth + 1))})"


@st.composite
def bool_expr(draw: st.DrawFn, depth: int = 0, value: bool = False) -> str:
    """A condition; ``value``: a boolean value (no number used for its truth)."""
    shapes = ["cmp", "cmp", "cmp", "flag", "not", "and", "or", "eq"]
    shape = draw(st.sampled_from(shapes if value else shapes + ["truth"]))
    if depth >= 3 or shape == "cmp":
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(num_expr(depth + 1))} {op} {draw(num_expr(depth + 1))}"
    if shape == "flag":
        return "f"
    if shape == "not":
        return f"!({draw(bool_expr(depth + 1))})"
    if shape == "eq":  # a boolean compared with a boolean, or (never equal) a number
        other = draw(st.sampled_from(["true", "false", "f", "a"]))
        return f"(f {draw(st.sampled_from(['==', '!=']))} {other})"
    if shape == "truth":  # numbers as conditions: 0 and NaN are falsy
        return draw(num_expr(depth + 1))
    op = "&&" if shape == "and" else "||"
    if value:
        return f"({draw(bool_expr(depth + 1, True))} {op} {draw(bool_expr(depth + 1, True))})"
    # `&&`/`||` as conditions may mix a number and a boolean (only the truth counts)
    right = draw(st.one_of(bool_expr(depth + 1), num_expr(depth + 1)))
    return f"({draw(bool_expr(depth + 1))} {op} {right})"


@st.composite
def statement(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["assign", "assign", "compound", "flag", "break",
                                 "continue", "ifelse", "local", "inner", "incdec"]))
    if kind == "assign":
        return f"{draw(st.sampled_from(NUM_VARS))} = {draw(num_expr())};"
    if kind == "compound":
        op = draw(st.sampled_from(["+=", "-=", "*=", "/="]))
        return f"{draw(st.sampled_from(NUM_VARS))} {op} {draw(num_expr())};"
    if kind == "incdec":
        var = draw(st.sampled_from(NUM_VARS))
        return draw(st.sampled_from([f"{var}++;", f"{var}--;", f"++{var};",
                                     f"c = {var}++ + 1;", f"c = --{var};"]))
    if kind == "flag":
        return f"f = {draw(bool_expr(value=True))};"
    if kind == "break":
        return f"if ({draw(bool_expr())}) {{ break; }}"
    if kind == "continue":
        return f"if ({draw(bool_expr())}) {{ continue; }}"
    if kind == "local":  # `@` becomes a number unique in the program
        return f"var t@ = {draw(num_expr())}; a = a + t@;"
    if kind == "inner" and depth == 0:
        body = " ".join(draw(st.lists(statement(depth + 1), min_size=1, max_size=3)))
        n = draw(st.integers(0, 4))
        return f"for (var j = 0; j < {n}; j++) {{ {body} }}"
    then = " ".join(draw(st.lists(statement(depth + 1), min_size=0, max_size=2)))
    other = " ".join(draw(st.lists(statement(depth + 1), min_size=0, max_size=2)))
    return f"if ({draw(bool_expr())}) {{ {then} }} else {{ {other} }}"


@st.composite
def numeric_loop_programs(draw: st.DrawFn) -> str:
    inits = {v: draw(st.sampled_from(NUMBERS + SPECIALS + ["-1", "-7.5"])) for v in NUM_VARS}
    n = draw(st.integers(0, 40))
    body = " ".join(draw(st.lists(statement(), min_size=1, max_size=6)))
    parts = body.split("@")
    body = "".join(p + (str(k // 2) if k + 1 < len(parts) else "") for k, p in enumerate(parts))
    form = draw(st.sampled_from(["while", "for", "handler"]))
    decls = "".join(f"var {v} = {x};\n" for v, x in inits.items())
    decls += f"var f = {draw(st.sampled_from(['true', 'false']))};\nvar i = 0;\n"
    show = 'print("a=" + a, "b=" + b, "c=" + c, "f=" + f, "i=" + i);'
    if form == "while":
        loop = f"while (i < {n}) {{ i += 1; {body} }}"
    elif form == "for":
        loop = f"for (var k = 0; k < {n}; k++) {{ i = k; {body} }}"
    else:  # in a handler: globals, written back through `nonlocal`
        loop = f"on go (e) {{ while (i < {n}) {{ i += 1; {body} }} {show} }}\nemit go;"
    # system.start runs even after a runtime error (rule 49): the state is observable
    return (PROLOGUE + decls + loop + "\n" + show + "\n"
            + f"on system.start (e) {{ {show} }}\n")


@SETTINGS
@given(numeric_loop_programs())
def test_generated_numeric_loops_same_under_both_backends(text: str) -> None:
    assert lifted(text) >= 1, text
    same(text)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_program_same_under_both_backends(path: Path) -> None:
    """Every program of the syntax corpus (held-out style: written without the llvm
    backend in mind) runs identically; some of them have loops that are lifted."""
    fe = analyse_file(path)
    assert_same(run_traced(fe, "python"), run_traced(fe, "llvm"))


# ------------------------------------------------------------------ semantics


def test_the_issue_loop() -> None:
    text = ("var h = 7; var i = 0;\n"
            "while (i < 300000) { h = (h * 31 + i) % 1000003; i += 1; }\nprint(h, i);\n")
    assert lifted(text) == 1
    same(text)


@pytest.mark.parametrize("expr", [
    "-7 % 3", "7 % -3", "-7.5 % 2", "inf % 3", "3 % inf", "nan % 2", "-0 % 5",
    "inf - inf", "huge * huge", "tiny * tiny", "sub / 2", "1 / inf", "-1 / inf",
    "0.1 + 0.2", "9007199254740993 + 1", "huge / tiny",
])
def test_number_rules(expr: str) -> None:
    text = PROLOGUE + (f"var x = 0; var k = 0;\nwhile (k < 1) {{ x = {expr}; k += 1; }}\n"
                       f"print(x, x == x, x < 0, x > 0, x == 0, !x);\n")
    assert lifted(text) == 1
    same(text)


def test_nan_comparisons_are_false() -> None:
    text = PROLOGUE + ("var r = 0; var k = 0;\nwhile (k < 1) { k += 1;\n"
                       "  if (nan < 1) { r += 1; } if (nan >= 1) { r += 2; }\n"
                       "  if (nan == nan) { r += 4; } if (nan != nan) { r += 8; }\n"
                       "  if (nan) { r += 16; } if (!nan) { r += 32; } }\nprint(r);\n")
    same(text)


@pytest.mark.parametrize("op", ["/", "%", "/="])
def test_division_by_zero_is_the_same_error_with_the_state_so_far(op: str) -> None:
    stmt = f"x {op} (k - 3)" if op == "/=" else f"x = 100 {op} (k - 3)"
    text = (f"var x = 1; var k = 0; var seen = 0;\n"
            f"while (k < 10) {{ k += 1; seen = seen + k; {stmt}; }}\n"
            'print("not reached");\n'
            'on system.start (e) { print("after:", x, k, seen); }\n')
    assert lifted(text) == 1
    fe = analyse_text(text)
    py, native = run_traced(fe, "python"), run_traced(fe, "llvm")
    assert_same(py, native)
    assert native.code == 3 and "division by zero" in native.err
    assert native.out == {"/": "after: -100 3 6\n", "%": "after: 0 3 6\n",
                          "/=": "after: 0.5 3 6\n"}[op]


def test_break_continue_and_nested_loops() -> None:
    text = ("var s = 0; var i = 0;\n"
            "for (var a = 0; a < 50; a++) {\n"
            "  if (a % 7 == 3) { continue; }\n"
            "  var m = a * 2;\n"
            "  for (var b = 0; b < 50; b += 1) { if (b > m) { break; } s = s + b * a; }\n"
            "  while (true) { i++; if (i % 5 == 0) { break; } }\n"
            "  if (s > 100000) { break; }\n"
            "}\nprint(s, i);\n")
    assert lifted(text) == 1
    same(text)


def test_chunks_resume_in_inner_loops() -> None:
    """More iterations than one native call runs (65 536): the loop returns to Python
    (the guard) and resumes, also in the middle of an inner loop."""
    text = ("var s = 0; var n = 0;\n"
            "for (var a = 0; a < 3; a++) {\n"
            "  var local = a + 1;\n"
            "  for (var b = 0; b < 70000; b++) { s = (s + b * local) % 1000003; n++; }\n"
            "}\nprint(s, n);\n")
    same(text)
    fe = analyse_text(text)
    assert fe.compilation is not None
    lifted_loops = lift_loops(fe.compilation)
    from cxpar.codegen.llvm.native import load_loops

    loops = load_loops(lifted_loops.ir(), lifted_loops.symbols, strict=True)
    assert loops is not None
    # state: a, s, n (entry values), then the loop's own: local, b
    code = lifted_loops.codes[0]
    assert [v.name for v in code.loop.state] == ["a", "s", "n", "local", "b"]
    status, *rest = loops[0](0, 0.0, 0.0, 0.0, 0.0, 0.0)
    calls = 1
    while status > 0:
        assert status == 2  # paused in the inner loop's body
        status, *rest = loops[0](status, *rest)
        calls += 1
    assert status == 0 and calls == 4  # 210 003 body starts / 65 536 per call
    assert rest[2] == 210000.0


def test_handlers_and_realize_locals_and_globals() -> None:
    text = ("var total = 0;\n"
            "object Acc { realize(self, n) { var k = 0; var acc = 0;\n"
            "  while (k < n) { acc += k * k; k++; } self.acc = acc; total += acc; } }\n"
            "on go (e) { var i = 0; while (i < 10) { total = total + i; i += 1; }\n"
            "  print(\"go\", total); }\n"
            "var x = new Acc({}, 100); print(x.acc, total);\nemit go;\n")
    assert lifted(text) == 2
    same(text)


def test_entry_check_falls_back_to_python() -> None:
    """A variable that is not a number/boolean when the loop starts: the Python loop
    runs (here it raises the python backend's error, at the same span)."""
    text = ('var s = str(5); var i = 0; var n = num("3");\n'
            "while (i < n) { i += 1; s = s - 1; }\nprint(s);\n")
    assert lifted(text) == 1
    same(text)
    text2 = ("var r = think { prompt: \"x\" }; var k = r._parallel.branches; var i = 0;\n"
             "while (i < 5) { i += 1; k = k + i; }\nprint(k, i);\n")
    same(text2)


def test_mixed_truth_conditions() -> None:
    text = ("var a = 3; var f = true; var n = 0;\n"
            "while ((a && f) || n < 2) { n++; a = a - 1; if (a < -2) { f = false; }\n"
            "  if (n > 10) { break; } }\nprint(a, f, n);\n")
    assert lifted(text) == 1
    same(text)


# ------------------------------------------------------------------ what is not lifted


@pytest.mark.parametrize(("body", "reason"), [
    ('print(i);', "a call to `print`"),
    ('s = s + "x";', "a string"),
    ("emit tick;", "`emit`"),
    ("o.n = i;", "assignment to a property or index"),
    ("x = o.n;", "a property access"),
    ("f = i; f = true;", "`f` is assigned a boolean but holds a number elsewhere"),
    ("f = i > 2; x = f + 1;", "`f` is used as a number but holds a boolean elsewhere"),
    ("x = (i > 2) && 5;", "`x` may get a number or a boolean here"),
    ("x = 1 + ((i > 2) || 5);", "arithmetic (`+`) of a value that may be a number or a boolean"),
    ("var z;", "`var z;` starts as null"),
    ("think { prompt: \"p\" };", "a service call (`think`)"),
])
def test_reasons(body: str, reason: str) -> None:
    text = ('var i = 0; var s = ""; var o = {}; var x = 0; var f = true;\n'
            f"on tick (e) {{ }}\nwhile (i < 3) {{ i += 1; {body} }}\n")
    fe = analyse_text(text)
    assert fe.compilation is not None
    lifted_loops = lift_loops(fe.compilation)
    assert not lifted_loops.codes
    report = explain_loops(lifted_loops)
    assert reason in report and "gen.cx:3:" in report, report
    same(text)
