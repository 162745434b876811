"""Rule 29: `new` and `realize` arity. Extra `new` arguments are ignored (warning CX312),
missing ones are null; no arity combination is ever an internal error."""

from __future__ import annotations

from typing import Any

import pytest


def test_issue_example_through_the_cli(run_file: Any) -> None:
    r = run_file('conscious A { realize(self) { print("r"); } } var a = new A({}, 1);')
    assert (r.code, r.lines) == (0, ["r"])
    assert "warning[CX312]" in r.err and "1 is ignored" in r.err


@pytest.mark.parametrize("n_params", [0, 1, 2, 3])
@pytest.mark.parametrize("n_args", [0, 1, 2, 3, 5])
def test_every_arity_combination(cx: Any, n_params: int, n_args: int) -> None:
    params = ["self", "b", "c"][:n_params]
    shown = ", ".join(params[1:]) or '"-"'
    args = ['{ k: "f" }', *[str(i) for i in range(2, n_args + 1)]][:n_args]
    r = cx(f"""
        conscious A {{ realize({', '.join(params)}) {{ print(self.k, {shown}); }} }}
        var a = new A({', '.join(args)});
        print("made", a.k);
    """)
    assert r.code == 0, r.err
    k = "f" if n_args else "null"
    later = [str(i) if i <= n_args else "null" for i in range(2, n_params + 1)]
    assert r.lines == [" ".join([k, *later]) if later else f"{k} -", f"made {k}"]
    warned = any(d.code == "CX312" for d in r.diagnostics)
    assert warned == (n_args > max(n_params, 1))


def test_inherited_realize_and_entity_without_realize(cx: Any) -> None:
    r = cx("""
        conscious Base { realize(self, x) { print("base", x); } }
        conscious Kid : Base { }
        object Plain { }
        var k = new Kid({}, 1, 2, 3);
        var p = new Plain({ v: 1 }, 2);
        print(p.v);
    """)
    assert (r.code, r.lines) == (0, ["base 1", "1"])
    assert [d.code for d in r.diagnostics] == ["CX312", "CX312"]
