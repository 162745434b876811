"""A real LSP client (pygls's ``LanguageClient``) driving `cxpar lsp` over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient


class Session:
    """One server process and a client talking to it; every call is synchronous."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("cxpar-tests", "1")
        self.diagnostics: dict[str, list[t.PublishDiagnosticsParams]] = {}
        self.log: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()

        @self.client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: t.PublishDiagnosticsParams) -> None:
            self.diagnostics.setdefault(params.uri, []).append(params)
            self._arrived.set()

        env = dict(os.environ, NO_COLOR="1")
        self.run(self.client.start_io(sys.executable, "-m", "cxpar", "lsp", env=env))
        self.init = self.run(self.client.initialize_async(t.InitializeParams(
            process_id=os.getpid(), root_uri=root.as_uri(),
            capabilities=t.ClientCapabilities(general=t.GeneralClientCapabilities(
                position_encodings=[t.PositionEncodingKind.Utf16])))))
        self.client.initialized(t.InitializedParams())

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def wait_diagnostics(self, uri: str, count: int, timeout: float = 60) -> \
            t.PublishDiagnosticsParams:
        """The ``count``-th diagnostics notification for ``uri`` (waits for it)."""
        async def wait() -> t.PublishDiagnosticsParams:
            while len(self.diagnostics.get(uri, [])) < count:
                self._arrived.clear()
                await self._arrived.wait()
            return self.diagnostics[uri][count - 1]
        return self.run(wait(), timeout)

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.client.text_document_did_open(t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id="cx", version=version,
                                             text=text)))

    def change(self, uri: str, version: int, rng: t.Range, text: str) -> None:
        self.client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[t.TextDocumentContentChangePartial(range=rng, text=text)]))

    def close(self) -> None:
        self.run(self.client.shutdown_async(None))
        self.client.exit(None)
        self.run(self.client.stop())
        self.loop.close()
