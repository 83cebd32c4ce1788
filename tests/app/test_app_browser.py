"""The dashboard in a real browser: start it on 127.0.0.1 in a subprocess, upload a CSV with Debian's
chromium through Playwright, train (tiny preset), wait for the fan chart and the calibration view,
and save screenshots under ``test-artifacts/``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app import browser  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.browser
def test_upload_train_and_see_forecast_in_chromium(tmp_path):
    if not Path(browser.CHROMIUM).exists():
        pytest.skip(f"{browser.CHROMIUM} is absent: install it with `apt-get install -y chromium` "
                    "(scripts/ensure_chromium.sh does it in CI); Playwright's own download does not work offline")
    sync_api = pytest.importorskip("playwright.sync_api")
    n = 1200
    t = pd.date_range("2024-01-01", periods=n, freq="h")
    rng = np.random.default_rng(1)
    hours = np.arange(n)
    csv = tmp_path / "shop_sales.csv"
    pd.DataFrame({"timestamp": t, "sales": 50 + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 2, n),
                  "visitors": 200 + 40 * np.cos(2 * np.pi * hours / 24) + rng.normal(0, 8, n)}).to_csv(csv, index=False)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser.serve(tmp_path / "runs", preset="tiny", log_path=tmp_path / "server.log") as url, \
            sync_api.sync_playwright() as pw:
        chromium = browser.launch(pw)
        page = chromium.new_page(viewport={"width": 1400, "height": 1400})
        page.set_default_timeout(60_000)
        try:
            browser.upload_and_train(page, url, csv, train_timeout_s=240)
            page.screenshot(path=str(ARTIFACTS / "browser_forecast.png"), full_page=True)
            # the fan chart has history, bands and the median; the quantile table is there
            assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 5
            assert page.get_by_text("Download forecast (CSV, all series)").is_visible()
            browser.show_tab(page, "Calibration")
            page.get_by_text("Reliability diagram").first.wait_for(timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "browser_calibration.png"), full_page=True)
            assert not browser.error_texts(page)
            # a long run can be cancelled from the page: progress bar + Cancel, no run directory left
            page.get_by_text("Advanced").click()
            for label, value in (("ScoreVI epochs", "200"), ("Time budget per phase (s)", "600")):
                box = page.get_by_label(label)
                box.fill(value)
                box.press("Enter")
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_role("button", name="Cancel training").click(timeout=60_000)
            page.get_by_text("Training cancelled").wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "browser_cancelled.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), full_page=True)
            raise
        finally:
            chromium.close()
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "model" / "manifest.json").is_file()  # the cancelled run left nothing
