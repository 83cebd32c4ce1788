"""``forecasting dashboard``: start the Streamlit dashboard (bound to 127.0.0.1 unless told otherwise).

The app lives in ``app/dashboard.py`` of a source checkout (``pip install -e ".[app]"``); this
command only runs ``streamlit run`` on it with the server options set, so
``forecasting dashboard`` and ``streamlit run app/dashboard.py`` show the same page.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

from forecasting.core.errors import ForecastingError

APP = Path(__file__).resolve().parents[3] / "app" / "dashboard.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="start the Streamlit dashboard (upload data, forecast, calibration)",
                       description="Start the Streamlit dashboard on http://127.0.0.1:PORT. Upload a CSV/parquet file "
                                   "(or use the built-in sample), train ScoreVI-Koopa or load a run from --runs-dir, "
                                   "and see forecast intervals and calibration. Ctrl-C stops it.")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default %(default)s: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--runs-dir", default="runs", help="where runs are listed and written (default %(default)s/)")
    p.add_argument("--max-upload-mb", type=int, default=200, help="largest file the upload accepts, in MB (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the streamlit command instead of running it")
    p.set_defaults(func=run)


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line for ``args``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
            "--server.maxUploadSize", str(args.max_upload_mb), "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal",
            "--", "--runs-dir", str(Path(args.runs_dir).expanduser().resolve())]


def run(args: argparse.Namespace) -> int:
    if not APP.is_file():
        raise ForecastingError(f"the dashboard app is not installed ({APP} is missing); run from a source checkout "
                               "(git clone ...; pip install -e '.[app]')")
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise ForecastingError("the dashboard needs streamlit and plotly: pip install 'forecasting[app]'")
    if args.port < 1 or args.port > 65535:
        raise ForecastingError(f"--port must be between 1 and 65535, got {args.port}")
    if args.max_upload_mb < 1:
        raise ForecastingError(f"--max-upload-mb must be >= 1, got {args.max_upload_mb}")
    cmd = streamlit_command(args)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    print(f"dashboard: http://{args.host}:{args.port}  (Ctrl-C stops it)", file=sys.stderr)
    proc = subprocess.Popen(cmd, env=dict(os.environ))

    def _stop(signum, frame):  # noqa: ARG001 - a terminated `forecasting dashboard` stops its server too
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the server as well; give it a moment to close
        try:
            return proc.wait(timeout=10) or 130
        except subprocess.TimeoutExpired:
            proc.terminate()
            return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
