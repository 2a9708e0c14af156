"""A real browser: JupyterLab on localhost, Debian's Chromium driven by Playwright.

The moderation notebook is opened and run like a user would (Run All Cells, then the app's Run
button); the test asserts on what is on screen and saves screenshots under test-output/notebook/.
Never calls `playwright install`: it uses /usr/bin/chromium or skips with the reason.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS, REPO

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-output" / "notebook"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium); "
                       "`apt-get install -y chromium` (never `playwright install`)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _delete_sessions(base: str, token: str) -> None:
    # Closing the browser does not stop kernels; a cold kernel per test needs them gone.
    for session in _api(base, token, "/api/sessions"):  # type: ignore[union-attr]
        _api(base, token, f"/api/sessions/{session['id']}", method="DELETE")


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    root = tmp_path / "nb"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "bulk_moderation.ipynb", root)
    shutil.copytree(NOTEBOOKS / "data", root / "data")
    home = tmp_path / "jupyter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}  # kernel starts its sandbox
    env.update({name: str(home / sub) for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"))})
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # Otherwise a news pop-up covers the output area.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # The kernel runs in the copied folder (notebook-relative paths) on this test's interpreter.
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _api(base, token, f"/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.25)
        _delete_sessions(base, token)
        yield base, token, root
        _delete_sessions(base, token)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started, by our PID
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def test_moderation_notebook_in_jupyterlab(jupyterlab: tuple[str, str, Path]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token, root = jupyterlab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(f"{base}/lab/tree/bulk_moderation.ipynb?token={token}")
            page.wait_for_selector(".jp-NotebookPanel", state="visible", timeout=60_000)
            # A fresh JupyterLab may ask which kernel to use; the notebook's own (python3) is preselected.
            select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
            try:
                select.wait_for(state="visible", timeout=5_000)
                select.click()
            except sync_api.TimeoutError:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            app = page.locator(".jp-OutputArea-output .akool-moderation-app")
            run = page.locator(".jp-OutputArea-output button.akool-run")
            run.wait_for(state="visible", timeout=30_000)
            assert "SANDBOX" in app.locator(".akool-header").inner_text()
            estimate = app.locator(".akool-estimate").inner_text()
            assert "Valid" in estimate and "22" in estimate and "2.2 credits" in estimate
            page.wait_for_function("!document.querySelector('.jp-OutputArea-output button.akool-run').disabled")

            run.click()
            expect = sync_api.expect
            expect(app.locator(".akool-status")).to_contain_text("Finished: 22 completed, 1 failed, 1 rejected",
                                                                 timeout=60_000)
            rows = app.locator(".akool-results-table tbody tr")
            expect(rows).to_have_count(24)
            expect(app.locator(".akool-results-table .akool-conclusion-non-compliant")).to_have_count(5)
            expect(rows.nth(2)).to_contain_text("Non-Compliant")
            expect(rows.nth(2)).to_contain_text("worthless")
            expect(app.locator(".akool-progress .progress-bar")).to_have_attribute("style", re.compile(r"width: 100%"))
            expect(app.locator("svg.akool-chart")).to_have_count(2)

            page.locator(".jp-OutputArea-output button.akool-export").click()
            expect(app.locator(".akool-export-status")).to_contain_text("Wrote 24 rows", timeout=30_000)
            assert (root / "moderation-results.csv").exists()

            app.scroll_into_view_if_needed()
            app.screenshot(path=str(SHOTS / "moderation-app.png"))
            page.screenshot(path=str(SHOTS / "moderation-notebook.png"), full_page=True)
        except Exception as exc:
            # What the page looked like when it went wrong, next to the test's other screenshots.
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
            (SHOTS / "failure.txt").write_text(f"{type(exc).__name__}: {exc}\n")
            raise
        finally:
            browser.close()
    assert (SHOTS / "moderation-app.png").stat().st_size > 10_000
