"""Claims, tables and figures of the true-vs-empirical study (from the replicates' summaries)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._framework import StudyContext, Table
from ._true_vs_empirical_measure import rank_correlation
from ._verdicts import Claim, Criterion, Measured


def per_ratio(rep: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-N series of one replicate, each empirical value the mean over its draws.

    ``lmax_ratio = λ_max(emp)/λ_max(true)``, ``lmin_shift = (λ_min(emp) − λ_min(true))/λ_max(true)``,
    ``std_ratio = std(λ(emp))/std(λ(true))``, ``bulk_std_ratio`` the same without the 10 largest
    eigenvalues, ``width_ratio`` of ``λ_max − λ_min``, negative masses,
    and the SLQ errors ``|θ − λ|/(λ_max − λ_min)`` at both ends; ``trained_*`` from the trained-weight
    protocol (SLQ). Cost: O(#N · draws).
    """
    t = rep["true"]
    width_t = t["lam_max"] - t["lam_min"]
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        """Append ``value`` to the series ``key``."""
        rows.setdefault(key, []).append(float(value))

    for entry in rep["empirical"]:
        d = entry["draws"]

        def mean(fn: Any, d: list[dict[str, float]] = d) -> float:
            """Mean of ``fn`` over the draws of this N."""
            return float(np.mean([fn(s) for s in d]))

        add("lmax_ratio", mean(lambda s: s["lam_max"] / t["lam_max"]))
        add("lmin_shift", mean(lambda s: (s["lam_min"] - t["lam_min"]) / t["lam_max"]))
        add("std_ratio", mean(lambda s: s["rms_width"] / t["rms_width"]))
        add("bulk_std_ratio", mean(lambda s: s["bulk_width"] / t["bulk_width"]))
        add("width_ratio", mean(lambda s: (s["lam_max"] - s["lam_min"]) / width_t))
        add("neg_mass", mean(lambda s: s["neg_mass"]))
        add("ritz_neg_mass", mean(lambda s: s["ritz_neg_mass"]))
        add("slq_err_max", max(abs(s["ritz_max"] - s["lam_max"]) / (s["lam_max"] - s["lam_min"]) for s in d))
        add("slq_err_min", max(abs(s["ritz_min"] - s["lam_min"]) / (s["lam_max"] - s["lam_min"]) for s in d))
    for entry in rep["trained"]:
        e, tr = entry["empirical"], entry["true"]
        add("trained_lmax_ratio", e["ritz_max"] / tr["ritz_max"])
        add("trained_lmin_shift", (e["ritz_min"] - tr["ritz_min"]) / tr["ritz_max"])
        add("trained_ritz_neg_emp", e["ritz_neg_mass"])
        add("trained_ritz_neg_true", tr["ritz_neg_mass"])
        add("trained_train_loss", entry["train_loss"])
        add("trained_true_loss", entry["true_loss"])
    return {k: np.asarray(v) for k, v in rows.items()}


def claims(cfg: dict[str, Any], reps: list[dict[str, Any]]) -> tuple[Claim, ...]:
    """The seed's claims with their criteria (thresholds explained inline). O(replicates · #N)."""
    ratios = np.asarray(cfg["ratios_P_over_N"])
    top = int(np.argmax(ratios))
    q = f"P/N = {ratios[top]:.3g}"
    series = [per_ratio(r) for r in reps]

    def at_top(key: str) -> list[float]:
        """Per replicate, the series ``key`` at the largest P/N."""
        return [float(s[key][top]) for s in series]

    def corr(key: str, sign: float = 1.0) -> list[float]:
        """Per replicate, Spearman's correlation of P/N with ``sign`` × the series ``key``."""
        return [rank_correlation(ratios, sign * s[key]) for s in series]

    true_ritz = [r["true"]["ritz_neg_mass"] for r in reps]
    true_neg = [r["true"]["neg_mass"] for r in reps]
    # Broadened: ratio > 1 and a negative shift of λ_min are the seed's statement itself (no margin).
    broadened = Claim(
        "broadened",
        "The empirical Hessian's spectrum is broadened relative to the true Hessian's: its largest eigenvalue is "
        "larger and its smallest smaller (more negative).",
        [
            Criterion(Measured(f"λ_max(emp)/λ_max(true) at {q} (exact)", at_top("lmax_ratio")), ">", 1.0),
            Criterion(Measured(f"(λ_min(emp) − λ_min(true))/λ_max(true) at {q} (exact)", at_top("lmin_shift")), "<", 0),
        ],
        context=[
            Measured(f"std of eigenvalues, emp/true, at {q}", at_top("std_ratio")),
            Measured(f"std of the bulk (without the 10 largest), emp/true, at {q}", at_top("bulk_std_ratio")),
            *[
                Measured(f"λ_max(emp)/λ_max(true) at P/N = {ratios[i]:.3g}", [s["lmax_ratio"][i] for s in series])
                for i in range(len(ratios))
                if i != top
            ],
        ],
    )
    # Grows with P/N: a positive rank correlation is "increasing"; 0 is no trend.
    grows = Claim(
        "grows_with_ratio",
        "The broadening grows with the ratio P/N of parameters to samples.",
        [
            Criterion(
                Measured(
                    "rank correlation of P/N with the bulk spread std(bulk emp)/std(bulk true)", corr("bulk_std_ratio")
                ),
                ">",
                0.0,
            ),
            Criterion(
                Measured("rank correlation of P/N with λ_min(true) − λ_min(emp)", corr("lmin_shift", -1)), ">", 0
            ),
        ],
        context=[
            Measured("rank correlation of P/N with std(λ emp)/std(λ true), outliers included", corr("std_ratio")),
            Measured("rank correlation of P/N with λ_max(emp)/λ_max(true)", corr("lmax_ratio")),
            Measured("rank correlation of P/N with the width ratio (λ_max − λ_min)", corr("width_ratio")),
        ],
    )
    # Negative mass: any excess of the empirical over the true negative mass is the seed's direction.
    negative = Claim(
        "negative_mass",
        "The empirical Hessian carries more negative spectral mass than the true one, counted by the weights of "
        "negative Ritz values separated from the node nearest zero (SLQ, m = 100, one probe).",
        [
            Criterion(
                Measured(f"Ritz negative mass, emp at {q} minus true", np.subtract(at_top("ritz_neg_mass"), true_ritz)),
                ">",
                0.0,
            ),
            Criterion(
                Measured(f"exact negative fraction, emp at {q} minus true", np.subtract(at_top("neg_mass"), true_neg)),
                ">",
                0.0,
            ),
        ],
        context=[Measured("Ritz negative mass of the true Hessian", true_ritz), Measured("exact, true", true_neg)],
    )
    # SLQ extremes: 1% of the spectral width is below what a stem plot resolves.
    slq = Claim(
        "slq_extremes",
        "SLQ with m = 100 steps and a single probe vector recovers the extremal eigenvalues, so a single random "
        "vector suffices to see the broadening.",
        [
            Criterion(
                Measured("worst |θ_max − λ_max|/(λ_max − λ_min) over the empirical Hessians", _worst(series, "max")),
                "<",
                0.01,
            ),
            Criterion(
                Measured("worst |θ_min − λ_min|/(λ_max − λ_min) over the empirical Hessians", _worst(series, "min")),
                "<",
                0.01,
            ),
        ],
    )
    trained = Claim(
        "trained_weights",
        "At weights trained on the N samples (the seed's experiment), the empirical Hessian's extremal eigenvalues "
        "are larger in magnitude than the true Hessian's.",
        [
            Criterion(Measured(f"θ_max(emp)/θ_max(true) at {q} (SLQ)", at_top("trained_lmax_ratio")), ">", 1.0),
            Criterion(Measured(f"(θ_min(emp) − θ_min(true))/θ_max(true) at {q}", at_top("trained_lmin_shift")), "<", 0),
        ],
        context=[
            Measured(f"training loss on the N samples at {q}", at_top("trained_train_loss")),
            Measured(f"loss on the true set at {q}", at_top("trained_true_loss")),
        ],
    )
    return (broadened, grows, negative, slq, trained)


def _worst(series: list[dict[str, np.ndarray]], end: str) -> list[float]:
    """Per replicate, the largest relative SLQ error at one end of the spectrum. O(#N)."""
    return [float(np.max(s[f"slq_err_{end}"])) for s in series]


def _fmt(values: Any) -> str:
    """``mean ± s.e.`` over replicates, 3 significant digits. O(n)."""
    return Measured("", values).describe().split(" (")[0]


def tables(cfg: dict[str, Any], reps: list[dict[str, Any]]) -> tuple[Table, ...]:
    """Per-P/N tables of both protocols (mean ± s.e. over replicates). O(replicates · #N)."""
    series = [per_ratio(r) for r in reps]
    ratios, sizes = cfg["ratios_P_over_N"], cfg["sample_sizes_N"]

    def col(key: str, i: int) -> str:
        """The series ``key`` at ratio ``i``, as mean ± s.e."""
        return _fmt([s[key][i] for s in series])

    fixed = [
        (
            f"{ratios[i]:.3g}",
            n,
            *(col(k, i) for k in ("lmax_ratio", "lmin_shift", "bulk_std_ratio", "neg_mass", "ritz_neg_mass")),
        )
        for i, n in enumerate(sizes)
    ]
    true_row = (
        f"{cfg['parameters_P'] / cfg['true_samples']:.3g} (true)",
        cfg["true_samples"],
        "1",
        "0",
        "1",
        _fmt([r["true"]["neg_mass"] for r in reps]),
        _fmt([r["true"]["ritz_neg_mass"] for r in reps]),
    )
    trained = [
        (
            f"{ratios[i]:.3g}",
            n,
            *(col(k, i) for k in ("trained_train_loss", "trained_true_loss", "trained_lmax_ratio")),
            *(col(k, i) for k in ("trained_lmin_shift", "trained_ritz_neg_emp", "trained_ritz_neg_true")),
        )
        for i, n in enumerate(sizes)
    ]
    return (
        Table(
            "Fixed weights: empirical vs true Hessian (exact spectra; Ritz mass from SLQ m = 100, one probe)",
            [
                "P/N",
                "N",
                "λmax emp/true",
                "(λmin emp − λmin true)/λmax true",
                "bulk std emp/true",
                "neg. fraction (exact)",
                "neg. Ritz mass",
            ],
            [*fixed, true_row],
            note="mean ± s.e. over replicates; each empirical value averaged over the draws of N samples",
        ),
        Table(
            "Weights trained on the N samples (seed 003's protocol; SLQ m = 100, one probe)",
            [
                "P/N",
                "N",
                "train loss",
                "true loss",
                "θmax emp/true",
                "(θmin emp − θmin true)/θmax true",
                "neg. Ritz mass emp",
                "neg. Ritz mass true",
            ],
            trained,
        ),
    )


def figures(ctx: StudyContext, cfg: dict[str, Any], reps: list[dict[str, Any]], measures: dict[str, Any]) -> None:
    """The spectra of replicate 0 (exact histograms and SLQ stems) and the broadening against P/N. O(P)."""
    from matplotlib.figure import Figure

    sizes, ratios = cfg["sample_sizes_N"], np.asarray(cfg["ratios_P_over_N"])
    lo, hi = f"N={sizes[int(np.argmax(ratios))]}", f"N={sizes[int(np.argmin(ratios))]}"
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    curves = [
        ("true", "true (augmented)", "k"),
        (lo, f"emp, P/N={ratios.max():.3g}", "C3"),
        (hi, f"emp, P/N={ratios.min():.3g}", "C0"),
    ]
    all_eigs = np.concatenate([measures[k]["eigenvalues"] for k, _, _ in curves])
    bins = np.linspace(all_eigs.min(), all_eigs.max(), 80)
    for key, label, color in curves:
        ax1.hist(measures[key]["eigenvalues"], bins=bins, histtype="step", color=color, label=label)
    ax1.set_yscale("log")
    ax1.set(xlabel="eigenvalue", ylabel="count", title="exact spectra (replicate 0)")
    ax1.legend(fontsize=8)
    for key, label, color in curves[:2]:
        s = measures[key]["slq"]
        nodes, weights = np.asarray(s.nodes).ravel(), np.asarray(s.weights).ravel()
        ax2.vlines(nodes, 1e-8, np.maximum(weights, 1e-8), color=color, alpha=0.7, label=label)
    ax2.set_yscale("log")
    ax2.set(xlabel="Ritz value", ylabel="Gauss weight", title="SLQ stems, m = 100, one probe")
    ax2.legend(fontsize=8)
    ctx.figure(
        "spectra",
        fig,
        "Exact Hessian spectra (left) and SLQ stem plots (right): the augmented 'true' Hessian "
        "and empirical Hessians at the largest and smallest P/N, replicate 0.",
    )
    series = [per_ratio(r) for r in reps]
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        (
            axes[0],
            [
                ("lmax_ratio", "λmax emp/true (fixed w)"),
                ("bulk_std_ratio", "bulk std emp/true (fixed w)"),
                ("trained_lmax_ratio", "θmax emp/true (trained w)"),
            ],
            1.0,
            "ratio",
        ),
        (
            axes[1],
            [("lmin_shift", "fixed weights (exact)"), ("trained_lmin_shift", "trained weights (SLQ)")],
            0.0,
            "(λmin emp − λmin true)/λmax true",
        ),
        (axes[2], [("neg_mass", "emp, exact fraction"), ("ritz_neg_mass", "emp, Ritz mass")], None, "negative mass"),
    ]
    for ax, keys, ref, ylabel in panels:
        for key, label in keys:
            vals = np.asarray([s[key] for s in series])
            err = vals.std(axis=0, ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else np.zeros(vals.shape[1])
            ax.errorbar(ratios, vals.mean(axis=0), yerr=2 * err, marker="o", capsize=3, label=label)
        if ref is not None:
            ax.axhline(ref, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xticks(ratios, [f"{r:.2g}" for r in ratios], minor=False)
        ax.set_xticks([], minor=True)
        ax.set(xlabel="P/N", ylabel=ylabel)
        ax.legend(fontsize=7)
    axes[2].axhline(np.mean([r["true"]["neg_mass"] for r in reps]), color="C0", ls=":", label="true, exact")
    axes[2].axhline(np.mean([r["true"]["ritz_neg_mass"] for r in reps]), color="C1", ls=":", label="true, Ritz")
    axes[2].legend(fontsize=7)
    ctx.figure(
        "broadening",
        fig,
        "Against P/N (mean ± 2 s.e. over replicates): extremal-eigenvalue and spread ratios, "
        "the shift of the smallest eigenvalue, and the negative spectral mass (dotted: true Hessian).",
    )
