"""``stream:`` on the sim: deterministic chunks on the virtual clock, ttft_ms."""

from __future__ import annotations

from cxpar.runtime.providers.sim import stream_chunks

from .conftest import run_cx


def test_chunks_arrive_over_the_latency_and_join_to_the_result() -> None:
    r = run_cx("""
        on answer.chunk (c) { print(now(), c.index, c.service, "[" + c.text + "]"); }
        var r = think { prompt: "Tell me a short story", stream: answer.chunk };
        print(now(), r.result);
        print(keys(r));
    """)
    assert r.code == 0, r.err
    assert r.lines == ["200 0 think [[think] Tell ]", "500 1 think [me a ]",
                       "800 2 think [short story]", "800 [think] Tell me a short story",
                       '["prompt", "result", "_parallel"]']


def test_streamed_structured_output_streams_its_json() -> None:
    r = run_cx("""
        var parts = [];
        on out.chunk (c) { parts[len(parts)] = c.text; }
        var r = infer { prompt: "x", stream: out.chunk,
                        schema: { type: "object", properties: { ok: { type: "boolean" } },
                                  required: ["ok"] } };
        var text = "";
        for (var p in parts) { text = text + p; }
        print(text == to_json(r.result), r.result.ok != null);
    """)
    assert r.lines == ["true true"], r.err


def test_stream_chunks_rejoin() -> None:
    for text in ("", "one", " lead  and  trail ", "a b c d e"):
        assert "".join(stream_chunks(text)) == text
