"""Bayesian image classifier: torchvision ResNet/ViT + the model-agnostic inference engine.

``Classifier.fit(data, config)`` trains one of four methods on the same backbone, prior and
categorical likelihood, chosen by ``config.method``:

* ``deterministic`` — MAP under the Gaussian prior (Adam), one forward at prediction;
* ``mc_dropout`` — the same training, dropout kept active at prediction (Gal & Ghahramani 2016);
* ``advi`` — mean-field Gaussian over *all* weights, reparameterised ELBO (Blundell et al. 2015);
* ``scorevi`` — the same family fitted by score matching + proximal penalty (Kim 2026,
  arXiv 2602.05873; ``docs/scorevi.md``).

The Bayesian methods go through ``forecasting.bayes`` unchanged: the network becomes a pure
function of a flat weight vector θ via ``FlatParams`` + ``torch.func.functional_call``, the
per-example log-likelihood is ``log softmax(f_θ(x))[y]``, and the prior is N(c, s² I) centred at
the initial weights (``inference.prior.center='init'``, default; these are the user's weights when
``init_weights`` names a local file) or at zero. BatchNorm is replaced by GroupNorm or frozen —
see :mod:`forecasting.models.vision` for why.

``predict_proba`` returns the MC average of softmax probabilities over weight samples (dropout
masks for MC dropout), evaluated with ``vmap`` over samples in chunks; ``save``/``load`` use the
project's one artifact format (:mod:`forecasting.core.artifacts`: checksummed, written atomically):
``weights.safetensors`` (network state), ``posterior.safetensors`` (variational state) and
``metadata.json`` (config, data facts, training summary). Directories of the older layout
(``meta.json``, no checksums) still load, with a ``DeprecationWarning``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from forecasting.bayes.config import Vectorize
from forecasting.classifier.config import (BAYESIAN_METHODS, ClassifierConfig, ClassifierPredictConfig,  # noqa: F401
                                           ClassifierTrainConfig, Method)
from forecasting.classifier.tasks import mha_fastpath_off
from forecasting.core.artifacts import MANIFEST, flatten_state, load_artifact, save_artifact, unflatten_state
from forecasting.core.config import from_dict, to_dict
from forecasting.data.images import ImageDataset, ImageSplits, normalize
from forecasting.core.device import resolve_device
from forecasting.core.errors import ForecastingError
from forecasting.models.vision import (build_backbone, count_parameters, has_batchnorm,
                                       recalibrate_batchnorm)

log = logging.getLogger(__name__)

ARTIFACT_KIND = "classifier"
# The pre-manifest layout (meta.json + safetensors, no checksums), still read with a DeprecationWarning.
LEGACY_META = "meta.json"
LEGACY_KIND = "image_classifier"
LEGACY_FORMAT_VERSION = 1
def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local ``.safetensors`` file or a ``torch.save`` file (``weights_only``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ForecastingError(f"weights file {str(path)!r} not found; give a local .safetensors or .pt state dict")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any read failure is the user's file
        raise ForecastingError(f"cannot read weights file {str(path)!r}: {exc}") from exc
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ForecastingError(f"weights file {str(path)!r} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_matching_weights(net: nn.Module, state: dict[str, torch.Tensor], source: str = "weights") -> dict[str, int]:
    """Copy every entry of ``state`` whose name and shape match ``net``; the rest is left as is."""
    own = net.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not matched:
        raise ForecastingError(f"{source}: no tensor matches the network by name and shape "
                               f"(file has e.g. {list(state)[:3]}, network has e.g. {list(own)[:3]}); "
                               "check that the architecture (model.arch, sizes) is the one the weights were saved from")
    net.load_state_dict(matched, strict=False)
    skipped = len(own) - len(matched)
    log.info("%s: loaded %d tensors, %d kept their initialisation", source, len(matched), skipped)
    return {"loaded": len(matched), "kept_init": skipped}


# ---------------------------------------------------------------------------------------------


class Classifier:
    """A fitted image classifier (any method); build it with :meth:`fit` or :meth:`load`.

    Attributes:
        config: the resolved config.
        net: the backbone (for VI methods: holding the prior-centre weights and fixed buffers).
        data_info: ``num_classes``, ``in_channels``, ``image_size``, ``class_names``, ``normalization``.
        flat: ``FlatParams`` of the Bayesian parameters (VI methods), else ``None``.
        algorithm, state: the engine algorithm and its state (VI methods), else ``None``.
        summary: training summary (epochs, seconds, best epoch, parameter count, ...).
    """

    def __init__(self, config: ClassifierConfig, net: nn.Module, data_info: dict, flat: Any = None,
                 algorithm: Any = None, state: Any = None, summary: dict | None = None):
        self.config = config
        self.net = net
        self.data_info = data_info
        self.flat = flat
        self.algorithm = algorithm
        self.state = state
        self.summary = summary or {}
        self._vmap_ok: bool | None = None if config.inference.vectorize == Vectorize.AUTO else \
            config.inference.vectorize == Vectorize.VMAP

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def method(self) -> str:
        return self.config.method

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def build_network(config: ClassifierConfig, data_info: dict) -> nn.Module:
        return build_backbone(config.model, data_info["num_classes"], data_info["in_channels"], data_info["image_size"])

    @classmethod
    def fit(cls, data: ImageSplits, config: ClassifierConfig | None = None, run_dir: str | Path | None = None,
            progress: bool = False, warm_start: dict[str, torch.Tensor] | None = None) -> "Classifier":
        """Train on ``data.train``, keeping the epoch with the best validation NLL on ``data.val``.

        Args:
            data: train/val splits (normalised images).
            config: the run's config.
            run_dir: where the training loop writes checkpoints and ``metrics.jsonl`` (optional).
            progress: show progress bars.
            warm_start: ADVI/ScoreVI only: a network state dict (e.g. of an already trained
                deterministic classifier with the same config and seed) used instead of running
                ``training.warmup_epochs`` of MAP training; the prior stays centred at the initial weights.

        Raises:
            ForecastingError: bad config, unreadable ``init_weights``, or a diverging run.
        """
        from forecasting.classifier.tasks import MAPTask, VariationalTask, categorical_loglik
        from forecasting.training.loop import TrainConfig
        from forecasting.training.loop import fit as loop_fit

        config = config or ClassifierConfig()
        device = resolve_device(config.device)
        tc = config.training
        torch.manual_seed(tc.seed)
        info = {"name": data.name, "num_classes": data.num_classes, "in_channels": data.in_channels,
                "image_size": data.image_size, "class_names": list(data.class_names),
                "normalization": data.normalization}
        net = cls.build_network(config, info)
        summary: dict[str, Any] = {"parameters": count_parameters(net), "n_train": len(data.train)}
        if config.init_weights:
            summary["init_weights"] = load_matching_weights(net, read_weights_file(config.init_weights), config.init_weights)
        net.to(device)
        if config.model.norm == "frozen_bn" and has_batchnorm(net):
            gen = torch.Generator().manual_seed(tc.seed)
            used = recalibrate_batchnorm(net, (x.to(device) for x, _ in data.train.batches(tc.batch_size, True, gen)))
            summary["batchnorm_recalibration_batches"] = used
        model = cls(config, net, info, summary=summary)
        prior_cfg = config.inference.prior
        loop_cfg = TrainConfig(epochs=tc.epochs, batch_size=tc.batch_size, patience=tc.patience, monitor="val_nll",
                               seed=tc.seed, device=str(device), max_batches_per_epoch=tc.max_batches_per_epoch,
                               time_budget_s=tc.time_budget_s)
        center = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone() \
            if prior_cfg.center == "init" else None

        def map_task() -> MAPTask:
            return MAPTask(net, center, prior_cfg.scale, len(data.train), config.inference.temperature, tc.lr,
                           predict_fn=lambda ds: model.predict_proba(ds, n_samples=tc.val_samples, seed=tc.seed))

        if config.method in BAYESIAN_METHODS:
            if warm_start is not None:
                net.load_state_dict(warm_start)
                summary["warm_start"] = "given"
            elif tc.warmup_epochs > 0:
                model.config = dataclasses.replace(config, method="deterministic")  # validation as MAP
                warm = loop_fit(map_task(), data.train, data.val, dataclasses.replace(loop_cfg, epochs=tc.warmup_epochs),
                                run_dir=None, progress=progress)
                model.config = config
                summary["warm_start"] = {"epochs": warm.epochs_run, "train_seconds": warm.train_seconds,
                                         "best_val_nll": warm.best_metric}
            task = model._variational_task(VariationalTask, categorical_loglik, center)
        else:
            if config.model.norm == "frozen_bn" and has_batchnorm(net):
                log.info("frozen_bn with %s: BatchNorm statistics are updated during MAP training", config.method)
            task = map_task()
        t0 = time.perf_counter()
        result = loop_fit(task, data.train, data.val, loop_cfg, run_dir=run_dir, progress=progress)
        if config.method in BAYESIAN_METHODS:
            model.state = task.state
        net.eval()
        summary.update({"train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - t0,
                        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                        "best_val_nll": result.best_metric, "steps": result.steps, "stop_reason": result.stop_reason,
                        "seconds_per_epoch": result.seconds_per_epoch,
                        "history": [{k: v for k, v in r.items() if isinstance(v, (int, float))} for r in result.history]})
        return model

    def _engine_target(self, categorical_loglik, center: torch.Tensor | None):
        from forecasting.bayes.flat import FlatParams
        from forecasting.bayes.target import Target, make_prior, module_log_likelihood

        inf = self.config.inference
        self.flat = self.flat or FlatParams.from_module(self.net)
        theta0 = self.flat.flatten(self.net)  # q's initial mean: current weights (initial or warm-started)
        prior = make_prior(inf.prior.scale, inf.prior.center, theta0 if center is None else center)
        loglik = module_log_likelihood(self.net, self.flat, lambda logits, batch: categorical_loglik(logits, batch[1]))
        return Target(loglik, prior, n_data=int(self.summary["n_train"]), temperature=inf.temperature,
                      vectorize=inf.vectorize), theta0

    def _make_algorithm(self, theta0: torch.Tensor):
        from forecasting.bayes.algorithms import build
        from forecasting.bayes.families import family_from_config

        inf = dataclasses.replace(self.config.inference, method=self.config.method)
        sub = inf.method_config()
        algorithm = build(self.config.method, sub)
        gen = torch.Generator(device=theta0.device).manual_seed(self.config.training.seed)
        family = family_from_config(sub, theta0.numel(), mean=theta0, device=theta0.device, generator=gen)
        return algorithm, algorithm.init(family)

    def _variational_task(self, task_cls, categorical_loglik, center: torch.Tensor | None = None):
        self.net.eval()  # pure forward: dropout off, (frozen) BatchNorm uses its buffers
        target, theta0 = self._engine_target(categorical_loglik, center)
        self.algorithm, self.state = self._make_algorithm(theta0)
        tc = self.config.training

        def predict(ds: ImageDataset) -> torch.Tensor:
            self.state = task.state
            return self.predict_proba(ds, n_samples=tc.val_samples, seed=tc.seed)

        task = task_cls(self.algorithm, self.state, target, seed=tc.seed, predict_fn=predict)
        return task

    # -- prediction -----------------------------------------------------------------------------
    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Apply the training normalisation to raw [0, 1] images ``[N, C, H, W]``."""
        return normalize(x01, self.data_info["normalization"])

    def _inputs(self, x: torch.Tensor | ImageDataset) -> torch.Tensor:
        x = x.x if isinstance(x, ImageDataset) else torch.as_tensor(x)
        want = (self.data_info["in_channels"], self.data_info["image_size"], self.data_info["image_size"])
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ForecastingError(f"images must have shape [N, {want[0]}, {want[1]}, {want[2]}] like the training data; "
                                   f"got {tuple(x.shape)}")
        return x.float()

    @torch.no_grad()
    def predict_member_proba(self, x: torch.Tensor | ImageDataset, n_samples: int | None = None,
                             seed: int = 0) -> torch.Tensor:
        """Softmax probabilities of each weight sample (dropout mask): ``[S, N, K]`` on the CPU.

        Deterministic models return ``S = 1``. The same ``seed`` gives the same samples.
        """
        x = self._inputs(x)
        n_samples = n_samples or self.config.predict.mc_samples
        self.net.eval()
        if self.method == "deterministic":
            return self._chunked(lambda xb: self.net(xb)[None], x, 1)
        if self.method == "mc_dropout":
            from forecasting.classifier.tasks import set_dropout

            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                set_dropout(self.net, True)
                try:
                    return self._chunked(lambda xb: torch.stack([self.net(xb) for _ in range(n_samples)]), x, n_samples)
                finally:
                    set_dropout(self.net, False)
        if self.state is None:
            raise ForecastingError("this classifier has no posterior; fit it or load a saved one")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        thetas = self.algorithm.sample(self.state, n_samples, gen).to(self.device)
        return self._chunked(lambda xb: self._sample_logits(thetas, xb), x, n_samples)

    def predict_proba(self, x: torch.Tensor | ImageDataset, n_samples: int | None = None, seed: int = 0) -> torch.Tensor:
        """Predictive probabilities ``[N, K]``: the MC average over weight samples of softmax outputs."""
        return self.predict_member_proba(x, n_samples, seed).mean(0)

    def _chunked(self, logits_fn, x: torch.Tensor, n_samples: int) -> torch.Tensor:
        step = max(1, self.config.predict.chunk // max(1, n_samples))
        out = []
        for start in range(0, len(x), step):
            logits = logits_fn(x[start:start + step].to(self.device))
            out.append(torch.softmax(logits.float(), dim=-1).cpu())
        return torch.cat(out, dim=1)

    def _sample_logits(self, thetas: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Logits ``[S, n, K]`` of the network at each weight sample: vmap over samples, loop fallback."""
        net, flat = self.net, self.flat

        def one(theta: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(net, flat.params_and_buffers(net, theta), (xb,))

        if self._vmap_ok is not False:
            try:
                with mha_fastpath_off():
                    out = torch.func.vmap(one)(thetas)
                self._vmap_ok = True
                return out
            except Exception as exc:  # noqa: BLE001 - any vmap failure: fall back to the loop
                if self.config.inference.vectorize == Vectorize.VMAP:
                    raise
                log.info("vmap over weight samples failed (%s: %s); predicting with a loop", type(exc).__name__, exc)
                self._vmap_ok = False
        return torch.stack([one(t) for t in thetas])

    def evaluate(self, dataset: ImageDataset, n_samples: int | None = None, seed: int = 0) -> dict[str, float]:
        """``error``, ``nll``, ``ece``, ``brier`` of the MC-averaged probabilities on ``dataset``."""
        from forecasting.evaluation.classification import classification_metrics

        return classification_metrics(self.predict_proba(dataset, n_samples, seed), dataset.y)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write one self-describing artifact directory (see :mod:`forecasting.core.artifacts`); atomic.

        ``weights.safetensors`` holds the network state, ``posterior.safetensors`` the variational
        state (ADVI/ScoreVI), ``metadata.json`` config, data facts and training summary, and
        ``manifest.json`` the checksums. An existing classifier at ``directory`` (this format or
        the older ``meta.json`` one) is replaced only once the new one is complete.
        """
        directory = Path(directory)
        tensors = {"weights": self.net.state_dict()}
        posterior_state = None
        if self.state is not None:
            tensors["posterior"], posterior_state = flatten_state(self.state.state_dict())
        metadata = {"config": to_dict(self.config), "data": self.data_info, "summary": self.summary,
                    "posterior_state": posterior_state}
        # Plain JSON values only (summaries can hold numpy scalars); NaN stays NaN as before.
        metadata = json.loads(json.dumps(metadata, default=_json_default))
        return save_artifact(directory, ARTIFACT_KIND, metadata, tensors, config=metadata["config"],
                             replace_foreign=_is_legacy(directory))

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "Classifier":
        """Load a saved classifier onto ``device`` (nothing is unpickled).

        Raises:
            ForecastingError: not a classifier artifact, missing/truncated/tampered files, a newer
                format, or weights that do not fit the recorded config.
        """
        directory = Path(directory)
        dev = resolve_device(device)
        if _is_legacy(directory):
            return cls._load_legacy(directory, dev)
        art = load_artifact(directory, ARTIFACT_KIND, dev)
        meta = art.metadata
        try:
            return cls._restore(directory, meta["config"], meta["data"], meta.get("summary"), art.tensors["weights"],
                                art.tensors.get("posterior"), meta.get("posterior_state"), unflatten_state, dev)
        except KeyError as exc:
            raise ForecastingError(f"classifier artifact {directory} lacks {exc}; re-save the model") from exc

    @classmethod
    def _restore(cls, directory: Path, config_dict: dict, data_info: dict, summary: dict | None,
                 weights: dict[str, torch.Tensor], posterior: dict[str, torch.Tensor] | None, skeleton: Any,
                 join: Callable[[Any, dict[str, torch.Tensor]], Any], dev: torch.device) -> "Classifier":
        """Rebuild a classifier from loaded parts (shared by the current and the legacy format)."""
        config = from_dict(ClassifierConfig, config_dict)
        net = cls.build_network(config, data_info)
        try:
            net.load_state_dict(weights)
        except Exception as exc:  # noqa: BLE001 - any mismatch is the artifact's, not a bug here
            raise ForecastingError(f"{directory}: the saved weights do not fit the recorded config ({exc}); "
                                   "re-save the model") from exc
        net.to(dev).eval()
        model = cls(config, net, data_info, summary=summary)
        if config.method in BAYESIAN_METHODS:
            from forecasting.bayes.flat import FlatParams

            if posterior is None:
                raise ForecastingError(f"{directory} holds a {config.method} classifier without its posterior; "
                                       "re-save the model")
            model.flat = FlatParams.from_module(net)
            model.algorithm, model.state = model._make_algorithm(model.flat.flatten(net))
            model.state.load_state_dict(join(skeleton, {k: v.to(dev) for k, v in posterior.items()}))
        return model

    @classmethod
    def _load_legacy(cls, directory: Path, dev: torch.device) -> "Classifier":
        """Read the pre-manifest layout (``meta.json`` + safetensors, no checksums), with a warning."""
        from safetensors.torch import load_file

        warnings.warn(f"{directory} is a classifier saved in the old format (meta.json, no checksums); it is "
                      "still read, but support will be removed: load it and save() it again to convert it",
                      DeprecationWarning, stacklevel=3)
        meta_path = directory / LEGACY_META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ForecastingError(f"{meta_path} is corrupt: {exc}") from exc
        if int(meta.get("format_version", 0)) > LEGACY_FORMAT_VERSION:
            raise ForecastingError(f"{directory}: unsupported artifact (format {meta.get('format_version')} > "
                                   f"{LEGACY_FORMAT_VERSION}); upgrade the package")

        def read(name: str) -> dict[str, torch.Tensor]:
            try:
                return load_file(str(directory / name), device="cpu")
            except Exception as exc:  # noqa: BLE001 - missing or unreadable file of the user's artifact
                raise ForecastingError(f"{directory}/{name} is missing or unreadable ({exc}); re-save the model") from exc

        config = meta["config"]
        posterior = read("posterior.safetensors") if config.get("method") in BAYESIAN_METHODS else None
        return cls._restore(directory, config, meta["data"], meta.get("summary"), read("weights.safetensors"),
                            posterior, meta.get("posterior_meta"), lambda skeleton, t: _join_legacy_state(t, skeleton),
                            dev)


def _is_legacy(directory: Path) -> bool:
    """A classifier directory of the old layout: ``meta.json`` of kind ``image_classifier``, no manifest."""
    meta_path = directory / LEGACY_META
    if (directory / MANIFEST).exists() or not meta_path.is_file():
        return False
    try:
        return json.loads(meta_path.read_text(encoding="utf-8")).get("kind") == LEGACY_KIND
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def _join_legacy_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """Inverse of the old layout's state skeleton (``__tensor__`` / ``__dict__`` pairs / ``__list__``)."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {k: _join_legacy_state(tensors, v) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            items = [_join_legacy_state(tensors, v) for v in skeleton["__list__"]]
            return tuple(items) if skeleton.get("tuple") else items
    return skeleton


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
