"""`cxpar serve` over HTTP: runs, events, batches, metrics and every bad request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import Served, serving

PROGRAM = """
var seen = 0;
/// @external
on input.record (e) {
    seen += 1;
    print("record", e.id);
    if (e.boom) { var x = e.missing.field; }
    var r = think { prompt: "Echo " + e.id, check: checks.run, timeout: 3000 };
    emit output.record { id: e.id, seen: seen, answer: r.result, failed: keys(r._errors || {}) };
}
on checks.run (e) {
    if (len(e.prompt) > 12) { var bad = e.nope.deeper; }
    return "fine";
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "echo.cx"
    path.write_text(PROGRAM, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(program: Path) -> Iterator[Served]:
    with serving(program, "--latency", "think=30", "--max-body", "2000",
                 "--price", "1000,2000") as s:
        yield s


def test_sync_run(server: Served) -> None:
    with server.client() as c:
        r = c.post("/v1/runs", json={"id": "a"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"id", "output", "outputs", "error", "stats"}
    assert body["output"] == {"id": "a", "seen": 1, "answer": "[think] Echo a",
                              "failed": []}
    assert body["outputs"] == [body["output"]] and body["error"] is None
    assert body["printed"] == ["record a"] and body["status"] == "ok"
    assert any(row["name"] == "think" for row in body["stats"]["rows"])


def test_async_run_then_get_and_events(server: Served) -> None:
    with server.client() as c:
        r = c.post("/v1/runs?wait=false", json={"id": "b"})
        assert r.status_code == 202
        rid = r.json()["id"]
        events = []
        with c.stream("GET", f"/v1/runs/{rid}/events") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind != "end":
                    events.append(json.loads(line[6:]))
        got = c.get(f"/v1/runs/{rid}").json()
    types = [e["type"] for e in events]
    assert types[0] == "run.start" and "run.end" in types
    assert any(e["type"] == "call.start" and e["service"] == "think"
               and e["request"]["prompt"] == "Echo b" for e in events)
    assert any(e["type"] == "output" and e["output"]["id"] == "b" for e in events)
    assert got["status"] == "ok" and got["output"]["id"] == "b"


def test_runtime_error_stays_in_its_run(server: Served) -> None:
    with server.client() as c:
        bad = c.post("/v1/runs", json={"id": "c", "boom": True})
        good = c.post("/v1/runs", json={"id": "d"})
        branch = c.post("/v1/runs", json={"id": "long-enough-id"})
        health = c.get("/healthz")
    assert bad.status_code == 200
    err = bad.json()["error"]
    assert err["type"] == "runtime" and err["line"] == 7 and bad.json()["status"] == "failed"
    assert good.json()["output"]["seen"] == 1 and good.json()["error"] is None
    assert branch.json()["output"]["failed"] == ["check"]  # a failed branch → _errors
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{oops", 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b"\xff\xfe{}", 400, "UTF-8"),
    (b"[1, 2]", 422, "an array"),
    (b'"text"', 422, "a string"),
    (b"3", 422, "a number"),
    (b"null", 422, "null"),
    (b'{"pad": "' + b"x" * 3000 + b'"}', 413, "limit of 2000 bytes"),
])
def test_bad_bodies(server: Served, body: bytes, status: int, words: str) -> None:
    with server.client() as c:
        r = c.post("/v1/runs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status
        assert r.json()["error"]["status"] == status and words in r.json()["error"]["message"]
        assert c.post("/v1/runs", json={"id": "after"}).json()["output"]["id"] == "after"


def test_body_over_the_limit_without_content_length(server: Served) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    with server.client() as c:
        r = c.post("/v1/runs", content=chunks())
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/runs/r999999", 404),
    ("GET", "/v1/runs/nope/events", 404),
    ("GET", "/v1/nothing", 404),
    ("DELETE", "/v1/runs", 405),
    ("POST", "/v1/runs?wait=maybe", 400),
    ("POST", "/v1/batch?streams=0", 400),
])
def test_bad_requests(server: Served, method: str, path: str, status: int) -> None:
    with server.client() as c:
        r = c.request(method, path, json={"id": 1})
    assert r.status_code == status
    assert r.json()["error"]["status"] == status and r.json()["error"]["message"]


def test_batch_streams_jsonl(server: Served) -> None:
    lines = [json.dumps({"id": f"x{i}"}) for i in range(20)] + ["{broken", ""]
    with server.client() as c:
        r = c.post("/v1/batch?ordered=true&streams=5", content="\n".join(lines))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    out = [json.loads(line) for line in r.text.splitlines()]
    assert [o["index"] for o in out] == list(range(21))
    assert all(o["output"]["seen"] == 1 for o in out[:20])
    assert out[20]["error"]["type"] == "input"


def test_metrics_are_prometheus_text(server: Served) -> None:
    with server.client() as c:
        c.post("/v1/runs", json={"id": "m"})
        c.post("/v1/runs", json={"id": "m2", "boom": True})
        text = c.get("/metrics").text
    from prometheus_client.parser import text_string_to_metric_families

    fams = {f.name: f for f in text_string_to_metric_families(text)}
    runs = {s.labels["status"]: s.value for s in fams["cxpar_runs"].samples
            if s.name == "cxpar_runs_total"}
    assert runs["ok"] >= 1 and runs["failed"] >= 1
    calls = [s for s in fams["cxpar_service_calls"].samples
             if s.name == "cxpar_service_calls_total" and s.labels["service"] == "think"]
    assert calls and calls[0].value >= 2
    assert "cxpar_service_call_duration_seconds" in fams
    assert "cxpar_queue_depth" in fams and "cxpar_runs_active" in fams
    errors = {s.labels["type"] for s in fams["cxpar_run_errors"].samples}
    assert "runtime" in errors
    # The sim reports estimated usage for each request; every direction is counted.
    tokens = {s.labels["direction"]: s.value for s in fams["cxpar_tokens"].samples
              if s.name == "cxpar_tokens_total" and s.labels["service"] == "think"}
    assert tokens["input"] > 0 and tokens["output"] > 0


def test_run_list_and_program(server: Served) -> None:
    with server.client() as c:
        c.post("/v1/runs", json={"id": "listed"})
        runs = c.get("/v1/runs").json()["runs"]
        prog = c.get("/v1/program").json()
    assert runs[0]["status"] == "ok" and runs[0]["duration_ms"] > 0
    # Priced (`--price`): the sim's estimated tokens at $1000/$2000 per million.
    assert runs[0]["cost_usd"] is not None and runs[0]["cost_usd"] > 0
    assert prog["graph"]["nodes"] and prog["token_required"] is False


def test_200_concurrent_requests_are_isolated(server: Served) -> None:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=server.url, timeout=120,
                                     limits=limits) as c:
            return await asyncio.gather(*(c.post("/v1/runs", json={"id": f"c{i}"})
                                          for i in range(200)))

    responses = asyncio.run(main())
    assert all(r.status_code == 200 for r in responses)
    bodies = [r.json() for r in responses]
    assert [b["output"]["id"] for b in bodies] == [f"c{i}" for i in range(200)]
    assert all(b["output"]["seen"] == 1 and b["printed"] == [f"record c{i}"]
               for i, b in enumerate(bodies))
    assert all(b["output"]["answer"] == f"[think] Echo c{i}" for i, b in enumerate(bodies))
    assert len({b["id"] for b in bodies}) == 200
