"""Figures of the study ``gradient-geometry``, drawn from the numbers saved in ``results.json``.

Matplotlib is imported inside the functions (``Figure``, never pyplot).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def _figure(ncols: int, width: float, height: float) -> tuple[Any, list[Any]]:
    """A constrained-layout matplotlib Figure with one row of ``ncols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, ncols)))


def _series(
    reps: list[dict[str, Any]], key: str, transform: Any = None, upto: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over replicates of a per-checkpoint series (the first ``upto`` checkpoints)."""
    values = np.asarray([r[key][:upto] for r in reps], dtype=float)
    if transform is not None:
        values = transform(values)
    if len(reps) == 1:
        return values[0], np.zeros(values.shape[1])
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(len(reps))


def _curves(ax: Any, data: dict[str, Any], key: str, transform: Any = None, *, upto: int | None = None) -> None:
    """One line (mean ± 2 s.e. over replicates) per learning rate against the epoch."""
    epochs = np.asarray(data["epochs"], dtype=float)[:upto]
    for i, (label, reps) in enumerate(data["runs"].items()):
        mean, se = _series(reps, key, transform, upto)
        ax.errorbar(epochs, mean, yerr=2 * se, color=f"C{i}", marker="o", ms=3, capsize=3, label=f"SGD {label}")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, float(np.max(data["epochs"])) * 1.15)
    ax.set_xlabel("epoch")


def _threshold(ax: Any, data: dict[str, Any], key: str) -> None:
    """The claim's threshold (dotted) and the start of the checkpoints it is judged on (shaded before)."""
    t = data["thresholds"]
    ax.axhline(t[key], color="C3", ls=":", lw=1.2, label=f"claim's threshold ({t[key]:g})")
    ax.axvspan(0, t["from_epoch"], color="0.92", zorder=0)


def figures(data: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """The study's figures as ``(name, figure, caption)``."""
    yield _fraction(data)
    yield _inner_product(data)
    yield _hessian(data)


def _fraction(data: dict[str, Any]) -> tuple[str, Any, str]:
    """Gradient fraction in the top-k subspace against the epoch, and its cumulative profile over j."""
    fig, (ax, ax2) = _figure(2, 10.0, 3.8)
    _curves(ax, data, "gradient_fraction")
    ax.axhline(data["random_fraction"], color="k", ls=":", lw=1.2, label="random k-dim subspace (k/n)")
    _threshold(ax, data, "gradient_fraction")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("‖P g‖² / ‖g‖²")
    ax.set_title(f"gradient fraction in the top-{data['k']} Hessian subspace", fontsize=9)
    ax.legend(fontsize=7)
    reps = next(iter(data["runs"].values()))
    label = next(iter(data["runs"]))
    profile = np.asarray([r["fraction_profile"] for r in reps]).mean(axis=0)  # (checkpoints, k)
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for i, epoch in enumerate(data["epochs"]):
        color = cmap(0.9 * i / max(len(data["epochs"]) - 1, 1))
        ax2.plot(np.arange(1, profile.shape[1] + 1), profile[i], color=color, marker=".", label=f"epoch {epoch}")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("j (top-j eigenvectors by |λ|)")
    ax2.set_ylabel("‖P_j g‖² / ‖g‖²")
    ax2.set_title(f"cumulative fraction (SGD {label}, mean over replicates)", fontsize=9)
    ax2.legend(fontsize=6, ncol=2)
    caption = (
        "Left: fraction of the full-batch gradient's squared norm in the span of the top-k Hessian eigenvectors "
        "(k = 10 classes, largest |λ|, es.eigsh), mean ± 2 s.e. over replicates; black dotted: a random subspace; "
        "red dotted: the claim's threshold, judged on the checkpoints right of the grey band. Right: "
        "the same for the top-j eigenvectors, j = 1..k, at each checkpoint."
    )
    return "gradient-fraction", fig, caption


def _inner_product(data: dict[str, Any]) -> tuple[str, Any, str]:
    """Normalized inner product between the gradient and θ_t − θ* against the epoch."""
    fig, (ax,) = _figure(1, 5.6, 3.8)
    _curves(ax, data, "normalized_inner_product", upto=-1)
    ax.axhline(0.0, color="k", lw=0.8)
    _threshold(ax, data, "normalized_inner_product")
    ax.set_ylim(-0.2, 1.02)
    ax.set_ylabel("⟨g, θ_t − θ*⟩ / (‖g‖ ‖θ_t − θ*‖)")
    ax.set_title("gradient vs the direction to the final weights", fontsize=9)
    ax.legend(fontsize=7)
    caption = (
        "Normalized inner product between the full-batch gradient at θ_t and θ_t − θ* (θ* the final weights of the "
        "same run), mean ± 2 s.e. over replicates; 1 would mean that −g points straight at θ*. Red dotted: the claim's "
        "upper threshold, judged on the checkpoints right of the grey band."
    )
    return "inner-product", fig, caption


def _hessian(data: dict[str, Any]) -> tuple[str, Any, str]:
    """Rank-k approximation error and the extreme eigenvalues against the epoch, with the dense checks."""
    fig, (ax, ax2) = _figure(2, 10.0, 3.8)
    _curves(ax, data, "rank_k_error")
    epochs = data["epochs"]
    for i, reps in enumerate(data["runs"].values()):
        ends = (str(epochs[0]), str(epochs[-1]))
        exact = [np.mean([r["exact"][e]["rank_k_error"] for r in reps]) for e in ends]
        ax.plot(
            [epochs[0], epochs[-1]],
            exact,
            ls="none",
            marker="x",
            ms=9,
            color=f"C{i}",
            label="dense eigh" if i == 0 else None,
        )
    _threshold(ax, data, "rank_k_error")
    ax.set_yscale("log")
    ax.set_ylabel("‖H − H_k‖_F / ‖H‖_F")
    ax.set_title("error of the best rank-k approximation (tr(H²) by es.trace)", fontsize=9)
    ax.legend(fontsize=7)
    _curves(ax2, data, "lambda_max")
    for i, reps in enumerate(data["runs"].values()):
        mean, _ = _series(reps, "lambda_min", np.abs)
        ax2.plot(epochs, mean, color=f"C{i}", ls="--", marker="v", ms=3)
    ax2.plot([], [], color="0.4", ls="--", marker="v", label="|λ_min| (dashed)")
    ax2.set_yscale("log")
    ax2.set_ylabel("eigenvalue magnitude")
    ax2.set_title("λ_max (solid) and |λ_min| (dashed)", fontsize=9)
    ax2.legend(fontsize=7)
    caption = (
        "Left: relative Frobenius error of the best rank-k approximation, √(1 − Σ λᵢ² / tr(H²)), from the top-k "
        "eigenvalues by magnitude and the Hutch++ estimate of tr(H²); crosses: the same from the dense Hessian; red "
        "dotted: the claim's threshold, judged right of the grey band. "
        "Right: the largest eigenvalue and the magnitude of the smallest (most negative) one."
    )
    return "hessian-low-rank", fig, caption
