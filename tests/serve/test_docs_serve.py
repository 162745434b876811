"""docs/serve.md as documented: `cxpar serve examples/batch_tickets.cx` and its requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from .helpers import ROOT, TICKETS, serving

DOC = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")


def test_documented_run_and_batch() -> None:
    record = json.loads(re.search(r"/v1/runs -d '(\{.*?\})'", DOC).group(1))
    shown = json.loads(re.search(r"```json\n(.*?)```", DOC, re.S).group(1))
    records = ROOT / "examples" / "batch_tickets.jsonl"
    with serving(TICKETS) as s, s.client() as c:
        run = c.post("/v1/runs", json=record).json()
        batch = c.post("/v1/batch?ordered=true", content=records.read_bytes()).text
        page = c.get("/")
        events = c.get(f"/v1/runs/{run['id']}/events").text
    assert run["output"] == shown["output"] and run["status"] == shown["status"]
    assert run["calls"] == shown["calls"]
    cli = subprocess.run([sys.executable, "-m", "cxpar", "run", str(TICKETS), "--input",
                          str(records), "--ordered", "--no-progress"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, check=False)
    assert batch == cli.stdout
    assert page.status_code == 200 and "cxpar serve" in page.text
    assert "event: call.start" in events and events.rstrip().endswith("data: {}")


def test_every_documented_route_answers() -> None:
    with serving(TICKETS) as s, s.client() as c:
        routes = [r.split("?")[0] for r in re.findall(r"\| `GET (/[^ `]*)`", DOC) if "{" not in r]
        assert "/metrics" in routes and "/healthz" in routes
        for route in routes:
            assert c.get(route).status_code == 200, route
