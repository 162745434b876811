"""RunSettings through the real CLI: every `cxpar.toml` key takes effect, precedence
command line > environment > file > default, validation in one place (exit 2)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cxpar.config import schema
from cxpar.runtime.adaptive import LimitsConfig
from cxpar.runtime.breaker import BreakerConfig
from cxpar.runtime.settings import ProviderSettings, RunSettings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def cx(*args: str, cwd: Path, env: dict[str, str] | None = None,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m cxpar ARGS`` with no ``CXPAR_*`` variables but ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, encoding="utf-8", env=full,
                          timeout=60)


def project(tmp: Path, toml: str | None, program: str, name: str = "p.cx") -> Path:
    """A project directory (with `.git`) holding ``program`` and ``cxpar.toml``."""
    (tmp / ".git").mkdir(exist_ok=True)
    (tmp / "cxpar.toml").unlink(missing_ok=True)
    if toml is not None:
        (tmp / "cxpar.toml").write_text(toml, encoding="utf-8")
    (tmp / name).write_text(program, encoding="utf-8")
    return tmp / name


# ------------------------------------------------------------------ every key is applied

#: One non-default value per documented key: (TOML text, the value RunSettings holds).
SAMPLES: dict[str, tuple[str, Any]] = {
    "run.clock": ('"virtual"', "virtual"),
    "run.seed": ("7", 7),
    "run.timeout": ("1234", 1234.0),
    "run.max_concurrency": ("3", 3),
    "run.backend": ('"llvm"', "llvm"),
    "run.streams": ("9", 9),
    "run.journal": ('"/nonexistent/j.db"', "/nonexistent/j.db"),
    "run.loop_limit_s": ("2.5", 2.5),  # behaviour: tests/runtime/test_runaway.py
    "run.flood_limit": ("1000", 1000),
    "run.strict": ("true", True),
    "run.executor": ('"ray"', "ray"),
    "ray.address": ('"auto"', "auto"),
    "ray.workers": ("3", 3),
    "sim.latency": ("{ think = 5 }", {"think": 5.0}),
    "sim.fail_rate": ("0.25", 0.25),
    "sim.timeout_rate": ("0.5", 0.5),
    "sim.capacity": ("{ think = 4 }", {"think": 4.0}),
    "provider.name": ('"tests_mod:prov"', "tests_mod:prov"),
    "provider.base_url": ('"http://127.0.0.1:9/v1"', "http://127.0.0.1:9/v1"),
    "provider.model": ('"m7"', "m7"),
    "provider.timeout": ("2500", 2500.0),
    "provider.max_connections": ("4", 4),
    "provider.http2": ("false", False),
    "provider.temperature": ("0.5", 0.5),
    "provider.max_tokens": ("64", 64),
    "provider.headers": ('{ X-Team = "a" }', {"X-Team": "***"}),
    "provider.max_retries": ("0", 0),  # behaviour: tests/providers/test_transport.py
    "provider.max_response_mb": ("0.5", 0.5),
    "breaker.enabled": ("false", False),
    "breaker.failure_rate": ("0.75", 0.75),
    "breaker.window": ("3000", 3000.0),
    "breaker.min_requests": ("7", 7),
    "breaker.threshold": ("2", 2),
    "breaker.cooldown_ms": ("500", 500.0),
    "breaker.half_open_probes": ("3", 3),
    "limits.adaptive": ("true", True),
    "limits.algorithm": ('"aimd"', "aimd"),
    "limits.initial": ("5", 5),
    "limits.min": ("2", 2),
    "limits.max": ("50", 50),
    "limits.aging_ms": ("100", 100.0),
    "limits.retry_budget": ("0.5", 0.5),
    "limits.schedule": ('"fifo"', "fifo"),
    "run.max_cost": ("0.5", 0.5),
    "run.max_tokens": ("1000", 1000),
    "otel.enabled": ("true", True),
    "otel.content": ("true", True),
    "otel.endpoint": ('"http://127.0.0.1:4318"', "http://127.0.0.1:4318"),
    "otel.service_name": ('"triage"', "triage"),
}


def test_samples_cover_every_key() -> None:
    keys = {f"{sec}.{key}" for sec, known in schema().items() if known for key in known}
    assert keys == set(SAMPLES), "add a sample (and a behaviour test) for each new key"


def _show(tmp: Path, toml: str | None, *args: str,
          env: dict[str, str] | None = None) -> dict[str, Any]:
    prog = project(tmp, toml, "print(1);\n")
    proc = cx("run", "--show-settings", *args, str(prog), cwd=tmp, env=env)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_each_key_is_applied(tmp_path: Path, key: str) -> None:
    section, name = key.split(".")
    text, expected = SAMPLES[key]
    toml = f"[{section}]\n{name} = {text}\n"
    if section == "provider" and name != "name":
        toml = "[provider]\nname = \"tests_mod:prov\"\n" + f"{name} = {text}\n"
    if key == "run.max_cost":  # a cost budget needs a price
        toml = "[pricing.sim]\ninput = 1\noutput = 2\n" + toml
    shown = _show(tmp_path, toml)["settings"]
    if section in ("breaker", "limits"):
        entry = shown[section]
        value = entry["value"][name]
    else:
        field = {"run.timeout": "timeout_ms", "provider.timeout": "provider.timeout_ms",
                 "otel.enabled": "otel", "otel.content": "otel_content",
                 "otel.endpoint": "otel_endpoint", "otel.service_name": "otel_service",
                 "ray.address": "ray_address", "ray.workers": "workers"}.get(
            key, key.split(".", 1)[1] if section in ("run", "sim") else key)
        entry = shown[field]
        value = entry["value"]
    assert value == expected
    assert entry["from"].endswith(f"of `{tmp_path / 'cxpar.toml'}`"), entry


def test_precedence_cli_env_file_default(tmp_path: Path) -> None:
    toml = "[run]\nseed = 1\ntimeout = 100\nclock = \"virtual\"\n"
    shown = _show(tmp_path, toml, "--seed", "3", env={"CXPAR_SEED": "2", "CXPAR_TIMEOUT": "200"})
    s = shown["settings"]
    assert (s["seed"]["value"], s["seed"]["from"]) == (3, "--seed")
    assert (s["timeout_ms"]["value"], s["timeout_ms"]["from"]) == (200.0, "CXPAR_TIMEOUT")
    assert s["clock"]["value"] == "virtual" and "[run]" in s["clock"]["from"]
    assert (s["streams"]["value"], s["streams"]["from"]) == (100, "default")


def test_tables_merge_key_by_key(tmp_path: Path) -> None:
    toml = "[breaker]\nthreshold = 2\ncooldown_ms = 500\n[sim]\nlatency = { think = 5 }\n"
    s = _show(tmp_path, toml, "--breaker", "threshold=4", "--latency", "infer=7",
              "--no-adaptive")["settings"]
    assert s["breaker"]["value"]["threshold"] == 4
    assert s["breaker"]["value"]["cooldown_ms"] == 500.0
    assert s["latency"]["value"] == {"think": 5.0, "infer": 7.0}
    assert s["limits"]["value"]["adaptive"] is False


# ------------------------------------------------------------------ behaviour per key

def _same_as_cli(tmp: Path, program: str, toml: str, cli: list[str], *,
                 base: list[str] | None = None, name: str = "p.cx") -> str:
    """Run ``program`` with ``toml``, with the equivalent ``cli`` options, and with
    neither: the first two must agree, and differ from the default."""
    base = base or ["--clock", "virtual"]
    prog = project(tmp, toml, program, name)
    with_file = cx("run", *base, str(prog), cwd=tmp)
    project(tmp, None, program, name)
    with_cli = cx("run", *base, *cli, str(prog), cwd=tmp)
    default = cx("run", *base, str(prog), cwd=tmp)
    got = (with_file.returncode, with_file.stdout)
    assert got == (with_cli.returncode, with_cli.stdout), (with_file.stderr, with_cli.stderr)
    assert got != (default.returncode, default.stdout), default.stderr
    return with_file.stdout


def test_run_clock(tmp_path: Path) -> None:
    # CX code takes no virtual time; on the real clock a busy loop does
    program = ("var t0 = now();\nfor (var i = 0; i < 200000; i++) { }\n"
               "print(now() - t0 > 0);\n")
    out = _same_as_cli(tmp_path, program, '[run]\nclock = "virtual"\n', ["--clock", "virtual"],
                       base=["--timeout", "60000"])
    assert out == "false\n"


def test_run_seed(tmp_path: Path) -> None:
    _same_as_cli(tmp_path, "print(random());\n", "[run]\nseed = 42\n", ["--seed", "42"])


def test_run_timeout(tmp_path: Path) -> None:
    _same_as_cli(tmp_path, "await { durationMs: 5000 };\nprint(\"done\");\n",
                 "[run]\ntimeout = 100\n", ["--timeout", "100"])


MANY = "on go (e) { var r = think { prompt: \"x\" }; print(now()); }\nemit go {};\nemit go {};\n"


def test_run_max_concurrency(tmp_path: Path) -> None:
    out = _same_as_cli(tmp_path, MANY, "[run]\nmax_concurrency = 1\n",
                       ["--max-concurrency", "1"])
    assert out == "800\n1600\n"


def test_run_backend(tmp_path: Path) -> None:
    prog = project(tmp_path, '[run]\nbackend = "nope"\n', "print(1);\n")
    bad = cx("run", str(prog), cwd=tmp_path)
    assert bad.returncode == 2 and "`backend` in [run]" in bad.stderr
    project(tmp_path, '[run]\nbackend = "llvm"\nclock = "virtual"\n', MANY)
    llvm = cx("run", str(prog), cwd=tmp_path)
    assert llvm.returncode in (0, 2), llvm.stderr
    if llvm.returncode == 2:  # a platform without llvmlite's JIT says so
        assert "llvm backend is unavailable" in llvm.stderr
    else:
        assert llvm.stdout == "800\n800\n"


def test_run_streams(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"ms": 300}\n{"ms": 100}\n{"ms": 200}\n')
    program = ("/// @external\non input.record (e) { await { durationMs: e.ms };\n"
               "  emit output.record { ms: e.ms }; }\n")
    out = _same_as_cli(tmp_path, program, "[run]\nstreams = 1\n", ["--streams", "1"],
                       base=["--clock", "virtual", "--input", "in.jsonl", "--no-progress"])
    assert [json.loads(x)["index"] for x in out.splitlines()] == [0, 1, 2]


LATENCY = "var r = think { prompt: \"x\", timeout: 900 };\nprint(now());\nprint(r._errors);\n"


def test_sim_latency(tmp_path: Path) -> None:
    out = _same_as_cli(tmp_path, LATENCY, "[sim]\nlatency = { think = 5 }\n",
                       ["--latency", "think=5"])
    assert out.startswith("5\n")


def test_sim_fail_rate(tmp_path: Path) -> None:
    out = _same_as_cli(tmp_path, LATENCY, "[sim]\nfail_rate = 1.0\n", ["--fail-rate", "1"])
    assert "simulated think failure" in out


def test_sim_timeout_rate(tmp_path: Path) -> None:
    out = _same_as_cli(tmp_path, LATENCY, "[sim]\ntimeout_rate = 1.0\n",
                       ["--timeout-rate", "1"])
    assert out.startswith("900\n") and "timeout" in out


def test_sim_capacity(tmp_path: Path) -> None:
    program = ("on go (e) { var r = think { prompt: \"x\" }; print(r._errors != null); }\n"
               "emit go {};\nemit go {};\nemit go {};\n")
    out = _same_as_cli(tmp_path, program, "[sim]\ncapacity = { think = 1 }\n",
                       ["--capacity", "think=1"])
    assert "true" in out


BREAKER = ("for (var i = 0; i < 4; i++) { var r = think { prompt: \"x\" };\n"
           "  print(r._errors.result.type); await { durationMs: 100 }; }\n")


def test_breaker_threshold_and_enabled(tmp_path: Path) -> None:
    base = ["--clock", "virtual", "--fail-rate", "1"]
    out = _same_as_cli(tmp_path, BREAKER, "[breaker]\nthreshold = 2\n",
                       ["--breaker", "threshold=2"], base=base)
    assert out.split() == ["provider", "provider", "circuit_open", "circuit_open"]
    seven = BREAKER.replace("i < 4", "i < 7")
    off = _same_as_cli(tmp_path, seven, "[breaker]\nenabled = false\n", ["--breaker", "off"],
                       base=base)
    assert off.split() == ["provider"] * 7


def test_breaker_cooldown(tmp_path: Path) -> None:
    base = ["--clock", "virtual", "--fail-rate", "1", "--breaker", "threshold=1"]
    out = _same_as_cli(tmp_path, BREAKER, "[breaker]\ncooldown_ms = 50\n",
                       ["--breaker", "threshold=1,cooldown_ms=50"], base=base)
    assert out.split() == ["provider"] * 4  # each later call is a half-open probe


def test_limits_adaptive(tmp_path: Path) -> None:
    program = ("on go (e) { var r = think { prompt: \"x\" }; print(r._errors != null); }\n"
               "for (var i = 0; i < 30; i++) { emit go {}; }\n")
    base = ["--clock", "virtual", "--capacity", "think=2", "--breaker", "off"]
    out = _same_as_cli(tmp_path, program, "[limits]\nadaptive = false\n", ["--no-adaptive"],
                       base=base)
    assert out.count("true") > 10


def test_runtime_receives_the_tables_whole() -> None:
    """[breaker]/[limits] travel as one object each to the runtime's resilience state."""
    from cxpar.runtime.scheduler import Runtime
    from cxpar.runtime.streams import Shared

    s = RunSettings(breaker=BreakerConfig(threshold=2, window=3000, half_open_probes=3),
                    limits=LimitsConfig(algorithm="aimd", initial=5, aging_ms=100,
                                        retry_budget=0.5), max_concurrency=3)
    rt = Runtime(s)
    assert rt.resilience.breaker_config is s.breaker
    assert rt.resilience.limits_config is s.limits
    assert rt.limiter is not None and rt.limiter.limit == 3
    shared = Shared(s, rt.provider)
    assert shared.resilience.breaker_config is s.breaker


# ------------------------------------------------------------------ the object itself

def test_settings_pickle_and_are_frozen() -> None:
    s = RunSettings(seed=3, latency={"think": 5},
                    provider=ProviderSettings(name="openai", base_url="http://h/v1", model="m",
                                              headers={"A": "b"}))
    again = pickle.loads(pickle.dumps(s))
    assert again == s and again.latency == {"think": 5.0}
    with pytest.raises(AttributeError):
        s.seed = 4  # type: ignore[misc]
    assert s.replace(seed=4).seed == 4 and s.seed == 3


@pytest.mark.parametrize("changes, name", [
    ({"timeout_ms": float("nan")}, "timeout_ms"),
    ({"timeout_ms": -1}, "timeout_ms"),
    ({"fail_rate": float("nan")}, "fail_rate"),
    ({"fail_rate": 5}, "fail_rate"),
    ({"timeout_rate": 1.5}, "timeout_rate"),
    ({"max_concurrency": -1}, "max_concurrency"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
    ({"streams": 0}, "streams"),
    ({"clock": "fast"}, "clock"),
    ({"latency": {"think": float("inf")}}, "latency"),
    ({"capacity": {"think": 0}}, "capacity"),
    ({"resume": True}, "resume"),
    ({"input": "x.jsonl", "resume": True}, "resume"),
    ({"provider": ProviderSettings(name="openai", base_url="http://h/v1", model="m"),
      "clock": "virtual"}, "clock"),
])
def test_bad_values_name_the_setting(changes: dict[str, Any], name: str) -> None:
    with pytest.raises(SettingsError) as info:
        RunSettings(**changes)
    assert info.value.name == name


@pytest.mark.parametrize("url", ["http://h:99999/v1", "ftp://h/v1", "http:///v1",
                                 "http://h:0/v1", "http://h:x/v1"])
def test_bad_base_urls(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        ProviderSettings(base_url=url)
    assert info.value.name == "provider.base_url"


@pytest.mark.parametrize("args, needle", [
    (["--timeout", "nan"], "--timeout must be a finite number"),
    (["--fail-rate", "nan"], "--fail-rate must be a finite number"),
    (["--fail-rate", "5"], "--fail-rate must be <= 1"),
    (["--max-concurrency", "-1"], "--max-concurrency must be >= 1"),
    (["--seed", "abc"], "--seed: expected a whole number"),
    (["--provider", "openai", "--model", "m", "--base-url", "http://127.0.0.1:99999/v1"],
     "--base-url: `http://127.0.0.1:99999/v1` is not a valid URL"),
    (["--latency", "think=-1"], "--latency: latency of `think` must be"),
    (["--capacity", "think=0"], "--capacity: expected SERVICE=CALLS"),
    (["--breaker", "threshold=x"], "--breaker: breaker `threshold` must be a number"),
])
def test_cli_usage_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    prog = project(tmp_path, None, "print(1);\n")
    proc = cx("run", *args, str(prog), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_env_and_file_errors_name_their_source(tmp_path: Path) -> None:
    prog = project(tmp_path, "[sim]\nfail_rate = 2\n", "print(1);\n")
    proc = cx("run", str(prog), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"`fail_rate` in [sim] of `{tmp_path / 'cxpar.toml'}` must be <= 1" in proc.stderr
    project(tmp_path, None, "print(1);\n")
    proc = cx("run", str(prog), cwd=tmp_path, env={"CXPAR_TIMEOUT": "nan"})
    assert proc.returncode == 2 and "CXPAR_TIMEOUT must be a finite number" in proc.stderr


def test_standalone_module_validates_its_options(tmp_path: Path) -> None:
    prog = project(tmp_path, None, "print(1);\n")
    out_py = tmp_path / "out.py"
    assert cx("compile", str(prog), "-o", str(out_py), cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    for args, needle in [(["--fail-rate", "5"], "--fail-rate must be <= 1"),
                         (["--max-concurrency", "-1"], "--max-concurrency must be >= 1"),
                         (["--timeout", "nan"], "--timeout must be a finite number"),
                         (["--fail-rate", "nan"], "--fail-rate must be a finite number")]:
        proc = subprocess.run([sys.executable, str(out_py), *args], capture_output=True,
                              text=True, env=env, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, str(out_py), "--clock", "virtual"],
                        capture_output=True, text=True, env=env, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "1\n"), ok.stderr


def test_explicit_config_option(tmp_path: Path) -> None:
    prog = project(tmp_path, None, "print(random());\n")
    other = tmp_path / "elsewhere.toml"
    other.write_text("[run]\nseed = 42\nclock = \"virtual\"\n", encoding="utf-8")
    via_option = cx("run", "--config", str(other), str(prog), cwd=tmp_path)
    via_env = cx("run", str(prog), cwd=tmp_path, env={"CXPAR_CONFIG": str(other)})
    direct = cx("run", "--seed", "42", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert via_option.stdout == via_env.stdout == direct.stdout != ""
    missing = cx("run", "--config", str(tmp_path / "nope.toml"), str(prog), cwd=tmp_path)
    assert missing.returncode == 2 and "config file not found" in missing.stderr


# ------------------------------------------------------------------ which cxpar.toml (issue 14)

def _config_of(prog: Path, cwd: Path, home: Path) -> str | None:
    proc = cx("run", "--show-settings", str(prog), cwd=cwd, env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    found: str | None = json.loads(proc.stdout)["config"]
    return found


def test_config_search_stops_at_the_project_or_home(tmp_path: Path) -> None:
    shared = tmp_path / "shared"          # like /tmp: no .git, not home
    proj = shared / "proj" / "src"
    proj.mkdir(parents=True)
    prog = proj / "p.cx"
    prog.write_text("print(1);\n", encoding="utf-8")
    planted = shared / "cxpar.toml"
    planted.write_text('[provider]\nname = "openai"\nbase_url = "http://evil.invalid/v1"\n'
                       'model = "m"\n', encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    # no .git and no home above: only the program's own directory is searched
    assert _config_of(prog, tmp_path, home) is None
    (proj / "cxpar.toml").write_text("[run]\nseed = 1\n", encoding="utf-8")
    assert _config_of(prog, tmp_path, home) == str(proj / "cxpar.toml")
    (proj / "cxpar.toml").unlink()
    # a project root (.git) bounds the search; files above it are never read
    (shared / "proj" / ".git").mkdir()
    (shared / "proj" / "cxpar.toml").write_text("[run]\nseed = 2\n", encoding="utf-8")
    assert _config_of(prog, tmp_path, home) == str(shared / "proj" / "cxpar.toml")
    (shared / "proj" / "cxpar.toml").unlink()
    assert _config_of(prog, tmp_path, home) is None
    # the home directory bounds it too (and is searched itself)
    (shared / "proj" / ".git").rmdir()
    assert _config_of(prog, tmp_path, shared / "proj") is None
    assert _config_of(prog, tmp_path, shared) == str(planted)
    # the current directory plays no part: the program's location decides
    assert _config_of(prog, shared, home) is None


def test_config_that_picks_the_provider_is_named_on_stderr(tmp_path: Path) -> None:
    prog = project(tmp_path, '[provider]\nname = "openai"\nbase_url = '
                             '"http://127.0.0.1:9/v1"\nmodel = "m"\n',
                   'var r = think { prompt: "x", timeout: 2000 };\n')
    proc = cx("run", str(prog), cwd=tmp_path)
    assert (f"cxpar: provider `openai` and base URL `http://127.0.0.1:9/v1` from "
            f"`{tmp_path / 'cxpar.toml'}`") in proc.stderr
    quiet = cx("run", "--provider", "sim", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert "cxpar: provider" not in quiet.stderr


def test_check_graph_compile_never_import_the_configured_provider(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "planted_provider.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "class P:\n    async def call(self, service, request, context):\n        return 1\n",
        encoding="utf-8")
    prog = project(tmp_path, '[provider]\nname = "planted_provider:P"\n', "print(1);\n")
    for args in (["check"], ["graph"], ["compile"], ["compile", "--emit", "graph"]):
        proc = cx(*args, str(prog), cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
        assert not marker.exists(), args
    ran = cx("run", "--clock", "virtual", str(prog), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert marker.exists()  # `run` uses the provider, so it imports it
