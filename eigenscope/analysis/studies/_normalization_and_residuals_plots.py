"""Figures of the study ``normalization-and-residuals`` (matplotlib ``Figure`` objects, no pyplot)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _density(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The stored SLQ measure of a checkpoint as ``(nodes, weights)`` averaged over probes (flattened)."""
    nodes = np.asarray(record["nodes"], dtype=np.float64)
    weights = np.asarray(record["weights"], dtype=np.float64)
    return nodes.reshape(-1), weights.reshape(-1) / weights.shape[0] if weights.ndim == 2 else weights


def densities_figure(runs: dict[str, list[dict[str, Any]]], scale: Any) -> Any:
    """One panel per network: smoothed densities at init and end (train mode), and end in eval mode.

    Uses :func:`eigenscope.analysis.plot_density` on the stored SLQ stems of the first seed.
    Cost: a few thousand kernel evaluations per curve.
    """
    from matplotlib.figure import Figure

    from .._plots import plot_density

    names = [v for v in runs if runs[v] and "0" in runs[v][0]["checkpoints"]]
    fig = Figure(figsize=(3.2 * len(names), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    first, last = str(scale.checkpoints[0]), str(scale.checkpoints[-1])
    for ax, name in zip(axes, names, strict=True):
        run = runs[name][0]
        plot_density(_density(run["checkpoints"][first]), ax=ax, label="init", decades=6)
        plot_density(_density(run["checkpoints"][last]), ax=ax, label=f"epoch {last}", decades=6)
        if run["eval_mode_final"]:
            plot_density(_density(run["eval_mode_final"]), ax=ax, label=f"epoch {last}, eval", decades=6)
        ax.set_title(name)
        ax.set_xlabel("eigenvalue λ")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("density (log scale)")
    return fig


def _mean_curve(rs: list[dict[str, Any]], key: str, epochs: list[int]) -> np.ndarray:
    """Mean over seeds of ``key`` at each epoch (NaN where not measured)."""
    out = []
    for e in epochs:
        vals = [r["checkpoints"].get(str(e), {}).get(key) for r in rs]
        vals = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
        out.append(np.mean(vals) if vals else np.nan)
    return np.asarray(out)


def curves_figure(runs: dict[str, list[dict[str, Any]]], scale: Any, drop_name: str) -> Any:
    """Three panels over epochs: λ_max (Ritz), negative L1 share, training loss; mean over seeds."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    epochs = list(scale.checkpoints)
    for name, rs in runs.items():
        style = "--" if name == drop_name else "-"
        eps = [e for e in epochs if any(str(e) in r["checkpoints"] for r in rs)]
        ax1.plot(eps, _mean_curve(rs, "lambda_max_ritz", eps), style, marker="o", label=name)
        ax2.plot(eps, _mean_curve(rs, "negative_l1_share", eps), style, marker="o", label=name)
        loss = np.mean([r["train_loss"] for r in rs], axis=0)
        ax3.plot(np.arange(1, len(loss) + 1), loss, style, label=name)
    ax1.set_yscale("log")
    ax1.set_ylabel("λ_max")
    ax2.set_ylabel("negative share of the L1 energy (SLQ)")
    ax3.set_yscale("log")
    ax3.set_ylabel("training loss")
    ax3.axvline(scale.drop_epoch - 0.5, color="grey", lw=0.8, ls=":")
    ax1.axvline(scale.drop_epoch - 0.5, color="grey", lw=0.8, ls=":")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("epoch")
    ax1.legend(fontsize=7)
    return fig


def outliers_figure(runs: dict[str, list[dict[str, Any]]], variants: dict[str, Any]) -> Any:
    """Bars of λ₁/λ₁₀ at the end per network: batch statistics, and population statistics for BN networks."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    names = list(variants)
    for offset, (label, getter) in enumerate(
        (
            ("batch statistics (train mode)", lambda r: _last(r).get("outlier_ratio")),
            ("population statistics (eval mode)", lambda r: (r["eval_mode_final"] or {}).get("outlier_ratio")),
        )
    ):
        means, errs = [], []
        for name in names:
            vals = [getter(r) for r in runs[name]]
            vals = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
            means.append(np.mean(vals) if vals else np.nan)
            errs.append(np.std(vals, ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else 0.0)
        ax.bar(np.arange(len(names)) + 0.38 * offset, means, 0.38, yerr=errs, label=label)
    ax.set_xticks(np.arange(len(names)) + 0.19, names)
    ax.set_ylabel("λ₁ / λ₁₀ at the end of training")
    ax.legend(fontsize=8)
    return fig


def _last(run: dict[str, Any]) -> dict[str, Any]:
    """The record of the last checkpoint of ``run``."""
    return run["checkpoints"][str(max(int(k) for k in run["checkpoints"]))]
