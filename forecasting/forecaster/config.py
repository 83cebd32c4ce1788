"""The forecaster's config as data: one frozen dataclass with sections, loadable from YAML.

Example YAML (every key optional; unknown keys are errors with a did-you-mean)::

    data: {lookback: 96, horizon: 48, split: {kind: ratio}, columns: [OT], missing: error,
           time_format: "%d/%m/%Y %H:%M", encoding: latin-1}     # + time_col, item_col, delimiter, freq, max_mb
    model: {dynamic_dim: 64, hidden_dim: 64, num_blocks: 2, seg_len: 24}
    likelihood: {kind: gaussian, scale_by: step}   # or student_t with df: 4; scale_by: channel
    inference:
      method: scorevi                       # scorevi | advi | mc_dropout | conformal | deterministic
      bayesian: all                         # all | decoders | operators | [name patterns]
      warm_start_epochs: 2                  # MAP epochs before variational inference
      prior_center: auto                    # auto | zero | warm_start
      prior_scale: 1.0
      scorevi: {family: diagonal, mc_samples: 4, proximal_weight: 100, init_scale: 0.001}
    optim: {lr: 0.001, schedule: paper}
    training: {epochs: 10, batch_size: 32, patience: 3, monitor: val_crps}
    predict: {samples: 100, seed: 0}
    device: auto

Load with ``forecasting.core.config.load_config(ForecasterConfig, "config.yaml", ["inference.method=advi"])``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from forecasting.bayes.config import ADVIConfig, ScoreVIConfig, Vectorize
from forecasting.data.splits import SplitRule
from forecasting.core.errors import ForecastingError
from forecasting.models.koopa.module import KoopaConfig, KoopaHyperparameters
from forecasting.training import TrainConfig

MethodName = Literal["scorevi", "advi", "mc_dropout", "conformal", "deterministic"]
VARIATIONAL_METHODS = ("scorevi", "advi")

DEFAULT_QUANTILES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95


@dataclass(frozen=True)
class DataSection:
    """How the series is read, windowed and split.

    The reading options (``columns`` ... ``max_mb``) are those of ``forecasting data validate``
    (:func:`forecasting.data.load_series`); they are saved with the run, so that a model trained
    on, say, ``31/12/2016 23:00`` timestamps evaluates and predicts with the same reading by
    default. ``None`` means what the reader detects (or a registered dataset's own setting).

    Attributes:
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        split: train/validation/test rule (the validation split drives early stopping and the
            conformal calibration).
        columns: channels to model (``None`` = all value columns, in file order). Selected when
            the file is read, so a column left out is never checked. Alias: ``target_cols``.
        freq: pandas frequency alias (``None`` = inferred from the timestamps).
        missing: missing-value policy when reading and before fitting: ``error``, ``interpolate`` or ``ffill``.
        time_col: timestamp column (``None`` = auto-detected).
        time_format: strftime format of the timestamps, e.g. ``%d/%m/%Y %H:%M`` (``None`` = auto-detected).
        item_col: item column of a long-format file (``None`` = ``item_id``/``unique_id``/... if present).
        encoding: text encoding of a CSV file.
        delimiter: CSV delimiter (``None`` = sniffed from the header; ``tab`` or ``\\t`` = a tab).
        max_mb: refuse files larger than this many MB (``None`` = the reader's limit).
    """

    config_aliases: ClassVar[dict[str, str]] = {"target_cols": "columns"}  # the reader's and the dashboard's name

    lookback: int = 96
    horizon: int = 48
    split: SplitRule = field(default_factory=SplitRule)
    columns: tuple[str, ...] | None = None
    freq: str | None = None
    missing: Literal["error", "interpolate", "ffill"] = "error"
    time_col: str | None = None
    time_format: str | None = None
    item_col: str | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None
    max_mb: float | None = None

    def __post_init__(self) -> None:
        if self.lookback < 2 or self.horizon < 1:
            raise ForecastingError(f"data: lookback must be >= 2 and horizon >= 1, got {self.lookback}, {self.horizon}")
        # An empty text field (a cleared dashboard field, `--set data.time_format=`) means "detect", as None does.
        for name in ("freq", "time_col", "time_format", "item_col", "delimiter"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        if not self.encoding:
            object.__setattr__(self, "encoding", "utf-8")

    def read_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`forecasting.data.load_series` for these reading options
        (:func:`forecasting.data.load.reading_options`: ``columns`` are read as ``target_cols``, so a
        column left out is never checked)."""
        from forecasting.data.load import reading_options

        return reading_options(columns=self.columns, freq=self.freq, missing=self.missing, time_col=self.time_col,
                               time_format=self.time_format, item_col=self.item_col, encoding=self.encoding,
                               delimiter=self.delimiter, max_mb=self.max_mb)


# The ``model`` section IS Koopa's hyper-parameter dataclass, so its keys and defaults are stated once
# (forecasting.models.koopa.module); lookback/horizon come from the ``data`` section.
ModelSection = KoopaHyperparameters


@dataclass(frozen=True)
class LikelihoodSection:
    """Observation model (see :mod:`forecasting.models.heads`).

    Attributes:
        kind: ``gaussian`` (default) or ``student_t``.
        df: Student-t degrees of freedom.
        scale_by: ``step`` (default): one noise scale per horizon step and channel (forecast errors
            grow along the horizon; split-conformal is per step too); ``channel``: one per channel.
        init_scale: initial per-channel noise scale on the standard-scaled data.
        lr: Adam learning rate of the log-scales (larger than the network's: one scalar per
            channel, well determined by every observation).
        noise_fit: how the variational methods fit the scale (and non-Bayesian weights):
            ``predictive`` = NLL of the predictive mixture over ``noise_samples`` posterior draws
            (calibrates weight spread + noise together; default), ``sample`` = expected NLL under
            q (variational EM; over-dispersed while q is wide), ``mean`` = NLL at the posterior mean.
        noise_samples: posterior draws per step for ``predictive``/``sample``.
        calibrate: variational methods only. ``validation`` re-fits the scales after training by
            maximising the predictive-mixture likelihood of the validation windows under the fitted
            posterior (:func:`forecasting.models.heads.fit_scale`; the analogue of split-conformal,
            which calibrates on the same windows); ``none`` keeps the training fit; ``shrink``
            (default) takes the geometric mean of the two — the most robust when the validation
            period is calmer or more volatile than what follows (lowest mean and worst-case CRPS
            regret forward in time in ``docs/results/noise_calibration.md``).
    """

    kind: Literal["gaussian", "student_t"] = "gaussian"
    df: float = 4.0
    scale_by: Literal["step", "channel"] = "step"
    init_scale: float = 0.5
    lr: float = 1e-2
    noise_fit: Literal["predictive", "sample", "mean"] = "predictive"
    noise_samples: int = 4
    calibrate: Literal["none", "validation", "shrink"] = "shrink"

    def __post_init__(self) -> None:
        if self.df <= 0 or self.init_scale <= 0 or self.lr <= 0 or self.noise_samples < 1:
            raise ForecastingError("likelihood: df, init_scale and lr must be > 0 and noise_samples >= 1")


@dataclass(frozen=True)
class KoopaScoreVIConfig(ScoreVIConfig):
    """:class:`ScoreVIConfig` with the forecaster's defaults (evidence: ``docs/results/scorevi_koopa_diagnosis.md``).

    * ``init_scale = 1e-3`` (engine: 0.05). Koopa's weights are themselves of order 0.01–0.05
      (fan-in 512 initialisation), so an initial σ of 0.05 perturbs every weight by more than its own
      size: the score regression is then far outside the locally linear regime, the closed-form step
      cannot shrink σ (mean ln τ ≈ 0 for the whole run) and the posterior mean drifts away from the
      warm start; the sample-mixture forecasts were worse than the warm start (ETTh2 H=48 validation MSE
      0.24 vs 0.20) and over-dispersed (coverage_50 ≈ 0.72). From 1e-3 (or 1e-4) ScoreVI settles at
      σ ≈ 3–5e-3 by itself and keeps improving the warm start's accuracy.
    * ``proximal_weight = 100``, with the engine's adaptive damping ``proximal_adaptive = 1``. The
      sensitivity study (``docs/results/sensitivity.md``: ETTh2 H = 48, λ 0.01–100 × S 1/4/16, MAP warm
      start) has the lowest *validation* CRPS at λ = 100 for every S, and its TPE search over
      0.01–1000 settles at λ ≈ 580. A large λ keeps each step close to q_t: the mean moves by a
      damped, pooled Newton-like step instead of following each noisy mini-batch score (N/B ≈ 250
      on ETT), which with λ = 0.1 drifted the mean away from the warm start (ETTh2 H = 48, same
      budget: test MSE 0.29 at λ = 0.1 vs 0.26 at λ = 30–300) and, on ETTh1 H = 96, grew σ
      to 0.04 and over-covered (coverage_50 0.74 vs 0.65 at λ = 100).
    * ``lr = 1e-3`` (Adam solver only: low-rank / mixture families). Adam moves every coordinate of
      the mean by ≈ lr per step whatever the gradient's scale, so the engine's 1e-2 displaced weights
      of size ~0.03 within a few dozen steps (the low-rank run's MSE exploded to 2.4e4 in the
      probabilistic benchmark). 1e-3 is the Adam rate of the network's own training.
    """

    proximal_weight: float = 100.0
    init_scale: float = 1e-3
    lr: float = 1e-3


@dataclass(frozen=True)
class KoopaADVIConfig(ADVIConfig):
    """:class:`ADVIConfig` with the same initial σ and Adam rate as :class:`KoopaScoreVIConfig` (and the
    network's MAP training), so that the two VI methods are compared on equal terms. With the engine's
    ``lr = 1e-2`` / ``init_scale = 0.05`` ADVI's mean wandered off the warm start (ETTh2 H=48 test MSE
    0.83 vs 0.25 for deterministic Koopa in the probabilistic benchmark)."""

    init_scale: float = 1e-3
    lr: float = 1e-3


@dataclass(frozen=True)
class InferenceSection:
    """Which inference method runs and how.

    Attributes:
        method: ``scorevi`` (score-based VI, the default), ``advi`` (reparameterised ELBO),
            ``mc_dropout`` (Gaussian-NLL training, dropout kept on at prediction), ``conformal``
            (MSE training + split-conformal intervals from validation residuals) or
            ``deterministic`` (Gaussian-NLL point model; intervals from the noise alone).
        bayesian: which network parameters get a posterior (``all``, ``decoders``, ``operators``
            or ``fnmatch`` patterns over parameter names). The rest are point estimates fitted
            on the same mini-batches (or at the warm start).
        warm_start_epochs: MAP epochs (likelihood + prior) before variational inference; the
            variational mean starts at the MAP weights. Default 2: ScoreVI's proximal step keeps q
            near q_t (``proximal_weight`` 100), so it refines a fitted network and is slow to fit
            one from a random start. 0 = start from the random init.
        prior_center: ``auto`` (default: ``warm_start`` when there is a warm start, else ``zero``),
            ``zero`` (N(0, s²I), the usual weight prior) or ``warm_start`` (N(θ_MAP, s²I): an
            empirical-Bayes prior that keeps the posterior near the warm start; needs
            ``warm_start_epochs > 0``).
        prior_scale: prior standard deviation ``s``.
        temperature: likelihood tempering ``T`` (log-lik × 1/T).
        vectorize: how weight samples are batched (scores and prediction): ``auto``/``vmap``/``loop``.
        eval_samples: predictive samples per validation window for ``val_crps``/``val_nll``.
        scorevi / advi: engine settings (``forecasting.bayes.config``).
    """

    method: MethodName = "scorevi"
    bayesian: tuple[str, ...] = ("all",)
    warm_start_epochs: int = 2
    prior_center: Literal["auto", "zero", "warm_start"] = "auto"
    prior_scale: float = 1.0
    temperature: float = 1.0
    vectorize: Vectorize = Vectorize.AUTO
    eval_samples: int = 8
    scorevi: KoopaScoreVIConfig = field(default_factory=KoopaScoreVIConfig)
    advi: KoopaADVIConfig = field(default_factory=KoopaADVIConfig)

    def __post_init__(self) -> None:
        if self.warm_start_epochs < 0:
            raise ForecastingError("inference.warm_start_epochs must be >= 0")
        if self.prior_scale <= 0 or self.temperature <= 0:
            raise ForecastingError("inference.prior_scale and inference.temperature must be > 0")
        if self.eval_samples < 2:
            raise ForecastingError("inference.eval_samples must be >= 2 (CRPS needs a spread)")
        if self.prior_center == "warm_start" and self.warm_start_epochs == 0 and self.method in VARIATIONAL_METHODS:
            raise ForecastingError(
                "inference.prior_center=warm_start needs inference.warm_start_epochs > 0; "
                "set warm_start_epochs or use prior_center=zero"
            )

    @property
    def is_variational(self) -> bool:
        return self.method in VARIATIONAL_METHODS

    @property
    def resolved_prior_center(self) -> str:
        """``zero`` or ``warm_start`` (``auto`` follows ``warm_start_epochs``)."""
        if self.prior_center == "auto":
            return "warm_start" if self.warm_start_epochs > 0 else "zero"
        return self.prior_center


@dataclass(frozen=True)
class OptimSection:
    """Optimiser of the network's point parameters (deterministic/MC dropout/conformal training, the
    MAP warm start, and the non-Bayesian weights during variational inference).

    Attributes:
        lr: initial Adam learning rate (paper: 1e-3).
        schedule: ``paper`` (halved each epoch from epoch 3, :func:`forecasting.training.paper_lr`)
            or ``constant``. The engine's own step sizes (ScoreVI's proximal weight, ADVI's lr)
            are configured in ``inference``.
    """

    lr: float = 1e-3
    schedule: Literal["paper", "constant"] = "paper"

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ForecastingError(f"optim.lr must be > 0, got {self.lr}")


def _default_training() -> TrainConfig:
    # Early stopping on the validation CRPS of the predictive (proper; rewards accuracy and
    # calibration). For the conformal method's MSE-trained point model, CRPS = MAE.
    return TrainConfig(monitor="val_crps")


@dataclass(frozen=True)
class PredictSection:
    """Prediction defaults.

    Attributes:
        samples: predictive samples per window (>= 100 for the benchmark metrics).
        quantiles: levels reported in the tidy frame.
        seed: sampling seed (same seed, same samples).
        batch_size: windows per batched forward.
        sample_chunk: weight samples per vmapped call (memory bound).
    """

    samples: int = 100
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    seed: int = 0
    batch_size: int = 256
    sample_chunk: int = 50

    def __post_init__(self) -> None:
        if self.samples < 1 or self.batch_size < 1 or self.sample_chunk < 1:
            raise ForecastingError("predict: samples, batch_size and sample_chunk must be >= 1")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ForecastingError(f"predict.quantiles must lie in (0, 1), got {list(self.quantiles)}")


@dataclass(frozen=True)
class ForecasterConfig:
    """Everything that defines a forecaster run; the resolved value is saved in the artifact."""

    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    likelihood: LikelihoodSection = field(default_factory=LikelihoodSection)
    inference: InferenceSection = field(default_factory=InferenceSection)
    optim: OptimSection = field(default_factory=OptimSection)
    training: TrainConfig = field(default_factory=_default_training)
    predict: PredictSection = field(default_factory=PredictSection)
    device: str = "auto"

    def __post_init__(self) -> None:
        self.koopa()  # validate the model section against the window size early

    def koopa(self) -> KoopaConfig:
        return self.model.for_window(self.data.lookback, self.data.horizon)


DATASET_KEY = "dataset"


def read_forecaster_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                           dataset: str | None = None) -> tuple[ForecasterConfig, str | None, dict]:
    """YAML + dotted overrides -> ``(ForecasterConfig, dataset or None, resolved dict)``.

    Config files in ``configs/`` carry a top-level ``dataset`` key (a registered name or a file
    path) beside the config sections; it is taken out before the rest is validated (unknown keys
    are an error with a did-you-mean). ``dataset`` (e.g. the CLI's ``--data``) wins over the file.
    """
    from forecasting.core.config import OverrideText, apply_overrides, from_dict, read_yaml, to_dict

    raw = read_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, list(overrides))
    name = raw.pop(DATASET_KEY, None)
    if isinstance(name, OverrideText):  # `--set dataset=...`: a name or path, taken as typed
        name = name.resolve(str | None, DATASET_KEY)
    if name is not None and not isinstance(name, str):
        raise ForecastingError(f"{path}: 'dataset' must be a dataset name or a file path, got {name!r}")
    config = from_dict(ForecasterConfig, raw)
    chosen = dataset or name
    resolved = {DATASET_KEY: chosen, **to_dict(config)} if chosen else to_dict(config)
    return config, chosen, resolved
