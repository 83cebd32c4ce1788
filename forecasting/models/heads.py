"""Observation models ("likelihood heads"), separate from the network, as gluonts' distribution outputs.

The network predicts a location ``loc [..., H, C]`` on the scaled data; a likelihood turns it into
a distribution over the observed ``y`` with a learned scale per channel (``scale_by: channel``,
``log_scale [C]``) or per horizon step and channel (``scale_by: step``, ``log_scale [H, C]``, the
default). Per step matters: the error of a multi-step forecast grows along the horizon, so one scale
per channel is too wide for the first steps and too narrow for the last; pooled over steps the
residuals then *look* heavy-tailed and a single Gaussian over-covers its central intervals (ETTh2
H = 48: coverage_50 ≈ 0.6). Split-conformal, the baseline to beat, is per step and channel too. Two heads:

* :class:`GaussianLikelihood` (default): ``y ~ N(loc, sigma_c^2)``.
* :class:`StudentTLikelihood`: ``y ~ t_df(loc, s_c)``, ``df`` fixed by the config (heavy tails).

Why the scale is a *point estimate* and not part of the Bayesian parameter vector: one scale per
channel is informed by every one of the ``N * H`` training observations of that channel, so its
posterior is extremely concentrated and a point estimate loses nothing; keeping it out of θ keeps
the variational family (and ScoreVI's per-coordinate closed-form solver) purely about network
weights, lets every inference method (ScoreVI, ADVI, MC dropout, deterministic) share the same
noise model, and avoids a prior on log-scales. It is fitted by stochastic gradient on the same
mini-batch as the weight update — for the Bayesian methods on a draw θ ~ q, which is an unbiased
gradient of the ELBO's expected log-likelihood term (variational EM).

The predictive distribution of a Bayesian forecaster is the mixture over weight samples of this
observation model: ``y_s = f(x; θ_s) + noise_s`` (intervals from weight uncertainty alone are too
narrow).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from forecasting.core.errors import ForecastingError

_LOG_2PI = math.log(2.0 * math.pi)


def per_channel(scale: torch.Tensor) -> torch.Tensor:
    """One scale per channel ``[C]``: a per-step scale ``[H, C]`` summarised by its geometric mean over steps."""
    return scale.log().mean(0).exp() if scale.ndim == 2 else scale


def channel_scales(likelihood: "Likelihood") -> list[float]:
    """The head's current scale per channel as plain floats (for summaries and logs)."""
    return [float(v) for v in per_channel(likelihood.scale().detach()).cpu()]


def shrink_log_scale(trained: torch.Tensor, refit: torch.Tensor) -> torch.Tensor:
    """``likelihood.calibrate: shrink``: the geometric mean of the training fit and the validation
    re-fit of the scales (in log σ: their average) — see docs/results/noise_calibration.md."""
    return 0.5 * (trained + refit)


class Likelihood(nn.Module):
    """Base: a learned log-scale ``log_scale [C]`` (or ``[H, C]``) and the densities/samplers that use it.

    Args:
        n_channels: number of channels ``C``.
        init_scale: initial scale on the (standard-)scaled data.
        horizon: ``None``: one scale per channel; an integer ``H``: one per horizon step and channel
            (broadcasts against ``loc [..., H, C]``).
    """

    kind = "base"

    def __init__(self, n_channels: int, init_scale: float = 0.5, horizon: int | None = None):
        super().__init__()
        if init_scale <= 0:
            raise ForecastingError(f"likelihood.init_scale must be positive, got {init_scale}")
        if horizon is not None and horizon < 1:
            raise ForecastingError(f"likelihood horizon must be >= 1, got {horizon}")
        shape = (n_channels,) if horizon is None else (horizon, n_channels)
        self.log_scale = nn.Parameter(torch.full(shape, math.log(init_scale)))

    @property
    def per_step(self) -> bool:
        return self.log_scale.ndim == 2

    def scale(self) -> torch.Tensor:
        """Scale ``[C]`` or ``[H, C]``."""
        return self.log_scale.exp()

    def log_prob(self, loc: torch.Tensor, y: torch.Tensor, log_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Element-wise log density of ``y`` given ``loc`` (channels last); ``log_scale`` defaults to the parameter."""
        raise NotImplementedError

    def scale_derivatives(self, sq: torch.Tensor, log_scale: torch.Tensor):
        """log p(r | σ) and its first two derivatives in ``log σ``, from squared residuals ``sq = r²``.

        Both heads depend on the residual only through r², so the noise re-fit (:func:`fit_scale`)
        needs no autograd (its double backward over ``[K, N, H, C]`` residuals cost ~10 s per fit).
        """
        raise NotImplementedError

    def per_example(self, loc: torch.Tensor, y: torch.Tensor, log_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Log-likelihood of each window: sum over horizon and channels -> ``[B]`` (``loc, y [B, H, C]``)."""
        return self.log_prob(loc, y, log_scale).flatten(start_dim=-2).sum(-1)

    def sample(self, loc: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of ``y`` for every element of ``loc``."""
        raise NotImplementedError

    def variance(self) -> torch.Tensor:
        """Observation variance ``[C]`` or ``[H, C]`` (used by moment-based summaries)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Plain-Python summary for artifacts and logs (per step: the first/last step's scale per channel)."""
        scale = self.scale().detach().cpu()
        if not self.per_step:
            return {"kind": self.kind, "scale": [round(float(s), 6) for s in scale]}
        return {"kind": self.kind, "scale_by": "step", "horizon": int(scale.shape[0]),
                "scale_first_step": [round(float(s), 6) for s in scale[0]],
                "scale_last_step": [round(float(s), 6) for s in scale[-1]],
                "scale": [round(float(s), 6) for s in per_channel(scale)]}


class GaussianLikelihood(Likelihood):
    """``y ~ Normal(loc, exp(log_scale_c))`` per channel."""

    kind = "gaussian"

    def log_prob(self, loc, y, log_scale=None):
        log_scale = self.log_scale if log_scale is None else log_scale
        z = (y - loc) * torch.exp(-log_scale)
        return -0.5 * z * z - log_scale - 0.5 * _LOG_2PI

    def scale_derivatives(self, sq, log_scale):
        s = sq * torch.exp(-2 * log_scale)  # z²
        return -0.5 * s - log_scale - 0.5 * _LOG_2PI, s - 1, -2 * s

    def sample(self, loc, generator=None):
        eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return loc + eps * self.scale().to(loc.dtype)

    def variance(self):
        return self.scale() ** 2


class StudentTLikelihood(Likelihood):
    """``y ~ StudentT(df, loc, exp(log_scale_c))`` per channel, ``df > 0`` fixed.

    Args:
        n_channels: number of channels.
        df: degrees of freedom (``> 2`` for a finite variance; 3–5 is a common robust choice).
        init_scale: initial scale.
    """

    kind = "student_t"

    def __init__(self, n_channels: int, df: float = 4.0, init_scale: float = 0.5, horizon: int | None = None):
        super().__init__(n_channels, init_scale, horizon)
        if df <= 0:
            raise ForecastingError(f"likelihood.df must be positive, got {df}")
        self.df = float(df)
        self._const = math.lgamma((self.df + 1) / 2) - math.lgamma(self.df / 2) - 0.5 * math.log(self.df * math.pi)

    def log_prob(self, loc, y, log_scale=None):
        log_scale = self.log_scale if log_scale is None else log_scale
        z = (y - loc) * torch.exp(-log_scale)
        return self._const - log_scale - 0.5 * (self.df + 1) * torch.log1p(z * z / self.df)

    def scale_derivatives(self, sq, log_scale):
        q = sq * torch.exp(-2 * log_scale) / self.df  # z²/ν; dq/d log σ = −2q
        frac = q / (1 + q)
        lp = self._const - log_scale - 0.5 * (self.df + 1) * torch.log1p(q)
        return lp, (self.df + 1) * frac - 1, -2 * (self.df + 1) * frac / (1 + q)

    def sample(self, loc, generator=None):
        # t = N / sqrt(Chi2_df / df); Chi2 via Gamma, which has no generator argument, so the
        # global RNG is forked and seeded from ``generator`` (reproducible, no global side effect).
        seed = (int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
                if generator is not None else None)
        devices = [loc.device] if loc.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            eps = torch.randn(loc.shape, device=loc.device, dtype=loc.dtype)
            chi2 = torch.distributions.Chi2(torch.tensor(self.df, device=loc.device, dtype=loc.dtype)).sample(loc.shape)
        return loc + eps * torch.rsqrt(chi2 / self.df) * self.scale().to(loc.dtype)

    def variance(self):
        factor = self.df / (self.df - 2) if self.df > 2 else float("inf")
        return self.scale() ** 2 * factor

    def describe(self) -> dict:
        return {**super().describe(), "df": self.df}


@torch.no_grad()
def fit_scale(likelihood: Likelihood, locs: torch.Tensor, y: torch.Tensor, steps: int = 100,
              max_log_change: float = 2.0) -> dict:
    """Re-fit the scale on held-out windows: maximise the predictive-mixture likelihood.

    ``(1/N) Σ_n log (1/K) Σ_k p(y_n | loc_kn, σ)`` over ``log σ`` (per channel, or per step and
    channel when the head is per step) with the weight draws (``locs``)
    fixed — the probabilistic analogue of split-conformal calibration (and of temperature scaling
    in classification, Guo et al. 2017): the noise learned on the *training* windows is too wide
    when the series is calmer after the training period (ETTh2: training-window MSE ≈ 0.4, validation
    ≈ 0.18 for the same network), and the predictive then over-covers. One scalar per channel is
    fitted per channel (or per step and channel), so a few hundred held-out windows determine it well.
    The objective is smooth and separable (one dimension per scale): a safeguarded Newton iteration on each.

    Args:
        likelihood: the head; its ``log_scale`` is overwritten.
        locs: ``[K, N, H, C]`` network outputs under ``K`` weight draws (``K = 1``: a point model).
        y: ``[N, H, C]`` targets.
        steps: Newton iterations.
        max_log_change: bound on ``|Δ log σ_c|`` (a guard against a degenerate held-out set).

    Returns:
        ``{"before": [C], "after": [C]}`` scales (plain floats; per step: geometric mean over steps).
    """
    before = channel_scales(likelihood)
    log0 = likelihood.log_scale.detach().clone()
    resid = (y.unsqueeze(0) - locs).to(torch.float64)  # [K, N, H, C]
    if not likelihood.per_step:
        resid = resid.flatten(1, -2)  # [K, N*H, C]: one scale per channel pools the steps
    sq = resid * resid
    del resid
    u = log0.to(torch.float64).clone()
    for _ in range(steps):
        # f(u) = −mean_n log mean_k p(r_kn | e^u); with w = softmax_k(log p) and l', l'' the
        # per-draw derivatives: f' = −mean_n Σ_k w l',  f'' = −mean_n [Σ_k w (l'' + l'²) − (Σ_k w l')²].
        lp, d1, d2 = likelihood.scale_derivatives(sq, u)
        w = torch.softmax(lp, dim=0)
        m1 = (w * d1).sum(0)
        g = -m1.mean(0)
        h = -((w * (d2 + d1 * d1)).sum(0) - m1 * m1).mean(0)
        step = torch.where(h > 0, g / h.clamp_min(1e-12), 0.1 * torch.sign(g))
        step = step.clamp(-0.5, 0.5)
        u = u - step
        u = torch.minimum(torch.maximum(u, log0.to(u.dtype) - max_log_change), log0.to(u.dtype) + max_log_change)
        if float(step.abs().max()) < 1e-6:
            break
    likelihood.log_scale.copy_(u.to(likelihood.log_scale.dtype))
    return {"before": before, "after": channel_scales(likelihood)}


def build_likelihood(kind: str, n_channels: int, df: float = 4.0, init_scale: float = 0.5,
                     horizon: int | None = None) -> Likelihood:
    """Likelihood head by name: ``gaussian`` | ``student_t`` (``horizon``: one scale per step and channel)."""
    if kind == "gaussian":
        return GaussianLikelihood(n_channels, init_scale, horizon)
    if kind == "student_t":
        return StudentTLikelihood(n_channels, df, init_scale, horizon)
    raise ForecastingError(f"unknown likelihood {kind!r}; use 'gaussian' or 'student_t'")
