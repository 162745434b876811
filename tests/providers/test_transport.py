"""The openai provider's transport: retries, body cap, redirects, user info, the key.

Against a real HTTP server on 127.0.0.1 (``fake_openai.py``), in-process and through
the real CLI (``--stats``, ``cxpar.toml``, exit 2 for bad endpoints and keys).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cxpar.runtime.providers.openai import OpenAIProvider
from cxpar.runtime.providers.secrets import Redactor, clean_api_key, shown_url
from cxpar.runtime.resilience import endpoint_of

from .conftest import KEY, cli, run_cx
from .fake_openai import Act, FakeServer

ASK = 'var r = think { prompt: "x", retries: 0 }; print(r.result); print(r._errors);'


def provider(srv: FakeServer, **kw: Any) -> OpenAIProvider:
    kw.setdefault("api_key", KEY)
    return OpenAIProvider(srv.base_url, "test-model", **kw)


def sequence(server: FakeServer, *acts: Act) -> None:
    it = iter(acts)
    server.script = lambda req: next(it, Act(content="ok"))


def error_of(out: str) -> dict[str, Any]:
    return json.loads(out.splitlines()[-1])["result"]


# ------------------------------------------------------------------ transport retries
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_by_default(server: FakeServer, status: int) -> None:
    sequence(server, Act(status=status), Act(status=status))
    p = provider(server)
    r = run_cx(ASK, p)
    assert r.lines == ["ok", "null"], r.err
    assert len(server.requests) == 3 and p.transport_retries == 2
    assert r.code == 0 and r.err == ""


def test_connection_drops_are_retried(server: FakeServer) -> None:
    sequence(server, Act(drop=True))
    r = run_cx(ASK, provider(server))
    assert r.lines == ["ok", "null"]
    assert len(server.requests) == 2


def test_retries_give_up_after_max_retries(server: FakeServer) -> None:
    server.script = lambda req: Act(status=500, body="still down")
    r = run_cx(ASK, provider(server, max_retries=1))
    err = error_of(r.out)
    assert err["type"] == "provider" and "HTTP 500" in err["message"]
    assert err["attempts"] == 1  # CX attempts: the transport's retries are inside one
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_statuses_are_not_retried(server: FakeServer, status: int) -> None:
    server.script = lambda req: Act(status=status)
    r = run_cx(ASK, provider(server))
    assert f"HTTP {status}" in error_of(r.out)["message"]
    assert len(server.requests) == 1


def test_backoff_grows_and_retry_after_wins(server: FakeServer) -> None:
    sequence(server, Act(status=500), Act(status=500))
    run_cx(ASK, provider(server))
    t = [req["t"] for req in server.requests]
    assert 0.3 <= t[1] - t[0] and 0.7 <= t[2] - t[1]  # 0.5 s then 1 s, minus jitter
    server.requests.clear()
    sequence(server, Act(status=429, headers={"Retry-After": "1.5"}),
             Act(status=503, headers={"retry-after-ms": "20"}))
    run_cx(ASK, provider(server))
    t = [req["t"] for req in server.requests]
    # Retry-After 1.5 s is waited in full; retry-after-ms 20 replaces the backoff of
    # 0.75–1 s (any gap below 0.7 s shows that; generous for a loaded machine)
    assert t[1] - t[0] >= 1.45 and t[2] - t[1] < 0.7


def test_no_retry_past_the_calls_deadline(server: FakeServer) -> None:
    server.script = lambda req: Act(status=503, headers={"Retry-After": "5"})
    r = run_cx('var r = think { prompt: "x", timeout: 1000 }; print(r._errors);',
               provider(server))
    err = json.loads(r.out)["result"]
    # a `provider` failure (not `timeout`): the 503 was reported at once instead of
    # waiting 5 s past the 1 s deadline; and no second request
    assert err["type"] == "provider" and "HTTP 503" in err["message"]
    assert len(server.requests) == 1


def test_transport_and_cx_retries_are_independent(server: FakeServer) -> None:
    server.script = lambda req: Act(status=500)
    r = run_cx('var r = think { prompt: "x", retries: 1 }; print(r._errors);',
               provider(server, max_retries=2))
    err = json.loads(r.out)["result"]
    assert err["attempts"] == 2
    assert len(server.requests) == 6  # 2 CX attempts x (1 + 2 transport retries)


PROGRAM = 'var r = think { prompt: "x" };\nprint(r.result);\n'


def test_stats_count_transport_retries(server: FakeServer, tmp_path: Path) -> None:
    sequence(server, Act(status=502), Act(status=503))
    (tmp_path / "p.cx").write_text(PROGRAM)
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            "--stats", str(tmp_path / "p.cx"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"
    assert "transport retries (requests the provider sent again): think 2" in r.stderr


def test_max_retries_from_cxpar_toml(server: FakeServer, tmp_path: Path) -> None:
    server.script = lambda req: Act(status=500)
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text("[provider]\nmax_retries = 0\n")
    (tmp_path / "p.cx").write_text(PROGRAM)
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            str(tmp_path / "p.cx"), cwd=tmp_path)
    assert len(server.requests) == 1, r.stderr
    (tmp_path / "cxpar.toml").write_text("[provider]\nmax_retries = -1\n")
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            str(tmp_path / "p.cx"), cwd=tmp_path)
    assert r.returncode == 2 and "max_retries" in r.stderr


# ------------------------------------------------------------------ body cap, redirects
@pytest.mark.parametrize("chunked", [False, True])
def test_response_body_cap(server: FakeServer, chunked: bool) -> None:
    big = json.dumps({"choices": [{"message": {"content": "x" * 5000}}]})
    server.script = lambda req: Act(body=big, chunked=chunked)
    r = run_cx(ASK, provider(server, max_response_bytes=4096))
    err = error_of(r.out)
    assert err["type"] == "provider" and "is larger than 4096 bytes" in err["message"]
    assert len(server.requests) == 1  # not retried
    r = run_cx(ASK, provider(server, max_response_bytes=8192))
    assert r.lines[0] == "x" * 5000


def test_default_body_cap_is_16_mib(server: FakeServer) -> None:
    body = b'{"choices": [{"message": {"content": "' + b"y" * (17 << 20) + b'"}}]}'
    server.script = lambda req: Act(body=body, chunked=True)
    r = run_cx(ASK, provider(server))
    assert "is larger than 16 MiB" in error_of(r.out)["message"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_reported_as_a_redirect(server: FakeServer, status: int) -> None:
    server.script = lambda req: Act(status=status, body="", headers={
        "Location": "http://mallory:s3cret@other.example/v1/chat/completions"})
    r = run_cx(ASK, provider(server))
    msg = error_of(r.out)["message"]
    assert f"HTTP {status} redirect" in msg and "malformed" not in msg
    assert "to http://other.example/v1/chat/completions" in msg and "s3cret" not in msg
    assert len(server.requests) == 1


# ------------------------------------------------------------------ user info, the key
@pytest.mark.parametrize("port", ["", ":99999"])
def test_user_info_in_the_base_url_is_refused(server: FakeServer, tmp_path: Path,
                                              port: str) -> None:
    url = server.base_url.replace("http://", "http://alice:PASSW0RD@")
    if port:
        url = "http://alice:PASSW0RD@127.0.0.1" + port + "/v1"
    (tmp_path / "p.cx").write_text(PROGRAM)
    runs = [cli("run", "--provider", "openai", "--base-url", url, "--model", "m",
                str(tmp_path / "p.cx")),
            cli("run", "--provider", "openai", "--model", "m", str(tmp_path / "p.cx"),
                env={"CXPAR_BASE_URL": url})]
    (tmp_path / "out.py").write_text(cli("compile", str(tmp_path / "p.cx")).stdout)
    runs.append(subprocess.run([sys.executable, str(tmp_path / "out.py"), "--provider",
                                "openai", "--base-url", url, "--model", "m"],
                               capture_output=True, text=True, timeout=60))
    for r in runs:
        assert r.returncode == 2, r.stderr
        assert "must not contain user info" in r.stderr and "CXPAR_API_KEY" in r.stderr
        assert "PASSW0RD" not in r.stdout + r.stderr
    assert server.requests == []


def test_endpoints_are_shown_without_user_info() -> None:
    class Plugin:
        endpoint = "https://bob:hunter2@api.example:8443/v1?x=1"

    assert endpoint_of(Plugin()) == "https://api.example:8443/v1?x=1"
    assert shown_url("http://u@[::1]:80/v1") == "http://[::1]:80/v1"
    assert shown_url("http://h/v1") == "http://h/v1"


def test_key_is_trimmed(server: FakeServer, tmp_path: Path) -> None:
    server.script = lambda req: "hi"
    (tmp_path / "p.cx").write_text(PROGRAM)
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            str(tmp_path / "p.cx"), env={"CXPAR_API_KEY": f"  {KEY}\r\n"})
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("bad", [f"{KEY}\rX", f"{KEY} more", f"{KEY}é", f"{KEY}\x1b[0m"])
def test_a_key_no_header_can_carry_is_a_usage_error(server: FakeServer, tmp_path: Path,
                                                    bad: str) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM)
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            str(tmp_path / "p.cx"), env={"CXPAR_API_KEY": bad})
    assert r.returncode == 2 and "CXPAR_API_KEY contains" in r.stderr
    assert KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert server.requests == []


SLASH_KEY = "sk-proj/ab+cd=ef/SENTINEL"


@pytest.mark.parametrize("form", [
    SLASH_KEY, SLASH_KEY.replace("/", "\\/"), quote(SLASH_KEY, safe=""),
    re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SLASH_KEY, safe="")),
    repr(SLASH_KEY), json.dumps(SLASH_KEY),
])
def test_key_is_redacted_in_every_escaped_form(server: FakeServer, tmp_path: Path,
                                               form: str) -> None:
    server.script = lambda req: Act(status=401, body=f'{{"error": "bad key {form}"}}')
    (tmp_path / "p.cx").write_text('var r = think { prompt: "x" };\nprint(r._errors);\n')
    trace = tmp_path / "trace.json"
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            "--trace", str(trace), "--stats", str(tmp_path / "p.cx"),
            env={"CXPAR_API_KEY": SLASH_KEY})
    assert "HTTP 401" in r.stdout and "bad key" in r.stdout
    written = r.stdout + r.stderr + trace.read_text()
    for needle in ("SENTINEL", "ab+cd", "ab%2bcd", "ab%2Bcd"):
        assert needle not in written, (needle, written)


def test_redactor_and_clean_key() -> None:
    red = Redactor(SLASH_KEY)
    text = f"a {SLASH_KEY} b {quote(SLASH_KEY, safe='')} c {json.dumps(SLASH_KEY)}"
    assert "SENTINEL" not in red(text) and red(text).count("***") == 3
    assert not Redactor(None) and Redactor(None)("x") == "x"
    assert clean_api_key(" k\r\n") == "k" and clean_api_key("  ") is None
    with pytest.raises(ValueError) as exc:
        clean_api_key("sk-ab cd")
    assert "sk-ab" not in str(exc.value)


def test_max_response_mb_from_cxpar_toml(server: FakeServer, tmp_path: Path) -> None:
    server.script = lambda req: "z" * 3000
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text("[provider]\nmax_response_mb = 0.002\n")
    (tmp_path / "p.cx").write_text('var r = think { prompt: "x" };\nprint(r._errors);\n')
    r = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model", "m",
            str(tmp_path / "p.cx"), cwd=tmp_path)
    assert "is larger than 2097 bytes" in r.stdout, r.stdout + r.stderr
