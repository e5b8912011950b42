"""Study ``gradient-geometry`` (seed 000, research notes on Hessian spectra).

The seed's notes define, for a network in training, the fraction of the gradient in the
top-k Hessian subspace ``‖P∇L‖²/‖∇L‖²`` (P from a rank-k approximation of the Hessian, k
often the number of classes), the normalized inner product between the gradient and the
"actual optimal direction" ``θ_t − θ*``, and the best rank-k approximation of the Hessian
(truncated SVD with k vectors); and they state what to look for: large negative eigenvalues
at initialization, negative eigenvalues at the end of training orders of magnitude smaller
than those at the beginning, and the intuition that optimization proceeds in the directions
of strongest curvature first. Here: scikit-learn's digits and a one-hidden-layer ReLU MLP
trained with SGD at two learning rates, measured at checkpoints with eigenscope's eigsh,
trace and metrics, and checked against the dense Hessian at the first and last checkpoint.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._framework import Study, StudyContext, StudyOutput, Table
from ._verdicts import Claim, Criterion, Measured

NUM_CLASSES = 10  # k: the digits have 10 classes
# Thresholds, fixed before the runs:
FRACTION_MIN = 0.5  # "mostly in the top-k subspace": more than half of ‖g‖²
NIP_MAX = 0.5  # "small": the angle between g and θ_t − θ* above 60°
RANK_ERROR_MAX = 0.3  # "well approximated": ‖H − H_k‖_F / ‖H‖_F below 0.3 (over 91 % of ‖H‖_F² captured)
NEG_LARGE_MIN = 0.25  # "large negative eigenvalues" at init: |λ_min| above a quarter of λ_max
NEG_SHRINK_MAX = 0.1  # "orders of magnitude smaller": |λ_min(end)| / |λ_min(init)| below 1/10
EARLY_EPOCHS = 5  # "after the first epochs": checkpoints from this epoch on


@dataclass(frozen=True)
class Setting:
    """The data set, network and SGD schedule; ``lrs[0]`` decides the claims, the others are compared."""

    sizes: tuple[int, ...]
    num_samples: int
    batch_size: int
    lrs: tuple[float, ...]
    epochs: int
    checkpoints: tuple[int, ...]
    trace_matvecs: int


def _setting(ctx: StudyContext) -> Setting:
    """Full or quick scale (quick: fewer samples, a narrower network, shorter training)."""
    return Setting(
        sizes=ctx.pick((64, 20, 10), (64, 12, 10)),
        num_samples=ctx.pick(1024, 512),
        batch_size=32,
        lrs=(0.2, 0.05),
        epochs=ctx.pick(40, 12),
        checkpoints=ctx.pick((0, 1, 2, 3, 5, 8, 12, 20, 30, 40), (0, 1, 3, 6, 12)),
        trace_matvecs=ctx.pick(60, 30),
    )


def _replicate(s: Setting, lr: float, seed: int, ctx: StudyContext, x: Any, y: Any) -> dict[str, Any]:
    """Train one network with SGD at ``lr``; measure at the checkpoints (dense check at the first and last).

    Cost: per checkpoint about ``14 + 4k`` products for the top-k, a few dozen for λ_min and
    ``2 · trace_matvecs`` for tr(H²); n products and an n³ eigensolve at the two ends.
    """
    from ._common import flat_parameters, mlp, train
    from ._gradient_geometry_measure import inner_products, measure_checkpoint

    model = mlp(s.sizes, seed=seed).to(ctx.device)
    ends = (s.checkpoints[0], s.checkpoints[-1])
    records: list[dict[str, Any]] = []

    def on_epoch(epoch: int) -> None:
        """Measure at a checkpoint epoch (with the dense check at the first and last)."""
        if epoch in s.checkpoints:
            rec = measure_checkpoint(
                model, x, y, NUM_CLASSES, seed=seed, trace_matvecs=s.trace_matvecs, exact=epoch in ends
            )
            records.append(rec)

    train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, lr=lr, seed=seed, on_epoch=on_epoch)
    nip = inner_products(records, flat_parameters(model))
    keys = (
        "loss",
        "gradient_fraction",
        "rank_k_error",
        "frobenius_sq",
        "frobenius_sq_stderr",
        "lambda_min",
        "lambda_max",
    )
    out: dict[str, Any] = {k: [r[k] for r in records] for k in keys}
    out |= {"seed": seed, "normalized_inner_product": nip}
    out["top_eigenvalues"] = [r["top_eigenvalues"] for r in records]
    out["fraction_profile"] = [r["fraction_profile"] for r in records]
    out["exact"] = {str(e): records[s.checkpoints.index(e)]["exact"] for e in ends}
    out["estimated_at_ends"] = {
        str(e): {k: records[s.checkpoints.index(e)][k] for k in ("frobenius_sq", "rank_k_error", "lambda_min")}
        | {"gradient_fraction": records[s.checkpoints.index(e)]["gradient_fraction"]}
        for e in ends
    }
    return out


def _late(s: Setting, rep: dict[str, Any], key: str, *, last: bool = True) -> float:
    """Mean of ``key`` over the checkpoints from epoch ``EARLY_EPOCHS`` on (without the last if ``last=False``)."""
    idx = [i for i, e in enumerate(s.checkpoints) if e >= EARLY_EPOCHS and (last or e != s.checkpoints[-1])]
    return float(np.mean([rep[key][i] for i in idx]))


def _late_and_context(
    s: Setting,
    key: str,
    label: str,
    reps: list[dict[str, Any]],
    alt: list[dict[str, Any]],
    lrs: tuple[float, float],
    *,
    last: bool = True,
) -> tuple[Measured, Measured, Measured]:
    """``key``'s late mean per replicate at the main learning rate (what a claim judges), and the
    context each such claim shows: its value at initialization, and its late mean at the other rate."""
    after = f"mean over the checkpoints from epoch {EARLY_EPOCHS} on" + ("" if last else " before the end")
    main, other = lrs
    return (
        Measured(f"{label}, {after} (lr {main:g})", [_late(s, r, key, last=last) for r in reps]),
        Measured(f"{label} at initialization (lr {main:g})", [r[key][0] for r in reps]),
        Measured(f"{label}, {after} (lr {other:g})", [_late(s, r, key, last=last) for r in alt]),
    )


def _claims(s: Setting, runs: dict[float, list[dict[str, Any]]], n: int) -> tuple[Claim, ...]:
    """The four claims, decided on the runs at the first learning rate (the other one as context)."""
    main, other = s.lrs[0], s.lrs[1]
    reps, alt = runs[main], runs[other]
    lrs = (main, other)
    late, at_init, at_other = _late_and_context(s, "gradient_fraction", "gradient fraction", reps, alt, lrs)
    fraction = Claim(
        "gradient_in_top_subspace",
        f"After the first epochs the gradient lies mostly in the top-k Hessian subspace (k = {NUM_CLASSES} classes): "
        "the seed's gradient fraction ‖P∇L‖²/‖∇L‖², P the projector onto the rank-k approximation of the Hessian.",
        [Criterion(late, ">", FRACTION_MIN)],
        context=[
            at_init,
            Measured(f"gradient fraction of a random {NUM_CLASSES}-dim subspace, k/n", NUM_CLASSES / n),
            at_other,
        ],
    )
    late, at_init, at_other = _late_and_context(
        s, "normalized_inner_product", "normalized inner product", reps, alt, lrs, last=False
    )
    nip = Claim(
        "gradient_weakly_aligned_with_optimal_direction",
        "The gradient points away from the optimum but only weakly along the actual optimal direction: the seed's "
        "normalized inner product between ∇L(θ_t) and θ_t − θ* (θ* the final weights) is positive and small "
        "after the first epochs.",
        [Criterion(late, ">", 0.0), Criterion(late, "<", NIP_MAX)],
        context=[at_init, at_other],
    )
    late, at_init, at_other = _late_and_context(s, "rank_k_error", "‖H − H_k‖_F / ‖H‖_F", reps, alt, lrs)
    low_rank = Claim(
        "hessian_rank_k",
        f"The Hessian is well approximated by its best rank-k approximation, k = {NUM_CLASSES} classes (the seed's "
        "truncated SVD with k vectors).",
        [Criterion(late, "<", RANK_ERROR_MAX)],
        context=[at_init, at_other],
    )
    negative = Claim(
        "negative_eigenvalues_shrink",
        "At initialization the Hessian has large negative eigenvalues, and the negative eigenvalues at the end of "
        "training are orders of magnitude smaller than those at the beginning.",
        [
            Criterion(
                Measured(
                    f"|λ_min| / λ_max at initialization (lr {main:g})",
                    [abs(r["lambda_min"][0]) / r["lambda_max"][0] for r in reps],
                ),
                ">",
                NEG_LARGE_MIN,
            ),
            Criterion(
                Measured(
                    f"|λ_min(end)| / |λ_min(init)| (lr {main:g})",
                    [abs(r["lambda_min"][-1] / r["lambda_min"][0]) for r in reps],
                ),
                "<",
                NEG_SHRINK_MAX,
            ),
        ],
        context=[
            Measured(f"λ_min at the end (lr {main:g})", [r["lambda_min"][-1] for r in reps]),
            Measured(
                f"|λ_min| / λ_max at the end (lr {main:g})",
                [abs(r["lambda_min"][-1]) / r["lambda_max"][-1] for r in reps],
            ),
            Measured(
                f"|λ_min(end)| / |λ_min(init)| (lr {other:g})",
                [abs(r["lambda_min"][-1] / r["lambda_min"][0]) for r in alt],
            ),
        ],
    )
    return (fraction, nip, low_rank, negative)


def _stat(values: list[float]) -> str:
    """``mean ± s.e.`` over replicates, as a table cell."""
    m = Measured("", values)
    return f"{m.mean:.3g} ± {m.stderr:.2g}" if m.count > 1 else f"{m.mean:.3g}"


def _tables(s: Setting, runs: dict[float, list[dict[str, Any]]]) -> tuple[Table, ...]:
    """The measured series per learning rate, and the check of every estimate against the dense Hessian."""
    fields = ("loss", "gradient_fraction", "normalized_inner_product", "rank_k_error", "lambda_min", "lambda_max")
    header = ["epoch", "loss", "gradient fraction", "normalized inner product", "‖H − H_k‖/‖H‖", "λ_min", "λ_max"]
    tables = [
        Table(
            f"SGD, lr {lr:g}: the gradient and the top of the Hessian over training (mean ± s.e. over replicates)",
            header,
            [[e] + [_stat([r[f][i] for r in reps]) for f in fields] for i, e in enumerate(s.checkpoints)],
            note="the normalized inner product at the last checkpoint is undefined (θ_t = θ*)",
        )
        for lr, reps in runs.items()
    ]
    rows = []
    for lr, reps in runs.items():
        for e in (s.checkpoints[0], s.checkpoints[-1]):
            for q in ("frobenius_sq", "rank_k_error", "lambda_min", "gradient_fraction"):
                est = [r["estimated_at_ends"][str(e)][q] for r in reps]
                ex = [r["exact"][str(e)][q] for r in reps]
                diff = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(est, ex, strict=True))
                rows.append([f"{lr:g}", e, q, _stat(est), _stat(ex), f"{diff:.2g}"])
    tables.append(
        Table(
            "eigenscope's estimates vs the dense Hessian (numpy.linalg.eigh) at the first and last checkpoint",
            ["lr", "epoch", "quantity", "eigenscope", "exact", "largest relative difference"],
            rows,
            note=(
                "‖H‖_F² = tr(H²) by es.trace on es.compose(H, H) (Hutch++); the rank-k error from it and the top-k "
                "eigenvalues by magnitude (es.eigsh, which='LM'); λ_min by es.eigsh(which='SA'); the gradient fraction "
                "from the eigsh eigenvectors (eigenscope.metrics.gradient_fraction)"
            ),
        )
    )
    return tuple(tables)


def _run(ctx: StudyContext) -> StudyOutput:
    """Train at each learning rate over the replicates, then decide the claims and draw the figures."""
    from ._common import digits
    from ._gradient_geometry_plots import figures

    s = _setting(ctx)
    seeds = ctx.replicate_seeds(3, 1)
    x, y = digits(s.num_samples, seed=ctx.seed)
    x, y = x.to(ctx.device), y.to(ctx.device)
    n = sum(a * b + b for a, b in itertools.pairwise(s.sizes))
    bar = ctx.progress("gradient-geometry", len(s.lrs) * len(seeds))
    runs: dict[float, list[dict[str, Any]]] = {}
    for lr in s.lrs:
        runs[lr] = []
        for seed in seeds:
            runs[lr].append(_replicate(s, lr, seed, ctx, x, y))
            bar.update(1)
    bar.close()
    data = {
        "epochs": list(s.checkpoints),
        "num_parameters": n,
        "k": NUM_CLASSES,
        "random_fraction": NUM_CLASSES / n,
        "runs": {f"lr={lr:g}": reps for lr, reps in runs.items()},
        "thresholds": {
            "gradient_fraction": FRACTION_MIN,
            "normalized_inner_product": NIP_MAX,
            "rank_k_error": RANK_ERROR_MAX,
            "from_epoch": EARLY_EPOCHS,
        },
    }
    for name, fig, caption in figures(data):
        ctx.figure(name, fig, caption)
    return StudyOutput(
        claims=_claims(s, runs, n),
        data=data,
        tables=_tables(s, runs),
        notes=_notes(ctx, s, n),
        settings=_settings_json(s, seeds),
    )


def _notes(ctx: StudyContext, s: Setting, n: int) -> tuple[str, ...]:
    """Scale caveats, what the seed states and what was estimated."""
    notes = [
        f"Data: {s.num_samples} of scikit-learn's 8×8 digits (no download), a stand-in for the seed's CIFAR-10 and "
        f"ImageNet; model: a ReLU MLP {list(s.sizes)} ({n} parameters) instead of ResNets/VGG; SGD without momentum, "
        f"batch size {s.batch_size}, {s.epochs} epochs.",
        "The seed lists the gradient fraction, the normalized inner product and the rank-k approximation as metrics "
        "without reporting their values; the claims tested for them are what the metrics are meant to show (the "
        "gradient concentrated in the top-k subspace, a gradient that is not the direct way to θ*, a Hessian of "
        "effective rank k). The claim on negative eigenvalues is stated in the seed's 'things to look for'.",
        f"The claims are decided at lr {s.lrs[0]:g}; lr {s.lrs[1]:g} (same initializations and batch orders) is "
        "shown beside it, as context: how much the gradient geometry depends on the learning rate.",
        "'After the first epochs' means the checkpoints from epoch 5 on; θ* is the final weights of each run, so the "
        "inner product at the last checkpoint is undefined and left out.",
        "The top-k pairs are the k eigenvalues of largest magnitude (es.eigsh, which='LM'), as the best rank-k "
        "approximation of a symmetric matrix needs; ‖H‖_F² = tr(H²) is estimated by es.trace on es.compose(H, H); "
        "both and λ_min are checked against the dense Hessian at the first and last checkpoint (table).",
    ]
    if ctx.quick:
        notes.append("Quick run: one replicate, 512 samples, a narrower network and 12 epochs.")
    return tuple(notes)


def _settings_json(s: Setting, seeds: list[int]) -> dict[str, Any]:
    """The settings the study ran with."""
    return {
        "data": f"digits, {s.num_samples} samples",
        "layer sizes": list(s.sizes),
        "batch size": s.batch_size,
        "optimizer": "SGD (no momentum)",
        "learning rates": list(s.lrs),
        "epochs": s.epochs,
        "checkpoints (epochs)": list(s.checkpoints),
        "k (classes)": NUM_CLASSES,
        "tr(H²) products (Hutch++ on H·H)": s.trace_matvecs,
        "replicate seeds": seeds,
    }


STUDY = Study(
    name="gradient-geometry",
    title="The gradient against the top of the Hessian: gradient fraction, direction to the optimum, rank-k Hessian",
    source="seed 000: research notes on Hessian spectra",
    run=_run,
)
