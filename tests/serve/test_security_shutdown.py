"""`cxpar serve`: the token, refusing to listen openly, the API key never sent, the
missing extra, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from cxpar.commands.serve import is_loopback
from tests.providers.fake_openai import Act, FakeServer

from .helpers import ROOT, TICKETS, serving

SLOW = """
/// @external
on input.record (e) {
    await { durationMs: e.ms };
    emit output.record { id: e.id };
}
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if k != "CXPAR_SERVE_TOKEN"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "cxpar", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=full, check=False)


def test_token_required_except_healthz_and_page() -> None:
    with serving(TICKETS, "--token", "s3cret-token", "--latency", "think=1,infer=1") as s:
        with s.client() as c:
            missing = c.post("/v1/runs", json={"id": 1, "text": "x"})
            wrong = c.get("/v1/runs", headers={"Authorization": "Bearer nope"})
            metrics = c.get("/metrics")
            ok = c.post("/v1/runs", json={"id": 1, "text": "x"},
                        headers={"Authorization": "Bearer s3cret-token"})
            health = c.get("/healthz")
            page = c.get("/")
    for r in (missing, wrong, metrics):
        assert r.status_code == 401 and r.json()["error"]["status"] == 401
        assert "s3cret" not in r.text
    assert "missing" in missing.json()["error"]["message"]
    assert "wrong" in wrong.json()["error"]["message"]
    assert ok.status_code == 200 and ok.json()["output"]["id"] == 1
    assert health.status_code == 200 and page.status_code == 200


def test_token_from_the_environment() -> None:
    with serving(TICKETS, env={"CXPAR_SERVE_TOKEN": "env-token"}) as s:
        with s.client() as c:
            assert c.get("/v1/runs").status_code == 401
            assert c.get("/v1/runs", headers={"Authorization": "Bearer env-token"}
                         ).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_non_loopback_without_token_is_refused(host: str) -> None:
    proc = cli("serve", str(TICKETS), "--host", host, "--port", "0")
    assert proc.returncode == 2
    assert "without a token" in proc.stderr and "--insecure" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "::1", "[::1]",
                                        "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))


def test_usage_errors() -> None:
    missing = cli("serve", "no/such/file.cx")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = cli("serve", str(TICKETS), "--timeout", "nan")
    assert bad.returncode == 2 and "--timeout" in bad.stderr
    clash = cli("serve", str(TICKETS), "--input", "x.jsonl")
    assert clash.returncode == 2  # batch options are not serve options


def test_compile_errors_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cx"
    bad.write_text("on a.b (e) { thnk { prompt: 1 }; }\n", encoding="utf-8")
    proc = cli("serve", str(bad))
    assert proc.returncode == 1 and "CX301" in proc.stderr


def test_missing_extra_exits_2_with_the_pip_command() -> None:
    code = ("import sys; sys.modules['starlette'] = None; from cxpar.cli import main; "
            f"main(['serve', {str(TICKETS)!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "pip install 'cxpar[serve]'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_api_key_is_never_sent(tmp_path: Path) -> None:
    key = "sk-SERVE-SENTINEL-never-send-me"
    fake = FakeServer().start()
    # The endpoint echoes the Authorization header in its answers and its errors.

    def script(body: dict) -> Act:
        auth = fake.requests[-1]["headers"].get("Authorization", "")
        if "fail" in json.dumps(body):
            return Act(status=400, body=json.dumps({"error": "bad " + auth}))
        return Act(content="echo " + auth)

    fake.script = script
    prog = tmp_path / "echo.cx"
    prog.write_text('/// @external\non input.record (e) {\n    var r = think { prompt: e.p };\n'
                    '    print(r.result);\n    emit output.record { r: r.result, '
                    'e: r._errors };\n}\n', encoding="utf-8")
    try:
        with serving(prog, "--provider", "openai", "--base-url", fake.base_url,
                     "--model", "m", env={"CXPAR_API_KEY": key}) as s:
            with s.client() as c:
                texts = [c.post("/v1/runs", json={"p": "hello"}).text,
                         c.post("/v1/runs", json={"p": "please fail"}).text,
                         c.get("/v1/runs/r1").text, c.get("/v1/runs/r1/events").text,
                         c.get("/v1/runs").text, c.get("/metrics").text,
                         c.post("/v1/batch", content='{"p": "hi"}\n').text,
                         c.get("/v1/program").text, c.get("/healthz").text]
            assert "Bearer" in texts[0]  # the echo arrived, with the key redacted
            for text in texts:
                assert key not in text
    finally:
        fake.stop()


def _post_in_thread(url: str, record: dict, box: list) -> threading.Thread:
    def go() -> None:
        try:
            box.append(httpx.post(url + "/v1/runs", json=record, timeout=60))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            box.append(exc)
    t = threading.Thread(target=go)
    t.start()
    return t


def _wait_active(url: str, n: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(url + "/healthz").json()["active"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the runs did not start")


def test_sigterm_lets_runs_finish_within_grace(tmp_path: Path) -> None:
    prog = tmp_path / "slow.cx"
    prog.write_text(SLOW, encoding="utf-8")
    with serving(prog, "--grace", "20") as s:
        box: list = []
        t = _post_in_thread(s.url, {"id": 1, "ms": 1500}, box)
        _wait_active(s.url, 1)
        code = s.stop(signal.SIGTERM)
        t.join(30)
    assert code == 0
    assert box and box[0].status_code == 200 and box[0].json()["output"] == {"id": 1}
    assert any("shutting down" in line for line in s.err_lines)


def test_sigterm_cancels_runs_past_grace(tmp_path: Path) -> None:
    prog = tmp_path / "slow.cx"
    prog.write_text(SLOW, encoding="utf-8")
    with serving(prog, "--grace", "0.5") as s:
        box: list = []
        t = _post_in_thread(s.url, {"id": 2, "ms": 120_000}, box)
        _wait_active(s.url, 1)
        t0 = time.monotonic()
        code = s.stop(signal.SIGTERM)
        elapsed = time.monotonic() - t0
        t.join(30)
    assert code == 0 and elapsed < 15
    body = box[0].json()
    assert body["status"] == "cancelled" and body["error"]["type"] == "cancelled"
