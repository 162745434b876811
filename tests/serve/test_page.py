"""The web page of `cxpar serve` in a real headless browser: Debian's Chromium driven by
Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import Served, serving

CHROMIUM = os.environ.get("CXPAR_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PROGRAM = """
/// @external
on input.record (e) {
    var review = think {
        prompt: "Review " + e.id,
        tone: tone.check,
        risk: risk.check,
        timeout: 6000
    };
    emit output.record { id: e.id, tone: review.tone, failed: keys(review._errors || {}) };
}
on tone.check (e) { await { durationMs: 200 }; return "calm"; }
on risk.check (e) {
    await { durationMs: 100 };
    if (len(e.prompt) > 12) { var broken = e.no.such.field; }
    return "low";
}
"""


def _playwright() -> object:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    path = tmp_path_factory.mktemp("page") / "review.cx"
    path.write_text(PROGRAM, encoding="utf-8")
    with serving(path, "--latency", "think=2500", "--token", "page-token") as s:
        yield s


@pytest.fixture(scope="module")
def page(server: Served) -> Iterator[object]:
    sync_playwright = _playwright()
    profile = tempfile.mkdtemp(prefix="cxpar-chromium-")
    try:
        with sync_playwright() as pw:  # type: ignore[operator]
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                pg = ctx.new_page()
                pg.set_default_timeout(30_000)
                pg.goto(server.url + "/")
                pg.fill("#token", "page-token")
                pg.click("#token-form button")
                yield pg
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_graph_renders_with_the_critical_path(page: object) -> None:
    pg = page  # type: ignore[assignment]
    pg.wait_for_selector("#graph svg .gnode")
    labels = pg.locator("#graph .gnode text").all_text_contents()
    assert any("think" in t for t in labels) and any("tone.check" in t for t in labels)
    critical = pg.locator("#graph .gnode.critical text").all_text_contents()
    assert any("think" in t for t in critical)
    assert not any("risk.check" in t for t in critical)  # off the critical path
    assert pg.locator("#graph path.gedge.critical").count() >= 3


def test_a_run_started_through_the_api_appears_and_completes_live(page: object,
                                                                  server: Served) -> None:
    pg = page  # type: ignore[assignment]
    auth = {"Authorization": "Bearer page-token"}
    rid = httpx.post(server.url + "/v1/runs?wait=false", json={"id": "x"}, headers=auth,
                     timeout=30).json()["id"]
    row = pg.locator(f'#runs tbody tr[data-id="{rid}"]')
    row.wait_for()
    row.click()
    # live: the think call is on the timeline before the run has finished
    pg.wait_for_selector('#timeline .bar.call.open')
    pg.wait_for_selector(f'#runs tbody tr[data-id="{rid}"][data-status="ok"]')
    pg.wait_for_selector("#run-status.status-ok")
    assert pg.locator("#timeline .bar.branch").count() == 2
    assert pg.locator("#timeline .bar.join").count() >= 1
    assert '"id": "x"' in pg.inner_text("#run-output")
    # a call's request and answer on click
    pg.locator("#timeline .bar.call").first.click()
    assert "Review x" in pg.inner_text("#detail .request")
    assert "[think] Review x" in pg.inner_text("#detail .answer")


def test_a_failed_branch_shows_its_errors(page: object, server: Served) -> None:
    pg = page  # type: ignore[assignment]
    pg.fill("#record", '{"id": "long-enough-to-fail"}')
    pg.click("#new-run button")
    # the branch's runtime error fails the run (as it fails a batch record) …
    pg.wait_for_selector("#run-status.status-failed")
    box = pg.locator('#run-errors .error-box[data-event="thinking.error"]')
    box.wait_for()
    text = box.inner_text()
    # … and the call's `_errors` name the failed `risk` branch and why
    assert "risk" in text and "cannot read property `such` of null" in text
    import json

    assert json.loads(pg.inner_text("#run-output"))[0]["failed"] == ["risk"]
    assert pg.locator("#timeline .bar.branch.failed").count() == 1
    pg.screenshot(path=str(Path(tempfile.gettempdir()) / "cxpar-serve-page.png"), full_page=True)
