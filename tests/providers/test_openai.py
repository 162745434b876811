"""The openai provider against a real HTTP server on 127.0.0.1 (tests/providers/fake_openai.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from cxpar.runtime.providers.base import ProviderError
from cxpar.runtime.providers.openai import OpenAIProvider, parse_retry_after, parse_yes_no

from .conftest import KEY, run_cx
from .fake_openai import Act, FakeServer


def provider(srv: FakeServer, **kw: Any) -> OpenAIProvider:
    """The provider under test; no transport retries unless a test asks (so the CX
    ``retries`` semantics are seen alone; tests/providers/test_transport.py has them)."""
    kw.setdefault("api_key", KEY)
    kw.setdefault("max_retries", 0)
    return OpenAIProvider(srv.base_url, "test-model", **kw)


def payload(line: str) -> Any:
    return json.loads(line)


# ------------------------------------------------------------------ requests and results
def test_think_request_json_and_result(server: FakeServer) -> None:
    server.script = lambda req: "The router needs a firmware update."
    r = run_cx("""
        var r = think { prompt: "Review: " + "router drops", ticket: "T-1", n: 2 };
        print(r.result);
        print(r.ticket, r._parallel.branches);
    """, provider(server, temperature=0.2))
    assert r.code == 0, r.err
    assert r.lines == ["The router needs a firmware update.", "T-1 0"]
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["json"]
    assert body["model"] == "test-model"
    assert body["stream"] is False
    assert body["temperature"] == 0.2
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "`think`" in msgs[0]["content"]
    assert msgs[1]["content"] == 'Review: router drops\n\nContext (JSON): {"ticket": "T-1", "n": 2}'


def test_request_without_prompt_is_sent_as_json(server: FakeServer) -> None:
    server.script = lambda req: "fine"
    r = run_cx('var r = infer { text: "héllo", tags: ["a", "b"] }; print(r.result);',
               provider(server, api_key=None))
    assert r.lines == ["fine"]
    (req,) = server.requests
    assert "Authorization" not in req["headers"]
    assert req["json"]["messages"][-1]["content"] == '{"text": "héllo", "tags": ["a", "b"]}'
    assert "`infer`" in req["json"]["messages"][0]["content"]


def _held_until(n: int, timeout: float = 20.0) -> tuple[Callable[[], bool], Callable[[], None]]:
    """``(wait, arrived)``: ``arrived()`` counts a request; ``wait()`` holds a reply
    until ``n`` requests have arrived (True) or ``timeout`` s passed (False). A reply
    that only comes once other requests are in flight proves they overlapped, by the
    order of events rather than by a wall-clock bound a loaded machine could break."""
    cond = threading.Condition()
    seen = [0]

    def arrived() -> None:
        with cond:
            seen[0] += 1
            cond.notify_all()

    def wait() -> bool:
        with cond:
            return cond.wait_for(lambda: seen[0] >= n, timeout=timeout)
    return wait, arrived


def test_branches_and_provider_result_join(server: FakeServer) -> None:
    """The provider call and the branches run at the same time: the server holds the
    call's reply until a branch's own nested request has arrived (sequential branches
    could only start after the reply, and the reply would say so)."""
    wait, arrived = _held_until(2)

    def script(req: Any) -> Act:
        arrived()
        if req["messages"][-1]["content"] == "nested":
            return Act(content="n")
        return Act(content="summary" if wait() else "no branch ran during the call")
    server.script = script
    r = run_cx("""
        on a.x (event) { return "A:" + event.prompt; }
        on b.y (event) { var n = infer { prompt: "nested" }; return 2; }
        var r = think { prompt: "p", left: a.x, right: b.y { extra: 1 }, timeout: 30000 };
        print(r);
    """, provider(server))
    assert r.code == 0, r.err
    p = payload(r.out)
    assert p["result"] == "summary"
    assert p["left"] == "A:p" and p["right"] == 2
    assert p["_parallel"]["branches"] == 2 and p["_parallel"]["failed"] == 0
    assert "_errors" not in p


def test_parallel_calls_share_one_pool(server: FakeServer) -> None:
    """Six calls from six handlers are in flight together on six pooled connections:
    each reply is held until all six requests have arrived."""
    wait, arrived = _held_until(6)

    def script(req: Any) -> Act:
        arrived()
        text = req["messages"][-1]["content"]
        return Act(content=text.upper() if wait() else "not in flight together")
    server.script = script
    r = run_cx("""
        on job.run (event) { var r = think { prompt: "job " + event.n, timeout: 30000 };
                             print(r.result); }
        for (var n in [1, 2, 3, 4, 5, 6]) { emit job.run { n: n }; }
    """, provider(server, max_connections=10))
    assert r.code == 0, r.err
    assert sorted(r.lines) == [f"JOB {n}" for n in range(1, 7)]
    assert server.connections == 6
    server.script = lambda req: req["messages"][-1]["content"].upper()
    r2 = run_cx('think { prompt: "a" }; think { prompt: "b" }; think { prompt: "c" };',
                prov := provider(server))
    assert r2.code == 0 and prov.requests == 3
    assert len(server.requests) == 9


def test_sequential_calls_reuse_the_connection(server: FakeServer) -> None:
    server.script = lambda req: "x"
    p = provider(server)
    r = run_cx('think { prompt: "a" }; think { prompt: "b" }; infer { prompt: "c" };', p)
    assert r.code == 0 and len(server.requests) == 3
    assert server.connections == 1
    client = p._client
    assert client is not None and client.is_closed  # the pool closes with the loop


# ------------------------------------------------------------------ is / not / learn / await
def test_is_not_yes_no(server: FakeServer) -> None:
    answers = {"q1": "Yes.", "q2": "no, not really", "q3": "TRUE", "q4": "**False**"}
    server.script = lambda req: answers[req["messages"][-1]["content"].split("\n")[0]]
    r = run_cx("""
        on go.yes (event) { print("yes " + event.prompt); }
        on go.no (event) { print("no " + event.prompt); }
        for (var q in ["q1", "q2", "q3", "q4"]) {
            var a = is { prompt: q, handlers: [ go.yes ] };
            var b = not { prompt: q, handlers: [ go.no ] };
            print(q, a.result, b.result);
        }
    """, provider(server))
    assert r.code == 0, r.err
    assert r.lines == ["yes q1", "q1 true true", "no q2", "q2 false false",
                       "yes q3", "q3 true true", "no q4", "q4 false false"]
    req = server.requests[0]["json"]
    assert req["max_tokens"] == 16
    assert "yes or no" in req["messages"][0]["content"]
    assert req["messages"][-1]["content"].endswith("Answer yes or no.")


def test_is_ambiguous_answer_is_a_provider_error_not_retried(server: FakeServer) -> None:
    server.script = lambda req: "Maybe, it depends."
    r = run_cx("""
        on go.yes (event) { print("delivered"); }
        var a = is { prompt: "q", retries: 3, handlers: [ go.yes ] };
        print(a._errors.result);
    """, provider(server))
    assert r.code == 0, r.err
    err = payload(r.out)
    assert err["type"] == "provider" and err["attempts"] == 1
    assert "ambiguous yes/no answer" in err["message"] and "Maybe" in err["message"]
    assert len(server.requests) == 1


def test_condition_decides_without_a_request(server: FakeServer) -> None:
    r = run_cx('var a = is { prompt: "q", condition: true }; print(a.result);'
               'var b = not { data: { condition: false } }; print(b.result);', provider(server))
    assert r.lines == ["true", "false"]
    assert server.requests == []


def test_learn_is_memory_sent_with_the_entitys_later_calls(server: FakeServer) -> None:
    server.script = lambda req: "ok"
    r = run_cx("""
        conscious Agent {
            realize(self: conscious) { learn { fact: "user likes tea", by: self.name }; }
            on ask (event) { think { prompt: "drink?" }; }
        }
        var a = new Agent({ name: "a" });
        var b = new Agent({ name: "b" });
        learn { fact: "top" };
        emit ask {};
        think { prompt: "top-level" };
    """.replace("on ask (event)", "on agent.ask (event)").replace("emit ask", "emit agent.ask"),
        provider(server))
    assert r.code == 0, r.err
    assert len(server.requests) == 3  # learn never sends a request
    by_prompt: dict[str, list[list[dict[str, str]]]] = {}
    for req in server.requests:
        msgs = req["json"]["messages"]
        by_prompt.setdefault(msgs[-1]["content"], []).append(msgs)
    agent_msgs = by_prompt["drink?"]
    assert len(agent_msgs) == 2
    mems = sorted(m[1]["content"] for m in agent_msgs)
    assert all(m[1]["role"] == "system" for m in agent_msgs)
    assert '{"fact": "user likes tea", "by": "a"}' in mems[0]
    assert '"by": "b"' in mems[1] and '"by": "a"' not in mems[1]
    (top,) = by_prompt["top-level"]
    assert '{"fact": "top"}' in top[1]["content"] and "tea" not in top[1]["content"]


def test_await_and_execute(server: FakeServer) -> None:
    server.script = lambda req: "I would run: ls"
    r = run_cx('var w = await { durationMs: 10 }; print(w.result);'
               'var e = execute { command: "rm -rf /" }; print(e.result);', provider(server))
    assert r.lines == ["10", "I would run: ls"]
    (req,) = server.requests  # await never calls the provider
    assert "`execute`" in req["json"]["messages"][0]["content"]


# ------------------------------------------------------------------ timeouts and cancellation
def test_timeout_cancels_the_http_request(server: FakeServer) -> None:
    server.script = lambda req: Act(content="late", delay=60)
    t0 = time.monotonic()
    r = run_cx('var r = think { prompt: "slow", timeout: 300 }; print(r._errors.result);',
               provider(server))
    assert time.monotonic() - t0 < 30  # the server answers after 60 s
    err = payload(r.out)
    assert err["type"] == "timeout" and err["attempts"] == 1
    assert "timed out after 300 ms" in err["message"]
    assert server.wait_closed(1, timeout=10), "the server never saw the connection closed"


def test_timed_out_branch_aborts_its_nested_provider_call(server: FakeServer) -> None:
    server.script = lambda req: Act(content="late", delay=60)
    t0 = time.monotonic()
    r = run_cx("""
        on slow.branch (event) { var r = infer { prompt: "nested" }; return r.result; }
        on fast.branch (event) { return "fast"; }
        var r = await { durationMs: 1, a: slow.branch, b: fast.branch, timeout: 2000 };
        print(r.b, r._errors.a.type);
    """, provider(server))
    assert r.code == 0, r.err
    assert r.lines == ["fast timeout"]
    assert time.monotonic() - t0 < 30  # the server answers after 60 s
    assert server.wait_closed(1, timeout=10)


def test_retry_gets_a_full_timeout(server: FakeServer) -> None:
    calls: list[int] = []

    def script(req: Any) -> Act:
        calls.append(1)
        return Act(content="slow", delay=60) if len(calls) == 1 else Act(content="second")
    server.script = script
    # The first attempt uses up its whole 3 s; the retry answers at once, so it succeeds
    # only with a timeout of its own (what is left of the first one is nothing). 3 s
    # rather than 300 ms: a loaded machine may need more than 300 ms for a round trip.
    r = run_cx('var r = think { prompt: "x", timeout: 3000, retries: 1 }; print(r.result);',
               provider(server))
    assert r.lines == ["second"]
    assert server.wait_closed(1)


# ------------------------------------------------------------------ errors and retries
def test_500_is_retried(server: FakeServer) -> None:
    seq = iter([Act(status=500), Act(status=502), Act(content="third time")])
    server.script = lambda req: next(seq)
    r = run_cx('var r = think { prompt: "x", retries: 2 }; print(r.result);', provider(server))
    assert r.lines == ["third time"]
    assert len(server.requests) == 3


def test_500_without_retries_reports_status_and_body(server: FakeServer) -> None:
    server.script = lambda req: Act(status=500, body="upstream exploded\n" + "x" * 1000)
    r = run_cx('var r = think { prompt: "x" }; print(r._errors.result);', provider(server))
    err = payload(r.out)
    assert err["type"] == "provider" and err["attempts"] == 1
    msg = err["message"]
    assert "HTTP 500" in msg and "upstream exploded" in msg and "/v1/chat/completions" in msg
    assert len(msg) < 400  # a short excerpt of the body


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_not_retried(server: FakeServer, status: int) -> None:
    server.script = lambda req: Act(status=status, body='{"error": "bad model"}')
    r = run_cx('var r = think { prompt: "x", retries: 3 }; print(r._errors.result);',
               provider(server))
    err = payload(r.out)
    assert err["attempts"] == 1 and f"HTTP {status}" in err["message"]
    assert "bad model" in err["message"]
    assert len(server.requests) == 1


def test_429_retry_after_is_respected(server: FakeServer) -> None:
    seq = iter([Act(status=429, headers={"Retry-After": "1"}), Act(content="after wait")])
    server.script = lambda req: next(seq)
    r = run_cx('var r = think { prompt: "x", retries: 1 }; print(r.result);', provider(server))
    assert r.lines == ["after wait"]
    t1, t2 = (req["t"] for req in server.requests)
    assert t2 - t1 >= 0.95  # not the 100 ms backoff


def test_503_retry_after_too_long_is_not_retried(server: FakeServer) -> None:
    server.script = lambda req: Act(status=503, headers={"Retry-After": "3600"})
    r = run_cx('var r = think { prompt: "x", retries: 2 }; print(r._errors.result);',
               provider(server))
    err = payload(r.out)
    assert "HTTP 503" in err["message"] and "Retry-After 3600" in err["message"]
    assert len(server.requests) == 1


def test_dropped_connection_is_a_retryable_provider_error(server: FakeServer) -> None:
    seq = iter([Act(drop=True), Act(drop=True)])
    server.script = lambda req: next(seq, Act(content="recovered"))
    r = run_cx('var r = think { prompt: "x", retries: 0 }; print(r._errors.result);'
               'var s = think { prompt: "y", retries: 1 }; print(s.result);', provider(server))
    lines = r.lines
    err = json.loads(lines[0])
    assert err["type"] == "provider" and "cannot reach" in err["message"]
    assert lines[1] == "recovered"


@pytest.mark.parametrize("body,what", [
    ("{not json", "malformed JSON"),
    ('{"choices": []}', "no choices[0].message.content"),
    ('{"choices": [{"message": {"content": null}}]}', "not a string"),
])
def test_malformed_replies(server: FakeServer, body: str, what: str) -> None:
    server.script = lambda req: Act(body=body)
    r = run_cx('var r = think { prompt: "x", retries: 2 }; print(r._errors.result);',
               provider(server))
    err = payload(r.out)
    assert err["type"] == "provider" and what in err["message"] and err["attempts"] == 1
    assert len(server.requests) == 1


def test_connection_refused() -> None:
    srv = FakeServer()
    url = srv.base_url
    srv.server_close()  # nothing listens there any more
    p = OpenAIProvider(url, "m", api_key=KEY)
    r = run_cx('var r = think { prompt: "x" }; print(r._errors.result);', p)
    err = payload(r.out)
    assert err["type"] == "provider" and "cannot reach http://127.0.0.1" in err["message"]


def test_key_is_redacted_from_error_bodies(server: FakeServer) -> None:
    # a server that echoes the Authorization header in its error body
    server.script = lambda req: Act(
        status=401, body="bad key: " + server.requests[-1]["headers"]["Authorization"])
    p = provider(server)
    r = run_cx('var r = think { prompt: "x" }; print(r._errors.result);', p)
    assert "HTTP 401" in r.out and "Bearer ***" in r.out
    assert KEY not in r.out + r.err
    assert KEY not in repr(p) and "***" in repr(p)


# ------------------------------------------------------------------ parsing helpers
@pytest.mark.parametrize("text,want", [
    ("yes", True), ("Yes.", True), ("YES!", True), ("true", True), ("  True, because", True),
    ("no", False), ("No.", False), ("false", False), ("`no`", False), ("Nope", None),
    ("", None), ("I think yes", None), ("yess", None),
])
def test_parse_yes_no(text: str, want: bool | None) -> None:
    if want is None:
        with pytest.raises(ProviderError) as exc:
            parse_yes_no(text)
        assert exc.value.retryable is False
    else:
        assert parse_yes_no(text) is want


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 30) == 30.0
