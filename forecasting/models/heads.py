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
* :class:`NegativeBinomialLikelihood`: integer counts, ``y ~ NB(mean mu, dispersion alpha_c)`` with
  ``mu = softplus(loc * unit + offset)`` on the original scale (``unit``/``offset`` = the scaler's
  std/mean); its samples are non-negative integers (returned on the scaled data, like every head).

Non-negative data that are not counts keep a Gaussian/Student-t head on a transformed target
(``log1p``) and/or have their samples clipped at zero: :mod:`forecasting.models.support`.

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
from torch.nn import functional as F

from forecasting.core.errors import ForecastingError

_LOG_2PI = math.log(2.0 * math.pi)
#: Added to the negative-binomial mean: keeps ``log mu`` finite where softplus underflows (an additive
#: floor, not a clamp, so the mean keeps a gradient however small it gets).
_MU_FLOOR = 1e-8


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
    #: What the samples (mapped back to the original scale) can be: ``real``, ``nonnegative`` or ``count``
    #: (:func:`forecasting.models.support.clip_to_support` enforces it after the scaler's inverse).
    support = "real"

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

    def scale_statistics(self, locs: torch.Tensor, y: torch.Tensor):
        """What :meth:`scale_derivatives` needs from ``locs [K, ...]`` and ``y [...]`` (float64).

        Location-scale heads: the squared residuals ``r² = (y - loc)²`` (the density depends on the
        residual only through them).
        """
        r = (y.unsqueeze(0) - locs).to(torch.float64)
        return r.mul_(r)

    def scale_derivatives(self, stats, log_scale: torch.Tensor):
        """log p and its first two derivatives in the log-scale parameter, from :meth:`scale_statistics`.

        Closed forms, so the noise re-fit (:func:`fit_scale`) needs no autograd (its double backward
        over ``[K, N, H, C]`` residuals cost ~10 s per fit). Location-scale heads get ``stats = r²``.
        """
        raise NotImplementedError

    def mean(self, loc: torch.Tensor) -> torch.Tensor:
        """Mean of the observation model given ``loc`` (scaled data): ``loc`` itself for location-scale heads."""
        return loc

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


class NegativeBinomialLikelihood(Likelihood):
    """Integer counts: ``y ~ NB(mean mu, dispersion alpha)``, ``Var y = mu + alpha mu²`` (NB2).

    The parameterisation of DeepAR (Salinas, Flunkert, Gasthaus, Januschowski, "DeepAR:
    Probabilistic forecasting with autoregressive recurrent networks", IJF 2020, Sec. 3.1) and of
    NB2 regression (Hilbe, *Negative Binomial Regression*, 2011):

        log p(k) = lgamma(k + r) − lgamma(r) − lgamma(k + 1) − r log(1 + alpha mu)
                   + k log(alpha mu / (1 + alpha mu)),        r = 1 / alpha,

    i.e. ``scipy.stats.nbinom(n=r, p=r / (r + mu))`` — a Gamma(shape ``r``, mean ``mu``) mixture of
    Poissons, the Poisson being the limit ``alpha -> 0``.

    How it fits the scaled pipeline without changing it: the network still predicts ``loc`` on the
    standard-scaled data, and the head reads it as a mean on the *original* scale through
    ``mu = softplus(loc * unit + offset)`` (``unit``, ``offset`` = the scaler's std and mean per
    channel, buffers saved with the head). For counts well above zero softplus is the identity, so
    ``loc`` keeps its meaning (the scaled mean) and a freshly initialised network starts at the
    series' mean; near zero softplus keeps ``mu > 0`` with a non-vanishing gradient (as DeepAR's
    softplus output). Targets ``y`` arrive scaled too and are mapped back to counts by
    ``round(y * unit + offset)`` (the rounding undoes the float error of scaling; exact for counts
    up to ~10^6 stored in float32). Samples are integer counts returned on the scaled data
    (``(k − offset) / unit``), so the forecaster's ``scaler.inverse`` recovers them up to float
    error — round and clip with :func:`forecasting.models.support.clip_to_support` (``support ==
    "count"``) after it.

    The learned "scale" of this head is ``alpha`` (``log_scale`` = ``log alpha``, per channel or per
    step and channel): the noise re-fit (:func:`fit_scale`) and the ``shrink`` rule act on it as on
    ``log σ``. The densities are evaluated in float64 (``lgamma(k + r) − lgamma(r)`` cancels badly
    in float32 once ``r`` is large).

    Args:
        n_channels: ``C``.
        init_scale: initial dispersion ``alpha`` (> 0).
        horizon: one dispersion per step and channel when given.
        offset: ``[C]`` (or scalar) original-scale value of scaled 0 (the scaler's mean); default 0.
        unit: ``[C]`` (or scalar) original-scale size of one scaled unit (the scaler's std); default 1.
    """

    kind = "negative_binomial"
    support = "count"

    def __init__(self, n_channels: int, init_scale: float = 0.5, horizon: int | None = None, *, offset=None,
                 unit=None):
        super().__init__(n_channels, init_scale, horizon)
        offset_t = torch.zeros(n_channels, dtype=torch.float64) if offset is None else torch.as_tensor(offset, dtype=torch.float64)
        unit_t = torch.ones(n_channels, dtype=torch.float64) if unit is None else torch.as_tensor(unit, dtype=torch.float64)
        offset_t, unit_t = offset_t.expand(n_channels).clone(), unit_t.expand(n_channels).clone()
        if not (torch.isfinite(offset_t).all() and torch.isfinite(unit_t).all() and (unit_t > 0).all()):
            raise ForecastingError("negative binomial likelihood: offset must be finite and unit finite and > 0 "
                                   "(they are the scaler's mean and standard deviation)")
        self.register_buffer("offset", offset_t)
        self.register_buffer("unit", unit_t)

    def _original(self, scaled: torch.Tensor) -> torch.Tensor:
        return scaled.to(torch.float64) * self.unit + self.offset

    def rate(self, loc: torch.Tensor) -> torch.Tensor:
        """The mean ``mu`` on the original scale (float64), ``softplus(loc * unit + offset)`` (+ 1e-8)."""
        return F.softplus(self._original(loc)) + _MU_FLOOR

    def counts(self, y: torch.Tensor) -> torch.Tensor:
        """Scaled targets mapped back to counts (float64), ``round(y * unit + offset)``."""
        return torch.round(self._original(y))

    @staticmethod
    def _log_pmf(k: torch.Tensor, mu: torch.Tensor, log_alpha: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(log_alpha)
        r = 1.0 / alpha
        t = alpha * mu
        lp = (torch.lgamma(k + r) - torch.lgamma(r) - torch.lgamma(k + 1) - r * torch.log1p(t)
              + k * (torch.log(t) - torch.log1p(t)))
        # A negative "count" has probability 0 (lgamma would give +inf at the negative integers).
        return torch.where(k >= 0, lp, torch.full_like(lp, -math.inf))

    def log_prob(self, loc, y, log_scale=None):
        log_scale = self.log_scale if log_scale is None else log_scale
        dtype = torch.promote_types(loc.dtype, y.dtype)
        return self._log_pmf(self.counts(y), self.rate(loc), log_scale.to(torch.float64)).to(dtype)

    def scale_statistics(self, locs, y):
        return self.counts(y).unsqueeze(0), self.rate(locs)

    def scale_derivatives(self, stats, log_scale):
        # d/dr log p = ψ(k+r) − ψ(r) − log(1 + αμ) + (μ − k)/(r + μ);
        # d²/dr² = ψ'(k+r) − ψ'(r) + 1/r − 1/(r + μ) − (μ − k)/(r + μ)²;
        # with r = e^{−u}: d/du = −r d/dr and d²/du² = r² d²/dr² + r d/dr.
        k, mu = stats
        lp = self._log_pmf(k, mu, log_scale)
        r = torch.exp(-log_scale)
        rm = r + mu
        g = torch.digamma(k + r) - torch.digamma(r) - torch.log1p(mu / r) + (mu - k) / rm
        h = torch.polygamma(1, k + r) - torch.polygamma(1, r) + 1.0 / r - 1.0 / rm - (mu - k) / (rm * rm)
        return lp, -r * g, r * r * h + r * g

    def sample(self, loc, generator=None):
        # Gamma–Poisson mixture. The Gamma sampler has no generator argument, so (as for the Student-t)
        # the global RNG is forked and seeded from ``generator``: reproducible, no global side effect.
        seed = (int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
                if generator is not None else None)
        mu = self.rate(loc)
        r = torch.exp(-self.log_scale.detach().to(torch.float64)).expand_as(mu)
        devices = [loc.device] if loc.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            lam = torch.distributions.Gamma(r, r / mu).sample()
            k = torch.poisson(lam)
        return ((k - self.offset) / self.unit).to(loc.dtype)

    def mean(self, loc):
        return ((self.rate(loc) - self.offset) / self.unit).to(loc.dtype)

    def variance(self, loc: torch.Tensor | None = None) -> torch.Tensor:
        """Variance on the scaled data, ``(mu + alpha mu²) / unit²`` — it depends on ``loc``, which is required."""
        if loc is None:
            raise ValueError("the negative binomial's variance depends on its mean: pass loc")
        mu = self.rate(loc)
        alpha = self.scale().detach().to(torch.float64)
        return ((mu + alpha * mu * mu) / (self.unit * self.unit)).to(loc.dtype)

    def describe(self) -> dict:
        return {**super().describe(), "scale_is": "dispersion alpha (variance mu + alpha mu^2)",
                "offset": [round(float(v), 6) for v in self.offset], "unit": [round(float(v), 6) for v in self.unit]}


@torch.no_grad()
def fit_scale(likelihood: Likelihood, locs: torch.Tensor, y: torch.Tensor, steps: int = 100,
              max_log_change: float = 2.0) -> dict:
    """Re-fit the scale on held-out windows: maximise the predictive-mixture likelihood.

    ``(1/N) Σ_n log (1/K) Σ_k p(y_n | loc_kn, σ)`` over ``log σ`` (the log-scale parameter: ``log α``
    for the negative binomial; per channel, or per step and
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
    if not likelihood.per_step:
        # [K, N*H, C] and [N*H, C]: one scale per channel pools the steps
        locs, y = locs.flatten(1, -2), y.flatten(0, -2)
    stats = likelihood.scale_statistics(locs, y)  # e.g. squared residuals [K, N, H, C]
    u = log0.to(torch.float64).clone()
    for _ in range(steps):
        # f(u) = −mean_n log mean_k p(y_n | loc_kn, e^u); with w = softmax_k(log p) and l', l'' the
        # per-draw derivatives: f' = −mean_n Σ_k w l',  f'' = −mean_n [Σ_k w (l'' + l'²) − (Σ_k w l')²].
        lp, d1, d2 = likelihood.scale_derivatives(stats, u)
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
                     horizon: int | None = None, *, offset=None, unit=None) -> Likelihood:
    """Likelihood head by name: ``gaussian`` | ``student_t`` | ``negative_binomial``.

    Args:
        kind: the head.
        n_channels: ``C``.
        df: Student-t degrees of freedom.
        init_scale: initial scale (the negative binomial: initial dispersion ``alpha``).
        horizon: one scale per step and channel when given.
        offset, unit: negative binomial only: per-channel maps from the scaled data to counts
            (``count = y * unit + offset``: the scaler's mean and std).
    """
    if kind == "gaussian":
        return GaussianLikelihood(n_channels, init_scale, horizon)
    if kind == "student_t":
        return StudentTLikelihood(n_channels, df, init_scale, horizon)
    if kind == "negative_binomial":
        return NegativeBinomialLikelihood(n_channels, init_scale, horizon, offset=offset, unit=unit)
    raise ForecastingError(f"unknown likelihood {kind!r}; use 'gaussian', 'student_t' or 'negative_binomial'")
