"""A real browser: JupyterLab on localhost, Debian's Chromium driven by Playwright.

Notebooks are opened and run like a user would (Run All Cells, then the app's buttons); each test
asserts on what is on screen and saves screenshots under test-output/notebook/. One JupyterLab
serves the module; every test gets a cold kernel. Never calls `playwright install`: it uses
/usr/bin/chromium or skips with the reason.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import NOTEBOOKS, REPO
from .lab import CHROMIUM, Lab, jupyterlab, launch, open_notebook, run_all, write_notebook

SHOTS = REPO / "test-output" / "notebook"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium); "
                       "`apt-get install -y chromium` (never `playwright install`)"),
]

# A sandbox in the kernel whose jobs take a while (cancel) or no time (big grids).
_SANDBOX = "from akool_flows.notebook import shared_sandbox\nshared_sandbox().configure({})"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "nb"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "bulk_moderation.ipynb", root)
    shutil.copytree(NOTEBOOKS / "data", root / "data")
    with jupyterlab(root, tmp / "jupyter", tmp / "jupyterlab.log") as server:
        yield server


@pytest.fixture
def page(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab.delete_sessions()  # a cold kernel per test
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
        pg = context.new_page()
        try:
            yield pg
        finally:
            # The whole page as the test left it: what went wrong, when something did.
            pg.screenshot(path=str(SHOTS / f"page-{request.node.name}.png"), full_page=True)
            browser.close()
    lab.delete_sessions()


def expect() -> Any:
    return pytest.importorskip("playwright.sync_api").expect


def _app(page: Any, css: str = ".akool-app", nth: int = 0) -> Any:
    return page.locator(f".jp-OutputArea-output {css}").nth(nth)


def _run_ready(app: Any) -> Any:
    run = app.locator("button.akool-run")
    expect()(run).to_be_enabled(timeout=60_000)
    return run


def _shot(page: Any, app: Any, name: str) -> None:
    app.scroll_into_view_if_needed()
    app.screenshot(path=str(SHOTS / f"{name}.png"))


def test_moderation_notebook_run_export_and_download(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "bulk_moderation.ipynb")
    run_all(page)
    app = _app(page, ".akool-moderation-app")
    run = _run_ready(app)
    assert "SANDBOX" in app.locator(".akool-header").inner_text()
    estimate = app.locator(".akool-estimate").inner_text()
    assert "Valid" in estimate and "22" in estimate and "2.2 credits" in estimate
    # Under Run All the results cells say they wait for the run.
    expect()(page.locator(".akool-waiting").first).to_contain_text("Waiting for the batch")

    run.click()
    expect()(app.locator(".akool-status")).to_contain_text("Finished: 22 completed, 1 failed, 1 rejected",
                                                          timeout=60_000)
    grid = app.locator("table.dataTable tbody tr")
    expect()(grid).to_have_count(24)
    expect()(app.locator("table.dataTable .akool-conclusion-non-compliant")).to_have_count(3)
    header = app.locator(".dt-scroll-head th").all_inner_texts()
    assert header[:4] == ["#", "comment_id", "comment", "channel"]  # the user's columns first
    expect()(app.locator(".akool-progress .progress-bar")).to_have_attribute("style", re.compile(r"width: 100%"))
    # The cells below filled in when the run ended.
    expect()(page.locator(".akool-when-done").first).to_contain_text("c005", timeout=30_000)
    # Nothing overflows a 1,400-px window.
    assert page.evaluate("document.querySelector('.akool-app').scrollWidth <= "
                         "document.querySelector('.akool-app').clientWidth + 1")

    app.locator("button.akool-export").click()
    expect()(app.locator(".akool-export-status")).to_contain_text("Wrote 24 rows", timeout=30_000)
    link = app.locator("a.akool-download")
    with page.expect_download(timeout=30_000) as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "moderation-results.csv"
    assert len(__import__("pandas").read_csv(download.path())) == 24
    assert (lab.root / "moderation-results.csv").stat().st_mode & 0o044 == 0o044  # others may read it
    _shot(page, app, "moderation-app")
    page.screenshot(path=str(SHOTS / "moderation-notebook.png"), full_page=True)


def test_estimate_unknown_price_field_errors_and_rerun_split(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "estimate.ipynb", """
import pandas as pd
from akool_flows.notebook import CatalogTranslationApp, ModerationApp
catalog = pd.read_csv("data/catalog.csv")
CatalogTranslationApp(catalog, targets=["fr"])""", """
comments = pd.read_csv("data/comments.csv")
app = ModerationApp(comments, content_column="comment", language="en")
app.limit.value = 5
app""")
    open_notebook(page, lab, "estimate.ipynb")
    run_all(page)
    catalog = _app(page, ".akool-translation-app")
    new_spend = catalog.locator(".akool-estimate-new")
    expect()(new_spend).to_contain_text("unknown", timeout=60_000)
    assert "0 credits" not in new_spend.inner_text() and "rows of a kind" in new_spend.inner_text()
    expect()(catalog.locator(".akool-probe")).to_be_visible()

    app = _app(page, ".akool-moderation-app")
    run = _run_ready(app)
    # A wrong language code shows at the field, and Run is off (0 valid rows).
    language = app.locator(".akool-language input")
    language.fill("english")
    language.press("Enter")
    expect()(app.locator(".akool-field-error").nth(1)).to_contain_text("ISO-639-1", timeout=30_000)
    expect()(run).to_be_disabled()
    _shot(page, app, "field-errors")
    language.fill("en")
    language.press("Enter")
    run = _run_ready(app)
    run.click()
    expect()(app.locator(".akool-status")).to_contain_text("Finished: 5 completed", timeout=60_000)
    rows = app.locator(".akool-limit input")
    rows.fill("0")
    rows.press("Enter")
    estimate = app.locator(".akool-estimate")
    expect()(estimate).to_contain_text("Already paid", timeout=30_000)
    expect()(estimate).to_contain_text("0.5 credits (earlier runs; not charged again)")
    expect()(app.locator(".akool-estimate-new")).to_contain_text("1.7 credits")
    _run_ready(app).click()
    status = app.locator(".akool-status")
    expect()(status).to_contain_text("Finished: 22 completed", timeout=60_000)
    expect()(status).to_contain_text("1.6 credits new")
    expect()(status).to_contain_text("0.5 already paid")
    expect()(app.locator(".akool-summary")).to_contain_text("New this run")
    _shot(page, app, "rerun-split")


def test_cancel_tells_one_story(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "cancel.ipynb", _SANDBOX.format("job_seconds=4, latency=0.25"), """
import pandas as pd
from akool_flows.notebook import ModerationApp
app = ModerationApp(pd.read_csv("data/comments.csv"), content_column="comment", language="en", concurrency=1)
app""")
    open_notebook(page, lab, "cancel.ipynb")
    run_all(page)
    app = _app(page, ".akool-moderation-app")
    _run_ready(app).click()
    expect()(app.locator(".akool-progress-text")).to_contain_text(re.compile(r"\b[3-9] jobs created"), timeout=60_000)
    app.locator("button.akool-cancel").click()
    status = app.locator(".akool-status")
    expect()(status).to_contain_text("Cancelled:", timeout=60_000)
    text = status.inner_text()
    running = int(re.search(r"(\d+) running \(not waited for\)", text).group(1))
    not_sent = int(re.search(r"(\d+) cancelled \(not sent\)", text).group(1))
    assert running >= 3 and not_sent >= 1 and "timed out" not in text and "Run again to collect the rest" in text
    # The grid's header lines up with its cells (DataTables' scrolling header is a separate table).
    head_x = app.locator(".dt-scroll-head th", has_text="outcome").bounding_box()["x"]
    cell_x = app.locator("table.dataTable tbody tr").first.locator("td").nth(6).bounding_box()["x"]
    assert abs(head_x - cell_x) < 2
    # The same numbers in the grid, the progress line and the summary.
    expect()(app.locator("table.dataTable .akool-outcome-submitted")).to_have_count(min(running, 25))
    assert f"{running} running (not waited for)" in app.locator(".akool-progress-text").inner_text()
    summary = app.locator(".akool-summary").inner_text()
    assert re.search(rf"running \(not waited for\)\s+{running}\b", summary)
    assert re.search(rf"cancelled \(not sent\)\s+{not_sent}\b", summary)
    expect()(app.locator(".akool-estimate")).to_contain_text("already knows")
    _shot(page, app, "cancelled")


def test_grid_sorts_searches_and_pages_over_ten_thousand_rows(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "grid.ipynb", _SANDBOX.format("job_seconds=0.05, queue_seconds=0.01"), """
import pandas as pd
from akool_flows.notebook import ModerationApp
# Repeated comments (as in real feeds): each distinct text is sent once, every row gets its verdict.
df = pd.DataFrame({"post_id": [f"p{i:05d}" for i in range(10_000)],
                   "text": [f"a comment about product {i % 100}" for i in range(10_000)]})
df.loc[4242, "text"] = "I will come to your office with a knife"
app = ModerationApp(df, content_column="text", language="en", concurrency=64, poll_interval=0.2)
app""")
    open_notebook(page, lab, "grid.ipynb")
    run_all(page)
    app = _app(page, ".akool-moderation-app")
    _run_ready(app).click()
    expect()(app.locator(".akool-status")).to_contain_text("Finished: 10,000 completed", timeout=240_000)
    info = app.locator(".dt-info")
    expect()(info).to_contain_text("of 10,000 entries", timeout=60_000)
    # Paging: the last page holds the last rows.
    app.locator(".dt-paging-button.last").click()
    expect()(info).to_contain_text("9,976 to 10,000 of 10,000")
    expect()(app.locator("table.dataTable tbody tr").last).to_contain_text("p09999")
    # Sort: by the user's id, descending.
    head = app.locator(".dt-scroll-head th", has_text="post_id")  # scrollX: the visible header row
    head.click()
    expect()(head).to_have_attribute("aria-sort", "ascending")
    head.click()
    expect()(head).to_have_attribute("aria-sort", "descending")
    expect()(info).to_contain_text("1 to 25 of 10,000")  # a new order starts on page 1
    expect()(app.locator("table.dataTable tbody tr").first).to_contain_text("p09999")
    # Search (what export writes): one row.
    search = app.locator(".akool-search input")
    search.fill("knife")
    search.press("Enter")
    expect()(info).to_contain_text("1 to 1 of 1 ", timeout=30_000)
    expect()(app.locator("table.dataTable tbody tr").first).to_contain_text("Non-Compliant")
    expect()(app.locator(".akool-shown")).to_contain_text("1 of 10,000 rows shown")
    _shot(page, app, "grid-10000")


def test_media_preview_plays_and_shows_before_after(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "media.ipynb", _SANDBOX.format("job_seconds=0.3"), """
import pandas as pd
from akool_flows.api import AkoolClient, KINDS
from akool_flows.notebook import BatchApp, shared_sandbox
client = AkoolClient.from_env(shared_sandbox().env())
image = client.wait("image_generate", client.submit("image_generate", prompt="a lighthouse").job_id).result_url
swap = pd.DataFrame({"modifyImage": [image]})
BatchApp(swap, "faceswap_image", constants={k: v for k, v in KINDS["faceswap_image"].example.items()
                                            if k != "modifyImage"})""", """
clips = pd.DataFrame({"video_url": ["https://example.com/a.mp4?duration=3"],
                      "audio_url": ["https://example.com/a.mp3?duration=3"]})
BatchApp(clips, "lipsync")""")
    open_notebook(page, lab, "media.ipynb")
    run_all(page)
    swap, lipsync = _app(page, ".akool-faceswap_image-app"), _app(page, ".akool-lipsync-app")
    _run_ready(swap).click()
    _run_ready(lipsync).click()
    expect()(swap.locator(".akool-status")).to_contain_text("Finished: 1 completed", timeout=60_000)
    expect()(lipsync.locator(".akool-status")).to_contain_text("Finished: 1 completed", timeout=60_000)
    # Face swap: the input and the result side by side, both real images.
    pair = swap.locator(".akool-before-after")
    expect()(pair.locator("img.akool-before")).to_have_count(1)
    pair.scroll_into_view_if_needed()  # thumbnails load lazily: only once on screen
    page.wait_for_function("[...document.querySelectorAll('.akool-before-after img')]"
                           ".every(i => i.complete && i.naturalWidth === 256)", timeout=30_000)
    _shot(page, swap, "before-after")
    # Lip sync: a player that loads nothing until asked, then plays.
    video = lipsync.locator("video.akool-player")
    expect()(video).to_have_attribute("preload", "none")
    video.evaluate("v => v.play()")
    page.wait_for_function("document.querySelector('.akool-lipsync-app video.akool-player').readyState >= 2",
                           timeout=30_000)
    assert video.evaluate("v => v.videoWidth") == 128
    _shot(page, lipsync, "video-preview")
