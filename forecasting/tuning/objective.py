"""One Optuna trial of ``forecasting tune``: config from the trial's parameters, fit, validation CRPS.

The objective is the CRPS of the predictive on the **validation** split, on the standard-scaled
data (the paper's scale: every channel weighs the same), from ``evaluation.samples`` samples on
``evaluation.max_windows`` evenly spaced windows with a fixed seed, so trials are compared on equal
noise. The optional second objective is the fit's wall-clock seconds (Pareto front).

Pruning: the training loop's per-epoch validation CRPS (``val_crps``, from ``inference.eval_samples``
samples) is reported at each epoch (:mod:`forecasting.tuning.hooks`); a trial the pruner stops ends
as PRUNED. Optuna cannot prune multi-objective studies (``Trial.report`` is single-objective), so
with ``train_seconds`` as second objective every trial trains to the end.

Failures are recorded on the trial as the user attribute ``error`` and end the trial as FAIL; the
study goes on with the next trial. User-fixable ones (:class:`ForecastingError`: a diverging ScoreVI
step, an impossible combination of values) return NaN, which Optuna records as FAIL without a
traceback; anything else (a bug, out-of-memory) is re-raised and the study, which catches every
``Exception``, logs its traceback.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from forecasting.core.errors import ForecastingError
from forecasting.tuning.space import SearchSpace, with_params

log = logging.getLogger(__name__)

# Test/validation metrics copied onto each trial (names of forecasting.evaluation.metrics).
REPORTED = ("crps", "coverage_90", "interval_width_90", "coverage_50", "mse", "mae")


@dataclass
class TrialRunner:
    """Runs trials of one study in one process (the data are loaded once).

    Args:
        base: the resolved base config as a raw dict (``dataset`` key removed).
        space: the search space and study settings.
        frame: the series to fit on.
        worker: ``host/index`` of this worker, recorded on each trial.
    """

    base: dict[str, Any]
    space: SearchSpace
    frame: Any
    worker: str = ""

    def __call__(self, trial: Any) -> float | tuple[float, float]:
        import optuna

        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except ForecastingError as exc:
            # A user-fixable problem (impossible combination, divergence): the message says it all,
            # so the trial fails without a traceback (Optuna records a NaN objective as FAIL).
            self._record(trial, exc)
            return float("nan") if not self.space.multi_objective else (float("nan"), float("nan"))
        except Exception as exc:  # noqa: BLE001 - a bug or resource error: FAIL with its traceback
            self._record(trial, exc)
            raise

    @staticmethod
    def _record(trial: Any, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".strip()
        trial.set_user_attr("error", reason[:2000])
        log.warning("trial %d failed: %s", trial.number, reason.splitlines()[0])

    def _run(self, trial: Any) -> float | tuple[float, float]:
        import optuna

        from forecasting.forecaster.backtest import evaluate_split
        from forecasting.core.config import from_dict
        from forecasting.forecaster.api import Forecaster
        from forecasting.forecaster.config import ForecasterConfig
        from forecasting.tuning.hooks import epoch_reporter

        if self.worker:
            trial.set_user_attr("worker", self.worker)
        params = self.space.suggest(trial)
        config = from_dict(ForecasterConfig, with_params(self.base, params))
        single = not self.space.multi_objective
        monitor_history: list[float] = []

        def on_epoch(epoch: int, phase: str, metrics: dict[str, float]) -> None:
            value = float(metrics.get("crps", float("nan")))
            monitor_history.append(value)
            if not single or not math.isfinite(value):
                return
            trial.report(value, epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({phase}): val_crps {value:.5g}")

        t0, c0 = time.perf_counter(), time.process_time()
        fc = Forecaster.fit(self.frame, config, progress=False, on_epoch=epoch_reporter(on_epoch))
        fit_seconds = time.perf_counter() - t0
        summary = fc.summary
        trial.set_user_attr("train_seconds", round(fit_seconds, 3))
        trial.set_user_attr("train_cpu_seconds", round(time.process_time() - c0, 3))
        trial.set_user_attr("epochs_run", int(summary.get("epochs_run", 0)) + int(summary.get("warm_start", {}).get("epochs_run", 0)))
        trial.set_user_attr("stop_reason", str(summary.get("stop_reason", "")))
        trial.set_user_attr("epoch_val_crps", [round(v, 6) for v in monitor_history])

        ev = self.space.evaluation
        windows = ev.max_windows or None
        val = evaluate_split(fc, self.frame, "val", ev.samples, seed=ev.seed, max_windows=windows)
        crps = float(val.metrics_scaled.get("crps", float("nan")))
        for key in REPORTED:
            if key in val.metrics_scaled:
                trial.set_user_attr(f"val_{key}", _num(val.metrics_scaled[key]))
        trial.set_user_attr("val_crps_original_scale", _num(val.metrics.get("crps")))
        trial.set_user_attr("val_windows", val.n_windows)
        if ev.test:
            test = evaluate_split(fc, self.frame, "test", ev.samples, seed=ev.seed, max_windows=windows)
            for key in REPORTED:
                if key in test.metrics_scaled:
                    trial.set_user_attr(f"test_{key}", _num(test.metrics_scaled[key]))
            trial.set_user_attr("test_windows", test.n_windows)
        if not math.isfinite(crps):
            raise ForecastingError(f"validation CRPS is {crps} (the fit produced non-finite forecasts)")
        log.info("trial %d: val_crps %.5g in %.1fs (%s)", trial.number, crps, fit_seconds, params)
        if single:
            return crps
        return crps, fit_seconds


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
