"""The JSON-RPC protocol of the server: no Python traceback ever reaches the editor.

pygls answers a handler that raises with ``JsonRpcInternalError.of(exc_info)``, whose
``data`` is the formatted traceback. Every error response leaves through
``_send_response``; here it keeps the code and the one-line message and drops the
traceback (``CXPAR_DEBUG=1`` keeps it).
"""

from __future__ import annotations

import os
from typing import Any

from lsprotocol.types import ResponseError
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId


def clean(error: ResponseError) -> ResponseError:
    """``error`` without a traceback in its ``data``; its message is its first line."""
    data = error.data
    if isinstance(data, dict) and "traceback" in data:
        data = {k: v for k, v in data.items() if k != "traceback"} or None
    message = (error.message or "").strip().splitlines()
    return ResponseError(code=error.code, message=message[-1] if message else "error",
                         data=data)


class CleanErrorsProtocol(LanguageServerProtocol):
    """pygls's protocol whose error responses carry a message and no traceback."""

    def _send_response(self, msg_id: MsgId, result: Any | None = None,
                       error: ResponseError | None = None) -> None:
        if error is not None and not os.environ.get("CXPAR_DEBUG"):
            error = clean(error)
        super()._send_response(msg_id, result, error)
