"""Claims, tables and figures of the diagonal-vs-spectrum study."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._diagonal_vs_spectrum_measure import law_atoms
from ._framework import StudyContext, Table
from ._verdicts import Claim, Criterion, Measured

MATRICES = ("wigner", "marchenko-pastur", "synthetic")
LABELS = {"wigner": "Wigner", "marchenko-pastur": "Marchenko-Pastur", "synthetic": "synthetic"}
CURVATURES = (("hessian", "Hessian"), ("ggn", "GGN"))


def claims(mlp: list[dict[str, Any]], rm: list[dict[str, Any]]) -> tuple[Claim, ...]:
    """The seed's claims, decided over the replicates. O(replicates).

    Thresholds: a ratio of 2 of Wasserstein distances means "at least twice as far from the
    true spectrum as the SLQ estimate"; 0.5 for ``max diag / λ_max`` means the diagonal's
    largest entry misses the top eigenvalue by more than half (it can never exceed it, the
    diagonal entries being Rayleigh quotients); 2% of the support width is one bin of a
    50-bin histogram.
    """

    def ratio(curv: str, key: str) -> list[float]:
        """Per replicate, W1(proxy ``key``, exact)/W1(SLQ, exact) for one curvature matrix."""
        return [r[curv][f"w1_{key}"] / r[curv]["w1_slq"] for r in mlp]

    def vals(curv: str, key: str) -> list[float]:
        """Per replicate, the scalar ``key`` of one curvature matrix."""
        return [r[curv][key] for r in mlp]

    far = Claim(
        "diagonal_spectrum_far",
        "The spectrum implied by the diagonal (of the Hessian, or of the Gauss-Newton matrix) misrepresents the "
        "true spectrum, whereas SLQ reproduces it.",
        [
            Criterion(Measured(f"W1(diag {lab}, exact)/W1(SLQ {lab}, exact)", ratio(c, "diagonal")), ">", 2.0)
            for c, lab in CURVATURES
        ],
        context=[
            *(
                Measured(f"W1(es.diagonal diag++ {lab}, exact)/W1(SLQ, exact)", ratio(c, "diagonal_est"))
                for c, lab in CURVATURES
            ),
            *(Measured(f"KL(exact ‖ diag {lab}) in nats", vals(c, "kl_diagonal")) for c, lab in CURVATURES),
            *(Measured(f"KL(exact ‖ SLQ {lab}) in nats", vals(c, "kl_slq")) for c, lab in CURVATURES),
            *(
                Measured(f"relative error of es.diagonal on the {lab} diagonal", vals(c, "diag_est_rel_error"))
                for c, lab in CURVATURES
            ),
        ],
    )
    top = Claim(
        "diagonal_misses_top",
        "The diagonal approximation misses the largest eigenvalue: its largest entry lies far below λ_max.",
        [
            Criterion(Measured(f"max diag({lab})/λ_max({lab})", vals(c, "diag_max_over_lam_max")), "<", 0.5)
            for c, lab in CURVATURES
        ],
        context=[
            Measured(f"largest Ritz value/λ_max ({lab})", vals(c, "slq_max_over_lam_max")) for c, lab in CURVATURES
        ],
    )
    laws = Claim(
        "slq_recovers_laws",
        "SLQ with m = 30 Lanczos steps and a single random vector recovers the known spectra of random matrices "
        "(Wigner semicircle, Marchenko-Pastur, the synthetic spike-bulk-outlier spectrum).",
        [
            Criterion(Measured(f"W1(SLQ, law)/support width, {LABELS[k]}", [r[k]["w1_slq_rel"] for r in rm]), "<", 0.02)
            for k in MATRICES
        ],
        context=[
            Measured(
                f"W1(exact eigenvalues, law)/support width, {LABELS[k]} (finite size)",
                [r[k]["w1_exact_rel"] for r in rm],
            )
            for k in MATRICES
        ],
    )
    diag_rm = Claim(
        "diagonal_fails_random",
        "On the same random matrices the diagonal carries no spectral information: its distribution is far from "
        "the law, much farther than SLQ's.",
        [
            Criterion(
                Measured(
                    f"W1(diag, law)/W1(SLQ, law), {LABELS[k]}", [r[k]["w1_diagonal"] / r[k]["w1_slq"] for r in rm]
                ),
                ">",
                2.0,
            )
            for k in MATRICES
        ],
        context=[
            Measured(f"W1(diag, law)/support width, {LABELS[k]}", [r[k]["w1_diagonal_rel"] for r in rm])
            for k in MATRICES
        ],
    )
    return (far, top, laws, diag_rm)


def _fmt(values: Any) -> str:
    """``mean ± s.e.`` over replicates. O(n)."""
    return Measured("", values).describe(digits=3).split(" (")[0]


def tables(mlp: list[dict[str, Any]], rm: list[dict[str, Any]]) -> tuple[Table, ...]:
    """The MLP distances per proxy and the random-matrix distances per matrix (mean ± s.e.). O(replicates)."""
    rows = []
    for c, lab in CURVATURES:
        rows.append((lab, "exact eigenvalues", _fmt([r[c]["lam_max"] for r in mlp]), "0", "0"))
        for key, name, top in (
            ("diagonal", "exact diagonal", "diag_max_over_lam_max"),
            ("diagonal_est", "es.diagonal (diag++)", "diag_est_max_over_lam_max"),
            ("slq", "SLQ m=100, 1 probe", "slq_max_over_lam_max"),
        ):
            rows.append(
                (
                    lab,
                    name,
                    _fmt([r[c][top] * r[c]["lam_max"] for r in mlp]),
                    _fmt([r[c][f"w1_{key}"] for r in mlp]),
                    _fmt([r[c][f"kl_{key}"] for r in mlp]),
                )
            )
    rm_rows = [
        (LABELS[k], *(_fmt([r[k][f"w1_{p}_rel"] for r in rm]) for p in ("exact", "slq", "diagonal"))) for k in MATRICES
    ]
    return (
        Table(
            "MLP on digits: spectrum proxies against the exact spectrum",
            ["matrix", "spectrum from", "largest value", "W1 to exact", "KL(exact ‖ ·)"],
            rows,
            note="mean ± s.e. over training seeds; W1 in eigenvalue units, KL in nats",
        ),
        Table(
            "Random matrices: 1-Wasserstein distance to the analytic law, divided by the support width",
            ["matrix", "exact eigenvalues (finite size)", "SLQ m=30, 1 probe", "diagonal"],
            rm_rows,
            note="mean ± s.e. over matrix seeds",
        ),
    )


def _cdf(values: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step CDF of a discrete measure: sorted atoms and cumulative weights. O(n log n)."""
    order = np.argsort(values)
    w = np.full(values.size, 1.0 / values.size) if weights is None else weights / weights.sum()
    return values[order], np.cumsum(w[order])


def figures(ctx: StudyContext, mlp: dict[str, Any], rm: dict[str, Any]) -> None:
    """CDFs of the MLP's spectra and proxies; random-matrix histograms, laws, SLQ stems and diagonals. O(n)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, (c, lab) in zip(fig.subplots(1, 2), CURVATURES, strict=True):
        r = mlp[c]
        curves = [
            ("exact eigenvalues", r["eigenvalues"], None, "k"),
            ("exact diagonal", r["diagonal"], None, "C1"),
            ("es.diagonal (diag++)", r["diagonal_est"], None, "C2"),
            ("SLQ m=100, 1 probe", r["slq_nodes"], r["slq_weights"], "C3"),
        ]
        for name, v, w, color in curves:
            xs, ys = _cdf(np.asarray(v), None if w is None else np.asarray(w))
            ax.step(xs, ys, where="post", color=color, label=name, lw=1.2)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set(xlabel="eigenvalue (symlog)", ylabel="cumulative mass", title=f"{lab} of the MLP (replicate 0)")
        ax.legend(fontsize=8)
    ctx.figure(
        "mlp_cdfs",
        fig,
        "Cumulative spectral distributions of the MLP's Hessian and GGN: exact, implied by "
        "the diagonal (exact and estimated), and SLQ. The 1-Wasserstein distance is the area between curves.",
    )
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    for ax, k in zip(fig.subplots(1, 3), MATRICES, strict=True):
        r = rm[k]
        atoms = law_atoms(k)
        lo, hi = min(atoms.min(), r["diagonal"].min()), max(atoms.max(), r["diagonal"].max())
        bins = np.linspace(lo, hi, 60)
        ax.hist(atoms, bins=bins, density=True, histtype="stepfilled", color="0.85", label="analytic law")
        ax.hist(r["eigenvalues"], bins=bins, density=True, histtype="step", color="C0", label="exact eigenvalues")
        ax.hist(r["diagonal"], bins=bins, density=True, histtype="step", color="C1", label="diagonal")
        log = k == "synthetic"  # a spike at zero holding half the mass
        ax.set(xlabel="eigenvalue", ylabel="density", title=LABELS[k], yscale="log" if log else "linear")
        if not log:  # the diagonal's narrow peak runs off the top, the law stays readable
            ax.set_ylim(0, 1.6 * np.histogram(atoms, bins=bins, density=True)[0].max())
        twin = ax.twinx()
        twin.vlines(r["slq_nodes"], 1e-5 if log else 0, r["slq_weights"], color="C3", label="SLQ stems (m=30)")
        twin.set(ylabel="Gauss weight", yscale="log" if log else "linear")
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=7)
    ctx.figure(
        "random_matrices",
        fig,
        "Random matrices with known spectra: the analytic law, the exact eigenvalues, "
        "the diagonal entries (histograms; the diagonal's narrow peak is cut off; log scales for the synthetic "
        "spectrum) and SLQ's Ritz values with their "
        "weights (stems).",
    )
