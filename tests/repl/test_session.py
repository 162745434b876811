"""Unit tests of the REPL session: entry completion, state persistence, commands."""

from __future__ import annotations

import io
import linecache
from pathlib import Path

import pytest

from cxpar.repl.session import Session, balanced, feed, is_complete
from cxpar.runtime.settings import RunSettings

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ entry completion

@pytest.mark.parametrize("text", [
    "var x = 1;",
    "print(x);",
    "conscious A {\n  on a.b (e) { print(e); }\n}",
    "on a.b (e) { print(e); }",
    "1 + 2",                      # a bare expression needs no `;`
    "x",
    "var o = { a: 1 }",           # balanced, parses once `;` is added
    ":help",
    "",
    "print(\"}\" ); // trailing comment",
    "/* c */ print(1);",
    ")",                          # over-closed: let the parser report it
])
def test_complete(text: str) -> None:
    assert is_complete(text)


@pytest.mark.parametrize("text", [
    "conscious A {",
    "conscious A {\n  on a.b (e) {\n    print(e);\n  }",
    "print(1,",
    "var x =",
    "var x = [1, 2,",
    "print(\"{\"",                 # brackets inside strings do not count
    "/* open comment",
    "print(1); /* still open",
    "1 +",
])
def test_incomplete(text: str) -> None:
    assert not is_complete(text)


def test_balanced() -> None:
    assert balanced("foo bar")
    assert not balanced("foo {")
    assert not balanced("/* x")


# ------------------------------------------------------------------ sessions

class Run:
    def __init__(self) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.session = Session(RunSettings(clock="virtual"), stdout=self.out, stderr=self.err)

    def __call__(self, text: str) -> str:
        start = self.out.tell()
        feed(self.session, text)
        self.out.seek(start)
        got = self.out.read()
        self.out.seek(0, io.SEEK_END)
        return got

    def errors(self) -> str:
        return self.err.getvalue()


@pytest.fixture
def run() -> Run:
    r = Run()
    yield r
    r.session.close()


def test_vars_persist(run: Run) -> None:
    assert run("var x = 2;") == ""
    assert run("print(x * 21);") == "42\n"
    run("x = x + 1;")
    assert run("x") == "3\n"
    run("var x = 10;")  # redeclaring in a later entry is allowed
    assert run("x") == "10\n"


def test_entity_new_emit_across_entries(run: Run) -> None:
    run("conscious Greeter {\n  realize(self) { self.count = 0; }\n"
        "  on hello (e) { self.count += 1; print(\"hello \" + e.name, self.count); }\n}")
    run("var g = new Greeter();")
    assert run('emit hello { name: "Ada" };') == "hello Ada 1\n"
    assert run('emit hello { name: "Bob" };') == "hello Bob 2\n"
    assert run("g.count") == "2\n"
    assert run.errors() == ""


def test_top_level_handler_and_globals(run: Run) -> None:
    run("var seen = [];")
    run("on tick (e) { seen[len(seen)] = e.n; }")
    run("emit tick { n: 1 }; emit tick { n: 2 };")
    assert run("seen") == "[1, 2]\n"


def test_handler_output_before_next_entry(run: Run) -> None:
    run("on slow (e) { await { durationMs: 500 }; print(\"late\", now()); }")
    assert run("emit slow;") == "late 500\n"


def test_bare_expressions(run: Run) -> None:
    assert run("1 + 2") == "3\n"
    assert run("1 + 2;") == "3\n"
    assert run('"a" + 1') == '"a1"\n'  # a string echoes in its CX/JSON form
    assert run("_") == '"a1"\n'  # `_` holds the last value
    assert run("[1, 2, {a: null}]") == '[1, 2, {"a": null}]\n'
    assert run("print(1);") == "1\n"          # a call prints only its own output
    assert run("var y = 5;") == ""


def test_service_call_value(run: Run) -> None:
    assert run('var r = think { prompt: "hi" };') == ""
    assert run("r.result") == '"[think] hi"\n'


def test_syntax_error_then_correct(run: Run) -> None:
    assert run("var = ;") == ""
    err = run.errors()
    assert "error[CX101]" in err and "<repl-1>:1:5" in err
    assert "1 | var = ;" in err
    assert run("print(\"ok\");") == "ok\n"


def test_unknown_name_diagnostic_points_into_entry(run: Run) -> None:
    run("print(1);")
    run("print(nope);")
    err = run.errors()
    assert "error[CX201]" in err and "--> <repl-2>:1:7" in err
    assert run.session.status == 1


def test_runtime_error_keeps_session(run: Run) -> None:
    run("var a = 1;")
    run("print(a / 0);")
    assert "division by zero" in run.errors() and "<repl-2>:1:7" in run.errors()
    assert run("a") == "1\n"
    assert run.session.status == 3


def test_entries_in_linecache(run: Run) -> None:
    run("var q = 1;")
    assert linecache.getline("<repl-1>", 1) == "var q = 1;"


def test_failed_entry_declares_nothing(run: Run) -> None:
    run("conscious Bad { on x (e) { print(nope); } }")
    run("var b = new Bad();")
    assert "unknown entity" in run.errors() or "CX2" in run.errors()


def test_entity_redefinition(run: Run) -> None:
    run("conscious A { on ping (e) { print(\"v1\"); } }")
    run("conscious A { on ping (e) { print(\"v2\"); } }")
    run("var a = new A();")
    assert run("emit ping;") == "v2\n"


def test_multiline_feed(run: Run) -> None:
    out = run("conscious Counter {\n  on inc (e) {\n    print(\"inc\", e.by);\n  }\n}\n"
              "var c = new Counter();\nemit inc { by: 3 };\n")
    assert out == "inc 3\n"


def test_blank_line_ends_balanced_entry(run: Run) -> None:
    assert run("print(7)\n\nprint(8)\n") == "7\n8\n"


def test_commands(run: Run) -> None:
    assert "Commands:" in run(":help")
    assert "Binary" in run(":ast 1 + 2 * 3")
    assert "VarDecl" in run(":ast var x = 1;")
    assert run(":clock") == "clock: virtual\n"
    assert "seed=7" in run(":provider seed=7 latency=think=100")
    run(":provider bogus")
    assert "unknown provider `bogus`" in run.errors()
    run(":nope")
    assert "unknown command" in run.errors()


def test_provider_latency_applies(run: Run) -> None:
    run(":provider latency=think=100")
    assert run('think { prompt: "x" }; print(now());') == "100\n"


def test_clock_switch_keeps_state(run: Run) -> None:
    run("var k = 9;")
    run(":clock real")
    assert run("k") == "9\n"
    run(":clock virtual")
    assert run("k") == "9\n"


def test_reset(run: Run) -> None:
    run("var k = 9;")
    run(":reset")
    run("print(k);")
    assert "unknown name `k`" in run.errors()


def test_stats(run: Run) -> None:
    run(":stats")
    assert "no service calls" in run.errors()
    run('think { prompt: "x" };')
    run(":stats")
    assert "think" in run.errors()


def test_graph(run: Run) -> None:
    run("on a.b (e) { return 1; }")
    run('var r = think { prompt: "p", k: a.b };')
    out = run(":graph")
    assert "critical path" in out and "think" in out


def test_load_example_matches_run(run: Run) -> None:
    out = run(f":load {ROOT / 'examples' / 'is_not_routing.cx'}")
    assert "message 1:" in out


def test_quit(run: Run) -> None:
    assert run(":quit\nprint(1);") == ""
    assert run.session.quit


def test_lexer() -> None:
    from pygments.lexers import get_lexer_by_name
    from pygments.token import Keyword, Name

    lexer = get_lexer_by_name("cx")
    toks = list(lexer.get_tokens('conscious A { on a.b (e) { think { prompt: "x" }; } }'))
    assert (Keyword.Declaration, "conscious") in toks
    assert (Name.Class, "A") in toks
    assert (Name.Label, "a.b") in toks
    assert (Name.Function.Magic, "think") in toks
    assert all(t[0] is not Name.Builtin or t[1] != "think" for t in toks)


def test_completer(run: Run) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from cxpar.repl.app import CxCompleter

    run("conscious Reviewer { on ticket.new (e) { print(e); } }")
    run("var reviews = 0;")
    comp = CxCompleter(run.session)

    def complete(text: str) -> set[str]:
        return {c.text for c in comp.get_completions(Document(text), CompleteEvent())}

    assert "think" in complete("th")
    assert "Reviewer" in complete("var r = new Re")
    assert "reviews" in complete("print(rev")
    assert "ticket.new" in complete("emit tic")
    assert "conscious" in complete("consc")
    assert ":load" in complete(":lo")
    assert complete("print(1); :lo") == set()


def test_globals_with_hostile_names_persist(run: Run) -> None:
    run("var a$b = 1; var a_b = 2; var G = 3; var rt = 4;")
    run("on t (e) { a$b += 10; var a_b = 0; G = a_b; }")
    run("emit t;")
    assert run("[a$b, a_b, G, rt]") == "[11, 2, 0, 4]\n"
