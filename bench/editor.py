"""Editor tooling: `cxpar fmt` throughput and `cxpar lsp` re-analysis latency.

* ``fmt.lines_per_s``: formatting a generated program with comments (the
  ``frontend`` program, a comment on every other line), in process. ``value`` is the
  formatter's own work -- attaching comments, building the document, printing it -- in
  lines per second, *on top of parsing*; the baseline is the parse the formatter runs
  first (the same ``parse`` as `cxpar check`), and ``extra`` has the formatter's tree
  parse and the whole ``format_source`` throughput. Target (issue 21): ≥ 5 000 lines/s.
  The ratio is measured within one run, so it holds on a busy machine; absolute numbers
  move with load (2 shared cores).
* ``lsp.reanalysis_ms``: see :func:`lsp_reanalysis`.
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




def lsp_reanalysis(lines: int, reps: int) -> Row:
    """``lsp.reanalysis_ms``: after a one-character edit of a ``lines``-line document,
    the server's re-analysis (parse, analysis, index, LSP diagnostics) in ms, vs the
    whole `cxpar check` front end on the same text. Target (issue 21): ≤ 200 ms."""
    from cxpar.driver import front_end_source
    from cxpar.lsp import features
    from cxpar.lsp.analysis import analyze
    from cxpar.span import SourceFile

    text = generate(lines)
    nlines = text.count("\n")
    uri = "file:///bench/gen.cx"
    analyze(uri, text)
    ours, base = [], []
    for i in range(reps):
        # the same edit a user makes: change one digit in the middle of the file
        at = text.index("return len(event.prompt) % 7", len(text) // 2)
        edited = text[:at] + f"return len(event.prompt) % {3 + i % 5}" + text[at + 28:]
        gc.collect()
        t0 = time.perf_counter()
        features.diagnostics(analyze(uri, edited))
        t1 = time.perf_counter()
        front_end_source(SourceFile("gen.cx", edited))
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        base.append((t2 - t1) * 1000)
    return compare("lsp.reanalysis_ms", {"lines": nlines}, ours, base, "ms",
                   baseline_name="cxpar check front end (parse + analysis)",
                   target="value ≤ 200 ms", check=lambda x: x <= 200, on="value")


def run(mode: str) -> list[Row]:
    sizes = {"tiny": [(200, 1)], "quick": [(2000, 3)], "full": [(2000, 5), (10_000, 3)]}[mode]
    rows = [fmt_throughput(lines, reps) for lines, reps in sizes]
    reps = {"tiny": 1, "quick": 5, "full": 11}[mode]
    rows.append(lsp_reanalysis(200 if mode == "tiny" else 2000, reps))
    return rows
