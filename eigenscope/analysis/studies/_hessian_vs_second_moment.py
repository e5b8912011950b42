"""Study ``hessian-vs-second-moment`` (seed 004, SGD dynamics notes).

The seed decomposes the Hessian as ``H = M − H_p``, with ``M`` the second moment of the
stochastic gradients, and claims: (a) the top-10 principal subspaces of H and M are well
aligned (top-15 principal angles, Gauss-10 with a 2-layer ReLU network and MNIST with a
3-layer one); (b) ``H_p`` remains significant after SGD converges and is close to ``−H``
(Gauss-10, batches of 5 of 100 samples). Here: Gauss-10 (100 samples, batches of 5) with
a one-hidden-layer ReLU network and scikit-learn's digits with a two-hidden-layer one,
SGD, H, M and H_p formed exactly at several checkpoints and eigenscope's SLQ beside them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._framework import Study, StudyContext, StudyOutput, Table
from ._hessian_vs_second_moment_measure import NUM_ALIGNED, NUM_ANGLES, SLQSettings, random_subspace_baseline
from ._verdicts import Claim, Criterion, Measured

# Thresholds, fixed before the runs:
# - "well aligned": the mean cosine of the 10 smallest principal angles above 0.8 (mean angle
#   below about 37°; two random 15-dim subspaces of these sizes give about 0.2, shown beside).
# - "H_p significant": ‖H_p‖_F above half of ‖H‖_F (comparable to the Hessian itself).
# - "H_p close to −H": ‖H_p + H‖_F / ‖H‖_F (= ‖M‖_F / ‖H‖_F) below 0.2 at the end.
ALIGNED_MIN = 0.8
SIGNIFICANT_MIN = 0.5
CLOSE_MAX = 0.2


@dataclass(frozen=True)
class Setting:
    """One data set and network: sizes (input first), samples, SGD batch size, lr, epochs, checkpoints."""

    key: str
    label: str
    sizes: tuple[int, ...]
    num_samples: int
    batch_size: int
    lr: float
    epochs: int
    checkpoints: tuple[int, ...]


def _settings(ctx: StudyContext) -> list[Setting]:
    """The two settings at full or quick scale (the quick run shortens training and the network)."""
    gauss = Setting(
        "gauss10",
        "Gauss-10",
        (20, 24, 10),
        100,
        5,
        0.05,
        ctx.pick(150, 40),
        ctx.pick((0, 1, 2, 5, 10, 20, 50, 100, 150), (0, 5, 40)),
    )
    digits = Setting(
        "digits",
        "digits",
        ctx.pick((64, 16, 16, 10), (64, 8, 8, 10)),
        ctx.pick(512, 256),
        16,
        0.05,
        ctx.pick(60, 20),
        ctx.pick((0, 1, 3, 10, 25, 60), (0, 20)),
    )
    return [gauss, digits]


def _replicate(setting: Setting, seed: int, ctx: StudyContext, slq: SLQSettings) -> dict[str, Any]:
    """Train one network with SGD and measure H, M, H_p at the checkpoints (SLQ at the first and last).

    Cost: per checkpoint 2n curvature products and three n × n eigendecompositions; SLQ
    adds ``3 · steps · probes`` products at two checkpoints.
    """
    from ._common import digits, gauss10, mlp, train
    from ._hessian_vs_second_moment_measure import measure_checkpoint

    if setting.key == "gauss10":
        x, y = gauss10(setting.num_samples, setting.sizes[0], seed=ctx.seed)
    else:
        x, y = digits(setting.num_samples, seed=ctx.seed)
    x, y = x.to(ctx.device), y.to(ctx.device)
    model = mlp(setting.sizes, seed=seed).to(ctx.device)
    ends = (setting.checkpoints[0], setting.checkpoints[-1])
    records: dict[int, dict[str, Any]] = {}

    def on_epoch(epoch: int) -> None:
        """Measure at a checkpoint epoch (SLQ at the first and last)."""
        if epoch in setting.checkpoints:
            use = slq if epoch in ends else None
            records[epoch] = measure_checkpoint(model, x, y, setting.batch_size, slq=use)

    train(
        model, x, y, epochs=setting.epochs, batch_size=setting.batch_size, lr=setting.lr, seed=seed, on_epoch=on_epoch
    )
    keys = ("loss", "aligned_cos", "top10_cos", "hp_over_h", "hp_plus_h_over_h", "cos_hp_minus_h", "m_check")
    out: dict[str, Any] = {k: [records[e][k] for e in setting.checkpoints] for k in keys}
    for k in ("cosines", "H_ends", "M_ends", "Hp_ends"):
        out[k] = [records[e][k] for e in setting.checkpoints]
    out["seed"] = seed
    out["epochs_measured"] = list(setting.checkpoints)
    out["slq"] = {str(e): records[e]["slq"] for e in ends}
    out["fisher_over_h"] = {str(e): records[e]["fisher_over_h"] for e in ends}
    return out


def _jsonable_slq(rep: dict[str, Any]) -> dict[str, Any]:
    """The SLQ part of a replicate without the density objects: W1 and W1 relative to the spectrum's width."""
    return {
        epoch: {name: {"w1": r["w1"], "w1_relative": r["w1_rel"]} for name, r in mats.items()}
        for epoch, mats in rep["slq"].items()
    }


def _last(reps: list[dict[str, Any]], key: str, index: int = -1) -> list[float]:
    """``key`` at checkpoint ``index`` (default: the last), one value per replicate."""
    return [rep[key][index] for rep in reps]


def _claims(runs: dict[str, dict[str, Any]], labels: dict[str, str]) -> tuple[Claim, ...]:
    """The seed's two claims, decided on the last checkpoint of every replicate."""
    aligned_criteria, aligned_context = [], []
    for key in ("gauss10", "digits"):
        reps, label = runs[key]["replicates"], labels[key]
        name = (
            f"{label}: mean cos of the {NUM_ALIGNED} smallest of the {NUM_ANGLES} principal angles between the "
            f"top-{NUM_ANGLES} eigenspaces of H and M, after training"
        )
        aligned_criteria.append(Criterion(Measured(name, _last(reps, "aligned_cos")), ">", ALIGNED_MIN))
        base = runs[key]["random_baseline"]
        aligned_context += [
            Measured(
                f"{label}: the same statistic for two random {NUM_ANGLES}-dim subspaces (over draws)", base["draws"]
            ),
            Measured(f"{label}: the same statistic at initialization", _last(reps, "aligned_cos", 0)),
            Measured(
                f"{label}: mean cos of the {NUM_ALIGNED} principal angles between the top-{NUM_ALIGNED} "
                "eigenspaces, after training",
                _last(reps, "top10_cos"),
            ),
        ]
    g, d = runs["gauss10"]["replicates"], runs["digits"]["replicates"]
    residual = Claim(
        "residual_significant_close_to_minus_h",
        "The residual H_p = M − H remains significant even after SGD converges, and is close to −H "
        "(seed 004, Figure 1: Gauss-10, batches of 5 of 100 samples).",
        [
            Criterion(
                Measured("Gauss-10: ‖H_p‖_F / ‖H‖_F after training", _last(g, "hp_over_h")), ">", SIGNIFICANT_MIN
            ),
            Criterion(
                Measured(
                    "Gauss-10: ‖H_p + H‖_F / ‖H‖_F (= ‖M‖_F / ‖H‖_F) after training", _last(g, "hp_plus_h_over_h")
                ),
                "<",
                CLOSE_MAX,
            ),
        ],
        context=[
            Measured("Gauss-10: training loss after training", _last(g, "loss")),
            Measured("Gauss-10: cosine between H_p and −H after training", _last(g, "cos_hp_minus_h")),
            Measured("Gauss-10: ‖H_p + H‖_F / ‖H‖_F at initialization", _last(g, "hp_plus_h_over_h", 0)),
            Measured("Gauss-10: largest ‖H_p + H‖_F / ‖H‖_F over training", [max(r["hp_plus_h_over_h"]) for r in g]),
            Measured(
                "Gauss-10: ‖F‖_F / ‖H‖_F after training, F the per-sample second moment (empirical Fisher)",
                [r["fisher_over_h"][str(r["epochs_measured"][-1])] for r in g],
            ),
            Measured("digits: ‖H_p‖_F / ‖H‖_F after training", _last(d, "hp_over_h")),
            Measured("digits: ‖H_p + H‖_F / ‖H‖_F after training", _last(d, "hp_plus_h_over_h")),
        ],
    )
    aligned = Claim(
        "top_subspaces_aligned",
        "The top-10 principal subspaces of the Hessian H and of the second moment M of the stochastic gradients "
        "are well aligned (seed 004, Figure 2: top 15 principal angles; Gauss-10 and MNIST).",
        aligned_criteria,
        context=aligned_context,
    )
    return (aligned, residual)


def _stat(values: list[float]) -> str:
    """``mean ± s.e.`` over replicates, as a table cell."""
    m = Measured("", values)
    return f"{m.mean:.3g} ± {m.stderr:.2g}" if m.count > 1 else f"{m.mean:.3g}"


def _tables(runs: dict[str, dict[str, Any]], settings: list[Setting]) -> tuple[Table, ...]:
    """One table of the measured series per data set, and one of the SLQ-vs-exact check."""
    tables = []
    for s in settings:
        reps, baseline = runs[s.key]["replicates"], runs[s.key]["random_baseline"]["mean"]
        rows = [
            [e]
            + [
                _stat([r[k][i] for r in reps])
                for k in ("loss", "aligned_cos", "top10_cos", "hp_over_h", "hp_plus_h_over_h", "cos_hp_minus_h")
            ]
            for i, e in enumerate(s.checkpoints)
        ]
        tables.append(
            Table(
                f"{s.label}: H vs M over training (mean ± s.e. over replicates)",
                ["epoch", "loss", "mean cos 10 of 15", "mean cos top-10", "‖H_p‖/‖H‖", "‖H_p+H‖/‖H‖", "cos(H_p, −H)"],
                rows,
                note=f"random {NUM_ANGLES}-dim subspaces: mean cos 10 of 15 = {baseline:.3f}",
            )
        )
    rows = []
    for s in settings:
        reps = runs[s.key]["replicates"]
        for epoch in (s.checkpoints[0], s.checkpoints[-1]):
            for name in ("H", "M", "Hp"):
                vals = [r["slq_json"][str(epoch)][name] for r in reps]
                rows.append(
                    [s.label, epoch, name, _stat([v["w1"] for v in vals]), _stat([v["w1_relative"] for v in vals])]
                )
    checks = [max(r["m_check"]) for s in settings for r in runs[s.key]["replicates"]]
    tables.append(
        Table(
            "eigenscope SLQ vs the exact spectrum: 1-Wasserstein distance (mean ± s.e. over replicates)",
            ["data", "epoch", "matrix", "W1", "W1 / (λ_max − λ_min)"],
            rows,
            note=(
                "M from est.gradient_covariance(per='batch') vs Gᵀdiag(w)G from plain autograd: largest relative "
                f"entry difference {max(checks):.1e}"
            ),
        )
    )
    return tuple(tables)


def _run(ctx: StudyContext) -> StudyOutput:
    """Run both settings over the replicates, then decide the claims and draw the figures."""
    from ._hessian_vs_second_moment_plots import figures, slq_curves

    settings = _settings(ctx)
    seeds = ctx.replicate_seeds(3, 1)
    slq = SLQSettings(ctx.pick(80, 30), ctx.pick(4, 2), ctx.seed)
    bar = ctx.progress("hessian-vs-second-moment", len(settings) * len(seeds))
    runs: dict[str, dict[str, Any]] = {}
    densities: dict[str, Any] = {}
    for s in settings:
        reps = []
        for seed in seeds:
            rep = _replicate(s, seed, ctx, slq)
            rep["slq_json"] = _jsonable_slq(rep)
            reps.append(rep)
            bar.update(1)
        densities[s.key] = reps[0]["slq"][str(s.checkpoints[-1])]
        n = sum(a * b + b for a, b in itertools.pairwise(s.sizes))
        draws = random_subspace_baseline(n, ctx.seed)
        baseline = {"mean": float(np.mean(draws)), "std": float(np.std(draws)), "draws": draws}
        runs[s.key] = {"replicates": reps, "n": n, "random_baseline": baseline}
    bar.close()
    labels = {s.key: s.label for s in settings}
    data = _data(runs, settings)
    data["slq_vs_exact"] = slq_curves(densities)
    for name, fig, caption in figures(data, labels):
        ctx.figure(name, fig, caption)
    return StudyOutput(
        claims=_claims(runs, labels),
        data=data,
        tables=_tables(runs, settings),
        notes=_notes(ctx),
        settings=_settings_json(settings, seeds, slq),
    )


def _data(runs: dict[str, dict[str, Any]], settings: list[Setting]) -> dict[str, Any]:
    """The series behind the figures and tables, per data set and replicate (JSON-able)."""
    out: dict[str, Any] = {}
    for s in settings:
        run = runs[s.key]
        reps = [
            {k: v for k, v in r.items() if k not in ("slq", "slq_json")} | {"slq": r["slq_json"]}
            for r in run["replicates"]
        ]
        out[s.key] = {
            "epochs": list(s.checkpoints),
            "num_parameters": run["n"],
            "random_baseline": {"mean": run["random_baseline"]["mean"], "std": run["random_baseline"]["std"]},
            "ends_layout": (
                "H_ends, M_ends: the 15 largest eigenvalues (descending), then the 5 smallest (ascending); "
                "Hp_ends: the 15 smallest (ascending), then the 5 largest (descending)"
            ),
            "replicates": reps,
        }
    return out


def _notes(ctx: StudyContext) -> tuple[str, ...]:
    """Scale caveats and what was exact and what estimated."""
    notes = [
        "Data: Gauss-10 (10 Gaussian classes, 100 samples in 20 dimensions, synthetic) and scikit-learn's 8×8 digits "
        "as a stand-in for MNIST (no download). The seed's MNIST run used 50,000 samples and batches of 64; "
        "here 512 digits and batches of 16.",
        "M is the second moment of the minibatch gradients over one fixed partition of the training set into batches "
        "of the training batch size, M = Σ_b (n_b/N) g_b g_bᵀ (est.gradient_covariance(per='batch')); its rank is at "
        "most the number of batches (20 for Gauss-10, 32 for digits), which bounds the top-15 subspace from above.",
        "H, M and H_p are formed exactly (n Hessian-vector products each, then numpy.linalg.eigh); eigenscope's SLQ "
        "(es.spectral_density) runs on the same operators at the first and last checkpoint and is compared with the "
        "exact spectra by the 1-Wasserstein distance. H_p's operator is M - H (eigenscope's operator algebra).",
        "‖H_p + H‖_F = ‖M‖_F: 'H_p close to −H' says that M is small next to H. With cross-entropy near a minimum the "
        "gradients shrink like the residuals p − y while H shrinks like p(1 − p), so the ratio is expected to fall as "
        "the loss goes to zero.",
        "Verdicts use the last checkpoint of each replicate (training seeds: initialization and batch order); the "
        "data set is fixed by the base seed.",
    ]
    if ctx.quick:
        notes.append("Quick run: one replicate, shorter training, a smaller digits network and fewer SLQ steps.")
    return tuple(notes)


def _settings_json(settings: list[Setting], seeds: list[int], slq: SLQSettings) -> dict[str, Any]:
    """The settings the study ran with, one flat entry each."""
    out: dict[str, Any] = {}
    for s in settings:
        out |= {
            f"{s.label}: layer sizes": list(s.sizes),
            f"{s.label}: samples": s.num_samples,
            f"{s.label}: batch size": s.batch_size,
            f"{s.label}: optimizer": f"SGD, lr {s.lr:g}",
            f"{s.label}: epochs": s.epochs,
            f"{s.label}: checkpoints (epochs)": list(s.checkpoints),
        }
    out |= {"replicate seeds": seeds, "SLQ steps": slq.num_steps, "SLQ probes": slq.num_probes}
    out |= {"principal angles": NUM_ANGLES, "aligned subspace dimension": NUM_ALIGNED}
    return out


STUDY = Study(
    name="hessian-vs-second-moment",
    title="Hessian vs second moment of the stochastic gradients: top-subspace alignment and the residual H_p = M − H",
    source="seed 004: SGD dynamics notes",
    run=_run,
)
