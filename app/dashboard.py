"""Streamlit dashboard: upload a series, train ScoreVI-Koopa (or load a run), see forecast intervals and calibration.

Start it with ``forecasting dashboard`` (binds 127.0.0.1:8501) or
``streamlit run app/dashboard.py -- --runs-dir runs``. The page is a thin surface over the
public API — the data layer's reader/validation, ``Forecaster.fit/predict/save/load`` (training
runs in a background process, see :mod:`app.components.jobs`) and ``forecasting.forecaster.backtest`` —
and it reads and writes the same ``runs/<id>/`` directories as the CLI.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # `streamlit run app/dashboard.py` puts app/ on the path, not the repo
    sys.path.insert(0, str(_REPO))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit import runtime  # noqa: E402
from streamlit.runtime.scriptrunner import get_script_run_ctx  # noqa: E402

from app.components import data_source as ds  # noqa: E402
from app.components import serving, uploads  # noqa: E402
from app.components import settings as cfg  # noqa: E402
from app.components import views  # noqa: E402
from app.components.jobs import TrainJob, list_runs  # noqa: E402
from forecasting.core.errors import ForecastingError  # noqa: E402

RUNS_ENV = "FORECASTING_RUNS_DIR"
SAMPLE = "Built-in sample (vic_elec: half-hourly electricity demand)"
UPLOAD = "Upload a CSV or parquet file"
NONE = "(none)"
UPLOAD_FOLDER = "_upload_folder"  # session-state key of this session's uploads.SessionFolder
UPLOAD_SHOWN = "_upload_shown"  # session-state key: (stored path, name as uploaded) of the current upload
ss = st.session_state


def _options() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--runs-dir", default=os.environ.get(RUNS_ENV, "runs"))
    args, _ = p.parse_known_args(sys.argv[1:])
    return args


# ----------------------------------------------------------------------------------- cached work
@st.cache_resource(show_spinner="Reading the data ...", max_entries=16)
def _read(source: str, mapping: ds.Mapping, max_bytes: int) -> ds.Loaded:
    return ds.read_source(source, mapping, max_bytes)


@st.cache_resource(show_spinner="Loading the model ...", max_entries=8)
def _load_model(path: str, mtime: float):  # noqa: ARG001 - mtime: a re-saved artifact is a new cache entry
    from forecasting.forecaster.runs import load_forecaster

    return load_forecaster(path, device="auto")  # a run directory or an artifact, as `--model` takes


@st.cache_resource(show_spinner="Forecasting ...", max_entries=16)
def _forecast(run: str, digest: str, n_samples: int, _fc, _frame):
    from app.components.forecast import forecast_for

    return forecast_for(_fc, _frame, n_samples=n_samples, seed=0)


@st.cache_resource(show_spinner="Backtesting on the last part of the series ...", max_entries=16)
def _calibration(run: str, digest: str, max_windows: int, n_samples: int, _fc, _frame, _det):
    from app.components.calibration import run_calibration

    return run_calibration(_fc, _frame, deterministic=_det, max_windows=max_windows, n_samples=n_samples)


# ----------------------------------------------------------------------------------- sections
def data_section(max_mb: int):
    """Sidebar: source, column mapping, frequency, window -> (frame or None, DataSettings)."""
    st.sidebar.header("1 · Data")
    choice = st.sidebar.radio("Source", [SAMPLE, UPLOAD], key="source")
    source = None
    if choice == UPLOAD:
        up = st.sidebar.file_uploader(f"CSV or parquet file (up to {max_mb} MB)", type=list(ds.UPLOAD_TYPES),
                                      key="upload", max_upload_size=max_mb,
                                      help="wide: a time column + one column per series; long: item_id, timestamp, target")
        st.sidebar.caption(f"Size limit: {max_mb} MB per file (`forecasting dashboard --max-upload-mb N` changes it).")
        if up is None:
            ss.pop(UPLOAD_SHOWN, None)
            # Streamlit refuses an over-limit file in the browser and only marks it there (tooltip); the
            # server never sees it, so the limit is stated here, where it is read.
            st.info(f"Upload a CSV or parquet file in the sidebar (up to {max_mb} MB), or pick the built-in sample. "
                    f"A larger file is refused by the uploader (a red mark next to its name): start with "
                    f"`forecasting dashboard --max-upload-mb N` to raise the limit.")
            return None, None
        too_large = uploads.too_large_message(up.name, up.size, max_mb)
        if too_large:  # a file that reached the server anyway (another client, a changed limit)
            st.error(too_large)
            return None, None
        source = str(uploads.save(_session_uploads(), up.name, up.getvalue()))
        ss[UPLOAD_SHOWN] = (source, up.name)
    else:
        ss.pop(UPLOAD_SHOWN, None)
        source = ds.sample_source()
    max_bytes = max_mb * 1024 * 1024
    auto = _read(source, ds.Mapping(), max_bytes)
    with st.sidebar.expander("Column mapping and frequency", expanded=not auto.ok):
        # Reading options first: the time format, encoding and delimiter decide what the columns are
        # (the same options as `forecasting data validate/train --time-format/--encoding/--delimiter`).
        time_format = st.text_input(
            "Time format (optional)", value="", key=f"time_format_{source}",
            placeholder=f"detected; e.g. {ds.TIME_FORMAT_EXAMPLES[0][0]}",
            help="strftime format of the time column, as --time-format in the CLI; leave empty to detect it. "
                 "Examples: " + "; ".join(f"{f} reads {e}" for f, e in ds.TIME_FORMAT_EXAMPLES))
        encoding, delimiter = "utf-8", ""
        if ds.is_csv(source):
            encoding = st.text_input("Encoding", value="utf-8", key=f"encoding_{source}",
                                     help="text encoding of the file, as --encoding: " + ", ".join(ds.ENCODING_EXAMPLES))
            delimiter = st.text_input("Delimiter (optional)", value="", key=f"delimiter_{source}", placeholder="detected",
                                      help="as --delimiter: , ; | or tab; leave empty to detect it from the header")
        mapping = ds.Mapping(time_format=time_format.strip() or None, encoding=encoding.strip() or "utf-8",
                             delimiter=delimiter.strip() or None)
        if mapping != ds.Mapping():
            auto = _read(source, mapping, max_bytes)
        columns = ds.peek_columns(auto.path, mapping.encoding, mapping.delimiter) if auto.path is not None else []
        det = auto.detected
        if columns:
            time_col = st.selectbox("Time column", columns, index=columns.index(det.time_col) if det.time_col in columns else 0,
                                    key=f"time_col_{source}")
            item_opts = [NONE] + [c for c in columns if c != time_col]
            item_col = st.selectbox("Item id column (optional)", item_opts,
                                    index=item_opts.index(det.item_col) if det.item_col in item_opts else 0,
                                    key=f"item_col_{source}")
            item_col = None if item_col == NONE else item_col
            value_opts = [c for c in columns if c not in (time_col, item_col)]
            default_targets = [c for c in (det.target_cols or ()) if c in value_opts] or value_opts
            targets = st.multiselect("Target columns", value_opts, default=default_targets, key=f"targets_{source}")
            freq_in = st.text_input("Frequency (pandas alias)", value="", key=f"freq_{source}",
                                    placeholder=f"inferred: {det.freq or 'unknown'}",
                                    help="leave empty to use the inferred frequency; e.g. h, 30min, D, W-SUN")
            missing = st.selectbox("Missing values", ["error", "interpolate", "ffill"], key=f"missing_{source}",
                                   help="as --missing in the CLI: report them, or fill gaps and empty cells")
            mapping = ds.Mapping(time_col=time_col, item_col=item_col, target_cols=tuple(targets) or None,
                                 freq=freq_in.strip() or None, missing=missing, time_format=mapping.time_format,
                                 encoding=mapping.encoding, delimiter=mapping.delimiter)
            if not targets:
                st.warning("Pick at least one target column.")
    loaded = _read(source, mapping, max_bytes) if mapping != ds.Mapping() else auto
    st.sidebar.subheader("Window")
    c1, c2 = st.sidebar.columns(2)
    lookback = c1.number_input("Lookback L", min_value=4, max_value=2000, value=96, step=8, key="lookback")
    horizon = c2.number_input("Horizon H", min_value=1, max_value=1000, value=48, step=8, key="horizon")
    data_settings = cfg.DataSettings(lookback=int(lookback), horizon=int(horizon), freq=mapping.freq,
                                     reading=tuple(ds.data_keys(mapping, det).items()))  # saved in the run's config
    name = ss[UPLOAD_SHOWN][1] if choice == UPLOAD else source
    for p in loaded.problems:
        (st.warning if p.kind == "checksum" else st.error)(_shown(str(p)))
    if not loaded.ok:
        if not loaded.problems:
            st.error(f"{name}: no series could be read")
        return None, data_settings
    frames = loaded.frames
    frame = frames[0]
    ss.pop("all_items_source", None)
    if len(frames) > 1:
        items = [str(f.item_id) for f in frames]
        pick = st.sidebar.selectbox(f"Series to model ({len(items)} items)", items, key=f"item_{source}")
        frame = frames[items.index(pick)]
        if mapping.item_col or det.item_col:  # the Forecast tab can forecast every item with the run's model
            ss["all_items_source"] = {"path": str(loaded.path or source), "n": len(frames),
                                      "item_col": mapping.item_col or det.item_col,
                                      "time_col": mapping.time_col or det.time_col,
                                      "target_cols": mapping.target_cols or det.target_cols,
                                      "reading": {"time_format": mapping.time_format, "encoding": mapping.encoding,
                                                  "delimiter": mapping.delimiter}}
    problems = ds.window_problems(frame, data_settings.lookback, data_settings.horizon, data_settings.split_rule())
    start, end = str(frame.timestamps[0])[:19], str(frame.timestamps[-1])[:19]
    st.caption(f"**{name}**{f' · item {frame.item_id}' if frame.item_id else ''}: {frame.length:,} rows × "
               f"{frame.n_channels} series ({', '.join(frame.columns[:8])}{' ...' if frame.n_channels > 8 else ''}) · "
               f"frequency {frame.freq} · {start} → {end}")
    for p in problems:
        st.error(_shown(str(p)))
    if problems:
        return None, data_settings
    return frame, data_settings


def model_section(frame, data_settings, runs_dir: Path):
    """Sidebar: train a new run or load a saved one; starts jobs and sets ``ss.active``."""
    st.sidebar.header("2 · Model")
    mode = st.sidebar.radio("Model", ["Train ScoreVI-Koopa", "Load a saved run"], key="model_mode", label_visibility="collapsed")
    if mode == "Load a saved run":
        runs = list_runs(runs_dir)
        if not runs:
            st.sidebar.caption(f"No saved runs in {runs_dir} yet (`forecasting train` or the Train button writes them).")
            return
        labels = [f"{r['name']}" + (f" · {r['meta'].get('dataset')}" if r["meta"].get("dataset") else "") for r in runs]
        i = st.sidebar.selectbox("Run", range(len(runs)), format_func=lambda k: labels[k], key="run_pick")
        if st.sidebar.button("Load run", key="load_run"):
            r = runs[i]
            ss.active = {"path": str(r["path"]), "model": str(r["model"]),
                         "deterministic": str(r["deterministic"]) if r["deterministic"] else None,
                         "label": r["name"], "digest": r["meta"].get("data_digest")}
        return
    names = list(cfg.PRESETS)
    preset = st.sidebar.selectbox("Training budget", names, index=names.index(cfg.default_preset()), key="preset",
                                  help="quick ≈ under a minute, standard ≈ two minutes on a laptop CPU (ETTh2), "
                                       "thorough = more epochs (GPU); tiny = test setting")
    base = cfg.PRESETS[preset]
    compare = st.sidebar.checkbox("Compare with deterministic Koopa", value=base.deterministic, key="compare",
                                  help="also trains a deterministic Koopa on the same data for the CRPS comparison")
    with st.sidebar.expander("Advanced"):
        epochs = st.number_input("ScoreVI epochs", 1, 200, base.epochs, key=f"epochs_{preset}")
        budget = st.number_input("Time budget per phase (s)", 5, 3600, int(base.time_budget_s), key=f"budget_{preset}")
        samples = st.number_input("Predictive samples", 20, 1000, base.samples, step=20, key=f"samples_{preset}")
    train = cfg.with_overrides(base, epochs=int(epochs), time_budget_s=float(budget), samples=int(samples),
                               deterministic=bool(compare))
    job = ss.get("job")
    busy = job is not None and job.running()
    if st.sidebar.button("Train", type="primary", key="train", disabled=frame is None or busy):
        try:
            config = cfg.forecaster_config_dict(data_settings, train)
            from forecasting.core.config import from_dict
            from forecasting.forecaster.config import ForecasterConfig

            from_dict(ForecasterConfig, config)  # invalid settings -> the same message as the CLI, before any work
        except ForecastingError as exc:
            st.error(str(exc))
            return
        digest = cfg.frame_digest(frame)
        key = cfg.run_key(digest, config, train)
        cached = ss.setdefault("trained", {}).get(key)
        if cached and Path(cached["path"]).is_dir():
            ss.active = cached
            st.sidebar.info("Already trained with this data and these settings: showing that run.")
            return
        from forecasting.forecaster.runs import new_run_id

        run_id = new_run_id(f"dashboard-{frame.name}")
        det = cfg.deterministic_config_dict(config, train) if train.deterministic else None
        ss.job = TrainJob(frame, config, runs_dir, run_id, deterministic_config=det, val_windows=train.val_windows,
                          extra={"dataset": frame.name, "data_file": frame.meta.get("source"), "data_digest": digest,
                                 "key": key})
        ss.job_meta = {"key": key, "digest": digest, "label": run_id, "train": train}
        st.rerun()


def _cancel_job() -> None:
    """Cancel button callback: runs before the script reruns, so the page redraws without the job."""
    job: TrainJob | None = ss.get("job")
    if job is not None:
        job.cancel()
        job.cleanup()
    ss.job = None
    ss.pop("job_meta", None)
    ss.flash = "Training cancelled; no run directory was written."


def job_section(box) -> None:
    """Progress bar and Cancel button (in ``box``) while a job runs; on completion the run becomes active.

    Called last on the page: it polls until the worker ends (a widget click interrupts the
    poll and reruns the page, which resumes polling), then reruns the page to show the new run.
    """
    job: TrainJob | None = ss.get("job")
    if job is None:
        return
    if job.running():
        with box.container(border=True):
            st.markdown(f"**Training ScoreVI-Koopa** · run `{job.run_id}`")
            bar = st.progress(0.0, text="starting ...")
            st.button("Cancel training", key="cancel", on_click=_cancel_job)
        while job.running():
            prog = job.progress()
            bar.progress(prog.fraction, text=f"{prog.message} · {prog.elapsed_s:.0f} s")
            time.sleep(0.5)
    prog = job.progress()
    ss.job = None
    job.cleanup()
    meta = ss.pop("job_meta", {})
    if prog.state == "done" and prog.run_dir is not None:
        model = prog.run_dir / "model"
        det = prog.run_dir / "baselines" / "deterministic"
        active = {"path": str(prog.run_dir), "model": str(model), "deterministic": str(det) if det.is_dir() else None,
                  "label": prog.run_dir.name, "digest": meta.get("digest"), "train": meta.get("train")}
        ss.active = active
        if meta.get("key"):
            ss.setdefault("trained", {})[meta["key"]] = active
        st.rerun()
    elif prog.state == "cancelled":
        ss.flash = prog.message
        st.rerun()
    else:
        ss.train_error = f"Training failed: {prog.message}"
        st.rerun()


def results_section(frame, data_settings) -> None:
    active = ss.get("active")
    if not active:
        st.info("Train ScoreVI-Koopa or load a saved run (sidebar, step 2) to see the forecast and its calibration.")
        return
    if frame is None:
        st.warning("Fix the data problems above to see the forecast of the loaded run.")
        return
    import torch

    torch.set_num_threads(cfg.torch_threads())  # idle cores only (see settings.torch_threads)
    fc = _load_model(active["model"], Path(active["model"]).stat().st_mtime)
    det = None
    if active.get("deterministic"):
        det = _load_model(active["deterministic"], Path(active["deterministic"]).stat().st_mtime)
    train = active.get("train") or cfg.PRESETS[cfg.default_preset()]
    digest = cfg.frame_digest(frame)
    st.markdown(f"Run **{active['label']}** · {fc.method} · L={fc.lookback}, H={fc.horizon} · "
                f"{', '.join(fc.columns)} · on {fc.device}")
    if active.get("digest") and active["digest"] != digest:
        st.info("This run was trained on other data; the forecast continues the current series from its last "
                f"{fc.lookback} rows, and the backtest uses the current series' test split.")
    tab_f, tab_c, tab_r = st.tabs(["Forecast", "Calibration", "Run details"])
    with tab_f, _guard():  # a problem in one view leaves the others standing
        result = _forecast(active["model"], digest, train.samples, fc, frame)
        views.forecast_view(result, key=active["label"])
    if ss.get("all_items_source"):
        with tab_f, _guard():
            all_items_section(fc, active, train.samples)
    with tab_c, _guard():
        calib = _calibration(active["model"], digest, train.backtest_windows, train.samples, fc, frame, det)
        views.calibration_view(calib, key=active["label"])
    with tab_r:
        st.json({"run": active["path"], "summary": fc.summary}, expanded=False)


def all_items_section(fc, active: dict, n_samples: int) -> None:
    """Forecast every item of a long-format upload with the active run (the CLI's ``forecasting predict``)."""
    src = ss["all_items_source"]
    st.divider()
    st.markdown(f"**All {src['n']} items.** The run was trained on one item; it can forecast every item of the "
                f"upload, each from its own last {fc.lookback} rows (as `forecasting predict` does).")
    key = (active["model"], src["path"], src["item_col"], src["time_col"], src["target_cols"], str(src.get("reading")),
           n_samples)
    if st.button(f"Forecast all {src['n']} items", key="forecast_all_items"):
        from app.components.forecast import forecast_all_items

        with st.spinner(f"Forecasting {src['n']} items ..."):
            ss["all_items_result"] = (key, forecast_all_items(fc, src["path"], src["item_col"], src["time_col"],
                                                              src["target_cols"], n_samples=n_samples,
                                                              reading=src.get("reading")))
    done = ss.get("all_items_result")
    if not done or done[0] != key:
        return
    res = done[1]
    st.caption(f"{res.items} items forecast in {res.seconds:.1f} s"
               + (f"; {len(res.skipped)} skipped" if res.skipped else ""))
    if res.skipped:
        with st.expander(f"Skipped items ({len(res.skipped)})"):
            st.dataframe(pd.DataFrame([(item, _shown(why)) for item, why in res.skipped], columns=["item", "reason"]),
                         hide_index=True)
    if res.items:
        st.download_button(f"Download forecasts of all {res.items} items (CSV)", res.csv,
                           file_name="forecast_all_items.csv", mime="text/csv", key="download_all_items")


# ----------------------------------------------------------------------------------- uploads
def _session_uploads() -> Path:
    """This browser session's private upload folder (0700), removed when the session's state goes."""
    ctx = get_script_run_ctx()
    folder = uploads.session_folder(uploads.upload_root(), ctx.session_id if ctx is not None else "local")
    guard = ss.get(UPLOAD_FOLDER)
    if guard is None or guard.folder != folder:
        ss[UPLOAD_FOLDER] = uploads.SessionFolder(folder)  # its finalizer removes the folder with the session
    return folder


def _session_active(session_id: str) -> bool:
    return runtime.get_instance().is_active_session(session_id)


def _sweep_uploads() -> None:
    """Remove upload folders of ended sessions and of dead (or long-gone) servers.

    Runs on every page load — the first one is the server start's. Streamlit has no public
    end-of-session hook, so this catches sessions whose state outlived them; without a runtime
    (AppTest) no session of this process counts as ended.
    """
    uploads.sweep_all(_session_active if runtime.exists() else None)


def _shown(text: str) -> str:
    """``text`` naming the current upload as the user named it, never by its path on the server."""
    stored, name = ss.get(UPLOAD_SHOWN, (None, ""))
    return uploads.redact(text, stored, name or "the upload", uploads.upload_root()) if stored else text


def main() -> None:
    st.set_page_config(page_title="Forecasting dashboard", layout="wide")
    # No login: say so on the page when the server is reachable from the network or reports usage.
    for warning in serving.exposure_warnings(st.get_option("server.address"),
                                             bool(st.get_option("browser.gatherUsageStats"))):
        st.warning(warning)
    with _guard():
        _sweep_uploads()
    args = _options()
    runs_dir = Path(args.runs_dir).expanduser()
    max_mb = int(st.get_option("server.maxUploadSize"))
    st.title("Probabilistic forecasting — Bayesian Koopa (ScoreVI)")
    st.caption("Upload a series, train ScoreVI-Koopa or load a saved run, and read its forecast intervals and "
               "calibration. Same library, configs and `runs/` as the `forecasting` CLI.")
    frame, data_settings = None, None
    with _guard():
        frame, data_settings = data_section(max_mb)
    progress_box = st.container()  # filled by job_section (which runs last), drawn above the results
    with _guard():
        model_section(frame, data_settings, runs_dir)
        if ss.get("flash"):
            st.warning(ss.pop("flash"))
        if ss.get("train_error"):
            st.error(ss.pop("train_error"))
        results_section(frame, data_settings)
    with st.sidebar:
        st.divider()
        views.device_panel()
        st.caption(f"Runs directory: `{runs_dir}`")
    with _guard():
        job_section(progress_box)  # last: it waits for the worker


@contextmanager
def _guard():
    """Nothing crashes the page: user errors show their one-line message, bugs an error plus the traceback.
    (Streamlit's rerun/stop signals are BaseExceptions and pass through.)"""
    try:
        yield
    except ForecastingError as exc:
        st.error(_shown(str(exc)))
    except Exception as exc:  # noqa: BLE001
        st.error(_shown(f"internal error: {type(exc).__name__}: {exc}"))
        with st.expander("Traceback"):
            st.code(_shown(traceback.format_exc()))


main()
