"""Pass `graph`: batches, critical path, estimates, serializers and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpar.analysis.graph import Graph, build_graph, parse_latency
from cxpar.analysis.graph_format import render, to_data
from cxpar.commands.graph import graph as graph_cmd
from tests.analysis.helpers import compile_text

FLAT = {"think": 100, "infer": 100, "learn": 100, "adapt": 100, "execute": 100, "is": 100,
        "not": 100, "iam": 100}

THREE = """
on go (event) {
    think { prompt: "p", a: x.a, b: x.b, c: x.c };
}
on x.a (e) { return infer { q: 1 }; }
on x.b (e) { return infer { q: 2 }; }
on x.c (e) { return infer { q: 3 }; }
emit go;
"""


def graph_of(text: str, latency: dict[str, float] | None = None) -> Graph:
    comp = compile_text(text)
    assert not comp.has_errors, comp.diagnostics
    return build_graph(comp.info, comp.program, latency)


def labels(g: Graph, ids: list[int]) -> list[str]:
    return [f"{g.nodes[i].kind}:{g.nodes[i].label}" for i in ids]


def test_three_parallel_branches() -> None:
    # The provider call itself is cheap here, so the three 100 ms branches dominate.
    g = graph_of(THREE, {**FLAT, "think": 0})
    assert g.estimated_ms == 100
    assert g.sequential_ms == 300
    assert g.speedup == pytest.approx(3.0)
    calls = g.of_kind("call")
    assert [c.label for c in calls] == ["think", "infer", "infer", "infer"]
    assert all(c.batch == 0 for c in calls)
    assert len(g.of_kind("branch")) == 3 and len(g.of_kind("join")) == 1
    assert labels(g, g.critical_path)[:4] == ["program:top level", "emit:go", "handler:go",
                                              "call:think"]
    assert labels(g, g.critical_path)[-1] in ("join:join think", "call:infer")


def test_three_branches_with_provider_time() -> None:
    g = graph_of(THREE, FLAT)
    assert (g.estimated_ms, g.sequential_ms) == (100, 400)


def test_nested_fan_out_inside_a_branch() -> None:
    g = graph_of("""
on go (event) { think { prompt: "p", outer: o.x }; }
on o.x (e) { return infer { q: 1, inner1: i.one, inner2: i.two }; }
on i.one (e) { return learn { q: 1 }; }
on i.two (e) { return adapt { q: 1 }; }
emit go;
""", {**FLAT, "think": 100, "infer": 50, "learn": 200, "adapt": 300})
    # think (100) runs beside infer(50) whose branches learn(200) and adapt(300) run beside it.
    assert g.estimated_ms == 300
    assert g.sequential_ms == 100 + 50 + 200 + 300
    assert {g.nodes[i].label for i in g.batches[0] if g.nodes[i].kind == "call"} == {
        "think", "infer", "learn", "adapt"}
    path = labels(g, g.critical_path)
    assert "call:adapt" in path and path[-1] in ("join:join think", "call:adapt",
                                                  "join:join infer", "handler:i.two")
    adapt = g.of_kind("call")[-1]
    assert adapt.critical and adapt.finish == 300


def test_handlers_chain_after_join() -> None:
    g = graph_of("""
on go (event) {
    think { prompt: "p", a: x.a, handlers: [ step.one, step.two ] };
}
on x.a (e) { return infer { q: 1 }; }
on step.one (e) { learn { q: 1 }; }
on step.two (e) { execute { q: 1 }; }
emit go;
""", FLAT)
    # join at 100, then step.one's learn (100..200), then step.two's execute (200..300)
    assert g.estimated_ms == 300
    assert g.sequential_ms == 400
    by_label = {c.label: c for c in g.of_kind("call")}
    assert (by_label["learn"].start, by_label["execute"].start) == (100, 200)
    assert (by_label["learn"].batch, by_label["execute"].batch) == (1, 2)
    assert [len(b) for b in g.batches] and len(g.batches) == 3
    assert labels(g, g.critical_path)[-2:] == ["handler:step.two", "call:execute"]


def test_emit_does_not_wait_and_sequence_adds_up() -> None:
    g = graph_of("""
on go (event) { think { prompt: "a" }; emit side; infer { q: 1 }; }
on side (e) { adapt { q: 1 }; }
emit go;
""", {**FLAT, "adapt": 1000})
    infer = next(c for c in g.of_kind("call") if c.label == "infer")
    adapt = next(c for c in g.of_kind("call") if c.label == "adapt")
    assert infer.start == 100 and adapt.start == 100
    assert g.estimated_ms == 1100


def test_system_start_after_top_level_and_realize_inline() -> None:
    g = graph_of("""
conscious A { realize(self: conscious) { learn self; } }
var a = new A({ name: "a" });
on system.start (e) { think { prompt: "go" }; }
""", FLAT)
    learn = next(c for c in g.of_kind("call") if c.label == "learn")
    think = next(c for c in g.of_kind("call") if c.label == "think")
    assert learn.start == 0 and think.start == 100 and g.estimated_ms == 200


def test_recursion_is_not_unfolded_forever() -> None:
    g = graph_of('on a.b (e) { return think { prompt: e.prompt, again: a.b }; }\nemit a.b;')
    assert any(x.detail.get("recursive") for x in g.of_kind("handler"))
    assert not g.truncated


def test_await_uses_literal_duration() -> None:
    g = graph_of("await { durationMs: 250 };")
    assert g.estimated_ms == 250


def test_parse_latency() -> None:
    assert parse_latency("think=800, infer=300") == {"think": 800, "infer": 300}
    for bad in ("think", "think=x", "=3", "think=-1"):
        with pytest.raises(ValueError):
            parse_latency(bad)


def test_serializers() -> None:
    g = graph_of(THREE, FLAT)
    data = json.loads(render(g, "json"))
    assert data == json.loads(json.dumps(to_data(g)))
    assert data["version"] == 1 and data["estimated_ms"] == 100
    assert {e["kind"] for e in data["edges"]} >= {"seq", "fanout", "trigger", "join"}
    assert all(set(nd) >= {"id", "kind", "label", "start_ms", "finish_ms", "batch",
                           "critical", "span"} for nd in data["nodes"])
    mer = render(g, "mermaid")
    assert mer.startswith("flowchart TD") and "==>" in mer and "class " in mer
    dot = render(g, "dot")
    assert dot.startswith("digraph cx {") and dot.rstrip().endswith("}")
    text = render(g, "text")
    assert "★" in text and "estimated 100 ms" in text and "batch 0:" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed (`apt-get install graphviz`; .ci/run does it)")
def test_dot_is_accepted_by_graphviz() -> None:
    dot = render(graph_of(THREE, FLAT), "dot")
    proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert b"<svg" in proc.stdout


def test_cli_graph(tmp_path: Path) -> None:
    src = tmp_path / "t.cx"
    src.write_text(THREE, encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(graph_cmd, [str(src), "--format", "json", "--latency",
                                    "think=100,infer=100"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["estimated_ms"] == 100
    out = tmp_path / "g.mmd"
    res = runner.invoke(graph_cmd, [str(src), "--format", "mermaid", "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("flowchart TD")


def test_cli_graph_errors_and_usage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cx"
    bad.write_text('thnk { prompt: "p" };', encoding="utf-8")
    proc = subprocess.run([".venv/bin/cxpar", "graph", str(bad)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 1 and "unknown service `thnk`" in proc.stderr
    good = tmp_path / "good.cx"
    good.write_text(THREE, encoding="utf-8")
    proc = subprocess.run([".venv/bin/cxpar", "graph", str(good), "--latency", "think=x"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--latency" in proc.stderr
    proc = subprocess.run([".venv/bin/cxpar", "compile", "--emit", "graph", "--format", "json",
                           str(good)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["nodes"]
