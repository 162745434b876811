"""The canonical style of docs/style.md, case by case (input -> expected output)."""

from __future__ import annotations

import pytest

from cxpar.fmt import FormatError, format_source
from tests.fmt.helpers import check_guarantees

CASES = {
    "spacing": (
        'var  x=1+2*  3;emit a.b,x;on   async a.b(e){print( x ) ;}',
        'var x = 1 + 2 * 3;\nemit a.b x;\non async a.b (e) {\n    print(x);\n}\n'),
    "entity": (
        "conscious  Desk:Base{realize(self:conscious){learn self;}on a.b(event){}}\n"
        "object P extends Desk{;}",
        "conscious Desk : Base {\n    realize(self: conscious) {\n        learn self;\n    }\n"
        "    on a.b (event) {}\n}\nobject P extends Desk {\n    ;\n}\n"),
    "short object stays on one line, no trailing comma": (
        "think {\n  prompt: p,\n  timeout: 10,\n};",
        "think { prompt: p, timeout: 10 };\n"),
    "long object: one property per line, trailing comma": (
        'think { prompt: "Review this support ticket: " + event.text, sentiment: '
        'sentiment.analyze, timeout: 2000, handlers: [ a.b { k: 1 } ] };',
        'think {\n    prompt: "Review this support ticket: " + event.text,\n'
        "    sentiment: sentiment.analyze,\n    timeout: 2000,\n"
        "    handlers: [ a.b { k: 1 } ],\n};\n"),
    "handlers lists are spaced, other arrays are not": (
        "think { handlers: [a.b, c.d { k: [1,2] }] };",
        "think { handlers: [ a.b, c.d { k: [1, 2] } ] };\n"),
    "blank lines kept up to one, none at block edges": (
        "var a = 1;\n\n\n\nvar b = 2;\non a.b {\n\n  x;\n\n}\n",
        "var a = 1;\n\nvar b = 2;\non a.b {\n    x;\n}\n"),
    "comments stay where they are": (
        "// head\n\nvar a = 1; // trailing\n/* own */\nvar b = { k: 1, // after k\n"
        "  j: 2 };\non a.b {\n  x;\n  // dangling\n}\n# hash at the end\n",
        "// head\n\nvar a = 1; // trailing\n/* own */\nvar b = {\n    k: 1, // after k\n"
        "    j: 2,\n};\non a.b {\n    x;\n    // dangling\n}\n# hash at the end\n"),
    "a comment after the last item goes after the added comma": (
        "var o = {\n  a: 1,\n  b: 2 // last\n};",
        "var o = {\n    a: 1,\n    b: 2, // last\n};\n"),
    "doc comments stay on the declaration": (
        "/// The desk.\n///   indented\nconscious D {\n  /// handles a.b\n  on a.b {}\n}",
        "/// The desk.\n///   indented\nconscious D {\n    /// handles a.b\n    on a.b {}\n}\n"),
    "literals keep their source text": (
        'var n = 007 + 3.50; var s = "\\u00e9\\/\\"";',
        'var n = 007 + 3.50;\nvar s = "\\u00e9\\/\\"";\n'),
    "sugar is kept": (
        "x++; --y; is { ready } { go(); } not {prompt: p} { stop(); } var z = (a + b) * c;"
        "for (i in xs) {} for (var i = 0;; ) {} new D { k: 1 };",
        "x++;\n--y;\nis { ready } {\n    go();\n}\nnot { prompt: p } {\n    stop();\n}\n"
        "var z = (a + b) * c;\nfor (i in xs) {}\nfor (var i = 0;;) {}\nnew D { k: 1 };\n"),
    "if / else": (
        "if (a) x(); else if (b) { y(); } else z();\nif (c) {} else {}",
        "if (a) x();\nelse if (b) {\n    y();\n} else z();\nif (c) {} else {}\n"),
    "unary minus keeps its space before a minus": (
        "var a = - -b; var c = -(-d); var e = + +f;",
        "var a = - -b;\nvar c = -(-d);\nvar e = + +f;\n"),
    "long concatenation fills lines, breaking before an operator": (
        'print("first three: " + r.scores[0] + ", " + r.scores[1] + ", " + r.scores[2] + '
        '"; last: " + r.scores[len(r.scores) - 1]);',
        'print("first three: " + r.scores[0] + ", " + r.scores[1] + ", " + r.scores[2] + '
        '"; last: "\n    + r.scores[len(r.scores) - 1]);\n'),
    "several long arguments: one per line": (
        'f("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", '
        '"ccccccccccccccccccccccccc");',
        'f(\n    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",\n    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",\n'
        '    "ccccccccccccccccccccccccc",\n);\n'),
    "a lone object argument hugs the call": (
        'new SupportDesk({ name: "desk-1", role: "a very long role description that does not '
        'fit on one line" });',
        'new SupportDesk({\n    name: "desk-1",\n    role: "a very long role description that '
        'does not fit on one line",\n});\n'),
    "empty and comment-only files": ("\n\n", ""),
    "only a comment": ("  // just this  \n\n", "// just this\n"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_style(name: str) -> None:
    source, expected = CASES[name]
    assert format_source(source) == expected
    if source.strip():
        check_guarantees(source)


def test_crlf_and_bom_are_read() -> None:
    assert format_source("\ufeffvar  a = 1;\r\nvar b=2;\r\n") == "var a = 1;\nvar b = 2;\n"


@pytest.mark.parametrize("source", ["var x = 1\nprint(x);", "on a.b {", 'var s = "open;',
                                    "conscious A { realize() {} realize() {} }", "/* open"])
def test_syntax_errors_are_reported_not_formatted(source: str) -> None:
    with pytest.raises(FormatError) as info:
        format_source(source)
    assert info.value.diagnostics
    assert all(d.is_error and d.code.startswith("CX1") for d in info.value.diagnostics)


def test_too_deep_is_a_diagnostic() -> None:
    with pytest.raises(FormatError) as info:
        format_source("var x = " + " + ".join(["1"] * 2500) + ";")
    assert info.value.diagnostics[0].code == "CX108"


def test_docs_style_blocks_are_formatted() -> None:
    """Every `cx` block of docs/style.md is already in the style it describes."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "style.md").read_text("utf-8")
    blocks = re.findall(r"```cx\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        assert format_source(block) == block
        check_guarantees(block)
