"""CX handlers as tools on the sim (docs/language.md "Tools")."""

from __future__ import annotations

from .conftest import diagnostics, run_cx

TOOLS = """
    /// Looks up the current weather of a city.
    on weather.lookup (args) {
        print("weather starts", now());
        await { durationMs: 300 };
        print("weather ends", now());
        return { city: args.query, celsius: 21 };
    }
    on orders.find (args) {
        print("orders starts", now());
        await { durationMs: 200 };
        return [ "A-1", "A-2" ];
    }
"""


def test_two_rounds_parallel_tools_and_the_tools_log() -> None:
    r = run_cx(TOOLS + """
        var r = think { prompt: "Trip to Oslo", tools: [ weather.lookup, orders.find ] };
        print(r.result);
        print(r._tools);
        print(keys(r), r._parallel.wall_ms);
    """)
    assert r.code == 0, r.err
    assert r.lines[:4] == ["weather starts 800", "orders starts 800", "weather ends 1100",
                           r.lines[3]]
    # round 1 (800 ms), both tools in parallel (300 ms), round 2 (800 ms)
    assert r.lines[3] == ('[think] Trip to Oslo (weather_lookup: {"city": "Trip to Oslo", '
                          '"celsius": 21}; orders_find: ["A-1", "A-2"])')
    assert r.lines[4] == (
        '[{"name": "weather.lookup", "arguments": {"query": "Trip to Oslo"}, "result": '
        '{"city": "Trip to Oslo", "celsius": 21}, "error": null, "round": 1}, {"name": '
        '"orders.find", "arguments": {"query": "Trip to Oslo"}, "result": ["A-1", "A-2"], '
        '"error": null, "round": 1}]')
    assert r.lines[5] == '["prompt", "result", "_tools", "_parallel"] 1900'


def test_tool_object_with_parameters_gets_arguments_from_its_schema() -> None:
    r = run_cx("""
        on orders.find (a) { return "found " + a.id; }
        var r = think { prompt: "Where is my order?", tools: [ { event: orders.find,
            description: "Finds an order by id",
            parameters: { type: "object", properties: { id: { type: "integer",
                minimum: 100, maximum: 100 } }, required: ["id"] } } ] };
        print(r._tools[0].arguments, r._tools[0].result);
    """)
    assert r.lines == ['{"id": 100} found 100'], r.err


def test_failed_and_missing_tools_become_error_results() -> None:
    r = run_cx("""
        on flaky.tool (a) { var x = null; return x.y; }
        on slow.tool (a) { await { durationMs: 5000 }; return 1; }
        var r = think { prompt: "p", timeout: 1000, retries: 1,
                        tools: [ flaky.tool, slow.tool, missing.tool ] };
        for (var t in r._tools) { print(t.name, t.error.type, t.error.attempts); }
        print(r.result);
        print(r._errors == null);
    """)
    assert r.lines[:3] == ["flaky.tool error 2", "slow.tool timeout 2",
                           "missing.tool no_handler 0"], r.err
    assert '"type": "no_handler"' in r.lines[3] and '"type": "timeout"' in r.lines[3]
    assert r.lines[4] == "true"  # the answer came: tool failures are not the call's
    assert r.code == 3  # the handler's runtime error is reported (rule 6)
    assert "cannot read property `y` of null" in r.err or "null" in r.err


def test_tool_rounds_limit_is_a_provider_failure() -> None:
    r = run_cx("""
        on a.b (e) { return 1; }
        var r = think { prompt: "p", tools: [ a.b ], tool_rounds: 1 };
        print(r._errors == null, len(r._tools));
    """)
    assert r.lines == ["true 1"]  # the sim answers in round 2: one tool round is enough


def test_tool_events_count_as_triggered_and_warn_without_a_handler() -> None:
    diags = diagnostics("""
        /// @external
        on tool.used (e) { return 1; }
        on helper.run (e) { return 2; }
        think { prompt: "p", tools: [ helper.run, nobody.handles ] };
    """)
    assert [d.code for d in diags] == ["CX409"], [(d.code, d.message) for d in diags]


def test_tools_item_that_is_not_an_event_is_a_compile_error() -> None:
    diags = diagnostics("""
        think { prompt: "p", tools: [ "weather", { description: "x" },
                                      { event: a.b, colour: 1 } ] };
        think { prompt: "p", tools: a.b };
        on a.b (e) { return 1; }
    """)
    assert [d.code for d in diags] == ["CX315", "CX315", "CX315", "CX302"], \
        [(d.code, d.message) for d in diags]


def test_tools_are_deterministic_and_keep_the_payload_invariants() -> None:
    src = TOOLS + """
        on side.branch (e) { return "b"; }
        var r = think { prompt: "q", side: side.branch, tools: [ weather.lookup ],
                        handlers: [ done.item ] };
        on done.item (p) { print("item sees", keys(p)); }
        print(r._parallel);
    """
    a, b = run_cx(src), run_cx(src)
    assert a.out == b.out and a.code == 0, a.err
    assert 'item sees ["prompt", "result", "side", "_tools", "_parallel"]' in a.out


def test_graph_draws_tools_as_branches_of_their_call() -> None:
    import textwrap

    from cxpar.analysis.graph import build_graph
    from cxpar.driver import front_end_source
    from cxpar.span import SourceFile

    fe = front_end_source(SourceFile("t.cx", textwrap.dedent(TOOLS + """
        var r = think { prompt: "Trip", tools: [ weather.lookup, orders.find ] };
    """)))
    assert fe.compilation is not None
    g = build_graph(fe.compilation.info, fe.compilation.program)
    tools = [x for x in g.nodes if x.kind == "branch"]
    assert [x.label for x in tools] == ["tool: weather.lookup", "tool: orders.find"]
    assert all(x.start == 800 for x in tools)
    # round 1 (800) + the slower tool (300) + round 2 (800): what the sim run takes
    assert g.estimated_ms == 1900
