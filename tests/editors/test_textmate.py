"""The VS Code TextMate grammar (editors/vscode/syntaxes/cx.tmLanguage.json), tokenized
by VS Code's own engine (vscode-textmate + vscode-oniguruma from npm, through
editors/test/tokenize.js), against cxpar's lexer on every example and test program:
keywords, strings, numbers, comments and event names get the expected scopes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lark import Token, Tree

from cxpar.fmt.cst import parse_cst
from cxpar.span import SourceFile
from cxpar.syntax.parser import parse_text
from cxpar.syntax.source import decode

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "editors" / "test"
FILES = sorted((ROOT / "examples").glob("*.cx")) + sorted(
    (ROOT / "tests" / "syntax" / "programs").glob("*.cx"))

KEYWORD_SCOPES = {
    "VAR": "storage.type.var.cx", "IF": "keyword.control.cx", "ELSE": "keyword.control.cx",
    "WHILE": "keyword.control.cx", "FOR": "keyword.control.cx",
    "RETURN": "keyword.control.cx", "BREAK": "keyword.control.cx",
    "CONTINUE": "keyword.control.cx", "EMIT": "keyword.control.emit.cx",
    "ON": "keyword.control.on.cx", "CONSCIOUS": "storage.type.entity.cx",
    "OBJECT": "storage.type.entity.cx", "TRUE": "constant.language.cx",
    "FALSE": "constant.language.cx", "NULL": "constant.language.cx",
    "STRING": "string.quoted.double.cx", "NUMBER": "constant.numeric.cx",
    "THIS": "variable.language.cx", "REALIZE": "keyword.other.realize.cx",
}


def _tokenized(files: list[Path]) -> dict[str, list[list[list]]]:
    if shutil.which("node") is None or not (TOOL / "node_modules" / "vscode-textmate").is_dir():
        message = ("the TextMate grammar test needs node and `npm ci` in editors/test "
                   "(.ci/run does both)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run(["node", str(TOOL / "tokenize.js"), *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def tokens() -> dict[str, list[list[list]]]:
    return _tokenized(FILES)


class Scopes:
    """Scopes at a (1-based line, 1-based code-point column) of one tokenized file."""

    def __init__(self, lines: list[str], tokenized: list[list[list]]) -> None:
        self.lines = lines
        self.tokenized = tokenized

    def at(self, line: int, col: int) -> list[str]:
        text = self.lines[line - 1]
        utf16 = len(text[:col - 1].encode("utf-16-le")) // 2
        for start, end, scopes in self.tokenized[line - 1]:
            if start <= utf16 < end:
                return scopes
        return []


def _checks(text: str, scopes: Scopes) -> list[str]:
    """Every mismatch between cxpar's lexer and the grammar's scopes in ``text``."""
    cst = parse_cst(text)
    problems: list[str] = []

    def expect(line: int, col: int, scope: str, what: str) -> None:
        got = scopes.at(line, col)
        if not any(s == scope or s.startswith(scope + ".") for s in got):
            problems.append(f"{line}:{col} {what}: expected {scope}, got {got}")

    events: list[Tree[Token]] = []
    for tree in cst.tree.iter_subtrees():
        if tree.data in ("on_handler", "emit_stmt"):
            events += [c for c in tree.children if isinstance(c, Tree)
                       and c.data == "event_name"]
        if tree.data == "prop" and isinstance(tree.children[-1], Tree) \
                and tree.children[-1].data == "event_payload":
            # a parallel handler parameter with a payload: `key: a.b { extra }`
            events.append(Tree("event_name", tree.children[-1].children[:-1]))
        if tree.data == "prop" and str(tree.children[0]) == "handlers" and isinstance(
                tree.children[2], Tree) and tree.children[2].data == "array":
            for item in tree.children[2].children:
                if isinstance(item, Tree):
                    events.append(item.children[0] if item.data == "event_payload" else item)
    for tok in cst.tree.scan_values(lambda v: isinstance(v, Token)):
        scope = KEYWORD_SCOPES.get(tok.type)
        if scope is not None:
            expect(tok.line or 0, tok.column or 0, scope, f"{tok.type} {tok!s}")
    for ev in events:
        for tok in ev.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME"):
            expect(tok.line or 0, tok.column or 0, "entity.name.event", f"event part {tok!s}")
    for group in (cst.comments.leading, cst.comments.trailing):
        for comments in group.values():
            for c in comments:
                line = text.count("\n", 0, c.start) + 1
                col = c.start - (text.rfind("\n", 0, c.start) + 1) + 1
                expect(line, col, "comment", c.text[:20])
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_gets_the_expected_scopes(path: Path, tokens: dict) -> None:
    src = decode(path.read_bytes(), path.name)
    assert isinstance(src, SourceFile)
    if not parse_text(src.text, path.name).ok:
        return
    lines = src.text.split("\n")
    problems = _checks(src.text, Scopes(lines, tokens[str(path)]))
    assert problems == [], "\n".join(problems[:20])


def test_grammar_scopes_on_a_sample(tmp_path: Path) -> None:
    sample = tmp_path / "s.cx"
    sample.write_text('on async a.b (e) { emit c.d { k: "x\\ny" }; } // done\n'
                      "think { p: 1.5, handlers: [ e.f { k: [1] }, g.h ] };\n"
                      'think { prompt: p, stock: stock.check { n: 2 }, "s k": a . b {} };\n')
    toks = _tokenized([sample])[str(sample)]
    s = Scopes(sample.read_text().split("\n"), toks)
    assert "storage.modifier.async.cx" in s.at(1, 4)
    assert "entity.name.event.cx" in s.at(1, 10) and "entity.name.event.cx" in s.at(1, 26)
    assert "constant.character.escape.cx" in s.at(1, 36)
    assert "comment.line.double-slash.cx" in s.at(1, 46)
    assert "support.function.service.cx" in s.at(2, 1)
    assert "entity.name.event.cx" in s.at(2, 45)
    assert "constant.numeric.cx" in s.at(2, 12)
    # parallel handler parameters with a payload; the key is not an event
    assert "entity.name.event.cx" in s.at(3, 27) and "entity.name.event.cx" in s.at(3, 33)
    assert "entity.name.event.cx" not in s.at(3, 20)
    assert "string.quoted.double.cx" in s.at(3, 50)
    assert "entity.name.event.cx" in s.at(3, 56) and "entity.name.event.cx" in s.at(3, 60)
    assert "entity.name.event.cx" not in s.at(3, 9)  # `prompt: p`
