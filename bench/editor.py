"""Editor tooling: `cxpar fmt` throughput and `cxpar lsp` re-analysis latency.

* ``fmt.lines_per_s``: formatting a generated program with comments (the
  ``frontend`` program, a comment on every other line), in process. ``value`` is the
  formatter's own work -- attaching comments, building the document, printing it -- in
  lines per second, *on top of parsing*; the baseline is the parse the formatter runs
  first (the same ``parse`` as `cxpar check`), and ``extra`` has the formatter's tree
  parse and the whole ``format_source`` throughput. Target (issue 21): ≥ 5 000 lines/s.
  The ratio is measured within one run, so it holds on a busy machine; absolute numbers
  move with load (2 shared cores).
* ``lsp.reanalysis_ms`` and ``lsp.reanalysis_syntax_error_ms``: the server's work after
  an edit, in process; see :func:`lsp_reanalysis`.
* ``lsp.change_to_diagnostics_ms``: the same edit through a real ``cxpar lsp`` over
  stdio, from ``didChange`` sent to diagnostics received; see :func:`lsp_round_trip`.
"""

from __future__ import annotations

import gc
import time

from .core import Row, compare, med
from .frontend import generate


def with_comments(text: str) -> str:
    """``text`` with a trailing comment on every other line and a block comment above
    every entity (what real files have)."""
    out = []
    for i, line in enumerate(text.split("\n")):
        if line.startswith("object "):
            out.append("/* an agent */")
        if i % 2 and line.rstrip().endswith((";", "{")):
            line += " // note " + str(i)
        out.append(line)
    return "\n".join(out)


def fmt_throughput(lines: int, reps: int) -> Row:
    from cxpar.fmt import format_source
    from cxpar.fmt.cst import parse_cst
    from cxpar.fmt.doc import render
    from cxpar.fmt.format import LINE_WIDTH
    from cxpar.fmt.printer import print_cst
    from cxpar.span import SourceFile
    from cxpar.syntax.parser import parse

    text = with_comments(generate(lines))
    nlines = text.count("\n")
    format_source(text)  # builds both parsers
    ours, base, tree, whole = [], [], [], []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        parse(SourceFile("gen.cx", text))
        t1 = time.perf_counter()
        cst = parse_cst(text)
        t2 = time.perf_counter()
        gc.disable()  # as format_source does while it prints
        render(print_cst(cst), LINE_WIDTH)
        gc.enable()
        t3 = time.perf_counter()
        format_source(text)
        t4 = time.perf_counter()
        base.append(nlines / (t1 - t0))
        tree.append(nlines / (t2 - t1))
        ours.append(nlines / (t3 - t2))
        whole.append(nlines / (t4 - t3))
    return compare("fmt.lines_per_s", {"lines": nlines}, ours, base, "lines/s",
                   baseline_name="parse (as cxpar check --syntax-only)",
                   target="value ≥ 5 000", check=lambda x: x >= 5000, on="value",
                   tree_parse_lines_per_s=round(med(tree)),
                   format_source_lines_per_s=round(med(whole)))




def _typing(text: str, i: int, broken: str = "") -> str:
    """Version ``i`` of ``text`` as a user types in the middle of it: a one-digit change
    that adds a character (so every later item moves by one) or a line (every later item
    moves down a line), taking turns. ``broken="error"``: the digit is deleted, which
    leaves a syntax error (`% ;`) there; ``"open"``: a `(` typed before it is left open
    (to the end of the file); with a space in every other version, so each differs."""
    at = text.index("return len(event.prompt) % 7", len(text) // 2) + 27
    if broken:
        typed = ("(7" if broken == "open" else "") + " " * (i % 2)
    else:
        typed = f"{i % 9 + 1}0" if i % 2 else f"{i % 9 + 1}\n"
    return text[:at] + typed + text[at + 1:]


def lsp_reanalysis(lines: int, reps: int) -> list[Row]:
    """``lsp.reanalysis_ms``: after a one-character edit of a ``lines``-line document,
    the server's re-analysis (incremental parse, analysis, index, LSP diagnostics) in
    ms of wall time, vs the whole `cxpar check` front end (whole-file parse + analysis)
    on the same text. ``cpu_ms`` is the same re-analysis in CPU time of the process
    (steadier than wall time on a shared machine). Target (issue 21): ≤ 200 ms.

    ``lsp.reanalysis_syntax_error_ms``: the same, for an edit that leaves a syntax error
    in the middle of the file: the items before it are reused, the text from it is
    parsed by the ordinary parser until its error recovery is back at the start of an
    unchanged item, whose items are reused from there on; analysis does not run (as in
    `cxpar check`); vs the same front end.

    ``lsp.reanalysis_open_bracket_ms``: the same for a `(` left open, which no chunk
    boundary follows: parsing resumes at the next line that starts with a declaration,
    once error recovery is back at the top level."""
    from cxpar.driver import front_end_source
    from cxpar.lsp import features
    from cxpar.lsp.analysis import analyze, forget
    from cxpar.span import SourceFile

    text = generate(lines)
    nlines = text.count("\n")
    uri = "file:///bench/gen.cx"
    rows = []
    for name, broken in (("lsp.reanalysis_ms", ""), ("lsp.reanalysis_syntax_error_ms", "error"),
                         ("lsp.reanalysis_open_bracket_ms", "open")):
        forget(uri)
        analyze(uri, text)
        ours, base, cpu = [], [], []
        for i in range(reps):
            edited = _typing(text, i, broken)
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            features.diagnostics(analyze(uri, edited))
            t1, c1 = time.perf_counter(), time.process_time()
            front_end_source(SourceFile("gen.cx", edited))
            t2 = time.perf_counter()
            ours.append((t1 - t0) * 1000)
            cpu.append((c1 - c0) * 1000)
            base.append((t2 - t1) * 1000)
        rows.append(compare(name, {"lines": nlines}, ours, base, "ms",
                            baseline_name="cxpar check front end (parse + analysis)",
                            target="value ≤ 200 ms", check=lambda x: x <= 200, on="value",
                            cpu_ms=round(med(cpu), 1)))
    forget(uri)
    return rows


def lsp_round_trip(lines: int, reps: int) -> Row:
    """``lsp.change_to_diagnostics_ms``: what a user waits for, end to end: a real
    ``cxpar lsp`` process over stdio (pygls's client), a ``lines``-line document open;
    from sending a one-character ``didChange`` (incremental sync) to receiving the
    ``publishDiagnostics`` of that version, in ms -- the server's debounce
    (:data:`cxpar.lsp.server.DEBOUNCE_S`), the re-analysis and JSON-RPC both ways."""
    import asyncio
    import os
    import sys

    from lsprotocol import types as t
    from pygls.lsp.client import LanguageClient

    from cxpar.lsp.server import DEBOUNCE_S

    text = generate(lines)
    nlines = text.count("\n")
    uri = "untitled:gen.cx"
    at = text.index("return len(event.prompt) % 7", len(text) // 2) + 27
    line = text.count("\n", 0, at)
    col = at - text.rfind("\n", 0, at) - 1

    async def session() -> list[float]:
        client = LanguageClient("cxpar-bench", "1")
        arrived: dict[int, float] = {}
        got = asyncio.Event()

        @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: t.PublishDiagnosticsParams) -> None:
            arrived[params.version or 0] = time.perf_counter()
            got.set()

        async def wait(version: int) -> float:
            while version not in arrived:
                got.clear()
                await asyncio.wait_for(got.wait(), 60)
            return arrived[version]

        await client.start_io(sys.executable, "-m", "cxpar", "lsp",
                              env=dict(os.environ, NO_COLOR="1"))
        await client.initialize_async(t.InitializeParams(
            process_id=os.getpid(), capabilities=t.ClientCapabilities()))
        client.initialized(t.InitializedParams())
        client.text_document_did_open(t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id="cx", version=1,
                                             text=text)))
        await wait(1)
        out = []
        for i in range(reps):
            version = i + 2
            pos = t.Position(line=line, character=col)
            sent = time.perf_counter()
            client.text_document_did_change(t.DidChangeTextDocumentParams(
                text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[t.TextDocumentContentChangePartial(
                    range=t.Range(start=pos, end=t.Position(line=line, character=col + 1)),
                    text=str(i % 9 + 1))]))
            out.append((await wait(version) - sent) * 1000)
            await asyncio.sleep(0.05)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        return out

    loop = asyncio.new_event_loop()
    try:
        times = loop.run_until_complete(session())
    finally:
        loop.close()
    return compare("lsp.change_to_diagnostics_ms", {"lines": nlines}, times, None, "ms",
                   target="value ≤ 200 ms", check=lambda x: x <= 200, on="value",
                   debounce_ms=round(DEBOUNCE_S * 1000))


def run(mode: str) -> list[Row]:
    sizes = {"tiny": [(200, 1)], "quick": [(2000, 3)], "full": [(2000, 5), (10_000, 3)]}[mode]
    rows = [fmt_throughput(lines, reps) for lines, reps in sizes]
    reps = {"tiny": 1, "quick": 5, "full": 11}[mode]
    rows.extend(lsp_reanalysis(200 if mode == "tiny" else 2000, reps))
    rows.append(lsp_round_trip(200 if mode == "tiny" else 2000, reps))
    return rows
