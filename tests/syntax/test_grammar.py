"""The grammar and ToAst agree: every rule Lark can reduce builds an AST node.

A rule without a ToAst method makes Lark build a ``Tree``, which later stages cannot
read (``for (i = 0;;);`` once crashed with "'Tree' object has no attribute 'span'").
"""

from __future__ import annotations

from cxpar.ast import nodes as n
from cxpar.syntax.parser import get_parser

from .helpers import ok


def test_every_rule_has_a_callback() -> None:
    parser = get_parser()
    missing = set()
    for rule in parser.lark.rules:
        name = str(rule.alias or rule.origin.name)
        if name.startswith("_") or rule.options.expand1 and len(rule.expansion) == 1:
            continue  # inlined, or `?rule` with one child: no node of its own
        if parser.builder.callback_for(name) is None:
            missing.add(name)
    assert missing == set()


def test_c_style_for_with_expression_initialiser() -> None:
    prog = ok("var i; for (i = 0; i < 3; i++) { } for (i = 0;;); for (;;); for (;;) { }")
    loops = [s for s in prog.body if isinstance(s, n.ForC)]
    assert len(loops) == 4
    assert isinstance(loops[0].init, n.ExprStmt) and isinstance(loops[0].init.expr, n.Assign)
    assert loops[2].init is None and loops[2].cond is None and loops[2].update is None
    assert isinstance(loops[2].body, n.Empty)
