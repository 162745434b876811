"""Endpoints and models per call on the sim (docs/runtime.md "Endpoints and models")."""

from __future__ import annotations

import pytest

from cxpar.runtime.endpoints import build_endpoints
from cxpar.runtime.settings import EndpointSettings, RouteSettings, RunSettings, SettingsError

from .conftest import diagnostics, run_cx


def test_model_and_endpoint_props_are_reserved_and_never_in_the_payload() -> None:
    r = run_cx("""
        var r = think { prompt: "p", model: "gpt-4o-mini", endpoint: "sim" };
        print(r);
    """)
    assert r.code == 0, r.err
    assert list(r.json()) == ["prompt", "result", "_parallel"]
    assert r.json()["result"] == "[think] p"


def test_unknown_endpoint_names_the_configured_ones() -> None:
    r = run_cx("""
        var r = think { prompt: "p", endpoint: "smi" };
        print("after");
    """)
    assert r.code == 3
    assert "unknown endpoint `smi` (did you mean `sim`?); configured endpoints: `sim`" in r.err
    assert "t.cx:2" in r.err


def test_endpoint_must_be_a_string_at_run_time() -> None:
    r = run_cx("""
        var e = 3;
        var r = think { prompt: "p", endpoint: e };
    """)
    assert r.code == 3 and "`endpoint` must be a non-empty string, got number" in r.err


def test_literal_props_of_the_wrong_type_are_compile_errors() -> None:
    codes = [(d.code, d.message) for d in diagnostics("""
        think { prompt: "p", model: 4 };
        think { prompt: "p", endpoint: "" };
        think { prompt: "p", tool_rounds: 0 };
        think { prompt: "p", stream: "chunks" };
    """)]
    assert [c for c, _ in codes] == ["CX302"] * 4, codes


def test_misspelled_model_prop_is_sent_as_a_request_prop() -> None:
    r = run_cx('var r = think { prompt: "p", modle: "x" }; print(keys(r));')
    assert r.lines == ['["prompt", "modle", "result", "_parallel"]']


def test_routing_sends_a_service_to_an_endpoint_and_model() -> None:
    s = RunSettings(routing={"infer": RouteSettings(model="small")})
    eps = build_endpoints(s)
    route = eps.route("infer")
    assert route.endpoint.name == "sim" and route.model == "small" and route.chosen
    assert route.key == "sim/small"
    assert eps.route("think").key == "sim"
    assert eps.route("infer", model="big").model == "big"  # the prop wins


def test_settings_reject_bad_endpoints() -> None:
    with pytest.raises(SettingsError, match=r"needs a `base_url`"):
        RunSettings(endpoints={"gpt": EndpointSettings(model="m")})
    with pytest.raises(SettingsError, match=r"unknown endpoint `gtp`"):
        RunSettings(endpoints={"gpt": EndpointSettings(base_url="http://127.0.0.1:1/v1")},
                    routing={"think": RouteSettings(endpoint="gtp")})
    with pytest.raises(SettingsError, match=r"rpm"):
        EndpointSettings(rpm=0)
    with pytest.raises(SettingsError, match=r"cannot have a `base_url`"):
        RunSettings(endpoints={"sim": EndpointSettings(base_url="http://127.0.0.1:1/v1")})


def test_http_endpoint_on_the_virtual_clock_is_a_provider_error() -> None:
    s = {"endpoints": {"gpt": EndpointSettings(base_url="http://127.0.0.1:9/v1", model="m")}}
    r = run_cx('var r = think { prompt: "p", endpoint: "gpt" }; print(r._errors.result);', **s)
    assert r.code == 0
    assert "needs `--clock real`" in r.out


def test_breakers_are_per_endpoint_and_model() -> None:
    # the sim fails every call; `model: "a"` opens its own breaker, `b` keeps working
    r = run_cx("""
        on system.circuit.open (e) { print("open", e.service); }
        var i = 0;
        while (i < 5) { think { prompt: "x" + i, model: "a" }; i = i + 1; }
        var r = think { prompt: "y", model: "a" };
        print(r._errors.result.type);
        var s = think { prompt: "y", model: "b" };
        print(s._errors.result.type);
    """, fail_rate=1.0)
    assert r.lines == ["open think", "circuit_open", "provider"], r.err


def test_endpoint_max_concurrency_limits_calls_in_flight() -> None:
    s = {"endpoints": {"sim": EndpointSettings(max_concurrency=2)}}
    r = run_cx("""
        on job.run (e) { infer { prompt: "j" + e.n }; print(now()); }
        var i = 0;
        while (i < 5) { emit job.run { n: i }; i = i + 1; }
    """, **s)
    assert r.lines == ["300", "300", "600", "600", "900"], r.err


def test_adaptive_limits_are_per_endpoint_and_model() -> None:
    """Each endpoint, and each model a call chooses, gets its own adaptive limit: one
    model's overload never throttles another's calls."""
    from cxpar.runtime.resilience import LimitsConfig, Resilience

    class Endpoint:
        def __init__(self, base_url: str) -> None:
            self.base_url = base_url

    res = Resilience(limits=LimitsConfig(adaptive=True))
    a, b = Endpoint("http://127.0.0.1:1/v1"), Endpoint("http://127.0.0.1:2/v1")
    la = res.adaptive_for(a, "think")
    assert la is not None
    assert res.adaptive_for(a, "infer") is la  # per endpoint, not per service
    assert res.adaptive_for(b, "think") is not la
    assert res.adaptive_for(a, "think", "gpt-big") not in (la, None)
    assert res.adaptive_for(a, "think", "gpt-big") is res.adaptive_for(a, "infer", "gpt-big")
