"""Classification metrics on MC-averaged predictive probabilities (vision pathway, docs/evaluation.md).

All metrics take ``probs [N, K]`` — the predictive distribution, i.e. the *average over weight
samples* of the softmax outputs (never the softmax of averaged logits, never a single sample) —
and integer labels ``y [N]``:

* ``error`` — 1 − accuracy of argmax p;
* ``nll`` — mean −log p(y) (probabilities clamped at 1e-12);
* ``brier`` — mean over examples of Σ_k (p_k − 1[y = k])² (the multi-class Brier score, range [0, 2]);
* ``ece`` — expected calibration error with 15 equal-width confidence bins, from
  ``torchmetrics.classification.MulticlassCalibrationError(norm="l1")``;
* ``ood_auroc`` — AUROC of predictive entropy separating an OOD set (positive) from the test set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from forecasting.core.atomic import atomic_write_with

ECE_BINS = 15


def _as_tensors(probs, y) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    t = torch.as_tensor(y, dtype=torch.long).cpu()
    if p.ndim != 2 or t.ndim != 1 or len(p) != len(t):
        raise ValueError(f"want probs [N,K] and labels [N]; got {tuple(p.shape)}, {tuple(t.shape)}")
    return p, t


def error_rate(probs, y) -> float:
    p, t = _as_tensors(probs, y)
    return float((p.argmax(1) != t).double().mean())


def nll(probs, y) -> float:
    p, t = _as_tensors(probs, y)
    return float(-p.gather(1, t[:, None]).clamp_min(1e-12).log().mean())


def brier(probs, y) -> float:
    p, t = _as_tensors(probs, y)
    onehot = torch.nn.functional.one_hot(t, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(1).mean())


def ece(probs, y, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error (L1, equal-width bins) via torchmetrics."""
    from torchmetrics.classification import MulticlassCalibrationError

    p, t = _as_tensors(probs, y)
    metric = MulticlassCalibrationError(num_classes=p.shape[1], n_bins=n_bins, norm="l1")
    return float(metric(p.float(), t))


def predictive_entropy(probs) -> torch.Tensor:
    p = torch.as_tensor(probs, dtype=torch.float64)
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def ood_auroc(probs_in, probs_out) -> float:
    """AUROC of predictive entropy for "is out-of-distribution" (0.5 = blind, 1 = perfect)."""
    from sklearn.metrics import roc_auc_score

    h_in, h_out = predictive_entropy(probs_in).numpy(), predictive_entropy(probs_out).numpy()
    labels = np.concatenate([np.zeros(len(h_in)), np.ones(len(h_out))])
    return float(roc_auc_score(labels, np.concatenate([h_in, h_out])))


def classification_metrics(probs, y, n_bins: int = ECE_BINS) -> dict[str, float]:
    """``error``, ``nll``, ``ece``, ``brier`` of MC-averaged probabilities."""
    return {"error": error_rate(probs, y), "nll": nll(probs, y), "ece": ece(probs, y, n_bins), "brier": brier(probs, y)}


def reliability_bins(probs, y, n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (for the diagram)."""
    p, t = _as_tensors(probs, y)
    conf, pred = p.max(1)
    correct = (pred == t).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.bucketize(conf, edges[1:-1], right=False)  # same convention as torchmetrics (right-closed bins)
    count = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(idx, weights=correct, minlength=n_bins)
    safe = count.clamp_min(1)
    return {"edges": edges.numpy(), "confidence": (conf_sum / safe).numpy(), "accuracy": (acc_sum / safe).numpy(),
            "count": count.numpy()}


def plot_reliability(curves: dict[str, tuple], path: str | Path, title: str = "", n_bins: int = ECE_BINS) -> Path:
    """Reliability diagrams, one panel per method: ``curves = {label: (probs, y)}`` -> PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, (label, (probs, y)) in zip(axes[0], curves.items()):
        b = reliability_bins(probs, y, n_bins)
        width = 1.0 / n_bins
        mids = b["edges"][:-1] + width / 2
        has = b["count"] > 0
        ax.bar(mids[has], b["accuracy"][has], width=width, edgecolor="black", alpha=0.8, label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_title(f"{label}\nECE {ece(probs, y, n_bins):.3f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
    axes[0][0].set_ylabel("accuracy")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)
