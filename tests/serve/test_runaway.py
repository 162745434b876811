"""A runaway run (an event flood, a loop that never suspends) ends as that run's error
while the server goes on answering the others."""

from __future__ import annotations

from pathlib import Path

from .helpers import serving

PROGRAM = """
/// @external
on input.record (e) {
    if (e.mode == "flood") { emit a.b; }
    if (e.mode == "spin") { var i = 0; while (true) { i += 1; } }
    emit output.record { id: e.id };
}
on a.b (e) { emit a.b; emit a.b; }
"""


def test_runaway_runs_end_as_their_errors(tmp_path: Path) -> None:
    program = tmp_path / "runaway.cx"
    program.write_text(PROGRAM, encoding="utf-8")
    env = {"CXPAR_FLOOD_LIMIT": "20000", "CXPAR_LOOP_LIMIT_S": "600"}
    with serving(program, "--timeout", "4000", env=env) as s, s.client() as c:
        flood = c.post("/v1/runs", json={"id": "f", "mode": "flood"}).json()
        spin = c.post("/v1/runs", json={"id": "s", "mode": "spin"}).json()
        fine = c.post("/v1/runs", json={"id": "ok"}).json()
        health = c.get("/healthz")
    assert flood["status"] == "failed", flood
    assert "event flood: more than 20000 handlers" in flood["error"]["message"]
    assert flood["error"]["type"] != "internal"
    # The loop never suspends, so only the real-clock deadline the loop checks ends it.
    assert spin["status"] == "failed", spin
    assert spin["error"]["type"] == "timeout", spin["error"]
    assert fine["status"] == "ok" and fine["output"] == {"id": "ok"}
    assert health.status_code == 200 and health.json()["active"] == 0
