"""A plug-in package for the tests: a service (`summarize`) and a provider."""

from __future__ import annotations

import asyncio
from typing import Any

import cxpar


@cxpar.service("summarize", stem="summarizing")
async def summarize(request: dict[str, Any], context: Any) -> str:
    await asyncio.sleep(0.05)
    words = str(request.get("text", "")).split()
    return " ".join(words[:3]) + (" ..." if len(words) > 3 else "")


class EchoProvider:
    """Answers every service from the request; also answers `translate`."""

    services = {"translate": "translating"}

    async def call(self, service: str, request: dict[str, Any], context: Any) -> Any:
        await asyncio.sleep(0.01)
        if service in ("is", "not"):
            return True
        return f"<{service}:{request.get('prompt', request.get('text'))}>"


provider = EchoProvider()
