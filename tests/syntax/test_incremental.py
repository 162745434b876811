"""The editor's incremental parse gives exactly what a whole-file parse gives (issue 21).

Every check compares against the whole-file pipeline: the AST *with* spans, the syntax
diagnostics, and the diagnostics of the whole front end (``cxpar check``) and of the
language server's analysis, after chains of random edits to real programs (one parser
carried across the versions, as the server does).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.frontend import generate
from cxpar.ast.nodes import Node
from cxpar.driver import front_end_source
from cxpar.lsp.analysis import analyze, forget
from cxpar.span import SourceFile
from cxpar.syntax.incremental import IncrementalParser, resplit, split
from cxpar.syntax.parser import parse
from cxpar.syntax.source import decode

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted((ROOT / "examples").glob("*.cx")) + sorted((ROOT / "tests").glob("**/*.cx"))


def _text(path: Path) -> str | None:
    src = decode(path.read_bytes(), path.name)
    return src.text if isinstance(src, SourceFile) else None


TEXTS = [t for t in (_text(p) for p in PROGRAMS) if t is not None]
parse(SourceFile("warm-up", ""))  # raises the recursion limit before hypothesis records it


def full_shape(value: Any) -> Any:
    """The AST as nested tuples, spans included."""
    if isinstance(value, Node):
        return (type(value).__name__,) + tuple(
            (f.name, full_shape(getattr(value, f.name))) for f in fields(value))  # type: ignore[arg-type]
    if isinstance(value, list):
        return [full_shape(v) for v in value]
    return value


def assert_same(parser: IncrementalParser, text: str) -> int | None:
    """Assert that ``parser`` parses and checks ``text`` as the whole file does; returns
    how many chunks it parsed (None: it parsed the whole file)."""
    source = SourceFile("doc.cx", text)
    got, want = parser.parse(source), parse(source)
    reparsed = parser.reparsed
    assert got.diagnostics == want.diagnostics
    assert full_shape(got.program) == full_shape(want.program)
    inc = front_end_source(source, parser=parser.parse)
    whole = front_end_source(source)
    assert inc.diagnostics == whole.diagnostics
    return reparsed


def test_programs_exist() -> None:
    assert len(TEXTS) >= 50


@pytest.mark.parametrize("index", range(len(TEXTS)))
def test_every_program_parses_the_same_in_chunks(index: int) -> None:
    text = TEXTS[index]
    parser = IncrementalParser()
    assert_same(parser, text)
    # and again from the chunks just kept, as after an edit elsewhere
    assert_same(parser, text + "\n")
    assert_same(parser, "\n" + text)
    assert_same(IncrementalParser(), "\ufeff" + text.replace("\n", "\r\n"))  # BOM, CRLF


def test_an_edit_reparses_only_its_item() -> None:
    text = generate(2000)
    parser = IncrementalParser()
    parser.parse(SourceFile("doc.cx", text))
    n = len(split(text))
    assert n > 80  # one chunk per entity and per top-level statement
    at = text.index("% 7", len(text) // 2)
    for edited in (text[:at] + "% 70" + text[at + 3:],  # later items move by a character
                   text[:at] + "% 7\n" + text[at + 3:]):  # ... and by a line
        assert assert_same(parser, edited) == 1


def test_a_syntax_error_is_reported_as_the_whole_file_reports_it() -> None:
    text = generate(300)
    parser = IncrementalParser()
    parser.parse(SourceFile("doc.cx", text))
    at = text.index("self.count = 3;")
    broken = text[:at] + "self.count = ;" + text[at + 15:]
    assert assert_same(parser, broken) is None  # the parser's error recovery decided ...
    resumed = parser.resumed_at  # ... up to the next item, where the chunks serve again
    assert resumed is not None and resumed == broken.index("object Agent4")
    assert assert_same(parser, text) == 0  # fixed again: the chunks kept still serve
    # an item left open runs to the end of the file: parsing resumes at the next line
    # that starts with a declaration, once error recovery is back at the top level
    left_open = text[:at] + "self.count = (3;" + text[at + 15:]
    assert assert_same(parser, left_open) is None
    assert parser.resumed_at == left_open.index("object Agent4")
    # brackets left open count towards the nesting limit of the rest (CX108 stays exact)
    deep = "object A {\n    realize(self) {\n        f(" + "[" * 250 + "]" * 250 + ";\n" \
        "    }\n}\n" + "on a.b (e) {\n    " + "(" * 254 + "1" + ")" * 254 + ";\n}\n"
    parser = IncrementalParser()
    parser.parse(SourceFile("doc.cx", deep.replace("f(", "f(1);  ")))
    assert assert_same(parser, deep) is None


def test_chunk_boundaries() -> None:
    text = ('var a = 1;\nif (a > 0) {\n    print(a);\n}\nelse {\n    print(0);\n}\n'
            '/// the agent\nobject A {\n}\nvar s = "};\\n";\n{\n}\nvar b = a\n    + 1;\n'
            'var c = 1; /// documents D\nobject D {\n}\n/* } ;\n*/\nvar e = 2; // }\n')
    starts = split(text)
    chunks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    assert chunks == [
        "var a = 1;\n",
        "if (a > 0) {\n    print(a);\n}\nelse {\n    print(0);\n}\n",  # `else` continues
        "/// the agent\nobject A {\n}\n",  # a doc comment goes with its declaration
        'var s = "};\\n";\n{\n}\n',  # a string's `}`; a block cannot start an item
        "var b = a\n    + 1;\n",
        "var c = 1; /// documents D\nobject D {\n}\n",  # that doc is D's
        "/* } ;\n*/\nvar e = 2; // }\n",
    ]
    assert_same(IncrementalParser(), text)
    # `realize` is a name at the start of a file, the keyword after a handler (found by
    # hypothesis): no boundary before a keyword that cannot start an item
    text = "on a.b (e) { }\nrealize(x);\nin(x);\n"
    assert split(text) == [0]
    assert_same(IncrementalParser(), text)


# ------------------------------------------------------------------ random edits

#: Fragments an edit inserts: what typing adds and what breaks or joins items.
FRAGMENTS = ["", "x", "1", ";", "}", "{", "(", ")", "\n", " ", "\"", "//", "/*", "*/", "#",
             "///", "else ", "else {}", "}\n", "\n}\n", "var q = 1;\n", "object Z {\n}\n",
             "emit a.b;\n", "on a.b (e) { }\n", "===", "\"\\q\"", "realize(x);\n",
             "\nrealize(self) { }\n", "extends ", "\nin x;\n", "new A();\n"]


#: Edits: ``text`` inserts a fragment (mostly breaking the syntax: the whole file then
#: decides), the others mostly keep it valid (so the chunks are reused and moved).
KINDS = ["text", "letter", "letter", "line_dup", "line_del", "item_copy", "item_del"]


@st.composite
def edits(draw: Any) -> tuple[str, list[tuple[str, float, int, str]]]:
    text = draw(st.sampled_from(TEXTS))
    steps = draw(st.lists(st.tuples(
        st.sampled_from(KINDS),
        st.floats(0, 1),
        st.sampled_from([0, 0, 0, 1, 1, 2, 7, 40, 300]),
        st.one_of(st.sampled_from(FRAGMENTS),
                  st.tuples(st.sampled_from(TEXTS), st.floats(0, 1),
                            st.sampled_from([1, 10, 60, 400])).map(
                      lambda t: t[0][int(t[1] * len(t[0])):][:t[2]]))),
        min_size=1, max_size=6))
    return text, steps


def _apply(text: str, kind: str, where: float, n: int, fragment: str) -> str:
    at = int(where * len(text))
    if kind == "text":
        return text[:at] + fragment + text[at + n:]
    if kind == "letter":  # retype a character of a name or number
        while at < len(text) and not text[at].isalnum():
            at += 1
        if at == len(text):
            return text
        return text[:at] + "xq1"[n % 3] + text[at + 1:]
    if kind in ("line_dup", "line_del"):
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at) + 1 or len(text)
        line = text[start:end]
        return text[:start] + (line * 2 if kind == "line_dup" else "") + text[end:]
    starts = split(text)
    i = min(range(len(starts)), key=lambda k: abs(starts[k] - at))
    end = starts[i + 1] if i + 1 < len(starts) else len(text)
    if kind == "item_del":
        return text[:starts[i]] + text[end:]
    other = split(fragment) if fragment else [0]
    piece = fragment[other[n % len(other)]:][:max(1, len(fragment) // 2)]
    return text[:starts[i]] + piece + text[starts[i]:]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits())
def test_random_edits_parse_and_check_as_the_whole_file(case: Any) -> None:
    text, steps = case
    parser = IncrementalParser()
    parser.parse(SourceFile("doc.cx", text))
    for step in steps:
        edited = _apply(text, *step)
        assert resplit(text, split(text), edited) == split(edited)
        assert_same(parser, edited)
        text = edited


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits())
def test_random_edits_give_the_language_server_the_whole_file_diagnostics(case: Any) -> None:
    text, steps = case
    uri = "untitled:doc.cx"
    try:
        analyze(uri, text)
        for step in steps:
            text = _apply(text, *step)
            got = analyze(uri, text)
            want = front_end_source(SourceFile(uri, text))
            assert got.diagnostics == want.diagnostics
    finally:
        forget(uri)
