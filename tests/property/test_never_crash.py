"""Random token soups and mutated corpus programs never crash the front end.

``parse_text`` must return (no exception), every diagnostic has a valid span inside
the text, and every AST node's span too. Each example is bounded by hypothesis's
``deadline``: generous, it only proves the parser terminates (no timing assertion).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.ast.visit import walk
from cxpar.span import SourceFile, Span
from cxpar.syntax.parser import ParseResult, parse_text
from cxpar.syntax.source import decode

SETTINGS = settings(max_examples=200, derandomize=True, deadline=timedelta(seconds=2),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)

PROGRAMS = sorted((Path(__file__).parents[1] / "syntax" / "programs").glob("*.cx"))


def _load(path: Path) -> str:
    src = decode(path.read_bytes(), path.name)
    assert isinstance(src, SourceFile)
    return src.text


CORPUS = [_load(p) for p in PROGRAMS]
# The parser raises the recursion limit on first use; do it before hypothesis
# records the limit, so it does not warn about a changed limit.
parse_text("", "warm-up")

TOKENS = [
    "conscious", "object", "extends", "realize", "on", "async", "emit", "var", "if", "else",
    "while", "for", "in", "break", "continue", "return", "new", "this", "self", "true",
    "false", "null", "think", "learn", "await", "is", "not", "iam", "handlers", "a", "b",
    "event", "print", "{", "}", "(", ")", "[", "]", ";", ",", ".", ":", "=", "==", "!=", "+=",
    "-=", "*=", "/=", "+", "-", "*", "/", "%", "!", "<", ">", "<=", ">=", "&&", "||", "?",
    "1", "2.5", "0", '"s"', '"\\n"', '"🎯"', "'q'", "#", "@", "`", "\\", '"open', "/*",
    "*/", "//", "///", "\n", "\t", "\r\n", " ", "é", "🧠", "\x00", "\ufeff", "{ k: 1 }",
    "a.b", "a.b { k: 1 }", "x: a.b",
]


def check(text: str) -> ParseResult:
    result = parse_text(text, "p.cx")
    n_lines = text.count("\n") + 1
    for d in result.diagnostics:
        _valid(d.span, text, n_lines, f"{d.code} {d.message}")
        assert d.code.startswith("CX") and d.message
        for lab in d.labels:
            _valid(lab.span, text, n_lines, lab.message)
    if result.program is not None:
        for node in walk(result.program):
            _valid(node.span, text, n_lines, type(node).__name__)
    return result


def _valid(s: Span, text: str, n_lines: int, what: str) -> None:
    assert 1 <= s.line <= s.end_line <= n_lines, (what, s)
    assert s.col >= 1 and s.end_col >= 1, (what, s)
    if s.line == s.end_line:
        assert s.end_col >= s.col, (what, s)
    assert 0 <= s.start <= len(text) and s.start <= s.end <= len(text) + 1, (what, s)
    line_text = text.split("\n")[s.line - 1]
    assert s.col <= len(line_text) + 2, (what, s, len(line_text))


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup(tokens: list[str]) -> None:
    check(" ".join(tokens))


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup_glued(tokens: list[str]) -> None:
    check("".join(tokens))


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    check(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A corpus program with tokens (whitespace-separated words) deleted, duplicated,
    swapped or replaced."""
    return mutate_words(draw, draw(st.sampled_from(CORPUS)), 4, TOKENS)


def mutate_words(draw: st.DrawFn, text: str, most: int, tokens: list[str] | None) -> str:
    """``text`` with 1..``most`` of its words deleted, duplicated, swapped, cut short or
    (given ``tokens``) replaced by one of them."""
    words = text.split(" ")
    ops = ["delete", "duplicate", "swap", "cut"] + (["replace"] if tokens else [])
    for _ in range(draw(st.integers(1, most))):
        if not words:
            break
        i = draw(st.integers(0, len(words) - 1))
        op = draw(st.sampled_from(ops))
        if op == "delete":
            del words[i]
        elif op == "duplicate":
            words.insert(i, words[i])
        elif op == "swap":
            j = draw(st.integers(0, len(words) - 1))
            words[i], words[j] = words[j], words[i]
        elif op == "replace" and tokens:
            words[i] = draw(st.sampled_from(tokens))
        else:
            word = words[i]
            k = draw(st.integers(0, len(word)))
            words[i] = word[:k]
    return " ".join(words)


@SETTINGS
@given(mutated())
def test_mutated_corpus(text: str) -> None:
    check(text)


@st.composite
def char_mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        op = draw(st.sampled_from(["delete", "insert", "truncate"]))
        if op == "delete":
            text = text[:i] + text[i + 1:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(list("{}()[];,.:\"'/*#@=\n"))) + text[i:]
        else:
            text = text[:i]
    return text


@SETTINGS
@given(char_mutated())
def test_character_mutated_corpus(text: str) -> None:
    check(text)


def test_unmutated_corpus_has_no_diagnostics() -> None:
    for text in CORPUS:
        assert check(text).diagnostics == []
