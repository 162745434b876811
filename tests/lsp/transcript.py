"""Print a real session with `cxpar lsp` (the transcript in docs/editors.md).

    .venv/bin/python -m tests.lsp.transcript

The client is pygls's LanguageClient over stdio; requests and responses are shown as
the JSON they travel as.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from lsprotocol import types as t

from tests.lsp.client import Session

PROGRAM = """\
on order.placed (event) {
    var r = think {
        prompt: "Check order " + event.id,
        stock: stock.check,
        handlers: [ order.checked ]
    };
}

on stock.check (event) {
    return 3;
}

on order.checked (event) {
    print("stock: " + event.stock);
}

emit order.placed { id: 7 };
thnk { prompt: "typo" };
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "orders.cx"
        path.write_text(PROGRAM)
        uri = path.as_uri()
        s = Session(root)
        conv = s.client.protocol._converter  # the JSON (un)structuring pygls uses

        def show(direction: str, method: str, payload: Any) -> None:
            text = json.dumps(conv.unstructure(payload), indent=2, ensure_ascii=False)
            print(f"{direction} {method}\n{text.replace(uri, 'file:///home/you/shop/orders.cx')}\n")

        s.open(uri, PROGRAM)
        show("-->", "textDocument/didOpen (notification)",
             {"textDocument": {"uri": uri, "languageId": "cx", "version": 1, "text": "…"}})
        got = s.wait_diagnostics(uri, 1)
        show("<--", "textDocument/publishDiagnostics (notification)", got)
        hover = t.HoverParams(text_document=t.TextDocumentIdentifier(uri=uri),
                              position=t.Position(line=1, character=13))
        show("-->", "textDocument/hover", hover)
        show("<--", "result", s.run(s.client.text_document_hover_async(hover)))
        hover2 = t.HoverParams(text_document=t.TextDocumentIdentifier(uri=uri),
                               position=t.Position(line=3, character=19))
        show("-->", "textDocument/hover", hover2)
        show("<--", "result", s.run(s.client.text_document_hover_async(hover2)))
        definition = t.DefinitionParams(text_document=t.TextDocumentIdentifier(uri=uri),
                                        position=t.Position(line=3, character=19))
        show("-->", "textDocument/definition", definition)
        show("<--", "result", s.run(s.client.text_document_definition_async(definition)))
        s.close()


if __name__ == "__main__":
    main()
