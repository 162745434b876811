"""Hypothesis writes CX programs (every construct, random spacing, line breaks and
comments between any two tokens); formatting each keeps the AST and every comment in
place, and is idempotent."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.syntax.parser import parse_text
from tests.fmt.helpers import check_guarantees

parse_text("", "warm-up")  # raises the recursion limit before hypothesis records it

SETTINGS = settings(max_examples=150, derandomize=True, deadline=timedelta(seconds=10),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)

NAMES = ["a", "b", "x", "total", "event", "self"]
EVENTS = ["a.b", "ticket.new", "system.start", "new.user", "any.alert.high"]
SERVICES = ["think", "infer", "learn", "await", "is", "not", "adapt"]
LITERALS = ["0", "12", "3.50", "007", '"s"', '"a\\nb"', '"\\u00e9\\"q\\""', '"🎯 ok"',
            "true", "false", "null", '""']
BINARY = ["+", "-", "*", "/", "%", "<", ">=", "==", "!=", "&&", "||"]

Toks = list[str]
#: What may separate two tokens (N: a number that makes each comment unique).
GAPS = [" ", " ", " ", "\n", "\n\n\n", "  ", " /* cN */ ", " // cN\n", "\n// own N\n",
        "\n\n/// doc N\n", " # hash N\n", "/* aN */", "\n  /* b\n   more N */  ",
        "\n\n// one N\n// two N\n\n"]


@st.composite
def expr(draw: st.DrawFn, depth: int = 0) -> Toks:
    leaf = depth >= 3 or draw(st.booleans())
    if leaf:
        kind = draw(st.integers(0, 3))
        if kind == 0:
            return [draw(st.sampled_from(LITERALS))]
        if kind == 1:
            return [draw(st.sampled_from(NAMES))]
        if kind == 2:
            return [draw(st.sampled_from(NAMES)), ".", draw(st.sampled_from(["name", "x"]))]
        return ["this"]
    kind = draw(st.integers(0, 10))
    sub = expr(depth + 1)
    if kind == 0:
        return draw(sub) + [draw(st.sampled_from(BINARY))] + draw(sub)
    if kind == 1:
        return [draw(st.sampled_from(["!", "-", "+"]))] + draw(sub)
    if kind == 2:
        return ["("] + draw(sub) + [")"]
    if kind == 3:
        return draw(sub) + ["?"] + draw(sub) + [":"] + draw(sub)
    if kind == 4:
        args = draw(st.lists(sub, max_size=3))
        return ["print", "("] + _commas(args, draw(st.booleans())) + [")"]
    if kind == 5:
        return draw(obj(depth + 1))
    if kind == 6:
        items = draw(st.lists(sub, max_size=4))
        return ["["] + _commas(items, draw(st.booleans())) + ["]"]
    if kind == 7:
        return [draw(st.sampled_from(NAMES)), "["] + draw(sub) + ["]"]
    if kind == 8:
        return ["new", "Desk", "("] + _commas(draw(st.lists(sub, max_size=2)), False) + [")"]
    if kind == 9:
        return [draw(st.sampled_from(SERVICES))] + draw(obj(depth + 1))
    return ["new", "Desk"] + draw(obj(depth + 1))


def _commas(items: list[Toks], trailing: bool) -> Toks:
    out: Toks = []
    for i, item in enumerate(items):
        if i:
            out.append(",")
        out.extend(item)
    if trailing and items:
        out.append(",")
    return out


@st.composite
def obj(draw: st.DrawFn, depth: int = 0) -> Toks:
    props: list[Toks] = []
    for key in draw(st.lists(st.sampled_from(["prompt", "k", '"quoted key"', "timeout",
                                              "branch", "handlers"]), max_size=4, unique=True)):
        if key == "branch":
            props.append(["branch", ":", *draw(st.sampled_from(EVENTS)).replace(".", " . ")
                          .split()])
        elif key == "handlers":
            items = [draw(st.sampled_from(EVENTS)).replace(".", " . ").split()
                     + (draw(obj(depth + 2)) if draw(st.booleans()) and depth < 2 else [])
                     for _ in range(draw(st.integers(1, 3)))]
            props.append(["handlers", ":", "["] + _commas(items, False) + ["]"])
        else:
            props.append([key, ":"] + draw(expr(depth + 1)))
    return ["{"] + _commas(props, draw(st.booleans())) + ["}"]


@st.composite
def stmt(draw: st.DrawFn, depth: int = 0) -> Toks:
    kind = draw(st.integers(0, 12 if depth < 2 else 6))
    e = expr(1)
    name = draw(st.sampled_from(["x", "total", "b"]))
    if kind == 0:
        return ["var", name, "="] + draw(e) + [";"]
    if kind == 1:
        return [name, draw(st.sampled_from(["=", "+=", "-="]))] + draw(e) + [";"]
    if kind == 2:
        return [name, "++", ";"] if draw(st.booleans()) else ["--", name, ";"]
    if kind == 3:
        ev = draw(st.sampled_from(EVENTS)).replace(".", " . ").split()
        payload = draw(st.sampled_from([[], ["{", "k", ":", "1", "}"], ["x"], [",", "x"]]))
        return ["emit", *ev, *payload, ";"]
    if kind == 4:
        return [draw(st.sampled_from(SERVICES))] + draw(obj(1)) + [";"]
    if kind == 5:
        return ["print", "("] + draw(e) + [")", ";"]
    if kind == 6:
        return [";"] if draw(st.booleans()) else ["return"] + draw(e) + [";"]
    body = block(depth + 1)
    if kind == 7:
        out = ["if", "("] + draw(e) + [")"] + draw(body)
        if draw(st.booleans()):
            out += ["else"] + draw(st.one_of(body, stmt(depth + 1)))
        return out
    if kind == 8:
        return ["while", "("] + draw(e) + [")"] + draw(body)
    if kind == 9:
        return ["for", "(", "var", "i", "in"] + draw(e) + [")"] + draw(body)
    if kind == 10:
        return ["for", "(", "var", "i", "=", "0", ";", "i", "<", "3", ";", "i", "++", ")"] \
            + draw(body)
    if kind == 11:
        return [draw(st.sampled_from(["is", "not"]))] + draw(obj(1)) + draw(body)
    return draw(body)


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> Toks:
    return ["{"] + [t for s in draw(st.lists(stmt(depth), max_size=3)) for t in s] + ["}"]


@st.composite
def handler(draw: st.DrawFn) -> Toks:
    ev = draw(st.sampled_from(EVENTS)).replace(".", " . ").split()
    head = ["on"] + (["async"] if draw(st.booleans()) else []) + ev
    if draw(st.booleans()):
        head += ["(", "event", ")"]
    return head + draw(block(1))


@st.composite
def entity(draw: st.DrawFn) -> Toks:
    head = draw(st.sampled_from([["conscious", "Desk"], ["object", "Desk", "extends", "Base"],
                                 ["conscious", "Desk", ":", "Base"]]))
    members: Toks = []
    if draw(st.booleans()):
        members += ["realize", "(", "self", ":", "conscious", ")"] + draw(block(1))
    for _ in range(draw(st.integers(0, 2))):
        members += draw(handler())
    return head + ["{"] + members + ["}"]


@st.composite
def program(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.one_of(stmt(), handler(), entity()), max_size=5))
    tokens = [t for item in items for t in item]
    out: list[str] = []
    for n, tok in enumerate(tokens):
        if out:
            out.append(draw(st.sampled_from(GAPS)).replace("N", str(n)))
        out.append(tok)
    if draw(st.booleans()):
        out.append(" // end\n")
    return "".join(out)


@SETTINGS
@given(program())
def test_generated_programs(text: str) -> None:
    check_guarantees(text)


@SETTINGS
@given(program(), st.sampled_from([20, 40]))
def test_generated_programs_narrow(text: str, width: int) -> None:
    """Narrow widths break nearly every group: the guarantees hold for broken layouts."""
    from cxpar.fmt import format as fmt_module

    saved = fmt_module.LINE_WIDTH
    fmt_module.LINE_WIDTH = width
    try:
        check_guarantees(text)
    finally:
        fmt_module.LINE_WIDTH = saved
