"""Requests about a document the editor never opened, through the real stdio client:
each answer is either a result (the file is read from disk) or an error with one clear
message — never a Python traceback in the error's message or ``data``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException

from tests.lsp.client import Session

POS = t.Position(line=0, character=1)
RANGE = t.Range(start=POS, end=POS)


def requests(uri: str) -> dict[str, Callable[[Any], Any]]:
    doc = t.TextDocumentIdentifier(uri=uri)
    return {
        "definition": lambda c: c.text_document_definition_async(
            t.DefinitionParams(text_document=doc, position=POS)),
        "references": lambda c: c.text_document_references_async(t.ReferenceParams(
            text_document=doc, position=POS,
            context=t.ReferenceContext(include_declaration=True))),
        "hover": lambda c: c.text_document_hover_async(
            t.HoverParams(text_document=doc, position=POS)),
        "completion": lambda c: c.text_document_completion_async(
            t.CompletionParams(text_document=doc, position=POS)),
        "documentSymbol": lambda c: c.text_document_document_symbol_async(
            t.DocumentSymbolParams(text_document=doc)),
        "semanticTokens": lambda c: c.text_document_semantic_tokens_full_async(
            t.SemanticTokensParams(text_document=doc)),
        "prepareRename": lambda c: c.text_document_prepare_rename_async(
            t.PrepareRenameParams(text_document=doc, position=POS)),
        "rename": lambda c: c.text_document_rename_async(
            t.RenameParams(text_document=doc, position=POS, new_name="other")),
        "formatting": lambda c: c.text_document_formatting_async(t.DocumentFormattingParams(
            text_document=doc, options=t.FormattingOptions(tab_size=4, insert_spaces=True))),
        "codeAction": lambda c: c.text_document_code_action_async(t.CodeActionParams(
            text_document=doc, range=RANGE, context=t.CodeActionContext(diagnostics=[]))),
    }


NAMES = list(requests("file:///x.cx"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("ws")
    (root / "on_disk.cx").write_text('on start (e) {\n    print("hi");\n}\n')
    s = Session(root)
    s.root = root  # type: ignore[attr-defined]
    yield s
    s.close()


def _no_traceback(exc: JsonRpcException) -> None:
    text = f"{exc.message} {exc.data}"
    assert "Traceback" not in text and "traceback" not in text and 'File "' not in text
    assert "\n" not in exc.message


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_unopened_document_is_a_clean_error(session: Session, name: str) -> None:
    uri = (session.root / "missing.cx").as_uri()  # type: ignore[attr-defined]
    with pytest.raises(JsonRpcException) as info:
        session.run(requests(uri)[name](session.client))
    _no_traceback(info.value)
    assert "is not open and cannot be read from disk" in info.value.message
    assert "No such file" in info.value.message


@pytest.mark.parametrize("name", NAMES)
def test_an_unopened_file_on_disk_is_read_from_disk(session: Session, name: str) -> None:
    uri = (session.root / "on_disk.cx").as_uri()  # type: ignore[attr-defined]
    try:
        session.run(requests(uri)[name](session.client))
    except JsonRpcException as exc:  # e.g. rename at a place with no name: a clean error
        _no_traceback(exc)


def test_formatting_an_unopened_file_formats_it_from_disk(session: Session) -> None:
    path: Path = session.root / "ugly.cx"  # type: ignore[attr-defined]
    path.write_text('on start (e) {\nprint(  "hi" );\n}\n')
    edits = session.run(requests(path.as_uri())["formatting"](session.client))
    assert edits and '    print("hi");' in edits[0].new_text


def test_a_non_file_uri_is_a_clean_error(session: Session) -> None:
    with pytest.raises(JsonRpcException) as info:
        session.run(requests("untitled:Untitled-1")["hover"](session.client))
    _no_traceback(info.value)


def test_an_internal_error_response_loses_its_traceback() -> None:
    """Any other handler failure: pygls's internal error keeps its one-line message."""
    import sys

    from pygls.exceptions import JsonRpcInternalError

    from cxpar.lsp.protocol import clean

    try:
        {}["nope"]
    except KeyError:
        raw = JsonRpcInternalError.of(sys.exc_info()).to_response_error()
    assert "traceback" in raw.data
    cleaned = clean(raw)
    assert cleaned.data is None and cleaned.code == raw.code
    assert cleaned.message == "KeyError: 'nope'"
