"""Tokens and cost from a real OpenAI-compatible server's ``usage`` (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxpar.runtime.providers.openai import OpenAIProvider, parse_usage

from .conftest import run_cx
from .fake_openai import Act, FakeServer

PROGRAM = """
on review.tone (event) {
    var t = infer { prompt: "tone of " + event.text };
    return t.result;
}
var n = 0;
while (n < 3) {
    var r = think { prompt: "ticket " + n + ": the router drops", tone: review.tone };
    print(r.result + " / " + r.tone);
    n += 1;
}
"""


def _stats(path: Path) -> dict:
    return json.loads(path.read_text())


def test_stats_json_tokens_equal_the_servers_usage(server: FakeServer, tmp_path: Path) -> None:
    server.script = lambda req: Act(content="answer to " + req["messages"][-1]["content"][:20])
    prov = OpenAIProvider(server.base_url, "gpt-test")
    out = tmp_path / "stats.json"
    r = run_cx(PROGRAM, prov, stats_json=str(out),
               pricing={"gpt-test": {"input": 2.5, "output": 10.0}})
    assert r.code == 0, r.err
    doc = _stats(out)
    tin, tout = server.tokens_sent()
    assert len(server.usage_sent) == 6
    assert doc["total"]["tokens_in"] == tin and doc["total"]["tokens_out"] == tout
    per = doc["services"]
    assert per["think"]["calls"] == 3 and per["infer"]["calls"] == 3
    assert per["think"]["tokens_in"] + per["infer"]["tokens_in"] == tin
    # cost: USD per million tokens, exactly
    assert doc["total"]["cost_usd"] == pytest.approx((tin * 2.5 + tout * 10.0) / 1e6,
                                                     rel=1e-12)
    think_usage = [u for req, u in zip(server.requests, server.usage_sent, strict=True)
                   if "ticket" in req["json"]["messages"][-1]["content"]]
    assert per["think"]["tokens_out"] == sum(u["completion_tokens"] for u in think_usage)


def test_no_prices_means_unknown_cost_never_zero(server: FakeServer, tmp_path: Path) -> None:
    prov = OpenAIProvider(server.base_url, "gpt-test")
    out = tmp_path / "stats.json"
    r = run_cx(PROGRAM, prov, stats_json=str(out))
    assert r.code == 0, r.err
    doc = _stats(out)
    assert doc["total"]["tokens_in"] == server.tokens_sent()[0]
    assert doc["total"]["cost_usd"] is None
    assert all(s["cost_usd"] is None for s in doc["services"].values())


def test_failed_request_tokens_are_counted(server: FakeServer, tmp_path: Path) -> None:
    # an ambiguous yes/no answer fails the call, but the server billed the tokens
    server.script = lambda req: Act(content="maybe")
    prov = OpenAIProvider(server.base_url, "gpt-test")
    out = tmp_path / "stats.json"
    r = run_cx('var d = is { prompt: "is it raining?" }; print(d._errors.result.type);',
               prov, stats_json=str(out))
    assert r.out.strip() == "provider"
    doc = _stats(out)
    assert doc["services"]["is"]["failures"] == 1
    assert doc["services"]["is"]["tokens_in"] == server.tokens_sent()[0] > 0


def test_usage_is_parsed_from_both_field_spellings() -> None:
    u = parse_usage({"usage": {"prompt_tokens": 7, "completion_tokens": 3}, "model": "x"})
    assert (u.input_tokens, u.output_tokens, u.model) == (7, 3, "x")
    u = parse_usage({"usage": {"input_tokens": 4, "output_tokens": 2}}, "run-model")
    assert (u.input_tokens, u.output_tokens, u.model) == (4, 2, "run-model")
    assert parse_usage({"usage": {"prompt_tokens": -1, "completion_tokens": "x"}}) is None
    assert parse_usage({"choices": []}) is None
    assert parse_usage([1, 2]) is None


def test_max_tokens_stops_new_calls_within_those_in_flight(server: FakeServer,
                                                          tmp_path: Path) -> None:
    server.script = lambda req: Act(content="x" * 40, delay=0.05)
    prov = OpenAIProvider(server.base_url, "gpt-test")
    out = tmp_path / "stats.json"
    program = """
    var done = 0;
    var refused = 0;
    var i = 0;
    while (i < 20) {
        var r = think { prompt: "item " + i };
        if (r._errors != null) { refused += 1; } else { done += 1; }
        i += 1;
    }
    print(done + " done, " + refused + " refused");
    """
    r = run_cx(program, prov, stats_json=str(out), max_tokens=100)
    assert r.code == 3
    assert "token budget reached" in r.err
    tin, tout = server.tokens_sent()
    sent = len(server.usage_sent)
    # sequential calls: the budget stops the call after the one that reached it
    per_call = (tin + tout) / sent
    assert tin + tout >= 100 and tin + tout - per_call < 100
    assert r.out.strip() == f"{sent} done, {20 - sent} refused"
    doc = _stats(out)
    assert doc["services"]["think"]["failures"] == 20 - sent
    assert doc["total"]["tokens_in"] + doc["total"]["tokens_out"] == tin + tout
