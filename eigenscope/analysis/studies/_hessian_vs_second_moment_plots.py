"""Figures of the study ``hessian-vs-second-moment``, drawn from the numbers saved in ``results.json``.

Matplotlib is imported inside the functions (``Figure``, never pyplot).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ._hessian_vs_second_moment_measure import NUM_TOP

MATRICES = (("H", "Hessian H"), ("M", "second moment M"), ("Hp", "residual H_p = M − H"))


def slq_curves(densities: dict[str, dict[str, Any]], *, num_points: int = 240) -> dict[str, Any]:
    """Smoothed SLQ and exact densities on a common grid, per data set and matrix.

    Both use the same Gaussian kernel (σ = the SLQ density's default width): the exact
    eigenvalues as a measure of mass 1/n each (``density_from_eigenvalues``) against the
    SLQ nodes and weights. Cost: O(num_points · (n + nodes)).
    """
    from ...metrics import density_from_eigenvalues

    out: dict[str, Any] = {}
    for key, mats in densities.items():
        out[key] = {}
        for name, rec in mats.items():
            d = rec["density"]
            sigma = d.default_sigma()
            lo = min(float(np.min(rec["exact"])), d.support[0]) - 5 * sigma
            hi = max(float(np.max(rec["exact"])), d.support[1]) + 5 * sigma
            grid = np.linspace(lo, hi, num_points)
            exact = density_from_eigenvalues(rec["exact"]).density(grid, sigma=sigma)
            out[key][name] = {
                "grid": grid.tolist(),
                "sigma": sigma,
                "slq": d.density(grid, sigma=sigma).tolist(),
                "exact": exact.tolist(),
                "w1": rec["w1"],
            }
    return out


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    """A constrained-layout matplotlib Figure with a 2-d array of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False))


def _colors(count: int) -> list[Any]:
    """``count`` colours of the viridis map, dark to light."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(count - 1, 1)) for i in range(count)]


def _epoch_axis(ax: Any, epochs: np.ndarray) -> None:
    """Symmetric-log epoch axis starting at epoch 0 (linear below 1, so epoch 0 shows)."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, float(np.max(epochs)) * 1.15)
    ax.set_xlabel("epoch")


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0 (replicates)."""
    se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0), se


def figures(data: dict[str, Any], labels: dict[str, str]) -> Iterator[tuple[str, Any, str]]:
    """The study's figures as ``(name, figure, caption)``: spectra, principal angles, residual, SLQ vs exact."""
    keys = list(labels)
    yield _spectra(data, keys, labels)
    yield _angles(data, keys, labels)
    yield _residual(data, keys, labels)
    yield _slq(data, keys, labels)


def _spectra(data: dict[str, Any], keys: list[str], labels: dict[str, str]) -> tuple[str, Any, str]:
    """Magnitudes of the extreme eigenvalues of H, M and H_p against the epoch (first replicate), log axes.

    Solid: the 15 largest eigenvalues of H and M and the 15 most negative of H_p (their
    magnitudes); dashed: the other end of the spectrum (5 eigenvalues), where non-zero.
    """
    fig, axes = _figure(len(keys), 3, 11.0, 3.0 * len(keys))
    main = {"H": "15 largest", "M": "15 largest", "Hp": "|15 most negative|"}
    other = {"H": "|5 smallest|", "M": "5 smallest", "Hp": "5 largest"}
    for row, key in enumerate(keys):
        epochs = np.asarray(data[key]["epochs"], dtype=float)
        rep = data[key]["replicates"][0]
        for col, (mat, title) in enumerate(MATRICES):
            ax = axes[row, col]
            ends = np.abs(np.asarray(rep[f"{mat}_ends"]))  # (checkpoints, 15 + 5)
            for i, color in enumerate(_colors(NUM_TOP)):
                ax.plot(epochs, ends[:, i], color=color, lw=1.0, label=main[mat] if i == 0 else None)
            tail = ends[:, NUM_TOP:]
            if np.all(tail > 0):
                for i in range(tail.shape[1]):
                    ax.plot(epochs, tail[:, i], color="0.5", lw=0.9, ls="--", label=other[mat] if i == 0 else None)
            ax.set_yscale("log")
            _epoch_axis(ax, epochs)
            ax.set_title(f"{labels[key]}: {title}", fontsize=9)
            ax.legend(fontsize=7)
            if col == 0:
                ax.set_ylabel("|eigenvalue|")
    caption = (
        "Eigen-spectrum dynamics (first replicate, exact eigenvalues, magnitudes on a log axis). Colour (dark = "
        "largest): the 15 largest eigenvalues of the Hessian H and of the second moment M of the minibatch gradients, "
        "and the 15 most negative eigenvalues of the residual H_p = M − H. Grey dashed: the other end of each spectrum "
        "(M's smallest eigenvalues are 0: its rank is at most the number of batches)."
    )
    return "spectra-over-training", fig, caption


def _angles(data: dict[str, Any], keys: list[str], labels: dict[str, str]) -> tuple[str, Any, str]:
    """Cosines of the 15 principal angles between the top-15 eigenspaces of H and M against the epoch."""
    fig, axes = _figure(1, len(keys), 5.2 * len(keys), 4.1)
    for col, key in enumerate(keys):
        ax = axes[0, col]
        epochs = np.asarray(data[key]["epochs"], dtype=float)
        cos = np.asarray([r["cosines"] for r in data[key]["replicates"]])  # (reps, checkpoints, 15)
        mean = cos.mean(axis=0)
        for i, color in enumerate(_colors(mean.shape[1])):
            ax.plot(epochs, mean[:, i], color=color, lw=1.0, label="cos γ₁ … cos γ₁₅" if i == 0 else None)
        stat, se = _mean_se(np.asarray([r["aligned_cos"] for r in data[key]["replicates"]]))
        ax.errorbar(epochs, stat, yerr=2 * se, color="C3", lw=2.0, capsize=3, label="mean of the 10 largest (± 2 s.e.)")
        ax.axhline(data[key]["random_baseline"]["mean"], color="k", ls=":", lw=1.2, label="random 15-dim subspaces")
        _epoch_axis(ax, epochs)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("cosine of principal angle")
        ax.set_title(f"{labels[key]}: top-15 eigenspaces of H vs M", fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=8)
    caption = (
        "Principal angles between the top-15 eigenspaces of H and M over training (cosines, mean over replicates; "
        "dark = smallest angle). Red: the claim's statistic, the mean cosine of the 10 smallest angles; dotted: "
        "its value for random subspaces of the same dimension."
    )
    return "principal-angles", fig, caption


def _residual(data: dict[str, Any], keys: list[str], labels: dict[str, str]) -> tuple[str, Any, str]:
    """‖H_p‖/‖H‖ and ‖H_p + H‖/‖H‖ against the epoch (mean ± 2 s.e. over replicates)."""
    fig, axes = _figure(1, 2, 10.0, 3.6)
    panels = (
        ("hp_over_h", "‖H_p‖_F / ‖H‖_F (significance)", 0.5),
        ("hp_plus_h_over_h", "‖H_p + H‖_F / ‖H‖_F (distance to −H)", 0.2),
    )
    for col, (field, title, threshold) in enumerate(panels):
        ax = axes[0, col]
        for i, key in enumerate(keys):
            epochs = np.asarray(data[key]["epochs"], dtype=float)
            mean, se = _mean_se(np.asarray([r[field] for r in data[key]["replicates"]]))
            ax.errorbar(epochs, mean, yerr=2 * se, color=f"C{i}", marker="o", ms=3, capsize=3, label=labels[key])
        ax.axhline(threshold, color="k", ls=":", lw=1.0, label=f"claim's threshold ({threshold:g}, Gauss-10)")
        _epoch_axis(ax, np.asarray([e for k in keys for e in data[k]["epochs"]], dtype=float))
        if col == 0:
            ax.set_ylim(0, 1.05)
        else:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    caption = (
        "The residual H_p = M − H over training (mean ± 2 s.e. over replicates): its size relative to H (left) and "
        "its relative distance to −H, which equals ‖M‖_F / ‖H‖_F (right)."
    )
    return "residual", fig, caption


def _slq(data: dict[str, Any], keys: list[str], labels: dict[str, str]) -> tuple[str, Any, str]:
    """SLQ densities against the exact spectra, smoothed with the same kernel, after training."""
    fig, axes = _figure(len(keys), 3, 11.0, 3.0 * len(keys))
    for row, key in enumerate(keys):
        curves = data["slq_vs_exact"][key]
        for col, (mat, title) in enumerate(MATRICES):
            ax = axes[row, col]
            c = curves[mat]
            grid, exact, slq = np.asarray(c["grid"]), np.asarray(c["exact"]), np.asarray(c["slq"])
            floor = max(float(np.max(exact)), 1e-300) * 1e-6
            ax.plot(grid, np.maximum(exact, floor), color="k", lw=1.6, label="exact (eigh)")
            ax.plot(grid, np.maximum(slq, floor), color="C1", lw=1.0, ls="--", label="eigenscope SLQ")
            ax.set_yscale("log")
            ax.set_title(f"{labels[key]}: {title}, W1 = {c['w1']:.2g}", fontsize=9)
            ax.set_xlabel("eigenvalue")
            if col == 0:
                ax.set_ylabel("density")
                ax.legend(fontsize=7)
    caption = (
        "Agreement of eigenscope's SLQ (es.spectral_density) with the exact spectra after training (first replicate): "
        "both smoothed with the same Gaussian kernel; W1 is the 1-Wasserstein distance between the SLQ quadrature "
        "measure and the exact eigenvalues."
    )
    return "slq-vs-exact", fig, caption
