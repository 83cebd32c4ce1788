"""Search-space files for ``forecasting tune``: dotted config keys with distributions, plus study settings.

A sweep file is YAML (data only)::

    params:                                   # dotted ForecasterConfig keys -> distributions
      inference.scorevi.proximal_weight: {type: float, low: 1.0, high: 300.0, log: true}
      inference.scorevi.mc_samples: {type: int, low: 1, high: 16, log: true}
      optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      likelihood.kind: {type: categorical, choices: [gaussian, student_t]}
      model.num_blocks: [1, 2, 3]             # a bare list is shorthand for a categorical
    objectives: [val_crps]                    # add train_seconds for a Pareto front (no pruning then)
    sampler: {kind: tpe, seed: 0, n_startup_trials: 8}      # tpe | random | grid (categoricals only)
    pruner: {kind: median, n_startup_trials: 4, n_warmup_steps: 1}  # median | percentile | hyperband | none
    evaluation: {samples: 50, max_windows: 200}              # the final validation CRPS of each trial

Every key of ``params`` is checked against :class:`~forecasting.forecaster.config.ForecasterConfig`
when the file is read (unknown keys and sections are errors with a did-you-mean); the bounds and
choices are checked against the run's base config before any trial starts, so a typo or an
impossible bound fails in a second, not after an hour of trials.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from forecasting.core.config import apply_overrides, from_dict, read_yaml
from forecasting.core.errors import ForecastingError

ParamKind = Literal["float", "int", "categorical"]
OBJECTIVES = ("val_crps", "train_seconds")
PROXIMAL_WEIGHT = "inference.scorevi.proximal_weight"
MC_SAMPLES = "inference.scorevi.mc_samples"


@dataclass(frozen=True)
class ParamSpec:
    """One searched config key.

    Attributes:
        key: dotted ForecasterConfig key (also the Optuna parameter name).
        type: ``float`` (uniform or log-uniform), ``int`` (uniform or log) or ``categorical``.
        low / high: inclusive bounds (float/int).
        log: sample on a log scale (float/int; ``low`` must be > 0).
        step: grid step (float/int; not with ``log`` for floats).
        choices: the values of a categorical (YAML scalars).
    """

    key: str
    type: ParamKind
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter from an Optuna trial."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.key, list(self.choices))

    def boundary_values(self) -> list[Any]:
        """Values checked against the base config before the study starts."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def describe(self) -> str:
        if self.type == "categorical":
            return f"categorical {list(self.choices)}"
        scale = "log" if self.log else "uniform"
        step = f", step {self.step:g}" if self.step else ""
        return f"{self.type} {scale} [{self.low:g}, {self.high:g}{step}]"


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler: ``tpe`` (default), ``random`` or ``grid`` (exhaustive over categoricals).

    ``seed`` makes a single-worker study reproducible; worker ``i`` of ``--workers K`` uses
    ``seed + i`` (equal seeds would propose the same first trials in every worker).
    """

    kind: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 0
    n_startup_trials: int = 8
    multivariate: bool = True


@dataclass(frozen=True)
class PrunerSettings:
    """Pruner fed by the per-epoch validation CRPS of the training loop (single objective only).

    ``median`` prunes a trial whose value at an epoch is worse than the median of earlier trials at
    that epoch; ``percentile`` the same with another percentile (lower = more aggressive);
    ``hyperband`` runs successive-halving brackets over epochs; ``none`` disables pruning.
    """

    kind: Literal["median", "percentile", "hyperband", "none"] = "median"
    n_startup_trials: int = 4
    n_warmup_steps: int = 1
    percentile: float = 50.0
    reduction_factor: int = 3


@dataclass(frozen=True)
class EvaluationSettings:
    """How each finished trial is scored on the validation split (the objective).

    Attributes:
        samples: predictive samples per window.
        max_windows: evenly spaced validation windows scored (0 = all).
        seed: sampling seed (same for every trial, so trials are compared on equal noise).
        test: also score the test split (reported beside the trial; never used for selection).
    """

    samples: int = 50
    max_windows: int = 200
    seed: int = 0
    test: bool = False


@dataclass(frozen=True)
class SweepFile:
    """The validated content of a sweep YAML (``params`` parsed separately)."""

    params: dict[str, Any] = field(default_factory=dict)
    objectives: tuple[str, ...] = ("val_crps",)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)


@dataclass(frozen=True)
class SearchSpace:
    """Parsed search space + study settings (see the module docstring for the YAML)."""

    params: tuple[ParamSpec, ...]
    objectives: tuple[str, ...] = ("val_crps",)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    source: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def suggest(self, trial: Any) -> dict[str, Any]:
        """``{dotted key: value}`` for one trial."""
        return {p.key: p.suggest(trial) for p in self.params}

    def grid(self) -> dict[str, list[Any]]:
        """The grid of a ``grid`` sampler (every parameter must be categorical)."""
        not_cat = [p.key for p in self.params if p.type != "categorical"]
        if not_cat:
            raise ForecastingError(
                f"{self.source}: sampler kind 'grid' needs categorical parameters (lists of values), "
                f"but {not_cat} are ranges; give them as lists or use sampler kind 'tpe'"
            )
        return {p.key: list(p.choices) for p in self.params}

    def check_against(self, base: dict[str, Any]) -> None:
        """Build the config with each bound/choice of each parameter on top of ``base`` (raw dict).

        Raises:
            ForecastingError: naming the parameter and value the config rejects.
        """
        from forecasting.forecaster.config import ForecasterConfig

        base = {k: v for k, v in base.items() if k != "dataset"}
        for p in self.params:
            for value in p.boundary_values():
                try:
                    from_dict(ForecasterConfig, apply_overrides(base, [f"{p.key}={_yaml_scalar(value)}"]))
                except ForecastingError as exc:
                    raise ForecastingError(f"{self.source}: {p.key}={value!r} is not a valid config value: {exc}") from None


def _yaml_scalar(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def with_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``base`` (raw config dict) with the dotted ``params`` set (values kept as they are)."""
    import copy

    out = copy.deepcopy(base)
    for key, value in params.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def validate_key(key: str) -> None:
    """Check that ``key`` names a leaf field of :class:`ForecasterConfig` (e.g. ``optim.lr``).

    Raises:
        ForecastingError: unknown part (with a did-you-mean and the valid keys there), or a key
            that names a whole section.
    """
    from forecasting.forecaster.config import ForecasterConfig

    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ForecastingError(f"search-space key {key!r} must be a dotted config key like inference.scorevi.mc_samples")
    cls: Any = ForecasterConfig
    done: list[str] = []
    for i, part in enumerate(key.split(".")):
        if cls is None:
            raise ForecastingError(f"search-space key {key!r}: {'.'.join(done)} is a value, not a section")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        if part not in fields:
            where = ".".join(done) or "the top level"
            close = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.5)
            hint = f" (did you mean {'.'.join(done + [close[0]])!r}?)" if close else ""
            raise ForecastingError(
                f"unknown search-space key {key!r}: {where} has no {part!r}{hint}; valid keys there: {sorted(fields)}"
            )
        annotation = typing.get_type_hints(cls)[part]
        done.append(part)
        cls = annotation if dataclasses.is_dataclass(annotation) else None
    if cls is not None:
        raise ForecastingError(f"search-space key {key!r} is a whole section; name one of its values, e.g. {key}.{dataclasses.fields(cls)[0].name}")


def parse_param(key: str, spec: Any, where: str = "") -> ParamSpec:
    """One ``params`` entry -> :class:`ParamSpec` (key validated against ForecasterConfig)."""
    validate_key(key)
    at = f"{where}: {key}" if where else key
    if isinstance(spec, (list, tuple)):
        spec = {"type": "categorical", "choices": list(spec)}
    if not isinstance(spec, dict):
        raise ForecastingError(f"{at}: expected a mapping like {{type: float, low: 0.001, high: 0.1, log: true}} or a list of choices, got {spec!r}")
    allowed = {"type", "low", "high", "log", "step", "choices"}
    unknown = [k for k in spec if k not in allowed]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), sorted(allowed), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ForecastingError(f"{at}: unknown distribution field {unknown[0]!r}{hint}; valid: {sorted(allowed)}")
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind not in ("float", "int", "categorical"):
        raise ForecastingError(f"{at}: type must be float, int or categorical, got {kind!r}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ForecastingError(f"{at}: a categorical needs a non-empty 'choices' list")
        if any(isinstance(c, (dict, list)) for c in choices):
            raise ForecastingError(f"{at}: categorical choices must be scalars (numbers, strings, true/false, null)")
        if len(set(map(repr, choices))) != len(choices):
            raise ForecastingError(f"{at}: categorical choices repeat a value: {choices}")
        return ParamSpec(key, "categorical", choices=tuple(choices))
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ForecastingError(f"{at}: {name} must be a number, got {value!r}")
    if not isinstance(log, bool):
        raise ForecastingError(f"{at}: log must be true or false, got {log!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        raise ForecastingError(f"{at}: step must be a positive number, got {step!r}")
    if kind == "int" and (float(low) != int(low) or float(high) != int(high) or (step is not None and float(step) != int(step))):
        raise ForecastingError(f"{at}: an int range needs integer low/high/step, got {low}, {high}, {step}")
    if low > high:
        raise ForecastingError(f"{at}: low ({low}) must be <= high ({high})")
    if log and low <= 0:
        raise ForecastingError(f"{at}: a log range needs low > 0, got {low}")
    if log and step is not None and (kind == "float" or step != 1):
        raise ForecastingError(f"{at}: 'step' cannot be combined with log: true")
    return ParamSpec(key, kind, low=float(low) if kind == "float" else int(low), high=float(high) if kind == "float" else int(high),
                     log=log, step=step)


def parse_space(data: dict[str, Any], source: str = "search space") -> SearchSpace:
    """Validate a sweep mapping (already read from YAML) into a :class:`SearchSpace`."""
    try:
        raw = from_dict(SweepFile, data)
    except ForecastingError as exc:
        raise ForecastingError(f"{source}: {exc}") from None
    if not raw.params:
        raise ForecastingError(f"{source}: 'params' is empty; name at least one dotted config key to search")
    params = tuple(parse_param(k, v, source) for k, v in raw.params.items())
    if not raw.objectives or len(set(raw.objectives)) != len(raw.objectives):
        raise ForecastingError(f"{source}: objectives must be a non-empty list without repeats, e.g. [val_crps, train_seconds]")
    for name in raw.objectives:
        if name not in OBJECTIVES:
            raise ForecastingError(f"{source}: unknown objective {name!r}; choose from {list(OBJECTIVES)}")
    if raw.objectives[0] != "val_crps":
        raise ForecastingError(f"{source}: the first objective must be val_crps (train_seconds is the optional second)")
    ev = raw.evaluation
    if ev.samples < 2 or ev.max_windows < 0:
        raise ForecastingError(f"{source}: evaluation.samples must be >= 2 and evaluation.max_windows >= 0")
    space = SearchSpace(params, tuple(raw.objectives), raw.sampler, raw.pruner, ev, source)
    if raw.sampler.kind == "grid":
        space.grid()
    return space


def load_space(path: str | Path, objectives: tuple[str, ...] | None = None) -> SearchSpace:
    """Read and validate a sweep YAML; ``objectives`` (e.g. from the CLI) replaces the file's."""
    data = read_yaml(path)
    if objectives:
        data = {**data, "objectives": list(objectives)}
    return parse_space(data, str(path))
