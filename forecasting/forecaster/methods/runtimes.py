"""Inference methods behind one interface: fit on prepared data, draw predictive samples, save/restore.

| method | training | predictive samples |
|---|---|---|
| ``scorevi`` / ``advi`` | optional MAP warm start, then engine updates (:class:`VariationalTask`) | θ_s ~ q, ``f(x; θ_s)`` + noise |
| ``mc_dropout`` | Gaussian/Student-t NLL (:class:`PointTask`) | dropout on, ``f_s(x)`` + noise |
| ``deterministic`` | Gaussian/Student-t NLL | ``f(x)`` + noise |
| ``conformal`` | MSE (the paper's) | ``f(x)`` ± split-conformal half-widths |

Every runtime returns samples on the *scaled* data, ``[S, N, H, C]``; the forecaster undoes the
scaling.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from forecasting.bayes.config import FamilyKind
from forecasting.bayes.flat import FlatParams
from forecasting.bayes.priors import GaussianPrior
from forecasting.forecaster.methods.conformal import ConformalCalibration
from forecasting.data.windows import PreparedData
from forecasting.core.errors import ForecastingError
from forecasting.forecaster.config import ForecasterConfig
from forecasting.forecaster.methods import engine
from forecasting.forecaster.methods.params import select_parameters
from forecasting.forecaster.methods.point_task import PointTask
from forecasting.forecaster.methods.predictive import SampledForward, repeated_forward
from forecasting.forecaster.methods.variational_task import VariationalTask
from forecasting.models.heads import Likelihood, channel_scales, fit_scale, shrink_log_scale
from forecasting.training import FitResult, StepInfo, TrainConfig, fit, iterate_batches

logger = logging.getLogger(__name__)


@dataclass
class FitContext:
    """What a runtime needs to train."""

    config: ForecasterConfig
    model: nn.Module
    likelihood: Likelihood
    data: PreparedData
    device: torch.device
    run_dir: Path | None = None
    progress: bool = False
    resume: bool = False
    on_epoch: Callable[[str, dict[str, Any]], None] | None = None  # (phase, epoch record), see Forecaster.fit
    on_step: Callable[[str, StepInfo], None] | None = None  # (phase, step info), see Forecaster.fit


def fit_summary(result: FitResult) -> dict[str, Any]:
    """Plain-Python training summary for the artifact."""
    last = result.history[-1] if result.history else {}
    best = next((r for r in result.history if r.get("epoch") == result.best_epoch), {})
    return {
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 3),
        "seconds_per_epoch": round(result.seconds_per_epoch, 3),
        "best_validation": {k: v for k, v in best.items() if k.startswith("val_")},
        "last_validation": {k: v for k, v in last.items() if k.startswith("val_")},
    }


def _train_config(ctx: FitContext, **changes: Any) -> TrainConfig:
    return dataclasses.replace(ctx.config.training, device=str(ctx.device), **changes)


def _fit_phase(ctx: FitContext, task: Any, phase: str, cfg: TrainConfig | None = None) -> FitResult:
    """Run the training loop for one phase (``train``, ``warm_start`` or ``posterior``): its checkpoints
    go to ``<run_dir>/<phase>`` and its epochs and steps reach ``ctx.on_epoch`` / ``ctx.on_step`` tagged with the phase."""
    on_epoch, on_step = ctx.on_epoch, ctx.on_step
    return fit(task, ctx.data.train, ctx.data.val, cfg or _train_config(ctx),
               None if ctx.run_dir is None else Path(ctx.run_dir) / phase, resume=ctx.resume, progress=ctx.progress,
               on_epoch=None if on_epoch is None else lambda record: on_epoch(phase, record),
               on_step=None if on_step is None else lambda info: on_step(phase, info))


class Runtime:
    """Base class: ``fit``, ``sample`` (scaled ``[S, N, H, C]``), ``tensors``/``metadata`` and ``restore``."""

    name = ""

    def __init__(self, config: ForecasterConfig, model: nn.Module, likelihood: Likelihood):
        self.config, self.model, self.likelihood = config, model, likelihood

    def fit(self, ctx: FitContext) -> dict[str, Any]:
        raise NotImplementedError

    def sample(self, x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        return {}

    def metadata(self) -> dict[str, Any]:
        return {}

    def restore(self, tensors: dict[str, dict[str, torch.Tensor]], metadata: dict[str, Any]) -> None:
        """Rebuild the fitted state from an artifact."""

    def point_task(self, ctx: FitContext, loss: str, mc_dropout: bool = False, prior: GaussianPrior | None = None,
                   prior_names: tuple[str, ...] = ()) -> PointTask:
        cfg = self.config
        return PointTask(self.model, self.likelihood, loss=loss, lr=cfg.optim.lr, likelihood_lr=cfg.likelihood.lr,
                         schedule=cfg.optim.schedule, prior=prior, prior_names=prior_names, n_data=len(ctx.data.train),
                         mc_dropout=mc_dropout, eval_samples=cfg.inference.eval_samples,
                         eval_batch_size=cfg.predict.batch_size, seed=cfg.training.seed)

    @torch.no_grad()
    def point_forecast(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic forward in eval mode, batched: ``[N, H, C]``."""
        self.model.eval()
        bs = self.config.predict.batch_size
        return torch.cat([self.model(x[i : i + bs]) for i in range(0, x.shape[0], bs)])


class PointRuntime(Runtime):
    """``deterministic`` and ``mc_dropout``: NLL training; noise (and dropout) at prediction."""

    def __init__(self, config, model, likelihood, mc_dropout: bool):
        super().__init__(config, model, likelihood)
        self.mc_dropout = mc_dropout
        self.name = "mc_dropout" if mc_dropout else "deterministic"

    def fit(self, ctx: FitContext) -> dict[str, Any]:
        if self.mc_dropout and self.config.model.dropout <= 0:
            raise ForecastingError("inference.method=mc_dropout needs model.dropout > 0 (e.g. 0.05 or 0.1)")
        task = self.point_task(ctx, "nll", mc_dropout=self.mc_dropout)
        result = _fit_phase(ctx, task, "train")
        return fit_summary(result)

    @torch.no_grad()
    def sample(self, x, n, generator):
        if self.mc_dropout:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # dropout masks from the predict seed only
                torch.manual_seed(seed)
                self.model.train()
                try:
                    locs = repeated_forward(self.model, x, n, self.config.predict.batch_size)
                finally:
                    self.model.eval()
        else:
            locs = self.point_forecast(x).unsqueeze(0).expand(n, *x.shape[:1], *self._out_shape())
        return self.likelihood.sample(locs.contiguous(), generator)

    def _out_shape(self) -> tuple[int, int]:
        return (self.config.data.horizon, self.model.n_channels)


class ConformalRuntime(Runtime):
    """``conformal``: the paper's MSE training, then split-conformal half-widths from validation residuals."""

    name = "conformal"

    def __init__(self, config, model, likelihood):
        super().__init__(config, model, likelihood)
        self.calibration: ConformalCalibration | None = None

    def fit(self, ctx: FitContext) -> dict[str, Any]:
        task = self.point_task(ctx, "mse")
        result = _fit_phase(ctx, task, "train")
        residuals = []
        for x, y in iterate_batches(ctx.data.val, self.config.predict.batch_size):
            residuals.append((self.point_forecast(x.to(ctx.device)) - y.to(ctx.device)).abs().cpu())
        self.calibration = ConformalCalibration.fit(torch.cat(residuals))
        return {**fit_summary(result), "conformal": self.calibration.describe()}

    @torch.no_grad()
    def sample(self, x, n, generator):
        assert self.calibration is not None, "conformal runtime used before fit/restore"
        point = self.point_forecast(x)
        return self.calibration.sample(point, n, generator)

    def tensors(self):
        assert self.calibration is not None
        state = self.calibration.state_dict()
        return {"conformal": {"levels": state["levels"], "table": state["table"]}}

    def metadata(self):
        return {"n_calibration": self.calibration.n_calibration if self.calibration else 0}

    def restore(self, tensors, metadata):
        group = tensors.get("conformal")
        if group is None:
            raise ForecastingError("conformal artifact lacks its calibration table; re-save the model")
        self.calibration = ConformalCalibration(levels=group["levels"], table=group["table"],
                                                n_calibration=int(metadata.get("n_calibration", 0)))


class VariationalRuntime(Runtime):
    """``scorevi`` / ``advi``: a variational posterior over the chosen weights (engine: :mod:`forecasting.bayes`).

    Warm start (``inference.warm_start_epochs > 0``): MAP training (likelihood + zero-centred
    prior of scale ``prior_scale``) for that many epochs; the variational mean starts at the MAP
    weights and, with ``prior_center: warm_start``, the prior is re-centred there (an
    empirical-Bayes prior: the posterior is then a local uncertainty model around the MAP fit,
    which keeps accuracy at least that of the warm start; ``zero`` keeps the textbook posterior).
    Without a warm start the mean starts at the random initialisation.
    """

    def __init__(self, config, model, likelihood):
        super().__init__(config, model, likelihood)
        self.name = config.inference.method
        self.flat: FlatParams | None = None
        self.family = None

    def _sub_config(self):
        inf = self.config.inference
        return engine.method_config(inf.method, inf.scorevi, inf.advi)

    def fit(self, ctx: FitContext) -> dict[str, Any]:
        inf = self.config.inference
        names = select_parameters(self.model, inf.bayesian)
        summary: dict[str, Any] = {"bayesian_parameters": len(names)}
        if inf.warm_start_epochs > 0:
            task = self.point_task(ctx, "nll", prior=GaussianPrior(inf.prior_scale), prior_names=tuple(names))
            tcfg = _train_config(ctx, epochs=inf.warm_start_epochs)
            summary["warm_start"] = fit_summary(_fit_phase(ctx, task, "warm_start", tcfg))
        self.model.to(ctx.device).eval()
        self.likelihood.to(ctx.device)
        self.flat = FlatParams.from_module(self.model, names)
        theta0 = self.flat.flatten(self.model).to(ctx.device)
        center = theta0.clone() if inf.resolved_prior_center == "warm_start" else None
        prior = GaussianPrior(inf.prior_scale, center)
        sub = self._sub_config()
        gen = torch.Generator(device=ctx.device).manual_seed(self.config.training.seed)
        family = engine.make_family(sub, theta0, gen)
        algorithm = engine.build_algorithm(inf.method, sub)
        task = VariationalTask(
            self.model, self.likelihood, self.flat, algorithm, family, prior, n_data=len(ctx.data.train),
            temperature=inf.temperature, vectorize=str(getattr(inf.vectorize, "value", inf.vectorize)),
            point_lr=self.config.optim.lr, likelihood_lr=self.config.likelihood.lr, schedule=self.config.optim.schedule,
            eval_samples=inf.eval_samples, eval_batch_size=self.config.predict.batch_size, seed=self.config.training.seed,
            noise_fit=self.config.likelihood.noise_fit, noise_samples=self.config.likelihood.noise_samples,
        )
        result = _fit_phase(ctx, task, "posterior")
        self.family = task.family.detach()
        # The network's own weights become the posterior mean, so point forecasts (and the saved
        # "model" weights) are the posterior-mean network.
        self.flat.assign(self.model, self.family.mean())
        summary.update(fit_summary(result))
        summary["parameters"] = self.flat.size
        summary["posterior_std_mean"] = float(self.family.variance().mean().sqrt())
        if self.config.likelihood.calibrate in ("validation", "shrink"):
            summary["noise_calibration"] = self._calibrate_noise(ctx)
        return summary

    @torch.no_grad()
    def _calibrate_noise(self, ctx: FitContext, max_windows: int = 512, draws: int = 32) -> dict[str, Any]:
        """Re-fit the noise scales on validation windows under the fitted posterior
        (:func:`forecasting.models.heads.fit_scale`; the Bayesian analogue of split-conformal).

        ``calibrate: shrink`` then takes the geometric mean of the training fit and the validation
        re-fit: a hedge for series whose validation period is calmer or more volatile than what
        follows (docs/results/noise_calibration.md: lowest mean and worst-case CRPS regret forward in
        time on four datasets and two heads).
        """
        rule = self.config.likelihood.calibrate
        val = ctx.data.val
        if len(val) == 0:
            logger.warning("likelihood.calibrate=%s: no validation windows; noise left as trained", rule)
            return {"skipped": "no validation windows"}
        idx = torch.linspace(0, len(val) - 1, min(max_windows, len(val))).round().long().unique()
        x, y = val.batch(idx)
        gen = torch.Generator(device=ctx.device).manual_seed(self.config.training.seed + 104729)
        thetas = self.family.sample(draws, gen)
        self.model.eval()
        locs = self._forward()(thetas, x.to(ctx.device))
        trained = self.likelihood.log_scale.detach().clone()
        out = fit_scale(self.likelihood, locs, y.to(ctx.device))
        if rule == "shrink":
            out["validation_fit"] = out["after"]
            self.likelihood.log_scale.copy_(shrink_log_scale(trained, self.likelihood.log_scale))
            out["after"] = channel_scales(self.likelihood)
        logger.info("noise recalibrated (%s) on %d validation windows: %s -> %s", rule, len(idx), out["before"],
                    out["after"])
        return {"rule": rule, "windows": int(len(idx)), "draws": draws, **out}

    def _forward(self) -> SampledForward:
        assert self.flat is not None
        vec = str(getattr(self.config.inference.vectorize, "value", self.config.inference.vectorize))
        return SampledForward(self.model, self.flat.unflatten, vec, self.config.predict.batch_size,
                              self.config.predict.sample_chunk)

    @torch.no_grad()
    def sample(self, x, n, generator):
        assert self.family is not None, "variational runtime used before fit/restore"
        self.model.eval()
        thetas = self.family.sample(n, generator)
        locs = self._forward()(thetas, x)
        return self.likelihood.sample(locs, generator)

    def tensors(self):
        assert self.family is not None
        return {"posterior": self.family.state_dict()}

    def metadata(self):
        assert self.flat is not None and self.family is not None
        return {"family": self.family.kind, "bayesian_names": list(self.flat.names), "parameters": self.flat.size}

    def restore(self, tensors, metadata):
        if "posterior" not in tensors:
            raise ForecastingError("variational artifact lacks its posterior; re-save the model")
        self.flat = FlatParams.from_module(self.model, list(metadata["bayesian_names"]))
        self.family = engine.family_from_state(metadata["family"], tensors["posterior"])
        if self.family.dim != self.flat.size:
            raise ForecastingError(f"artifact posterior has {self.family.dim} parameters, the model {self.flat.size}; re-save the model")
        expected = FamilyKind(self._sub_config().family).value
        if self.family.kind != expected:
            logger.warning("artifact posterior family %s differs from its config's %s", self.family.kind, expected)


def make_runtime(config: ForecasterConfig, model: nn.Module, likelihood: Likelihood) -> Runtime:
    """The runtime of ``config.inference.method``."""
    method = config.inference.method
    if method in ("scorevi", "advi"):
        return VariationalRuntime(config, model, likelihood)
    if method == "conformal":
        return ConformalRuntime(config, model, likelihood)
    if method in ("mc_dropout", "deterministic"):
        return PointRuntime(config, model, likelihood, mc_dropout=method == "mc_dropout")
    raise ValueError(method)
