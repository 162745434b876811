"""Keys and endpoints of network providers: validated once, never shown.

- :func:`clean_api_key` trims a key read from the environment (a key file saved with
  CRLF leaves ``\\r``) and refuses one that could not be an HTTP header value.
- :func:`check_endpoint` refuses user info in a base URL (``http://user:pw@host``):
  httpx would silently send it as Basic auth instead of the Bearer key.
- :func:`shown_url` is the form of a URL that may be displayed (no user info).
- :class:`Redactor` replaces a key in text in every escaped form it could take
  (raw, JSON with ``\\/``, ``repr``, URL-encoded) before the text is printed, traced or
  written anywhere.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

__all__ = ["Redactor", "check_endpoint", "clean_api_key", "shown_url", "KEY_ENV"]

KEY_ENV = "CXPAR_API_KEY"
MASK = "***"


def clean_api_key(raw: str | None) -> str | None:
    """``raw`` without surrounding whitespace; None if empty.

    Raises ValueError (never quoting the key) when what is left has a space, a control
    character or a non-ASCII character: no HTTP header can carry it.
    """
    if raw is None:
        return None
    key = raw.strip()
    if not key:
        return None
    bad = next((c for c in key if not ("!" <= c <= "~")), None)
    if bad is not None:
        what = "a space" if bad.isspace() else (
            "a control character" if ord(bad) < 32 or ord(bad) == 127
            else "a non-ASCII character")
        raise ValueError(f"{KEY_ENV} contains {what} (at position {key.index(bad) + 1} of "
                         f"{len(key)}): an API key is printable ASCII without spaces")
    return key


def shown_url(url: str) -> str:
    """``url`` without ``user:password@`` (the form that may appear in any output)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host += f":{port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def check_endpoint(url: str) -> None:
    """Refuse user info in a base URL (ValueError naming the URL without it)."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:
        raise ValueError(f"invalid base URL: {exc}") from None
    if "@" in netloc:
        raise ValueError(
            f"the base URL `{shown_url(url)}` must not contain user info (`user:password@`):"
            f" put the API key in the {KEY_ENV} environment variable instead")


class Redactor:
    """Replaces one secret in text, in every escaped form it could take."""

    __slots__ = ("_forms",)

    def __init__(self, secret: str | None) -> None:
        forms: set[str] = set()
        if secret:
            forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret)[1:-1].replace(
                "/", "\\/"), repr(secret)[1:-1], ascii(secret)[1:-1],
                quote(secret, safe=""), quote_plus(secret), quote(secret)}
            forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
        # Longest first, so a form that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._forms)
