"""One cached analysis per open document: parse, analyse, index.

Every feature reads the :class:`Analysis` of the document's current text; a change
re-analyses once, however many requests follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from cxpar.analysis.pipeline import Compilation
from cxpar.ast.nodes import Program
from cxpar.diagnostics.model import Diagnostic
from cxpar.driver import front_end_source
from cxpar.lsp.index import Index, build
from cxpar.lsp.positions import LineIndex
from cxpar.span import SourceFile
from cxpar.syntax.incremental import IncrementalParser


@dataclass
class Analysis:
    """What the server knows about one version of one document."""

    uri: str
    text: str
    lines: LineIndex
    diagnostics: list[Diagnostic]
    program: Program | None
    compilation: Compilation | None
    index: Index


def display_name(uri: str) -> str:
    """The file name diagnostics carry (the path for ``file:`` URIs)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


def analyze(uri: str, text: str, encoding: str = "utf-16") -> Analysis:
    """Parse and analyse ``text`` (the document at ``uri``), cached per document; the
    parse re-parses only the top-level items that changed since the last version."""
    cached = _CACHE.get(uri)
    if cached is not None and cached.text == text and cached.lines.encoding == encoding:
        return cached
    # Documents keep "\n" line ends here; the editor's offsets are per line, so CRLF
    # documents convert the same way (a "\r" is just the last character of its line).
    source = SourceFile(display_name(uri), text)
    parser = _PARSERS.get(uri)
    if parser is None:
        parser = _PARSERS[uri] = IncrementalParser()
    fe = front_end_source(source, extra_services=_plugin_services(uri), parser=parser.parse)
    comp = fe.compilation
    index = build(comp.program, comp.info, comp.nodes) if comp is not None else Index()
    analysis = Analysis(uri, text, LineIndex(text, encoding), fe.diagnostics, fe.program,
                        comp, index)
    _CACHE[uri] = analysis
    return analysis


def forget(uri: str) -> None:
    _CACHE.pop(uri, None)
    _PARSERS.pop(uri, None)


def _plugin_services(uri: str) -> dict[str, str]:
    """Plug-in services known for the document's directory (as `cxpar check` does),
    looked up once per directory."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return {}
    path = Path(unquote(parsed.path))
    found = _SERVICES.get(path.parent)
    if found is None:
        try:
            from cxpar.commands.common import plugin_services

            found = plugin_services(path)
        except Exception:  # noqa: BLE001 - a broken plug-in must not stop the editor
            found = {}
        _SERVICES[path.parent] = found
    return found


_CACHE: dict[str, Analysis] = {}
#: Each open document's parser, which keeps the parsed top-level items of its last version.
_PARSERS: dict[str, IncrementalParser] = {}
_SERVICES: dict[Path, dict[str, str]] = {}
