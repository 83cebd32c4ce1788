"""PNG curves for ``bench inference``: KL against iterations and against wall-clock, one file per target."""
from __future__ import annotations

from pathlib import Path

from forecasting.core.atomic import atomic_write_with


def plot_target(path: Path, title: str, curves: list[dict], floor: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for c in curves:
        if not c["kl"]:
            continue
        kl = [max(v, 1e-6) for v in c["kl"]]
        axes[0].plot(c["iters"], kl, label=c["label"])
        axes[1].plot([max(s, 1e-4) for s in c["seconds"]], kl, label=c["label"])
    for ax, xlabel in zip(axes, ("iteration", "wall-clock seconds (updates only)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("KL(q ‖ p)")
        ax.grid(True, which="both", alpha=0.3)
        if floor is not None and floor > 1e-6:
            ax.axhline(floor, color="k", ls=":", lw=1, label="mean-field floor")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=90))
    finally:
        plt.close(fig)
