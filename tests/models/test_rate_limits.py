"""rpm/tpm per endpoint on the virtual clock, pauses, rate_wait_ms (docs/runtime.md
"Rate limits")."""

from __future__ import annotations

import asyncio
import io

from cxpar.runtime.ratelimit import RateLimiter, estimate_tokens
from cxpar.runtime.settings import EndpointSettings

from .conftest import run_cx

JOBS = """
    on job.run (e) {
        var r = infer { prompt: "job " + e.n };
        print(now(), r.result);
    }
    var i = 0;
    while (i < 7) { emit job.run { n: i }; i = i + 1; }
"""


def sim_limits(**kw: float) -> dict[str, object]:
    return {"endpoints": {"sim": EndpointSettings(**kw)}}  # type: ignore[arg-type]


def test_rpm_allows_n_requests_per_60_s_window() -> None:
    r = run_cx(JOBS, **sim_limits(rpm=3))
    assert r.code == 0, r.err
    assert [line.split()[0] for line in r.lines] == ["300"] * 3 + ["60300"] * 3 + ["120300"]
    assert run_cx(JOBS, **sim_limits(rpm=3)).out == r.out  # deterministic


def test_tpm_counts_estimated_tokens() -> None:
    # each request: {"prompt": "job N"} = 17 characters -> 5 tokens; 12 tokens per minute
    assert estimate_tokens({"prompt": "job 1"}) == 5
    r = run_cx(JOBS, **sim_limits(tpm=12))
    assert [line.split()[0] for line in r.lines] == ["300", "300", "60300", "60300",
                                                     "120300", "120300", "180300"], r.out


def test_other_endpoints_and_unlimited_runs_are_not_slowed() -> None:
    r = run_cx(JOBS)
    assert [line.split()[0] for line in r.lines] == ["300"] * 7


def test_a_pause_holds_the_whole_endpoint() -> None:
    async def main() -> list[float]:
        rl = RateLimiter()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        rl.pause(t0, 2.0)
        waits = await asyncio.gather(rl.ready(1), rl.ready(1))
        assert rl.commit(loop.time(), 1) is not None
        return [round(w, 3) for w in waits] + [round(loop.time() - t0, 3)]

    from cxpar.runtime.clock import new_loop

    loop = new_loop("virtual")
    try:
        assert loop.run_until_complete(main()) == [2.0, 2.0, 2.0]
    finally:
        loop.close()


def test_tpm_correction_uses_reported_usage() -> None:
    rl = RateLimiter(tpm=100)
    e = rl.commit(0.0, 90)
    assert rl.delay(1.0, 20) > 0
    rl.correct(e, 10)  # the request used far less than estimated
    assert rl.delay(1.0, 20) == 0


def test_rate_wait_ms_in_stats() -> None:
    from cxpar.codegen.module import compile_program
    from cxpar.driver import front_end_source
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.standalone import run_factory
    from cxpar.span import SourceFile

    fe = front_end_source(SourceFile("t.cx", JOBS))
    assert fe.compilation is not None
    c = compile_program(fe.compilation)
    out, err = io.StringIO(), io.StringIO()
    run_factory(c.program, c.spans, c.sources,
                RunSettings(clock="virtual", stats=True, **sim_limits(rpm=3)),  # type: ignore[arg-type]
                stdout=out, stderr=err)
    text = err.getvalue()
    assert "rate_wait_ms" in text
    # waits: 3 × 60 000 + 120 000 = 300 000 ms
    assert "300000" in text, text


# ------------------------------------------------------------------ the invariant
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.integers(1, 40)), min_size=1, max_size=25),
       st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.integers(20, 120)),
       st.lists(st.floats(0, 150), max_size=3))
def test_no_window_ever_exceeds_rpm_or_tpm(arrivals: list[tuple[float, int]],
                                           rpm: int | None, tpm: int | None,
                                           pauses: list[float]) -> None:
    """Requests arriving at random times with random sizes, as the coordinator sends
    them (wait for room, then count at the send instant): every 60 s window holds at
    most ``rpm`` requests and ``tpm`` tokens (a request alone larger than ``tpm`` only in
    an otherwise empty window), and nothing is sent during a pause."""
    from cxpar.runtime.clock import new_loop

    sent: list[tuple[float, int]] = []
    paused: list[tuple[float, float]] = []

    async def request(rl: RateLimiter, at: float, tokens: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(at)
        while True:
            await rl.ready(tokens)
            await asyncio.sleep(0)  # others may take the room meanwhile (slots)
            if rl.commit(loop.time(), tokens) is not None:
                sent.append((loop.time(), tokens))
                return

    async def pause(rl: RateLimiter, at: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(at)
        rl.pause(loop.time(), 5.0)
        paused.append((loop.time(), loop.time() + 5.0))

    async def main() -> None:
        rl = RateLimiter(rpm, tpm)
        await asyncio.gather(*(request(rl, a, t) for a, t in arrivals),
                             *(pause(rl, p) for p in pauses))

    loop = new_loop("virtual")
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert len(sent) == len(arrivals)
    for t, _ in sent:
        window = [(u, k) for u, k in sent if u <= t < u + 60]
        if rpm is not None:
            assert len(window) <= rpm
        if tpm is not None:
            assert sum(k for _, k in window) <= tpm or len(window) == 1
        assert not any(a < t < b - 1e-9 for a, b in paused if a != t)
