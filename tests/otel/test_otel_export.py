"""``--otel``: spans over OTLP/HTTP (protobuf) to a real receiver on 127.0.0.1 (issue 19).

The receiver decodes each request with the OpenTelemetry protobuf classes; the tests
check the span tree, the GenAI attributes, and that summing ``gen_ai.usage.*`` over a
trace gives the run's tokens — against the sim's estimates and against a real
OpenAI-compatible server's ``usage``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.fake_openai import Act, FakeServer

from .receiver import OtlpReceiver, Received

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as srv:
        yield srv


@pytest.fixture
def llm() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def cx(*args: str, endpoint: str | None = None, env: dict[str, str] | None = None,
       cwd: Path = ROOT, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("CXPAR_", "OTEL_"))}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    if endpoint is not None:
        full["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def tree(spans: list[Received]) -> dict[str, list[Received]]:
    kids: dict[str, list[Received]] = defaultdict(list)
    for s in spans:
        kids[s.parent_id].append(s)
    return kids


def usage_sum(spans: list[Received]) -> tuple[int, int]:
    return (sum(s.attr("gen_ai.usage.input_tokens", 0) for s in spans),
            sum(s.attr("gen_ai.usage.output_tokens", 0) for s in spans))


def test_span_tree_attributes_and_token_sums(receiver: OtlpReceiver,
                                             tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = cx("run", "--clock", "virtual", "--otel", "--stats-json", str(stats),
              "examples/support_triage.cx", endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    spans = receiver.spans
    assert receiver.posts and all(p == ("/v1/traces", "application/x-protobuf")
                                  for p in receiver.posts)
    assert len({s.trace_id for s in spans}) == 1  # one trace per run
    roots = [s for s in spans if not s.parent_id]
    assert [r.name for r in roots] == ["run"]
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s.parent_id)
    assert roots[0].resource["service.name"] == "cxpar"
    kinds = Counter(s.attr("cxpar.span.kind") for s in spans)
    assert kinds["call"] == 5 and kinds["join"] == 1 and kinds["attempt"] == 3
    # the think call: a join with _parallel numbers, its attempt and its three branches
    think = next(s for s in spans if s.attr("cxpar.span.kind") == "call"
                 and s.attr("cxpar.service") == "think")
    assert think.attr("gen_ai.operation.name") == "chat"
    assert think.attr("gen_ai.provider.name") == "cxpar.sim" == think.attr("gen_ai.system")
    assert think.attr("gen_ai.request.model") == "sim"
    assert "gen_ai.usage.input_tokens" not in think.attributes  # only on the attempt
    kids = tree(spans)
    (join,) = [s for s in kids[think.span_id] if s.attr("cxpar.span.kind") == "join"]
    assert join.attr("cxpar.parallel.branches") == 3
    assert join.attr("cxpar.parallel.succeeded") == 3
    assert join.attr("cxpar.parallel.wall_ms") == 800
    under = kids[join.span_id]
    assert sorted(s.attr("cxpar.span.kind") for s in under) == ["attempt", "handler",
                                                                 "handler", "handler"]
    attempt = next(s for s in under if s.attr("cxpar.span.kind") == "attempt")
    assert attempt.name == "chat sim" and attempt.kind == 3  # SPAN_KIND_CLIENT
    assert attempt.attr("cxpar.attempt") == 1 and attempt.attr("cxpar.outcome") == "ok"
    assert isinstance(attempt.attr("gen_ai.usage.input_tokens"), int)
    assert {s.attr("cxpar.event") for s in under if s.attr("cxpar.span.kind") == "handler"} \
        == {"sentiment.analyze", "entities.extract", "reply.draft"}
    # emitted handlers are spans too, children of the span that emitted them
    desk = next(s for s in spans if s.name == "SupportDesk: on ticket.received")
    assert desk.attr("cxpar.emitted") is True and desk.attr("cxpar.entity") == "SupportDesk"
    # summing gen_ai.usage over the trace gives the run's tokens
    doc = json.loads(stats.read_text())
    assert usage_sum(spans) == (doc["total"]["tokens_in"], doc["total"]["tokens_out"])
    assert sum(1 for s in spans if "gen_ai.usage.input_tokens" in s.attributes) == 2
    # durations are the virtual clock's
    assert (think.end_ns - think.start_ns) / 1e6 == pytest.approx(800, abs=1)
    # no prompts or answers without --otel-content
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for s in spans
                   for k in s.attributes)


def test_content_only_with_otel_content(receiver: OtlpReceiver) -> None:
    proc = cx("run", "--clock", "virtual", "--otel-content", "examples/support_triage.cx",
              endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    attempt = next(s for s in receiver.spans if s.name == "chat sim"
                   and s.attr("cxpar.service") == "infer")
    msgs = json.loads(attempt.attr("gen_ai.input.messages"))
    assert msgs[0]["role"] == "user" and "Draft a reply" in msgs[0]["parts"][0]["content"]
    out = json.loads(attempt.attr("gen_ai.output.messages"))
    assert out[0]["parts"][0]["content"].startswith("[infer] Draft a reply")


def test_retries_are_attempt_spans_and_errors_have_status(receiver: OtlpReceiver) -> None:
    proc = cx("run", "--clock", "virtual", "--otel", "--fail-rate", "0.5", "--seed", "3",
              "examples/retries.cx", endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    spans = receiver.spans
    attempts = sorted((s for s in spans if s.attr("cxpar.service") == "infer"
                       and s.attr("cxpar.span.kind") == "attempt"),
                      key=lambda s: s.start_ns)
    assert [a.attr("cxpar.attempt") for a in attempts] == [1, 2]
    assert attempts[0].status_code == 2 and attempts[0].attr("cxpar.error.type") == "provider"
    assert attempts[1].status_code != 2 and attempts[1].attr("cxpar.outcome") == "ok"
    # only the answered attempt reported usage (a simulated failure has none)
    assert [("gen_ai.usage.input_tokens" in a.attributes) for a in attempts] == [False, True]
    broken = [s for s in spans if s.attr("cxpar.event") == "broken.lookup"]
    assert [s.attr("cxpar.attempt") for s in sorted(broken, key=lambda s: s.start_ns)] \
        == [1, 2, 3]
    assert all(s.attr("cxpar.error.type") == "timeout" for s in broken)


def test_one_trace_per_stream_in_a_batch(receiver: OtlpReceiver) -> None:
    proc = cx("run", "--clock", "virtual", "--otel", "--no-progress", "--input",
              "examples/batch_tickets.jsonl", "examples/batch_tickets.cx",
              endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    spans = receiver.spans
    streams = [s for s in spans if s.attr("cxpar.span.kind") == "stream"]
    assert len(streams) == 20 and all(not s.parent_id for s in streams)
    assert len({s.trace_id for s in streams}) == 20
    batch = next(s for s in spans if s.attr("cxpar.span.kind") == "run")
    assert all(s.links == [batch.span_id] for s in streams)
    by_trace = Counter(s.trace_id for s in spans)
    assert all(by_trace[s.trace_id] > 1 for s in streams)  # their calls are in them


def test_tokens_equal_a_real_servers_usage(receiver: OtlpReceiver, llm: FakeServer,
                                           tmp_path: Path) -> None:
    llm.script = lambda req: Act(content="reply to " + req["messages"][-1]["content"][:30],
                                 model="gpt-test-2026")
    stats = tmp_path / "stats.json"
    proc = cx("run", "--provider", "openai", "--base-url", llm.base_url, "--model",
              "gpt-test", "--otel", "--stats-json", str(stats), "--price", "2.5,10",
              "examples/local_llm.cx", endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    tin, tout = llm.tokens_sent()
    assert tin > 0
    assert usage_sum(receiver.spans) == (tin, tout)
    doc = json.loads(stats.read_text())
    assert (doc["total"]["tokens_in"], doc["total"]["tokens_out"]) == (tin, tout)
    assert doc["total"]["cost_usd"] == pytest.approx((tin * 2.5 + tout * 10) / 1e6)
    attempt = next(s for s in receiver.spans if "gen_ai.usage.input_tokens" in s.attributes)
    assert attempt.name == "chat gpt-test"
    assert attempt.attr("gen_ai.provider.name") == "openai" == attempt.attr("gen_ai.system")
    assert attempt.attr("gen_ai.request.model") == "gpt-test"
    assert attempt.attr("gen_ai.response.model") == "gpt-test-2026"


def test_spans_are_flushed_when_the_run_fails(receiver: OtlpReceiver) -> None:
    proc = cx("run", "--clock", "virtual", "--otel", "examples/runtime_error.cx",
              endpoint=receiver.endpoint)
    assert proc.returncode == 3
    assert any(s.attr("cxpar.error.type") == "error" for s in receiver.spans)
    assert any(not s.parent_id for s in receiver.spans)


def test_spans_are_flushed_on_timeout(receiver: OtlpReceiver, tmp_path: Path) -> None:
    prog = tmp_path / "slow.cx"
    prog.write_text("on a.b (event) { await { durationMs: 100000 }; }\nemit a.b;\n")
    proc = cx("run", "--clock", "virtual", "--otel", "--timeout", "500", str(prog),
              endpoint=receiver.endpoint)
    assert proc.returncode == 3 and "timed out" in proc.stderr
    names = {s.name for s in receiver.spans}
    assert "run" in names and "on a.b" in names


def test_otel_endpoint_from_cxpar_toml(receiver: OtlpReceiver, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text(
        f'[otel]\nenabled = true\nendpoint = "{receiver.endpoint}"\nservice_name = "desk"\n')
    prog = tmp_path / "p.cx"
    prog.write_text('var r = think { prompt: "hi" }; print(r.result);\n')
    proc = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert receiver.spans and receiver.spans[0].resource["service.name"] == "desk"


def test_missing_sdk_is_a_usage_error(tmp_path: Path) -> None:
    # a site directory that hides the SDK: the module finder raises for it
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry' or name.startswith('opentelemetry.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    proc = cx("run", "--clock", "virtual", "--otel", "examples/support_triage.cx",
              env={"PYTHONPATH": os.pathsep.join([str(hide), str(ROOT)])})
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'cxpar[otel]'" in proc.stderr and "Traceback" not in proc.stderr


def test_spans_are_flushed_on_sigterm(receiver: OtlpReceiver, tmp_path: Path) -> None:
    import signal
    import time

    prog = tmp_path / "slow.cx"
    prog.write_text('print("started");\n'
                    'on a.b (event) { await { durationMs: 60000 }; }\nemit a.b;\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXPAR_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    proc = subprocess.Popen([sys.executable, "-m", "cxpar", "run", "--otel", str(prog)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    names = {s.name for s in receiver.spans}
    assert "run" in names and "on a.b" in names


def test_transport_retries_are_request_spans_and_usage_is_counted_once(
        receiver: OtlpReceiver, llm: FakeServer, tmp_path: Path) -> None:
    acts = iter([Act(status=503), Act(status=502)])
    llm.script = lambda req: next(acts, Act(content="fine"))
    prog = tmp_path / "p.cx"
    prog.write_text('var r = think { prompt: "hello" };\nprint(r.result);\n')
    stats = tmp_path / "stats.json"
    proc = cx("run", "--provider", "openai", "--base-url", llm.base_url, "--model", "m",
              "--otel", "--stats-json", str(stats), str(prog), endpoint=receiver.endpoint)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "fine\n"
    spans = receiver.spans
    (attempt,) = [s for s in spans if s.attr("cxpar.span.kind") == "attempt"]
    reqs = sorted((s for s in spans if s.attr("cxpar.span.kind") == "request"),
                  key=lambda s: s.start_ns)
    assert [r.attr("cxpar.request") for r in reqs] == [1, 2, 3]
    assert all(r.parent_id == attempt.span_id and r.kind == 3 for r in reqs)
    assert [r.attr("cxpar.outcome") for r in reqs] == ["retry", "retry", "ok"]
    assert "503" in reqs[0].attr("cxpar.error.message")
    # usage only where the server reported it: summing over the trace gives its tokens
    assert ["gen_ai.usage.input_tokens" in s.attributes for s in [attempt, *reqs]] \
        == [False, False, False, True]
    assert usage_sum(spans) == llm.tokens_sent()
    doc = json.loads(stats.read_text())
    assert doc["services"]["think"]["retries"] == 2 and doc["services"]["think"]["calls"] == 1
    assert (doc["total"]["tokens_in"], doc["total"]["tokens_out"]) == llm.tokens_sent()


def test_an_unreachable_collector_is_one_warning_not_a_failure() -> None:
    dead = OtlpReceiver()  # a port that was just free: nothing listens there
    url = dead.endpoint
    dead.server_close()
    proc = cx("run", "--clock", "virtual", "--otel", "examples/support_triage.cx",
              endpoint=url, env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert f"warning: --otel: 15 of 15 spans were not delivered to {url}/v1/traces: " \
           "connection refused" in proc.stderr
    assert "Traceback" not in proc.stderr and "Transient error" not in proc.stderr


def test_a_collector_refusing_the_spans_is_named(receiver: OtlpReceiver,
                                                 tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text(
        f'[otel]\nenabled = true\nendpoint = "{receiver.endpoint}/wrong/v1/traces"\n')
    prog = tmp_path / "p.cx"
    prog.write_text('var r = think { prompt: "hi" };\n')
    proc = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert receiver.posts and not receiver.spans
    assert "spans were not delivered to " + receiver.endpoint + "/wrong/v1/traces" \
        in proc.stderr and "404" in proc.stderr


@pytest.mark.parametrize(("var", "value"), [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "garbage"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://127.0.0.1:4318"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "127.0.0.1:4318/v1/traces"),
])
def test_a_collector_url_from_the_environment_that_is_no_url_is_a_usage_error(
        var: str, value: str) -> None:
    """Not "connection refused" after the run: exit 2 before it, naming the variable."""
    proc = cx("run", "--clock", "virtual", "--otel", "examples/support_triage.cx",
              env={var: value})
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert f"{var} must be an http:// or https:// URL, got `{value}`" in proc.stderr
    # without --otel the variable is not ours to judge
    assert cx("run", "--clock", "virtual", "examples/support_triage.cx",
              env={var: value}).returncode == 0
