"""Providers and plug-ins through the real CLI: configuration, plug-ins, no key in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxpar.config import Config
from cxpar.driver import UsageError
from cxpar.plugins import PluginError, make_provider
from cxpar.runtime.settings import ProviderSettings, RunSettings, SettingsError
from cxpar.settings import resolve

from .conftest import KEY, ROOT, cli
from .fake_openai import Act, FakeServer

PLUGINS = Path(__file__).parent / "plugins"

PROGRAM = """/// test
on check.len (event) { return len(event.prompt); }
var r = think { prompt: "Say hi", n: check.len, timeout: 5000 };
print(r.result + " " + r.n);
var d = is { prompt: "ok?" };
print(d.result);
"""


def write(tmp: Path, text: str = PROGRAM, toml: str | None = None) -> Path:
    (tmp / "p.cx").write_text(text, encoding="utf-8")
    if toml is not None:
        (tmp / "cxpar.toml").write_text(toml, encoding="utf-8")
    return tmp / "p.cx"


# ------------------------------------------------------------------ settings
def test_precedence_cli_env_file_default() -> None:
    cfg = Config(Path("cxpar.toml"), {"provider": {"name": "openai", "base_url": "http://file/v1",
                                                   "model": "file-m", "timeout": 5000,
                                                   "max_connections": 4, "http2": False}})
    env = {"CXPAR_BASE_URL": "http://env/v1", "CXPAR_MODEL": "env-m"}
    r = resolve({"provider__model": "cli-m"}, config=cfg, env=env)
    s = r.settings.provider
    assert (s.name, s.base_url, s.model) == ("openai", "http://env/v1", "cli-m")
    assert {k: v for k, v in r.origins.items() if k in ("provider.name", "provider.base_url",
                                                         "provider.model")} == {
        "provider.name": "`name` in [provider] of `cxpar.toml`",
        "provider.base_url": "CXPAR_BASE_URL", "provider.model": "--model"}
    assert (s.timeout_ms, s.max_connections, s.http2) == (5000.0, 4, False)
    assert resolve({}, config=Config(), env={}).settings.provider.name == "sim"
    env2 = {"CXPAR_PROVIDER": "openai", "CXPAR_BASE_URL": "http://x/v1", "CXPAR_MODEL": "m"}
    assert resolve({}, config=Config(), env=env2).settings.provider.name == "openai"


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="`model` in .* must be a string"):
        resolve({}, config=Config(None, {"provider": {"model": 3}}), env={})
    with pytest.raises(SettingsError, match="needs an endpoint"):
        ProviderSettings(name="openai", model="m")
    with pytest.raises(SettingsError, match="needs a model"):
        ProviderSettings(name="openai", base_url="http://x/v1")
    with pytest.raises(SettingsError, match="must start with http"):
        ProviderSettings(name="openai", base_url="localhost:1/v1", model="m")
    with pytest.raises(PluginError, match="unknown provider `nope`"):
        make_provider(RunSettings(provider=ProviderSettings(name="nope")))


def test_openai_without_endpoint_fails_at_once(tmp_path: Path) -> None:
    prog = write(tmp_path)
    proc = cli("run", "--provider", "openai", str(prog), cwd=tmp_path)
    assert proc.returncode == 2
    assert "needs an endpoint" in proc.stderr and "--base-url" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    proc = cli("run", "--clock", "virtual", "--base-url", "http://127.0.0.1:9/v1",
               "--model", "m", str(prog), cwd=tmp_path, env={"CXPAR_PROVIDER": "openai"})
    assert proc.returncode == 2 and "--clock real" in proc.stderr


# ------------------------------------------------------------------ end to end, no key leaks
def test_run_against_local_server_from_config(tmp_path: Path, server: FakeServer) -> None:
    def script(req: dict) -> Act | str:
        if "yes or no" in req["messages"][0]["content"]:
            return "Yes"
        return "Hi there!"
    server.script = script
    prog = write(tmp_path, toml='[provider]\nname = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
                               'model = "file-model"\n')
    trace = tmp_path / "trace.json"
    proc = cli("run", "--stats", "--trace", str(trace), str(prog), cwd=tmp_path,
               env={"CXPAR_API_KEY": KEY, "CXPAR_BASE_URL": server.base_url})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hi there! 6\ntrue\n"
    assert [r["json"]["model"] for r in server.requests] == ["file-model", "file-model"]
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
    for text in (proc.stdout, proc.stderr, trace.read_text(encoding="utf-8")):
        assert KEY not in text


def test_errors_never_show_the_key(tmp_path: Path, server: FakeServer) -> None:
    server.script = lambda req: Act(status=401, body=json.dumps(
        {"error": "invalid key " + server.requests[-1]["headers"]["Authorization"]}))
    prog = write(tmp_path, 'var r = think { prompt: "x", retries: 1 };\n'
                           'print(r._errors);\n'
                           'on thinking.error (event) { print(event.errors.result.message); }\n')
    trace = tmp_path / "t.json"
    proc = cli("run", "--provider", "openai", "--base-url", server.base_url + "/",
               "--model", "m", "--stats", "--trace", str(trace), str(prog), cwd=tmp_path,
               env={"CXPAR_API_KEY": KEY, "CXPAR_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "HTTP 401" in proc.stdout and "invalid key Bearer ***" in proc.stdout
    for text in (proc.stdout, proc.stderr, trace.read_text(encoding="utf-8")):
        assert KEY not in text
    assert len(server.requests) == 1  # 401 is not retried


# ------------------------------------------------------------------ plug-ins
def test_plugin_provider_and_service_from_the_current_directory() -> None:
    proc = cli("run", "--provider", "tests_plugin_mod:provider", "summarize.cx", cwd=PLUGINS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "ready: one two three ... / 23 / one two three four five!",
        "2/2",
        "complete: one two three ...",
        "<translate:hola>",
        "<think:hi>",
    ]
    chk = cli("check", "--provider", "tests_plugin_mod:provider", "summarize.cx", cwd=PLUGINS)
    assert chk.returncode == 0, chk.stderr
    bare = cli("check", "summarize.cx", cwd=PLUGINS)
    assert bare.returncode == 1 and "unknown service `summarize`" in bare.stderr


def test_plugin_errors_are_usage_errors() -> None:
    for spec, msg in [("tests_plugin_mod:nothing", "has no attribute `nothing`"),
                      ("no_such_mod_xyz:p", "cannot import `no_such_mod_xyz`"),
                      ("tests_plugin_mod:summarize", "is an async function, not a provider"),
                      ("tests_plugin_mod:asyncio", "has no `async def call")]:
        proc = cli("run", "--provider", spec, "summarize.cx", cwd=PLUGINS)
        assert proc.returncode == 2, (spec, proc.stderr)
        assert msg in proc.stderr and "Traceback" not in proc.stderr


def test_entry_points(tmp_path: Path) -> None:
    dist = tmp_path / "cxpar_testplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cxpar-testplug\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[cxpar.providers]\necho = tests_plugin_mod:EchoProvider\n\n"
        "[cxpar.services]\nsummarize = tests_plugin_mod\nnames = testplug_names:NAMES\n",
        encoding="utf-8")
    (tmp_path / "testplug_names.py").write_text('NAMES = {"translate": "translating"}\n',
                                                encoding="utf-8")
    prog = PLUGINS / "summarize.cx"
    env = {"PYTHONPATH": f"{tmp_path}:{PLUGINS}:{ROOT}"}
    chk = cli("check", str(prog), env=env, cwd=tmp_path)
    assert chk.returncode == 0, chk.stderr
    proc = cli("run", "--provider", "echo", str(prog), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["<translate:hola>", "<think:hi>"]
    unknown = cli("run", "--provider", "nope", str(prog), env=env, cwd=tmp_path)
    assert unknown.returncode == 2 and "available: sim, openai, echo" in unknown.stderr


def test_services_in_cxpar_toml(tmp_path: Path) -> None:
    prog = write(tmp_path, '/// x\nvar r = summarize { text: "a b" };\nprint(r.result);\n',
                 toml='[services]\nsummarize = "summarizing"\n')
    chk = cli("check", str(prog), cwd=tmp_path)
    assert chk.returncode == 0, chk.stderr
    proc = cli("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[summarize] a b\n"


def test_local_llm_example_against_a_local_server(server: FakeServer) -> None:
    def script(req: dict) -> str:
        msgs = req["messages"]
        user = msgs[-1]["content"]
        if "yes or no" in msgs[0]["content"]:
            return "yes"
        if user.startswith("List three keywords"):
            return "python, list, comprehension"
        if user.startswith("Is this a beginner"):
            return "Beginner."
        assert "prefers short answers" in msgs[1]["content"]  # the learned memory
        return "A compact way to build a list. It reads like a for loop in brackets."
    server.script = script
    proc = cli("run", "--provider", "openai", "--base-url", server.base_url, "--model",
               "llama3.2", "examples/local_llm.cx", env={"CXPAR_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Q: What is a Python list comprehension?",
        "A: A compact way to build a list. It reads like a for loop in brackets.",
        "   keywords: python, list, comprehension",
        "   level:    Beginner.",
        "   branches: 2/2 ok",
        "   (a code example was requested)",
    ]
    assert len(server.requests) == 4
    assert KEY not in proc.stdout + proc.stderr


def test_compiled_module_runs_against_the_server(tmp_path: Path, server: FakeServer) -> None:
    import os
    import subprocess
    import sys

    def script(req: dict) -> Act | str:
        if "yes or no" in req["messages"][0]["content"]:
            return "no"
        return "Compiled hello"
    server.script = script
    prog = write(tmp_path)
    out_py = tmp_path / "out.py"
    made = cli("compile", str(prog), "-o", str(out_py), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["CXPAR_API_KEY"] = KEY
    proc = subprocess.run([sys.executable, str(out_py), "--provider", "openai", "--base-url",
                           server.base_url, "--model", "m1"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Compiled hello 6\nfalse\n"
    assert [r["json"]["model"] for r in server.requests] == ["m1", "m1"]
    assert KEY not in proc.stdout + proc.stderr
    bad = subprocess.run([sys.executable, str(out_py), "--provider", "openai"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "--base-url" in bad.stderr
