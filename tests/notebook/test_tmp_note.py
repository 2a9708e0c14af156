import asyncio, pandas as pd, pytest
from akool_flows.notebook import ModerationApp
from tests.notebook.conftest import wait_until

@pytest.mark.parametrize("attempt", range(4))
async def test_note_after_cancel(sandbox, tmp_path, attempt):
    sandbox.configure(latency=0.002)
    df = pd.DataFrame({"comment": [f"comment number {i}" for i in range(3000)]})
    app = ModerationApp(df, content_column="comment", env=sandbox.env(), ledger=tmp_path / "l.sqlite", concurrency=8)
    app.run_button.click()
    await wait_until(lambda: app.progress is not None and app.progress.submitted >= 300 + attempt * 200, timeout=60)
    app.cancel_button.click()
    await app.wait(timeout=60)
    html = app._estimate_html.value
    print(app.status, app.status_text)
    assert "already knows" in html, html
