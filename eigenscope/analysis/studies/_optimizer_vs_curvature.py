"""Study ``optimizer-vs-curvature``: what does Adam's second-moment estimate approximate?

Seed 000 studies two matrices, the Hessian and the second moment of the gradients, and
notes "compare with Adam's approximation". Adam preconditions with ``√v̂``, ``v̂`` a running
mean of squared minibatch gradients: by construction a diagonal of the gradient second
moment, often read as a diagonal curvature (Hessian) estimate. This study trains a small
MLP on scikit-learn's digits with Adam and compares ``v̂`` with the exact diagonals of the
per-sample gradient second moment M and of the Hessian H, by rank and linear correlation
and by the distance between the distributions of their entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._framework import Study, StudyContext, StudyOutput, Table
from ._optimizer_vs_curvature_measure import (
    correlations,
    curvature,
    normalized_wasserstein,
    per_sample_gradients,
    second_moment_diagonals,
    train_adam,
)
from ._verdicts import Claim, Criterion, Measured

# (samples, hidden width, epochs, batch size, lr, Hutchinson products) full / quick
FULL = {
    "samples": 1024,
    "hidden": 24,
    "epochs": 30,
    "batch_size": 32,
    "lr": 1e-3,
    "diag_matvecs": 200,
    "early_epoch": 3,
}
QUICK = {"samples": 256, "hidden": 12, "epochs": 10, "batch_size": 32, "lr": 1e-3, "diag_matvecs": 50, "early_epoch": 2}
# "High" rank correlation: Spearman above 0.8, the usual bound of a strong monotone relation.
HIGH_RANK_CORRELATION = 0.8
COMPARED = {
    "M (per-sample)": "per_sample",
    "E[g_B g_Bᵀ] (minibatch)": "minibatch",
    "ḡḡᵀ (mean gradient)": "mean_gradient_sq",
    "H (Hessian)": "hessian_diag",
    "|H|": "abs_hessian_diag",
    "H, Hutchinson": "hessian_diag_hutchinson",
    "M, Hutchinson": "second_moment_diag_hutchinson",
}


def _run(ctx: StudyContext) -> StudyOutput:
    """Per seed: train the MLP with Adam, form the exact diagonals and compare them with v̂.

    Cost (full): 5 seeds × (30 epochs of Adam on 1024 digits; at epoch 3 and at the end N per-sample
    gradients and n + 600 Hessian / second-moment products, n ≈ 1,800).
    """

    cfg: dict[str, Any] = ctx.pick(FULL, QUICK)
    seeds = ctx.replicate_seeds(5, 2)
    bar = ctx.progress("training with Adam and measuring", len(seeds))
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        rec = _replicate(cfg, seed, ctx.device, keep=seed == seeds[0])
        per_seed.append(rec)
        bar.update(1)
    bar.close()
    _figures(ctx, per_seed)
    return StudyOutput(
        claims=_claims(per_seed),
        data={"per_seed": per_seed},
        tables=(_table(per_seed, cfg["early_epoch"]),),
        notes=_notes(),
        settings={
            "data": "scikit-learn digits, flattened (64 features), 10 classes",
            "training samples": cfg["samples"],
            "model": f"MLP 64-{cfg['hidden']}-10, ReLU, float64",
            "optimizer": f"Adam, lr {cfg['lr']}, betas (0.9, 0.999), batch {cfg['batch_size']}, {cfg['epochs']} epochs",
            "v̂": "exp_avg_sq / (1 − β₂ᵗ) after the last step (and after the early epoch)",
            "early epoch (context)": cfg["early_epoch"],
            "Hutchinson probes (es.diagonal)": cfg["diag_matvecs"],
            "replicates (training seeds)": seeds,
        },
    )


def _replicate(cfg: dict[str, Any], seed: int, device: str, *, keep: bool) -> dict[str, Any]:
    """One seed: train the MLP with Adam, compare v̂ with the diagonals early and at the end.

    Cost: ``epochs × N`` sample gradients and two calls of :func:`_compare`.
    """
    from ._common import digits, flat_parameters, mlp

    x, y = digits(cfg["samples"], seed=seed)
    x, y = x.to(device), y.to(device)
    model = mlp([64, cfg["hidden"], 10], seed=seed).to(device)
    early: dict[str, Any] = {}

    def on_epoch(epoch: int, v: np.ndarray) -> None:
        """The early comparison, at ``cfg["early_epoch"]``."""
        if epoch == cfg["early_epoch"]:
            early.update(_compare(model, x, y, v, cfg, seed, keep=False))

    v_hat, losses, steps = train_adam(
        model, x, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed, on_epoch=on_epoch
    )
    return {
        "seed": seed,
        "steps": steps,
        "train_loss": losses,
        "parameters": int(flat_parameters(model).numel()),
        **_compare(model, x, y, v_hat, cfg, seed, keep=keep),
        "early": early,
    }


def _compare(
    model: Any, x: Any, y: Any, v_hat: np.ndarray, cfg: dict[str, Any], seed: int, *, keep: bool
) -> dict[str, Any]:
    """Correlations and distances between v̂ and the exact (and estimated) diagonals at the current parameters.

    Per-sample gradients, diag M and E[g_B g_Bᵀ], the dense Hessian and the Hutchinson
    estimates (see :func:`curvature`); Pearson and Spearman of v̂ with each, mean-normalized W₁
    of the entry distributions. With ``keep`` the vectors themselves are returned too (for the
    figures). Cost: N per-sample gradients, n + 3 × ``diag_matvecs`` products.
    """
    g = per_sample_gradients(model, x, y)
    diags = second_moment_diagonals(g, cfg["batch_size"])
    curv = curvature(model, x, y, g, batch_size=cfg["batch_size"], seed=seed, diag_matvecs=cfg["diag_matvecs"])
    vectors = {**diags, **curv, "abs_hessian_diag": np.abs(curv["hessian_diag"])}
    rec: dict[str, Any] = {"second_moment_product_error": curv["second_moment_product_error"]}
    for label, key in COMPARED.items():
        rec[f"pearson {label}"], rec[f"spearman {label}"] = correlations(v_hat, vectors[key])
    rec["spearman diag M vs diag H"] = correlations(diags["per_sample"], curv["hessian_diag"])[1]
    rec["wasserstein v̂–M"] = normalized_wasserstein(v_hat, diags["per_sample"])
    rec["wasserstein v̂–H"] = normalized_wasserstein(v_hat, curv["hessian_diag"])
    rec["spearman Hutchinson H vs exact"] = correlations(curv["hessian_diag_hutchinson"], curv["hessian_diag"])[1]
    rec["spearman Hutchinson M vs exact"] = correlations(curv["second_moment_diag_hutchinson"], diags["per_sample"])[1]
    rec["wasserstein diag H vs eig H"] = normalized_wasserstein(curv["hessian_diag"], curv["hessian_eigenvalues"])
    if keep:
        rec["vectors"] = {
            "v_hat": v_hat.tolist(),
            **{k: np.asarray(vectors[k]).tolist() for k in ("per_sample", "minibatch", "hessian_diag")},
            "hessian_eigenvalues": curv["hessian_eigenvalues"].tolist(),
            "second_moment_eigenvalues": curv["second_moment_eigenvalues"].tolist(),
        }
    return rec


def _vals(per_seed: list[dict[str, Any]], key: str) -> list[float]:
    """The value of ``key`` in each seed's record."""
    return [float(r[key]) for r in per_seed]


def _claims(per_seed: list[dict[str, Any]]) -> tuple[Claim, ...]:
    """The two claims: v̂ ranks like diag M (ρ_s > 0.8) and better than like diag H; its entries are
    distributed more like those of diag M than of diag H (normalized W₁ difference < 0)."""
    rho_m = _vals(per_seed, "spearman M (per-sample)")
    rho_h = _vals(per_seed, "spearman H (Hessian)")
    rank = Claim(
        "adam_tracks_second_moment",
        "Adam's second-moment estimate v̂ is a diagonal of the gradient second moment M rather than of the "
        "Hessian: its entries rank-correlate highly with diag M, and better than with diag H.",
        [
            Criterion(Measured("Spearman ρ(v̂, diag M)", rho_m), ">", HIGH_RANK_CORRELATION),
            Criterion(Measured("Spearman ρ(v̂, diag M) − ρ(v̂, diag H)", np.subtract(rho_m, rho_h)), ">", 0.0),
        ],
        context=[
            Measured("Spearman ρ(v̂, diag H)", rho_h),
            Measured("Spearman ρ(diag M, diag H)", _vals(per_seed, "spearman diag M vs diag H")),
            Measured(
                "early in training: Spearman ρ(v̂, diag M) − ρ(v̂, diag H)",
                [r["early"]["spearman M (per-sample)"] - r["early"]["spearman H (Hessian)"] for r in per_seed],
            ),
            Measured("Spearman ρ(v̂, diag E[g_B g_Bᵀ])", _vals(per_seed, "spearman E[g_B g_Bᵀ] (minibatch)")),
            Measured("Pearson r(v̂, diag M)", _vals(per_seed, "pearson M (per-sample)")),
            Measured("Pearson r(v̂, diag H)", _vals(per_seed, "pearson H (Hessian)")),
        ],
    )
    w_m, w_h = _vals(per_seed, "wasserstein v̂–M"), _vals(per_seed, "wasserstein v̂–H")
    dist = Claim(
        "adam_distribution_like_second_moment",
        "The entries of v̂ are distributed like those of diag M more than like those of diag H "
        "(each divided by its mean).",
        [Criterion(Measured("W₁(v̂, diag M) − W₁(v̂, diag H), mean-normalized", np.subtract(w_m, w_h)), "<", 0.0)],
        context=[Measured("W₁(v̂, diag M)", w_m), Measured("W₁(v̂, diag H)", w_h)],
    )
    return (rank, dist)


def _table(per_seed: list[dict[str, Any]], early_epoch: int) -> Table:
    """Pearson and Spearman correlation of v̂ with each candidate diagonal (mean ± s.e. over seeds)."""

    def stat(values: list[float]) -> str:
        """``mean ± s.e.``"""
        return Measured("", values).describe().split(" (")[0]

    rows = []
    for label in COMPARED:
        rows.append(
            (
                label,
                stat(_vals(per_seed, f"pearson {label}")),
                stat(_vals(per_seed, f"spearman {label}")),
                stat([r["early"][f"spearman {label}"] for r in per_seed]),
            )
        )
    for key in ("spearman Hutchinson H vs exact", "spearman Hutchinson M vs exact", "second_moment_product_error"):
        rows.append((key, "", stat(_vals(per_seed, key)), stat([r["early"][key] for r in per_seed])))
    return Table(
        "Correlation of Adam's v̂ with the diagonals (and checks of the library's estimates)",
        ("diagonal compared with v̂", "Pearson r, end", "Spearman ρ, end", f"Spearman ρ, epoch {early_epoch}"),
        rows,
        "mean ± s.e. over seeds; last rows: Spearman ρ of es.diagonal (Hutchinson) against the exact diagonal, "
        "and ‖M v − Gᵀ(Gv)/N‖/‖Gᵀ(Gv)/N‖ of the library's second-moment product",
    )


def _notes() -> tuple[str, ...]:
    """Scale caveats."""
    return (
        "Data: scikit-learn's 8×8 digits (shipped with scikit-learn, nothing downloaded); a one-hidden-layer MLP "
        "small enough for exact per-sample gradients and an exact dense Hessian.",
        "v̂ is a running mean over the last ~1/(1 − β₂) = 1000 steps while the parameters move; the diagonals are "
        "those at the final parameters.",
        "diag M is the seed's per-sample second moment (1/N) Σ gᵢgᵢᵀ; the minibatch second moment E[g_B g_Bᵀ] "
        "(what v̂ averages) differs from it by ḡḡᵀ and a factor of about 1/B on the rest, which a rank "
        "correlation ignores.",
        "Spearman ρ is invariant under monotone maps, so it does not matter whether v̂ or √v̂ is compared.",
    )


def _figures(ctx: StudyContext, per_seed: list[dict[str, Any]]) -> None:
    """Scatter of v̂ against diag M and diag H, and the densities of the entries (first seed)."""
    from matplotlib.figure import Figure

    from .._plots import plot_densities

    vec = {k: np.asarray(v) for k, v in per_seed[0]["vectors"].items()}
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.loglog(vec["per_sample"], vec["v_hat"], ".", ms=2, alpha=0.5)
    ax1.set_xlabel("diag M (per-sample second moment)")
    ax1.set_ylabel("Adam v̂")
    h = vec["hessian_diag"]
    ax2.loglog(np.abs(h[h > 0]), vec["v_hat"][h > 0], ".", ms=2, alpha=0.5, label="diag H > 0")
    ax2.loglog(np.abs(h[h < 0]), vec["v_hat"][h < 0], ".", ms=2, alpha=0.7, label="diag H < 0")
    ax2.set_xlabel("|diag H|")
    ax2.legend(fontsize=8)
    r = per_seed[0]
    ax1.set_title(f"Spearman ρ(v̂, diag M) = {r['spearman M (per-sample)']:.3f}")
    ax2.set_title(f"Spearman ρ(v̂, diag H) = {r['spearman H (Hessian)']:.3f}")
    ctx.figure("scatter", fig, "Adam's v̂ against the exact diagonals of M and H, one point per parameter, first seed.")
    dens = {
        "v̂ / mean": vec["v_hat"] / vec["v_hat"].mean(),
        "diag M / mean": vec["per_sample"] / vec["per_sample"].mean(),
        "diag H / mean": h / h.mean(),
        "eigenvalues of H / mean": vec["hessian_eigenvalues"] / vec["hessian_eigenvalues"].mean(),
    }
    ctx.figure(
        "densities",
        plot_densities(dens, decades=6, title="entries of the diagonals (and spectrum of H), each / its mean"),
        "Distributions of the entries of v̂, diag M and diag H as spectral densities (density_from_eigenvalues, "
        "Gaussian smoothing, log scale), each divided by its mean, with the eigenvalue density of H; first seed.",
    )


STUDY = Study(
    name="optimizer-vs-curvature",
    title="Adam's second-moment estimate versus the diagonals of the gradient second moment and the Hessian",
    source='seed 000: research notes on Hessian spectra ("compare with ADAM\'s approximation")',
    run=_run,
)
