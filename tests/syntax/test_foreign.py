"""Constructs from other languages (CX120): one error for the whole construct, on its
word, with what CX has instead; nothing from its body; errors after it still reported;
the words stay usable as names in valid CX."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpar.diagnostics.model import Diagnostic
from cxpar.driver import front_end_source
from cxpar.span import SourceFile
from cxpar.syntax.foreign import WORDS

from .helpers import ok

#: One construct per word, as users write it (several lines, nested braces, strings).
CONSTRUCTS = {
    "try": 'try {\n    var r = think { prompt: "p" };\n    if (r) { print("}"); }\n}'
           ' catch (e) {\n    print(e);\n} finally { print("done"); }',
    "catch": "catch (e) { print(e); }",
    "finally": "finally { print(1); }",
    "throw": 'throw new Error("bad {");',
    "function": "async function f(a: number, b) -> number {\n    return a + b;\n}",
    "func": "func add(a int) int { return a }",
    "fn": "fn add(a: i32) -> i32 { a + 1 }",
    "def": "def f(x): return x",
    "class": "export class Agent extends Base {\n    constructor() { this.x = { a: 1 }; }\n"
             "    run() { return `t ${this.x}`; }\n}",
    "interface": "interface Shape { area(): number; }",
    "struct": "struct P { x: i32, y: i32 }",
    "import": 'import { io } from "StandardLibrary.Modules.IO";',
    "export": "export default main;",
    "using": "using System.Text;",
    "switch": "switch (x) {\n    case 1: print(1); break;\n    default: { print(2); }\n}",
    "do": "do {\n    x++;\n} while (x < 3);",
    "foreach": "foreach (var x in items) { print(x); }",
}


def diags(text: str) -> list[Diagnostic]:
    """Errors and warnings of `cxpar check` (parse, then analysis when it parses; `throw
    x;` and `using X.Y;` parse as service calls and are reported when building the AST)."""
    return [d for d in front_end_source(SourceFile("t.cx", text)).diagnostics
            if d.code not in ("CX404", "CX401")]


def test_every_word_has_a_construct() -> None:
    assert set(CONSTRUCTS) == set(WORDS)


@pytest.mark.parametrize("word", sorted(CONSTRUCTS))
@pytest.mark.parametrize("where", ["top", "handler", "entity"])
def test_construct_is_one_error_and_later_errors_still_count(word: str, where: str) -> None:
    construct = CONSTRUCTS[word]
    if where == "handler":
        construct = "on a.b (e) {\n" + construct + "\n}"
    elif where == "entity":
        construct = "conscious A {\n" + construct + "\n    on a.b (e) { print(e); }\n}"
    text = "var x = 1;\n" + construct + "\nprint(x);\nvar y = ;\n"
    ds = diags(text)
    got = [(d.code, d.span.line) for d in ds]
    line = 2 if where == "top" else 3  # where the construct starts
    last = text.count("\n")  # `var y = ;`
    assert got == [("CX120", line), ("CX101", last)], [(d.code, d.span, d.message) for d in ds]
    d = ds[0]
    assert d.help and d.label == "from another language"
    assert text[d.span.start:d.span.end] in (word, "async", "export")


@pytest.mark.parametrize("word", sorted(CONSTRUCTS))
def test_construct_at_the_end_of_the_file_has_no_follow_on(word: str) -> None:
    assert [d.code for d in diags(CONSTRUCTS[word])] == ["CX120"]


@pytest.mark.parametrize("word", sorted(WORDS))
def test_the_words_are_still_names_in_valid_cx(word: str) -> None:
    ok(f"var {word} = {{ k: 1 }};\n{word} = {{ k: 2 }};\nprint({word}.k, {word});\n")


def test_a_word_inside_a_string_or_comment_is_not_a_construct() -> None:
    ds = diags('print("try { x");\n// class A {\nvar y = ;\n')
    assert [(d.code, d.span.line) for d in ds] == [("CX101", 3)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(CONSTRUCTS)), min_size=1, max_size=4), st.booleans())
def test_any_sequence_of_constructs_gives_one_error_each(words: list[str],
                                                         separated: bool) -> None:
    sep = "\nprint(1);\n" if separated else "\n"
    text = sep.join(CONSTRUCTS[w] for w in words) + "\n"
    # `catch`/`finally` right after a `catch` block continue that construct (the `try`
    # construct here already ends with `finally`)
    want = sum(1 for i, w in enumerate(words)
               if separated or i == 0 or not (w in ("catch", "finally")
                                              and words[i - 1] == "catch"))
    ds = diags(text)
    assert [d.code for d in ds] == ["CX120"] * want, [(d.code, d.span, d.message) for d in ds]


def test_a_construct_word_used_as_a_service_in_a_value_is_cx120() -> None:
    ds = diags('var r = throw { message: "bad" };\nprint(r);\n')
    assert [(d.code, d.span.line, d.span.col) for d in ds] == [("CX120", 1, 9)]


@pytest.mark.parametrize("call", ['reason("How?", maxIterations: 3)', "print(len(x: 1))",
                                  'f(\n    "p",\n    depth: 2\n)'])
def test_named_arguments_say_calls_take_values(call: str) -> None:
    ds = diags(f"var x = 1;\nvar r = {call};\n")
    assert [d.code for d in ds] == ["CX101"] and ds[0].message.endswith("found `:`")
    assert ds[0].help and "no named arguments" in ds[0].help


@pytest.mark.parametrize("text", ['on "user.input" (e) { print(e); }',
                                  'on async "user.input" { print(event); }',
                                  'emit "user.input" { x: 1 };'])
def test_quoted_event_names_say_drop_the_quotes(text: str) -> None:
    ds = diags(text + "\n")
    assert [d.code for d in ds] == ["CX101"]
    assert ds[0].help == "event names are written without quotes: `user.input`"
