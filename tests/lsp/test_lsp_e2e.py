"""`cxpar lsp` end to end: a real LSP client (pygls) starts the server over stdio and
sends initialize, didOpen, didChange and every request the server supports, then
shutdown and exit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types as t

from cxpar.fmt import format_source
from tests.lsp.client import Session

PROGRAM = """\
/// Reviews tickets.
conscious Desk {
    realize(self: conscious) {
        learn self;
    }

    on ticket.new (event) {
        var review = think {
            prompt: "🎯 " + event.text, note: "🎯", stock: stock.check,
            handlers: [ ticket.done { by: self.name } ]
        };
        print(review.stock);
    }
}

on stock.check (event) {
    return 3;
}

on stock.check (event) {
    return 4;
}

on ticket.done (event) {
    print("done by " + event.by);
}

new Desk({ name: "d" });
emit ticket.new { text: "hi" };
"""
LINES = PROGRAM.split("\n")


def pos(line_no: int, needle: str, delta: int = 0) -> t.Position:
    """The LSP position (UTF-16) of ``needle`` on 1-based line ``line_no``, plus ``delta``."""
    line = LINES[line_no - 1]
    col = line.index(needle) + delta
    return t.Position(line=line_no - 1, character=len(line[:col].encode("utf-16-le")) // 2)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, str]]:
    root = tmp_path_factory.mktemp("ws")
    path = root / "desk.cx"
    path.write_text(PROGRAM)
    s = Session(root)
    uri = path.as_uri()
    s.open(uri, PROGRAM)
    yield s, uri
    s.close()


def doc(uri: str) -> t.TextDocumentIdentifier:
    return t.TextDocumentIdentifier(uri=uri)


def test_initialize_advertises_every_feature(session: tuple[Session, str]) -> None:
    s, _ = session
    caps = s.init.capabilities
    assert caps.definition_provider and caps.references_provider and caps.hover_provider
    assert caps.completion_provider and caps.document_symbol_provider
    assert caps.rename_provider and caps.document_formatting_provider
    assert caps.code_action_provider and caps.semantic_tokens_provider
    assert caps.text_document_sync.change == t.TextDocumentSyncKind.Incremental
    assert s.init.server_info.name == "cxpar"


def test_diagnostics_on_open(session: tuple[Session, str]) -> None:
    s, uri = session
    first = s.wait_diagnostics(uri, 1)
    assert [d for d in first.diagnostics if d.severity == t.DiagnosticSeverity.Error] == []


def test_definition_of_a_parallel_handler_parameter_from_inside_the_name(
        session: tuple[Session, str]) -> None:
    s, uri = session
    for delta in (0, 5, 6, 10):  # `stock`, the dot, `check`, its last letter
        locs = s.run(s.client.text_document_definition_async(t.DefinitionParams(
            text_document=doc(uri), position=pos(9, "stock.check", delta))))
        assert sorted(loc.range.start.line for loc in locs) == [15, 19], delta


def test_definition_of_items_variables_and_entities(session: tuple[Session, str]) -> None:
    s, uri = session

    def lines(p: t.Position) -> list[int]:
        locs = s.run(s.client.text_document_definition_async(t.DefinitionParams(
            text_document=doc(uri), position=p)))
        return sorted(loc.range.start.line + 1 for loc in locs)

    assert lines(pos(10, "ticket.done", 3)) == [24]        # handlers item -> on
    assert lines(pos(29, "ticket.new", 8)) == [7]          # emit -> on
    assert lines(pos(12, "review")) == [8]                 # variable -> var
    assert lines(pos(28, "Desk", 2)) == [2]                # new X -> entity


def test_references_of_an_event(session: tuple[Session, str]) -> None:
    s, uri = session
    locs = s.run(s.client.text_document_references_async(t.ReferenceParams(
        text_document=doc(uri), position=pos(16, "stock.check"),
        context=t.ReferenceContext(include_declaration=True))))
    assert sorted(loc.range.start.line + 1 for loc in locs) == [9, 16, 20]
    locs = s.run(s.client.text_document_references_async(t.ReferenceParams(
        text_document=doc(uri), position=pos(16, "stock.check"),
        context=t.ReferenceContext(include_declaration=False))))
    assert [loc.range.start.line + 1 for loc in locs] == [9]


def test_utf16_columns(session: tuple[Session, str]) -> None:
    """Line 9 has astral characters (two UTF-16 units each) before `stock.check`."""
    s, uri = session
    locs = s.run(s.client.text_document_references_async(t.ReferenceParams(
        text_document=doc(uri), position=pos(9, "stock.check", 1),
        context=t.ReferenceContext(include_declaration=True))))
    on_line_9 = [loc.range for loc in locs if loc.range.start.line == 8]
    assert on_line_9 == [t.Range(start=pos(9, "stock.check"), end=pos(9, "stock.check", 11))]


def test_hover(session: tuple[Session, str]) -> None:
    s, uri = session
    h = s.run(s.client.text_document_hover_async(t.HoverParams(
        text_document=doc(uri), position=pos(8, "think", 2))))
    text = h.contents.value
    assert "**think** service call" in text
    assert "estimated latency: 800 ms" in text
    assert "branch `stock: stock.check` → 2 handler(s), result in `event.stock`" in text
    assert "`handlers` item `ticket.done`" in text
    h = s.run(s.client.text_document_hover_async(t.HoverParams(
        text_document=doc(uri), position=pos(16, "stock.check", 2))))
    assert "subscribers (2)" in h.contents.value
    assert "parallel handler parameter (line 9)" in h.contents.value


def test_completion(session: tuple[Session, str]) -> None:
    s, uri = session

    def labels(line: int, needle: str, delta: int) -> set[str]:
        got = s.run(s.client.text_document_completion_async(t.CompletionParams(
            text_document=doc(uri), position=pos(line, needle, delta))))
        items = got.items if isinstance(got, t.CompletionList) else got
        return {i.label for i in items}

    after_emit = labels(29, "ticket.new", 0)
    assert {"ticket.new", "ticket.done", "stock.check", "thinking.complete"} <= after_emit
    in_items = labels(10, "ticket.done", 0)
    assert "stock.check" in in_items
    keys = labels(9, "prompt", 0)
    assert {"timeout", "handlers", "retries", "priority", "concurrency"} <= keys
    top = labels(28, "new", 0)
    assert {"conscious", "emit", "think", "print", "Desk", "review"} <= top


def test_document_symbols(session: tuple[Session, str]) -> None:
    s, uri = session
    syms = s.run(s.client.text_document_document_symbol_async(t.DocumentSymbolParams(
        text_document=doc(uri))))
    assert [x.name for x in syms] == ["Desk", "on stock.check", "on stock.check",
                                      "on ticket.done"]
    assert [c.name for c in syms[0].children] == ["realize", "on ticket.new"]


def test_semantic_tokens_mark_every_event_name(session: tuple[Session, str]) -> None:
    """The bare parallel handler parameter `stock: stock.check` is an event only because
    `stock` is not bound: the TextMate grammar cannot know, the server's tokens say so."""
    s, uri = session
    legend = s.init.capabilities.semantic_tokens_provider.legend
    assert list(legend.token_types) == ["event"]
    data = s.run(s.client.text_document_semantic_tokens_full_async(t.SemanticTokensParams(
        text_document=doc(uri)))).data
    found, line, char = [], 0, 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, _ = data[i:i + 5]
        line, char = line + dl, (char + dc if dl == 0 else dc)
        units = LINES[line].encode("utf-16-le")[2 * char:2 * (char + length)]  # UTF-16 columns
        found.append((line + 1, units.decode("utf-16-le"), legend.token_types[kind]))
    assert (9, "stock", "event") in found and (9, "check", "event") in found
    assert found[0][0] == 7 and [f[1] for f in found if f[0] == 10] == ["ticket", "done"]
    assert [f[1] for f in found if f[0] in (16, 20, 24, 29)] == ["stock", "check"] * 2 + [
        "ticket", "done", "ticket", "new"]
    assert not {"prompt", "event", "review", "text"} & {f[1] for f in found}


def test_rename_event_and_variable(session: tuple[Session, str]) -> None:
    s, uri = session
    edit = s.run(s.client.text_document_rename_async(t.RenameParams(
        text_document=doc(uri), position=pos(20, "stock.check", 3), new_name="stock.count")))
    edits = edit.changes[uri]
    assert sorted(e.range.start.line + 1 for e in edits) == [9, 16, 20]
    assert {e.new_text for e in edits} == {"stock.count"}
    edit = s.run(s.client.text_document_rename_async(t.RenameParams(
        text_document=doc(uri), position=pos(8, "review"), new_name="verdict")))
    assert sorted(e.range.start.line + 1 for e in edit.changes[uri]) == [8, 12]


def test_formatting_is_cxpar_fmt(session: tuple[Session, str]) -> None:
    s, uri = session
    edits = s.run(s.client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=doc(uri), options=t.FormattingOptions(tab_size=4, insert_spaces=True))))
    assert len(edits) == 1 and edits[0].new_text == format_source(PROGRAM)


def test_change_then_diagnostics_and_quick_fixes(session: tuple[Session, str]) -> None:
    """Incremental edits: `think` -> `thnk` (unknown service), then a missing `;` and a
    `let`; each publishes new diagnostics with codes, links and quick fixes."""
    s, uri = session
    seen = len(s.diagnostics.get(uri, []))
    s.change(uri, 2, t.Range(start=pos(8, "think", 2), end=pos(8, "think", 3)), "")
    got = s.wait_diagnostics(uri, seen + 1)
    assert got.version == 2
    [d] = [d for d in got.diagnostics if d.severity == t.DiagnosticSeverity.Error]
    assert d.code == "CX301" or str(d.code).startswith("CX")
    assert "thnk" in d.message and d.source == "cxpar"
    assert d.code_description is not None and d.code_description.href.startswith("file://")
    actions = s.run(s.client.text_document_code_action_async(t.CodeActionParams(
        text_document=doc(uri), range=d.range, context=t.CodeActionContext(diagnostics=[d]))))
    [fix] = actions
    assert fix.title == "Replace with `think`"
    assert fix.edit.changes[uri][0].new_text == "think"
    # the explanation of a diagnostic's code on hover
    h = s.run(s.client.text_document_hover_async(t.HoverParams(
        text_document=doc(uri), position=d.range.start)))
    assert f"**{d.code}**" in h.contents.value

    # a missing `;` and a `let` at the end of the file
    end = t.Position(line=len(LINES) - 1, character=0)
    s.change(uri, 3, t.Range(start=end, end=end),
             "let x = 1;\nvar y = 2\nprint(y);\nprint(y === 2);\n")
    got = s.wait_diagnostics(uri, seen + 2)
    assert got.version == 3
    codes = sorted(str(d.code) for d in got.diagnostics)
    assert {"CX102", "CX116", "CX117"} <= set(codes), codes  # missing `;`, `let`, `===`
    everything = t.Range(start=t.Position(line=0, character=0),
                         end=t.Position(line=len(LINES) + 4, character=0))
    actions = s.run(s.client.text_document_code_action_async(t.CodeActionParams(
        text_document=doc(uri), range=everything,
        context=t.CodeActionContext(diagnostics=got.diagnostics))))
    titles = {a.title for a in actions}
    assert {"Add `;`", "Replace `let` with `var`", "Replace `===` with `==`"} <= titles, titles
    strict = next(a for a in actions if a.title == "Replace `===` with `==`").edit.changes[uri][0]
    assert strict.new_text == "==" and strict.range.start.line == len(LINES) + 2
    assert (strict.range.start.character, strict.range.end.character) == (8, 11)
    semi = next(a for a in actions if a.title == "Add `;`").edit.changes[uri][0]
    assert semi.range.start == t.Position(line=len(LINES), character=9)


def test_shutdown_and_exit(tmp_path: Path) -> None:
    s = Session(tmp_path)
    s.close()
    assert s.client.stopped
