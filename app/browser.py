"""Drive the dashboard in a real browser (Debian's chromium through Playwright): the browser test and the screenshots.

``python app/browser.py --csv ../shared/data/ETTh2.csv --out docs/screenshots`` starts the app on a
free 127.0.0.1 port, uploads the file as a user would, trains with the default preset, waits for
the forecast chart and the calibration view and saves ``forecast.png`` and ``calibration.png``.
Playwright's own browser download does not work offline, so ``/usr/bin/chromium`` is used.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app" / "dashboard.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(runs_dir: str | Path, preset: str | None = None, port: int | None = None,
          log_path: str | Path | None = None, timeout: float = 90.0) -> Iterator[str]:
    """Run the dashboard on ``127.0.0.1:<free port>`` in a subprocess; yield its URL; stop it after."""
    port = port or free_port()
    env = dict(os.environ)
    if preset:
        env["FORECASTING_DASHBOARD_PRESET"] = preset
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--client.toolbarMode", "minimal",
           "--", "--runs-dir", str(runs_dir)]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited with code {proc.returncode} before serving (log: {log_path})")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"the dashboard did not answer on {url} within {timeout:.0f} s (log: {log_path})")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def launch(playwright):
    """Headless Debian chromium."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def upload_and_train(page, url: str, csv_path: str | Path, train_timeout_s: float = 600.0) -> None:
    """Open the page, upload ``csv_path``, press Train and wait for the forecast chart.

    Raises:
        RuntimeError: the page shows an error (its text is in the message) or no chart came in time.
    """
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("Upload a CSV or parquet file").click()
    page.locator("input[type='file']").set_input_files(str(csv_path))
    # The data summary ("<file>: N rows × C series ...") appears once the upload has been read and validated.
    summary = page.get_by_text(re.compile(re.escape(Path(csv_path).name) + r".*rows ×")).first
    _wait_or_fail(page, lambda: summary.is_visible(), 120.0, "the data summary")
    page.get_by_role("button", name="Train", exact=True).click()
    chart = page.locator(".js-plotly-plot .scatterlayer").first
    _wait_or_fail(page, lambda: chart.is_visible(), train_timeout_s, "the forecast chart")


def _wait_or_fail(page, done, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if done():
            return
        errors = error_texts(page)
        if errors:
            raise RuntimeError(f"the page shows an error while waiting for {what}: {errors}")
        page.wait_for_timeout(500)
    raise RuntimeError(f"{what} did not appear within {timeout_s:.0f} s")


def show_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(1500)  # let plotly lay the newly visible charts out


def error_texts(page) -> list[str]:
    """Texts of error boxes and exceptions on the page."""
    return [e.inner_text() for e in page.locator("[data-testid='stAlertContentError'], [data-testid='stException']").all()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    p.add_argument("--runs-dir", default=str(REPO / "runs"))
    p.add_argument("--preset", default=None)
    p.add_argument("--log", default=None)
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with serve(args.runs_dir, args.preset, log_path=args.log) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1500, "height": 1350})
        page.set_default_timeout(60_000)
        try:
            upload_and_train(page, url, args.csv)
        except Exception:
            page.screenshot(path=str(out / "failure.png"), full_page=True)
            raise
        t_forecast = time.time() - t0
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "forecast.png"), full_page=True)
        show_tab(page, "Calibration")
        page.locator("[data-testid='stPlotlyChart']").nth(2).wait_for(timeout=300_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "calibration.png"), full_page=True)
        errors = error_texts(page)
        browser.close()
    print(f"forecast view after {t_forecast:.0f} s, calibration view after {time.time() - t0:.0f} s; errors: {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
