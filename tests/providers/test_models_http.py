"""Endpoints, structured output, tools, streaming and rate-limit headers against a real
OpenAI-compatible HTTP server on 127.0.0.1 (tests/providers/fake_openai.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from cxpar.runtime.providers.openai import OpenAIProvider
from cxpar.runtime.settings import EndpointSettings, RouteSettings

from .conftest import KEY, cli, cli_env, run_cx
from .fake_openai import Act, FakeServer, openai_like


def provider(srv: FakeServer, **kw: Any) -> OpenAIProvider:
    kw.setdefault("api_key", KEY)
    return OpenAIProvider(srv.base_url, "base-model", **kw)


def bodies(srv: FakeServer) -> list[dict[str, Any]]:
    return [r["json"] for r in srv.requests]


# ------------------------------------------------------------------ structured output
def test_schema_is_sent_as_strict_response_format_and_parsed(server: FakeServer) -> None:
    server.script = openai_like
    r = run_cx("""
        var r = think { prompt: "Classify", model: "gpt-4o-mini",
            schema: { type: "object", properties: { team: { enum: ["billing", "network"] },
                      score: { type: "integer", minimum: 3 } }, required: ["team", "score"] } };
        print(r.result, r.result.score + 1);
    """, provider(server))
    assert r.code == 0, r.err
    assert r.lines == ['{"team": "network", "score": 3} 4']
    (body,) = bodies(server)
    assert body["model"] == "gpt-4o-mini"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "result"
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 3}  # ints, not 3.0


def test_invalid_output_is_retried_then_reported(server: FakeServer) -> None:
    answers = iter(['{"n": "seven"}', "not json at all", '{"n": 7}'])
    server.script = lambda req: next(answers)
    r = run_cx("""
        var r = think { prompt: "n?", retries: 2,
                        schema: { type: "object", properties: { n: { type: "integer" } },
                                  required: ["n"] } };
        print(r.result.n, r._errors == null);
    """, provider(server))
    assert r.lines == ["7 true"], r.err
    assert len(server.requests) == 3
    server.requests.clear()
    server.script = lambda req: '{"n": "seven"}'
    r = run_cx("""
        var r = think { prompt: "n?",
                        schema: { type: "object", properties: { n: { type: "integer" } } } };
        print(r._errors.result);
    """, provider(server))
    err = json.loads(r.out)
    assert err["type"] == "invalid_output" and err["attempts"] == 1
    assert "'seven' is not of type 'integer' at `n`" in err["message"]


# ------------------------------------------------------------------ tools
def test_several_tool_calls_per_round_run_in_parallel(server: FakeServer) -> None:
    server.script = openai_like
    r = run_cx("""
        /// Current weather of a city.
        on weather.lookup (a) { var t0 = now(); await { durationMs: 400 };
                                 return { t0: t0, t1: now(), q: a.q }; }
        on orders.find (a) { var t0 = now(); await { durationMs: 400 };
                             return { t0: t0, t1: now(), id: a.id }; }
        var r = think { prompt: "plan", tools: [ weather.lookup,
            { event: orders.find, description: "Find an order",
              parameters: { type: "object", properties: { id: { type: "integer" } },
                            required: ["id"] } } ] };
        print(r._tools);
        print(r.result);
    """, provider(server))
    assert r.code == 0, r.err
    tools = json.loads(r.lines[0])
    assert [t["name"] for t in tools] == ["weather.lookup", "orders.find"]
    assert tools[0]["arguments"] == {"q": "plan"} and tools[1]["arguments"] == {"id": 7}
    w, o = tools[0]["result"], tools[1]["result"]
    assert w["t0"] < o["t1"] and o["t0"] < w["t1"]  # the two handlers overlapped
    assert r.lines[1].startswith("answer with ")
    first, second = bodies(server)
    names = [t["function"]["name"] for t in first["tools"]]
    assert names == ["weather_lookup", "orders_find"]
    assert first["tools"][0]["function"]["description"] == "Current weather of a city."
    assert first["tools"][1]["function"]["parameters"]["required"] == ["id"]
    msgs = second["messages"]
    assert [m["role"] for m in msgs[-3:]] == ["assistant", "tool", "tool"]
    assert [c["id"] for c in msgs[-3]["tool_calls"]] == ["call_0", "call_1"]
    assert msgs[-2]["tool_call_id"] == "call_0"
    assert json.loads(msgs[-1]["content"])["id"] == 7


def test_tool_without_handler_gets_an_error_result(server: FakeServer) -> None:
    server.script = openai_like
    r = run_cx("""
        var r = think { prompt: "p", tools: [ nobody.home ] };
        print(r._tools[0].error.type);
    """, provider(server))
    assert r.lines == ["no_handler"]
    tool_msg = bodies(server)[1]["messages"][-1]
    assert json.loads(tool_msg["content"]) == {"error": {
        "type": "no_handler", "message": "no handler for `nobody.home`"}}


def test_endless_tool_calls_stop_at_tool_rounds(server: FakeServer) -> None:
    server.script = lambda req: Act(content=None, tool_calls=[
        {"name": "a_b", "arguments": {}}])
    r = run_cx("""
        on a.b (e) { return 1; }
        var r = think { prompt: "p", tools: [ a.b ], tool_rounds: 3 };
        print(r._errors.result.type, len(r._tools));
    """, provider(server))
    assert r.lines == ["tool_rounds 3"], r.err
    assert len(server.requests) == 4


# ------------------------------------------------------------------ streaming
def test_stream_emits_each_chunk_as_it_arrives(server: FakeServer) -> None:
    server.script = lambda req: Act(content="Hello brave new world",
                                    chunks=["Hello ", "brave ", "new ", "world"],
                                    chunk_delay=0.05)
    r = run_cx("""
        on reply.chunk (c) { print(c.index, c.service, c.text); }
        var r = think { prompt: "hi", stream: reply.chunk };
        print(r.result);
    """, provider(server), stats=True)
    assert r.code == 0, r.err
    assert r.lines == ["0 think Hello ", "1 think brave ", "2 think new ", "3 think world",
                       "Hello brave new world"]
    (body,) = bodies(server)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "ttft_ms" in r.err


def test_streamed_tool_calls_are_assembled(server: FakeServer) -> None:
    def script(req: Any) -> Act:
        if any(m["role"] == "tool" for m in req["messages"]):
            return Act(content="done")
        return Act(content=None, tool_calls=[{"name": "a_b", "arguments": {"x": 1}},
                                             {"name": "a_b", "arguments": {"x": 2}}])
    server.script = script
    r = run_cx("""
        on a.b (e) { return e.x * 10; }
        on s.c (c) { }
        var r = think { prompt: "p", tools: [ a.b ], stream: s.c };
        print(r.result, r._tools[0].result, r._tools[1].result);
    """, provider(server))
    assert r.lines == ["done 10 20"], r.err


# ------------------------------------------------------------------ rate limits
def test_ratelimit_headers_pause_the_whole_endpoint(server: FakeServer) -> None:
    state = {"n": 0}

    def script(req: Any) -> Act:
        state["n"] += 1
        if state["n"] == 1:
            return Act(content="first", headers={"x-ratelimit-remaining-requests": "0",
                                                 "x-ratelimit-reset-requests": "600ms"})
        return Act(content="later")
    server.script = script
    r = run_cx("""
        var a = think { prompt: "a" };
        on more.run (e) { var b = think { prompt: "b" + e.n }; print(b.result); }
        emit more.run { n: 1 };
        emit more.run { n: 2 };
    """, provider(server), stats=True)
    assert r.lines == ["later", "later"], r.err
    t = [req["t"] for req in server.requests]
    assert t[1] - t[0] >= 0.55 and t[2] - t[0] >= 0.55
    assert "rate_wait_ms" in r.err


def test_retry_after_pauses_other_calls_too(server: FakeServer) -> None:
    state = {"n": 0}

    def script(req: Any) -> Act:
        state["n"] += 1
        if state["n"] == 1:
            return Act(status=429, headers={"Retry-After": "1"})
        return Act(content="ok")
    server.script = script
    r = run_cx("""
        on other.run (e) { await { durationMs: 500 }; var b = think { prompt: "b" };
                           print("b", b.result); }
        emit other.run {};
        var a = think { prompt: "a", retries: 1 };
        print("a", a.result);
    """, provider(server))
    assert sorted(r.lines) == ["a ok", "b ok"], r.err
    t = [req["t"] for req in server.requests]
    assert len(t) == 3 and min(t[1:]) - t[0] >= 0.95  # b waited for the pause too


# ------------------------------------------------------------------ endpoints
def _local_endpoint(tmp_path: Path, server: FakeServer, limits: str = "") -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text(textwrap.dedent(f"""
        [run]
        clock = "real"
        [endpoints.local]
        base_url = "{server.base_url}"
        model = "local-model"
    """) + textwrap.dedent(limits))


def test_named_endpoint_with_its_own_key_and_routing(server: FakeServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPT_KEY", "sk-gpt-endpoint")
    server.script = lambda req: f"model {req['model']}"
    eps = {"gpt": EndpointSettings(base_url=server.base_url, model="gpt-default",
                                   api_key_env="GPT_KEY")}
    r = run_cx("""
        var a = think { prompt: "a" };
        var b = think { prompt: "b", endpoint: "gpt" };
        var c = think { prompt: "c", endpoint: "gpt", model: "gpt-big" };
        var d = infer { prompt: "d" };
        print(a.result); print(b.result); print(c.result); print(d.result);
    """, None, endpoints=eps, routing={"infer": RouteSettings(endpoint="gpt", model="m-infer")})
    assert r.lines == ["[think] a", "model gpt-default", "model gpt-big", "model m-infer"], r.err
    assert all(req["headers"]["Authorization"] == "Bearer sk-gpt-endpoint"
               for req in server.requests)


def test_cli_endpoints_and_routing_from_cxpar_toml(server: FakeServer, tmp_path: Path) -> None:
    server.script = openai_like
    _local_endpoint(tmp_path, server, """
        rpm = 100
        [routing.think]
        endpoint = "local"
    """)
    prog = tmp_path / "p.cx"
    prog.write_text(textwrap.dedent("""
        var r = think { prompt: "x", schema: { type: "object",
                        properties: { ok: { type: "boolean" } }, required: ["ok"] } };
        print(r.result.ok);
        var s = infer { prompt: "y" };
        print(s.result);
        var t = think { prompt: "z", endpoint: "lcoal" };
    """))
    p = cli("run", "--stats", str(prog), cwd=tmp_path)
    assert p.stdout.splitlines() == ["true", "[infer] y"], p.stderr
    assert p.returncode == 3
    assert "unknown endpoint `lcoal` (did you mean `local`?)" in p.stderr
    assert "think@local" in p.stderr  # stats are per endpoint
    assert server.requests[0]["json"]["model"] == "local-model"


def test_transport_retries_of_a_routed_call_count_on_its_stats_row(server: FakeServer,
                                                                    tmp_path: Path) -> None:
    """A 429 with Retry-After on a named endpoint: the provider retries it itself, the
    whole endpoint pauses, and `--stats` counts the retry on the call's own row."""
    replies = iter([Act(status=429, headers={"Retry-After": "1"})])
    server.script = lambda req: next(replies, None) or openai_like(req)
    _local_endpoint(tmp_path, server)
    prog = tmp_path / "p.cx"
    prog.write_text('var r = think { prompt: "x", endpoint: "local" };\nprint(r.result);\n')
    p = cli("run", "--stats", str(prog), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert len(server.requests) == 2
    assert server.requests[1]["t"] - server.requests[0]["t"] >= 0.95
    assert "transport retries (requests the provider sent again): think@local 1" in p.stderr


def test_streamed_and_tool_round_usage_reaches_the_stats(server: FakeServer,
                                                         tmp_path: Path) -> None:
    """The usage of a streamed reply (its last SSE chunk) and of every tool round is
    counted, on the call's own stats row (per endpoint and model)."""
    server.script = openai_like
    _local_endpoint(tmp_path, server)
    prog = tmp_path / "p.cx"
    prog.write_text(textwrap.dedent("""
        on reply.chunk (c) { }
        on lookup.tool (a) { return 1; }
        var s = think { prompt: "stream me", endpoint: "local", stream: reply.chunk };
        var t = think { prompt: "use it", endpoint: "local", model: "m2",
                        tools: [lookup.tool] };
        print(len(t._tools));
    """))
    out = tmp_path / "stats.json"
    p = cli("run", "--stats-json", str(out), str(prog), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1"]
    doc = json.loads(out.read_text())["services"]
    sent = server.usage_sent
    assert len(sent) == 3  # one streamed reply, two tool rounds
    assert doc["think@local"]["tokens_in"] == sent[0]["prompt_tokens"]
    assert doc["think@local"]["ttft_ms"] is not None
    assert doc["think@local/m2"]["tokens_in"] == sent[1]["prompt_tokens"] + \
        sent[2]["prompt_tokens"]
    assert doc["think@local/m2"]["tokens_out"] == sent[1]["completion_tokens"] + \
        sent[2]["completion_tokens"]


# ------------------------------------------------------------------ transport retries
def test_transport_retry_waits_for_a_pause_outside_the_timeout(server: FakeServer,
                                                               tmp_path: Path) -> None:
    """A 500 that also says `x-ratelimit-remaining-requests: 0` (reset 3 s): the
    provider's own retry (after its ~0.5 s backoff) waits for the endpoint's pause like
    any request, and that wait is queue time — the 2 s `timeout` does not run out."""
    replies = iter([Act(status=500, headers={"x-ratelimit-remaining-requests": "0",
                                             "x-ratelimit-reset-requests": "3s"})])
    server.script = lambda req: next(replies, None) or openai_like(req)
    _local_endpoint(tmp_path, server)
    prog = tmp_path / "p.cx"
    prog.write_text('var r = think { prompt: "x", endpoint: "local", timeout: 2000 };\n'
                    'print(r.result);\n')
    p = cli("run", "--stats", str(prog), cwd=tmp_path)
    assert (p.returncode, p.stdout) == (0, "answer\n"), p.stderr
    t = [req["t"] for req in server.requests]
    assert len(t) == 2 and t[1] - t[0] >= 2.9  # not at the backoff's 0.5 s
    assert "transport retries (requests the provider sent again): think@local 1" in p.stderr
    assert "rate_wait_ms" in p.stderr


def test_transport_retry_uses_the_endpoints_rpm(server: FakeServer, tmp_path: Path) -> None:
    """rpm = 2: a call whose first request fails with a 500 is sent again by the
    provider; that retry is the second request the server counts in the 60 s window, so
    the next call is held back (it would be the third) instead of sent at once."""
    replies = iter([Act(status=500)])
    server.script = lambda req: next(replies, None) or openai_like(req)
    _local_endpoint(tmp_path, server, """
        rpm = 2
    """)
    prog = tmp_path / "p.cx"
    prog.write_text('var a = think { prompt: "a", endpoint: "local" };\n'
                    'print(a.result);\n'
                    'var b = think { prompt: "b", endpoint: "local" };\n'
                    'print(b.result);\n')
    proc = subprocess.Popen([sys.executable, "-m", "cxpar", "run", str(prog)], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while len(server.requests) < 2 and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert len(server.requests) == 2, proc.communicate(timeout=5)
        # `a` is answered by the retry; `b` would follow within milliseconds if the
        # retry had not used the window's room. Generous: 3 s (load on a shared machine).
        time.sleep(3.0)
        assert proc.poll() is None and len(server.requests) == 2
        assert [r["json"]["messages"][-1]["content"] for r in server.requests] == ["a", "a"]
    finally:
        proc.kill()
        proc.communicate(timeout=10)
