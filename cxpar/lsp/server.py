"""The pygls server: registers each feature of :mod:`cxpar.lsp.features` on a request.

Documents live in pygls's workspace (incremental sync); diagnostics are published on
open at once and after changes once typing pauses (:data:`DEBOUNCE_S`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from cxpar import __version__
from cxpar.lsp import features
from cxpar.lsp.analysis import Analysis, analyze, forget
from cxpar.lsp.protocol import CleanErrorsProtocol

#: Seconds without a change before a changed document is re-analysed and published: long
#: enough to fold a burst of changes (a paste, auto-indent, fast typing) into one
#: analysis, short enough that the diagnostics of a 2 000-line file arrive within 200 ms
#: of the change (re-analysis is incremental; bench ``lsp.change_to_diagnostics_ms``).
DEBOUNCE_S = 0.05


class CxServer(LanguageServer):
    """The cxpar language server."""

    def __init__(self) -> None:
        super().__init__("cxpar", __version__,
                         text_document_sync_kind=t.TextDocumentSyncKind.Incremental,
                         protocol_cls=CleanErrorsProtocol)
        self.pending: dict[str, asyncio.TimerHandle] = {}

    def encoding(self) -> str:
        enc: Any = self.server_capabilities.position_encoding
        return str(getattr(enc, "value", enc) or "utf-16")

    def source(self, uri: str) -> str:
        """The text of ``uri``: the open document's, else the file's on disk (an editor
        may ask about a file it has not opened); neither is an invalid-params error."""
        doc = self.workspace.get_text_document(uri)
        try:
            return doc.source
        except (OSError, TypeError, ValueError) as exc:
            from pygls.exceptions import JsonRpcInvalidParams

            why = getattr(exc, "strerror", None) or str(exc)
            raise JsonRpcInvalidParams(
                f"document {uri} is not open and cannot be read from disk ({why})") from None

    def analysis(self, uri: str) -> Analysis:
        return analyze(uri, self.source(uri), self.encoding())

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        doc = self.workspace.get_text_document(uri)
        a = self.analysis(uri)
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=features.diagnostics(a)))

    def publish_later(self, uri: str) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.pending[uri] = loop.call_later(DEBOUNCE_S, self.publish, uri)


server = CxServer()


def _offset(ls: CxServer, uri: str, pos: t.Position) -> tuple[Analysis, int]:
    a = ls.analysis(uri)
    return a, a.lines.offset(pos)


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CxServer, params: t.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CxServer, params: t.DidChangeTextDocumentParams) -> None:
    ls.publish_later(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CxServer, params: t.DidSaveTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CxServer, params: t.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    pending = ls.pending.pop(uri, None)
    if pending is not None:
        pending.cancel()
    forget(uri)
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: CxServer, params: t.DefinitionParams) -> list[t.Location]:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    return features.definition(a, offset)


@server.feature(t.TEXT_DOCUMENT_REFERENCES)
def references(ls: CxServer, params: t.ReferenceParams) -> list[t.Location]:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    return features.references(a, offset, params.context.include_declaration)


@server.feature(t.TEXT_DOCUMENT_HOVER)
def hover(ls: CxServer, params: t.HoverParams) -> t.Hover | None:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    return features.hover(a, offset)


@server.feature(t.TEXT_DOCUMENT_COMPLETION,
                t.CompletionOptions(trigger_characters=[".", " ", "[", ","]))
def completion(ls: CxServer, params: t.CompletionParams) -> t.CompletionList:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    return features.completion(a, a.text, offset)


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: CxServer, params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
    return features.symbols(ls.analysis(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                t.SemanticTokensLegend(token_types=features.TOKEN_TYPES, token_modifiers=[]))
def semantic_tokens(ls: CxServer, params: t.SemanticTokensParams) -> t.SemanticTokens:
    return features.semantic_tokens(ls.analysis(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: CxServer, params: t.PrepareRenameParams) -> t.Range | None:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    return features.prepare_rename(a, offset)


@server.feature(t.TEXT_DOCUMENT_RENAME)
def rename(ls: CxServer, params: t.RenameParams) -> t.WorkspaceEdit | None:
    a, offset = _offset(ls, params.text_document.uri, params.position)
    try:
        return features.rename(a, offset, params.new_name)
    except features.RenameError as exc:
        from pygls.exceptions import JsonRpcInvalidParams

        raise JsonRpcInvalidParams(str(exc)) from exc


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: CxServer, params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
    return features.formatting(ls.analysis(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION,
                t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix]))
def code_action(ls: CxServer, params: t.CodeActionParams) -> list[t.CodeAction]:
    return features.code_actions(ls.analysis(params.text_document.uri), params.range)


def main(**_: Any) -> None:
    """Serve over stdio until the client says exit."""
    import sys

    from cxpar.lsp.stdio import BoundedStdin, quiet_logging

    quiet_logging()
    server.start_io(BoundedStdin(sys.stdin.buffer))  # type: ignore[arg-type]
