"""Configs of the inference engine: str Enums (valid YAML and Python at once) + frozen dataclasses.

Every open choice of docs/scorevi.md is a field here; defaults were picked by the synthetic benchmark
(``forecasting bench inference``; see ``docs/results/inference.md``). Load from YAML with
``forecasting.core.config.from_dict(InferenceConfig, {...})`` — unknown keys and bad enum values are
errors with a did-you-mean.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Literal, Union

from forecasting.core.errors import ForecastingError


class Method(str, enum.Enum):
    """Inference algorithm (``build(method, ...)``)."""

    SCOREVI = "scorevi"
    ADVI = "advi"
    GSM = "gsm"
    BAM = "bam"


class FamilyKind(str, enum.Enum):
    """Variational family over the flat parameter vector."""

    DIAGONAL = "diagonal"
    LOW_RANK = "low_rank"
    MIXTURE = "mixture"
    FULL = "full"  # dense Cholesky; GSM/BaM and small problems only


class Solver(str, enum.Enum):
    """How ScoreVI minimises L_t: ``closed_form`` (diagonal only, whitened KL-proximal step) or ``adam``."""

    AUTO = "auto"  # closed_form for the diagonal family, adam otherwise
    CLOSED_FORM = "closed_form"
    ADAM = "adam"


class Weighting(str, enum.Enum):
    """W in ||W^{1/2}(∇log q − ĝ)||²: identity or Cov(q_t) (fixed per iteration, so the adam solver's gradient stays unbiased)."""

    IDENTITY = "identity"
    Q_T = "q_t"


class Proximal(str, enum.Enum):
    """Proximal divergence D(q_φ, q_t)."""

    KL_QT_Q = "kl_qt_q"  # KL(q_t ‖ q_φ)
    KL_Q_QT = "kl_q_qt"  # KL(q_φ ‖ q_t)
    L2 = "l2"  # ||φ − φ_t||²


class Schedule(str, enum.Enum):
    """Proximal weight schedule: λ_t = λ (constant) or λ (1 + growth · t) (linear, stochastic approximation)."""

    CONSTANT = "constant"
    LINEAR = "linear"


class Vectorize(str, enum.Enum):
    """How S per-sample scores are evaluated: torch.func.vmap, a Python loop, or try vmap and fall back."""

    AUTO = "auto"
    VMAP = "vmap"
    LOOP = "loop"


class OptimizerKind(str, enum.Enum):
    ADAM = "adam"
    SGD = "sgd"


@dataclass(frozen=True)
class ScoreVIConfig:
    """ScoreVI (score matching + proximal penalty, docs/scorevi.md; Kim 2026, arXiv 2602.05873).

    Attributes:
        family: variational family.
        solver: ``closed_form`` (diagonal family: whitened least squares with a positivity-preserving
            KL(q_t‖q) step solved per coordinate) or ``adam`` (K inner optimiser steps on L_t, any family).
        weighting: W of the score-matching term.
        proximal: proximal divergence D (closed form: ``kl_qt_q`` only).
        proximal_weight: λ. The closed form refuses λ = 0 together with ``proximal_adaptive = 0``: without
            any proximal term its step is undefined wherever a coordinate's fitted slope is ≤ 0.
        proximal_adaptive: κ ≥ 0; closed form only. Adds κ · ŝ_i² / n_eff to λ per coordinate, where
            ŝ_i² is the residual variance of that coordinate's (pooled) regression and n_eff the pooled
            sample weight: noisy regressions take damped steps, exact ones (ŝ = 0) jump to the solution.
        proximal_schedule / proximal_growth: λ_t = λ (1 + growth·t) when ``linear``.
        mc_samples: S, samples of q_t per iteration (one network forward/backward each).
        inner_steps: K optimiser steps per iteration (adam solver).
        lr / optimizer: inner optimiser (adam solver).
        pool_decay: ρ; closed form pools the regression statistics across iterations with weight ρ
            per step (0 = only this iteration's S samples). Makes S = 1 work. The closed form needs
            S / (1 − ρ) > 2 (S = 1: ρ > 0.5; S = 2: ρ > 0), else it would skip every update.
        pool_dtype: dtype of the pooled statistics (float64 avoids cancellation when |μ| ≫ σ).
        center_every: re-centre the pooled statistics at the current mean every this many iterations.
        newton_steps: at most this many safeguarded Newton steps for the closed-form scalar equation.
        compile_solver: fuse the whole closed-form update into one ``torch.compile`` kernel: ``auto``
            (default) does so on CUDA for networks of ≥ 4 M parameters (ResNet/ViT scale), where it
            makes the update a single pass over memory, and stays eager otherwise (compiling takes
            ~20–60 s per process; the eager update is cache-sliced). A failed compilation falls back
            to eager with a warning.
        rank / components: low-rank factor width / mixture components.
        init_scale: initial σ of the family.
    """

    family: FamilyKind = FamilyKind.DIAGONAL
    solver: Solver = Solver.AUTO
    weighting: Weighting = Weighting.Q_T
    proximal: Proximal = Proximal.KL_QT_Q
    proximal_weight: float = 0.1
    proximal_adaptive: float = 1.0
    proximal_schedule: Schedule = Schedule.CONSTANT
    proximal_growth: float = 1.0
    mc_samples: int = 4
    inner_steps: int = 1
    lr: float = 1e-2
    optimizer: OptimizerKind = OptimizerKind.ADAM
    pool_decay: float = 0.95
    pool_dtype: Literal["float64", "float32"] = "float64"
    center_every: int = 50
    newton_steps: int = 12
    compile_solver: Union[bool, Literal["auto"]] = "auto"
    rank: int = 8
    components: int = 3
    init_scale: float = 0.05

    def __post_init__(self) -> None:
        _check_positive(self, "mc_samples", "inner_steps", "rank", "components", "newton_steps", "center_every")
        if self.proximal_weight < 0 or self.init_scale <= 0 or self.lr <= 0:
            raise ForecastingError("scorevi: proximal_weight must be >= 0, init_scale and lr > 0")
        if self.proximal_growth < 0:
            # λ_t = λ(1 + growth·t) would reach 0 and turn negative: a negative KL weight has no minimum.
            raise ForecastingError(f"scorevi.proximal_growth must be >= 0, got {self.proximal_growth}")
        if not 0.0 <= self.pool_decay < 1.0:
            raise ForecastingError(f"scorevi.pool_decay must be in [0, 1), got {self.pool_decay}")
        if self.uses_closed_form:
            self._check_closed_form()

    @property
    def uses_closed_form(self) -> bool:
        """Whether ScoreVI runs the closed-form solver (``auto`` picks it for the diagonal family)."""
        solver = Solver(self.solver)
        if solver is Solver.AUTO:
            return FamilyKind(self.family) is FamilyKind.DIAGONAL
        return solver is Solver.CLOSED_FORM

    def _check_closed_form(self) -> None:
        """Refuse settings under which the closed-form step is undefined."""
        if self.proximal_weight == 0 and self.proximal_adaptive == 0:
            # Without a proximal term the step is the plain least-squares line y ≈ −τε + c per
            # coordinate. Where its fitted slope is ≤ 0 (few samples, a non-Gaussian target, noisy
            # scores) f(τ, c) has no minimiser with τ > 0: its infimum is at τ → 0, i.e. σ → ∞, and
            # a clamp on τ is no fix (σ × e^34 in one iteration). The KL term's −ln τ barrier, weighted
            # by λ_t > 0 or by the adaptive κ·ŝ²/n_eff (> 0 wherever the regression has residual
            # noise), is what makes the step exist; with λ = κ = 0 it is gone for every t.
            raise ForecastingError(
                "scorevi: proximal_weight=0 with proximal_adaptive=0 leaves the closed-form step undefined "
                "(a coordinate whose pooled score regression has slope <= 0 would get an infinite sigma); "
                "set scorevi.proximal_weight > 0 (e.g. 0.1, the default), or solver: adam for the "
                "unregularised score-matching objective")
        # The solver skips an update while the pooled weight after it, w_{t+1} = ρ w_t + S (w_0 = 0),
        # is ≤ 2 (a line through ≤ 2 points has no residual: σ is not identified). w_t rises
        # monotonically towards S / (1 − ρ) without reaching it (ρ > 0), or equals S (ρ = 0), so some
        # update runs iff S / (1 − ρ) > 2; otherwise every update would be skipped, silently.
        if self.mc_samples <= 2.0 * (1.0 - self.pool_decay):
            least = 1.0 - self.mc_samples / 2.0
            raise ForecastingError(
                f"scorevi: mc_samples={self.mc_samples} with pool_decay={self.pool_decay:g} pools at most "
                f"mc_samples/(1 - pool_decay) = {self.mc_samples / (1.0 - self.pool_decay):g} samples per "
                f"coordinate, and the closed-form solver skips every update until more than 2 are pooled; "
                f"set scorevi.pool_decay > {least:g} (e.g. 0.95, the default) or scorevi.mc_samples >= 3")


@dataclass(frozen=True)
class ADVIConfig:
    """ADVI / Bayes-by-backprop: maximise the reparameterised ELBO with an optimiser (Kucukelbir et al. 2017).

    Attributes:
        entropy: ``analytic`` uses the closed-form entropy of q (lower variance);
            ``mc`` the sample estimate −log q(θ_s) (classic Bayes-by-backprop).
    """

    family: FamilyKind = FamilyKind.DIAGONAL
    mc_samples: int = 4
    lr: float = 1e-2
    optimizer: OptimizerKind = OptimizerKind.ADAM
    entropy: Literal["analytic", "mc"] = "analytic"
    rank: int = 8
    components: int = 3
    init_scale: float = 0.05

    def __post_init__(self) -> None:
        _check_positive(self, "mc_samples", "rank", "components")
        if self.lr <= 0 or self.init_scale <= 0:
            raise ForecastingError("advi: lr and init_scale must be > 0")


@dataclass(frozen=True)
class GSMConfig:
    """Gaussian score matching VI (Modi et al. 2023): closed-form dense-Gaussian updates, low dimension only."""

    mc_samples: int = 4
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self, "mc_samples")


@dataclass(frozen=True)
class BaMConfig:
    """Batch-and-match VI (Cai et al. 2024): closed-form dense-Gaussian proximal updates, low dimension only.

    Attributes:
        reg: λ (the paper's learning rate; larger = bigger steps).
        schedule: ``constant`` λ_t = reg, or ``decay`` λ_t = reg / (1 + t) (the paper's choice under noise).
    """

    mc_samples: int = 4
    reg: float = 1.0
    schedule: Literal["constant", "decay"] = "constant"
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self, "mc_samples")
        if self.reg <= 0:
            raise ForecastingError("bam.reg must be > 0")


@dataclass(frozen=True)
class PriorConfig:
    """Isotropic Gaussian prior N(center, scale² I); ``center='init'`` centres it at the given weights."""

    scale: float = 1.0
    center: Literal["zero", "init"] = "zero"

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ForecastingError(f"prior.scale must be > 0, got {self.scale}")


MethodConfig = Union[ScoreVIConfig, ADVIConfig, GSMConfig, BaMConfig]


@dataclass(frozen=True)
class InferenceConfig:
    """The ``inference:`` section of a forecaster/classifier config.

    Attributes:
        method: which algorithm runs; only its sub-config is used.
        temperature: likelihood tempering T (log-lik × 1/T); 1 = the Bayes posterior.
        prior: prior over the Bayesian parameters.
        vectorize: score evaluation strategy (see :class:`Vectorize`).
    """

    method: Method = Method.SCOREVI
    temperature: float = 1.0
    prior: PriorConfig = field(default_factory=PriorConfig)
    vectorize: Vectorize = Vectorize.AUTO
    scorevi: ScoreVIConfig = field(default_factory=ScoreVIConfig)
    advi: ADVIConfig = field(default_factory=ADVIConfig)
    gsm: GSMConfig = field(default_factory=GSMConfig)
    bam: BaMConfig = field(default_factory=BaMConfig)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ForecastingError(f"inference.temperature must be > 0, got {self.temperature}")

    def method_config(self) -> MethodConfig:
        """The sub-config of the selected method."""
        return getattr(self, Method(self.method).value)

    @property
    def mc_samples(self) -> int:
        return self.method_config().mc_samples


def _check_positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value < 1:
            section = type(cfg).__name__.replace("Config", "").lower()
            raise ForecastingError(f"{section}.{name} must be >= 1, got {value}")


def replace(cfg, **changes):
    """``dataclasses.replace`` re-exported for convenience (configs are frozen)."""
    return dataclasses.replace(cfg, **changes)
