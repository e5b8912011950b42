"""Study ``normalization-and-residuals``: BatchNorm, residual connections, learning-rate drops and the Hessian spectrum.

Seed 000 reports, for ResNets and VGG on CIFAR-10/ImageNet: large negative eigenvalues at
initialization that shrink early in training; BatchNorm lowering the outlier ratio λ₁/λ_K
(more for VGG than for ResNets); residual connections making the spectrum sharper; the same
top eigenvalue but more outliers with BatchNorm's population statistics; and a flatter
spectrum after a learning-rate drop. This study repeats each comparison on small networks
trained on scikit-learn's digits, with several training seeds, and decides each claim by a
rule on the measured numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._framework import Study, StudyContext, StudyOutput, Table
from ._normalization_and_residuals_measure import VARIANTS, Scale, exact_check, log_ratio, train_and_measure
from ._verdicts import Claim, Criterion, Measured

FULL = Scale(1024, 128, 12, 32, 0.05, 0.9, 0.1, (8, "M", 16, "M", 16), (8, 16), 24, 2, 1e-3)
QUICK = Scale(256, 32, 2, 32, 0.05, 0.9, 0.1, (4, "M", 8, "M", 8), (4, 8), 10, 1, 1e-2)
DROP = "ResNet+BN, lr drop"
# |ln(λ₁ population / λ₁ batch)| below this counts as "the same top eigenvalue" (within ~22 %).
SAME_TOP_TOLERANCE = 0.2


def _run(ctx: StudyContext) -> StudyOutput:
    """Train every variant per replicate seed, measure its Hessian spectra, and decide the claims.

    Cost (full scale): 3 seeds × 6 trainings of 12 epochs on 1024 digits, about 50 spectral
    measurements per seed of a few tens to ~150 Hessian-vector products each on 128 samples.
    """
    from ._common import digits

    scale: Scale = ctx.pick(FULL, QUICK)
    seeds = ctx.replicate_seeds(3, 1)
    per_seed = len(VARIANTS) * len(scale.checkpoints) + sum(c > scale.epochs // 2 for c in scale.checkpoints)
    bar = ctx.progress("training and measuring", len(seeds) * per_seed)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in (*VARIANTS, DROP)}
    for seed in seeds:
        x, y = digits(scale.num_train, seed=seed, flatten=False)
        data = (x.float().to(ctx.device), y.to(ctx.device))
        for variant in VARIANTS:
            runs[variant].append(train_and_measure(variant, scale, data, seed, ctx.device, tick=lambda: bar.update(1)))
        runs[DROP].append(
            train_and_measure(
                "ResNet+BN",
                scale,
                data,
                seed,
                ctx.device,
                lr_drop=True,
                measure_from=scale.drop_epoch,
                tick=lambda: bar.update(1),
            )
        )
    bar.close()
    check = exact_check(scale, ctx.seed, ctx.device, channels=ctx.pick((4, 4), (2, 3)))
    claims = _claims(runs, scale)
    _figures(ctx, runs, scale)
    settings = {
        "data": "scikit-learn digits, 8×8 grey images, 10 classes",
        "training samples": scale.num_train,
        "Hessian batch (first training samples, one batch)": scale.hessian_samples,
        "epochs": scale.epochs,
        "batch size": scale.batch_size,
        "optimizer": f"SGD, lr {scale.lr}, momentum {scale.momentum}",
        "learning-rate drop": f"× {scale.lr_drop_factor} from epoch {scale.drop_epoch} (ResNet+BN, second run)",
        "checkpoints (epochs)": list(scale.checkpoints),
        "VGG config": list(scale.vgg_config),
        "ResNet": f"depth {2 * len(scale.resnet_widths) + 2}, widths {list(scale.resnet_widths)}",
        "SLQ": f"{scale.slq_steps} Lanczos steps × {scale.slq_probes} Rademacher probes",
        "eigsh": f"top 10, block Lanczos, tol {scale.eigsh_tol} (Hessian at the first and last checkpoint; "
        "gradient second moment M at the last)",
        "replicates (training seeds)": seeds,
        "dtype": "float32 (exact check: float64)",
    }
    return StudyOutput(
        claims=claims,
        data={"runs": runs, "exact_check": check, "parameters": _parameter_counts(scale, ctx.device)},
        tables=(_summary_table(runs, scale), _check_table(check)),
        notes=_notes(scale),
        settings=settings,
    )


def _at(run: dict[str, Any], epoch: int, key: str) -> float:
    """The measured ``key`` of ``run`` at checkpoint ``epoch`` (NaN when not measured)."""
    rec = run["checkpoints"].get(str(epoch))
    value = None if rec is None else rec.get(key)
    return math.nan if value is None else float(value)


def _claims(runs: dict[str, list[dict[str, Any]]], scale: Scale) -> tuple[Claim, ...]:
    """The claims of seed 000 with their criteria, from the per-seed runs.

    (a) per network and seed, the change init → end of the negative share of the L1 energy
    ``Σ_{θ<0} w|θ| / Σ w|θ|`` and of ``log₁₀(|λ_min| / λ_max)`` (extremal Ritz values), both
    < 0. (b) per seed, ``ln(R_noBN / R_BN)`` of the outlier ratio R = λ₁/λ₁₀ at the end > 0
    for VGG, and larger for VGG than for the ResNet; (b') the same > 0 for VGG and for the
    ResNet with the ratio of the per-sample gradient second moment M (the seed's
    "covariance"). (c) per seed, ``ln(λ_max residual / λ_max plain)`` and the same for the L1
    energy ``∫|λ| dμ``, averaged over the checkpoints after initialization, > 0 ("sharper" as
    seed 000 defines it: values farther from zero, max and mean). (d) per BatchNorm network
    and seed, ``|ln(λ₁ eval / λ₁ train)|`` < 0.2 and ``ln(R eval / R train)`` > 0. (e) per
    seed, ``ln(λ_max drop / λ_max no drop)`` < 0 at 3E/4 and at E. Thresholds at 0 are the
    direction of the claim itself.
    """
    first, last = scale.checkpoints[0], scale.checkpoints[-1]
    later = [c for c in scale.checkpoints if c > 0]
    share, tail = [], []
    for variant in VARIANTS:
        for run in runs[variant]:
            share.append(_at(run, last, "negative_l1_share") - _at(run, first, "negative_l1_share"))
            tail.append(_tail(run, last) - _tail(run, first))
    a = Claim(
        "negative_eigenvalues_shrink",
        "Large negative eigenvalues at initialization shrink during training: the spectrum ends mostly positive, "
        "its negative part orders of magnitude smaller than at the start.",
        [
            Criterion(Measured("change (end − init) of the negative share of the L1 energy", share), "<", 0.0),
            Criterion(Measured("change (end − init) of log10(|λ_min| / λ_max)", tail), "<", 0.0),
        ],
        context=[
            Measured("negative mass at init", [_at(r, first, "negative_mass") for v in VARIANTS for r in runs[v]]),
            Measured("negative mass at end", [_at(r, last, "negative_mass") for v in VARIANTS for r in runs[v]]),
        ],
    )
    ratio = {v: [_end(r, "outlier_ratio") for r in runs[v]] for v in VARIANTS}
    vgg = [log_ratio(p, q) for p, q in zip(ratio["VGG"], ratio["VGG+BN"], strict=True)]
    res = [log_ratio(p, q) for p, q in zip(ratio["ResNet"], ratio["ResNet+BN"], strict=True)]
    cov = {v: [_end(r, "covariance_outlier_ratio") for r in runs[v]] for v in VARIANTS}
    vgg_m = [log_ratio(p, q) for p, q in zip(cov["VGG"], cov["VGG+BN"], strict=True)]
    res_m = [log_ratio(p, q) for p, q in zip(cov["ResNet"], cov["ResNet+BN"], strict=True)]
    b = Claim(
        "batchnorm_lowers_outlier_ratio",
        "BatchNorm makes the outlier ratio λ₁/λ_K (K = 10 classes) of the Hessian smaller, more so for VGG than "
        "for ResNets.",
        [
            Criterion(Measured("ln(λ₁/λ₁₀ of H without BN / with BN), VGG, end of training", vgg), ">", 0.0),
            Criterion(
                Measured("VGG's minus ResNet's ln(λ₁/λ₁₀ of H without BN / with BN)", np.subtract(vgg, res)), ">", 0.0
            ),
        ],
        context=[
            Measured("ln(λ₁/λ₁₀ of H without BN / with BN), ResNet, end of training", res),
            *(Measured(f"λ₁/λ₁₀ of H at the end, {v}", ratio[v]) for v in VARIANTS),
        ],
    )
    b_cov = Claim(
        "batchnorm_lowers_covariance_outlier_ratio",
        "BatchNorm also makes the outlier ratio λ₁/λ_K of the gradient covariance (second moment) smaller.",
        [
            Criterion(Measured("ln(λ₁/λ₁₀ of M without BN / with BN), VGG, end of training", vgg_m), ">", 0.0),
            Criterion(Measured("ln(λ₁/λ₁₀ of M without BN / with BN), ResNet, end of training", res_m), ">", 0.0),
        ],
        context=[Measured(f"λ₁/λ₁₀ of M at the end, {v}", cov[v]) for v in VARIANTS],
    )
    sharp = {
        key: [
            float(np.nanmean([log_ratio(_at(r, c, key), _at(p, c, key)) for c in later]))
            for r, p in zip(runs["ResNet+BN"], runs["plain+BN"], strict=True)
        ]
        for key in ("lambda_max_ritz", "l1_total")
    }
    c = Claim(
        "residuals_sharpen_spectrum",
        "Residual connections make the Hessian spectrum sharper (eigenvalues farther from zero: larger λ_max and "
        "mean |λ|), and this persists late into training.",
        [
            Criterion(
                Measured("mean over epochs > 0 of ln(λ_max residual / plain), with BN", sharp["lambda_max_ritz"]),
                ">",
                0.0,
            ),
            Criterion(
                Measured("mean over epochs > 0 of ln(∫|λ|dμ residual / plain), with BN", sharp["l1_total"]), ">", 0.0
            ),
        ],
        context=[
            Measured(f"λ_max at the end, {v}", [_at(r, last, "lambda_max_ritz") for r in runs[v]])
            for v in ("ResNet+BN", "plain+BN")
        ],
    )
    top, more, loss_eval, loss_train = [], [], [], []
    for variant in (v for v, (_, bn, _) in VARIANTS.items() if bn):
        for run in runs[variant]:
            ev = run["eval_mode_final"] or {}
            top.append(abs(log_ratio(ev.get("lambda_max", math.nan), _end(run, "lambda_max"))))
            more.append(log_ratio(ev.get("outlier_ratio", math.nan), _end(run, "outlier_ratio")))
            loss_eval.append(ev.get("loss", math.nan))
            loss_train.append(_end(run, "loss"))
    d = Claim(
        "population_statistics_more_outliers",
        "With BatchNorm's population statistics instead of batch statistics the top Hessian eigenvalue stays the "
        "same but the outliers are more extreme.",
        [
            Criterion(
                Measured("|ln(λ₁ population / λ₁ batch statistics)|, the 3 BN networks at the end", top),
                "<",
                SAME_TOP_TOLERANCE,
            ),
            Criterion(Measured("ln(λ₁/λ₁₀ population / batch statistics)", more), ">", 0.0),
        ],
        context=[
            Measured("loss on the Hessian batch, batch statistics", loss_train),
            Measured("loss on the Hessian batch, population statistics", loss_eval),
        ],
    )
    mid = [cp for cp in scale.checkpoints if cp >= scale.drop_epoch]
    drop = {
        cp: [
            log_ratio(_at(r, cp, "lambda_max_ritz"), _at(b_, cp, "lambda_max_ritz"))
            for r, b_ in zip(runs[DROP], runs["ResNet+BN"], strict=True)
        ]
        for cp in mid
    }
    e = Claim(
        "lr_drop_flattens",
        "After a learning-rate drop the spectrum becomes flatter (smaller λ_max) and stays flatter until the end.",
        [
            Criterion(Measured(f"ln(λ_max with drop / without), epoch {cp}", drop[cp]), "<", 0.0)
            for cp in (mid[0], mid[-1])
        ],
        context=[
            Measured(
                f"ln(∫|λ|dμ with drop / without), epoch {last}",
                [
                    log_ratio(_at(r, last, "l1_total"), _at(b_, last, "l1_total"))
                    for r, b_ in zip(runs[DROP], runs["ResNet+BN"], strict=True)
                ],
            )
        ],
    )
    return (a, b, b_cov, c, d, e)


def _tail(run: dict[str, Any], epoch: int) -> float:
    """``log₁₀(|λ_min| / λ_max)`` from the extremal Ritz values at ``epoch`` (NaN if λ_min ≥ 0)."""
    lo, hi = _at(run, epoch, "lambda_min_ritz"), _at(run, epoch, "lambda_max_ritz")
    return math.log10(-lo / hi) if lo < 0 < hi else math.nan


def _end(run: dict[str, Any], key: str) -> float:
    """``key`` at the last checkpoint of ``run``."""
    return _at(run, max(int(k) for k in run["checkpoints"]), key)


def _stat(values: list[float]) -> str:
    """``mean ± s.e.`` of the finite values, as the report prints it."""
    return Measured("", values).describe().split(" (")[0]


def _summary_table(runs: dict[str, list[dict[str, Any]]], scale: Scale) -> Table:
    """Per network: λ_max, λ₁/λ₁₀ (of H; of M at the end), negative L1 share and loss at init and end (mean ± s.e.)."""
    first, last = scale.checkpoints[0], scale.checkpoints[-1]
    rows = []
    for variant in VARIANTS:
        rs = runs[variant]
        rows.append(
            (
                variant,
                _stat([_at(r, first, "lambda_max") for r in rs]),
                _stat([_at(r, last, "lambda_max") for r in rs]),
                _stat([_at(r, first, "outlier_ratio") for r in rs]),
                _stat([_at(r, last, "outlier_ratio") for r in rs]),
                _stat([_at(r, first, "negative_l1_share") for r in rs]),
                _stat([_at(r, last, "negative_l1_share") for r in rs]),
                _stat([_at(r, last, "covariance_outlier_ratio") for r in rs]),
                _stat([r["train_loss"][-1] for r in rs]),
            )
        )
    header = (
        "network",
        "λ_max init",
        "λ_max end",
        "λ₁/λ₁₀ init",
        "λ₁/λ₁₀ end",
        "neg. L1 share init",
        "neg. L1 share end",
        "M: λ₁/λ₁₀ end",
        "final loss",
    )
    return Table(
        "Hessian spectra at initialization and at the end of training",
        header,
        rows,
        "mean ± s.e. over seeds; train-mode (batch statistics) Hessian",
    )


def _check_table(check: dict[str, Any]) -> Table:
    """eigsh/SLQ against the exact eigendecomposition of a tiny network (one row per quantity)."""
    rows = [
        ("λ_max", check["lambda_max_exact"], check["lambda_max_eigsh"], "eigsh"),
        ("λ₁/λ₁₀", check["outlier_ratio_exact"], check["outlier_ratio_eigsh"], "eigsh"),
        ("λ_min", check["lambda_min_exact"], check["lambda_min_ritz"], "SLQ extremal Ritz value"),
        ("negative L1 share", check["l1_negative_share_exact"], check["l1_negative_share_slq"], "SLQ"),
        ("W₁(SLQ measure, exact spectrum)", 0.0, check["wasserstein_slq_exact"], "SLQ"),
    ]
    return Table(
        f"Library versus exact spectrum: tiny BN VGG at initialization ({check['parameters']} parameters, float64)",
        ("quantity", "exact (eigh of the dense Hessian)", "eigenscope", "method"),
        rows,
    )


def _parameter_counts(scale: Scale, device: str) -> dict[str, int]:
    """Number of trainable parameters of each network at this scale."""
    from ._normalization_and_residuals_measure import build_model

    return {v: sum(p.numel() for p in build_model(v, scale, 0, device).parameters()) for v in VARIANTS}


def _notes(scale: Scale) -> tuple[str, ...]:
    """What differs from seed 000's setting."""
    return (
        "Data: scikit-learn's 8×8 digits (1,797 images, shipped with scikit-learn) stand in for CIFAR-10/ImageNet; "
        "nothing is downloaded.",
        "Networks: a 3-convolution VGG and a depth-6 ResNet (stem + 2 basic blocks) of a few thousand parameters "
        "instead of VGG/ResNet-18/32; 'plain' is the same ResNet without shortcuts. Depth is where residual "
        "connections matter most, so claim (c) is tested far from the seed's regime.",
        f"The Hessian is that of the mean loss on one fixed batch of {scale.hessian_samples} training samples, in "
        "train mode (BatchNorm with that batch's statistics) unless stated; population statistics are eval mode "
        "(the running averages).",
        "λ_max and λ_min over training are the extremal Ritz values of SLQ (Lanczos converges to the extremes first); "
        "the outlier ratio uses the top 10 eigenvalues from eigsh at the first and last checkpoint.",
        "The small networks fit the digits almost perfectly, so late-training spectra shrink with the loss; "
        "comparisons at the end mix the effect of the architecture with that of how far the loss has fallen.",
    )


def _figures(ctx: StudyContext, runs: dict[str, list[dict[str, Any]]], scale: Scale) -> None:
    """Densities at init/end per network (seed 0), curves over training, and outlier ratios."""
    from ._normalization_and_residuals_plots import curves_figure, densities_figure, outliers_figure

    ctx.figure(
        "densities",
        densities_figure(runs, scale),
        "Hessian spectral density (SLQ, Gaussian smoothing, log scale) at initialization and at the end of training, "
        "first seed; BatchNorm networks also with population statistics (eval mode).",
    )
    ctx.figure(
        "training",
        curves_figure(runs, scale, DROP),
        "Over training, mean over seeds: λ_max (largest Ritz value), negative share of the L1 energy, training loss.",
    )
    ctx.figure(
        "outlier-ratios",
        outliers_figure(runs, VARIANTS),
        "Outlier ratio λ₁/λ₁₀ at the end of training, batch statistics (train mode) and population statistics "
        "(eval mode, BN networks); mean ± s.e. over seeds.",
    )


STUDY = Study(
    name="normalization-and-residuals",
    title="BatchNorm, residual connections and learning-rate drops versus the Hessian spectrum",
    source="seed 000: research notes on Hessian spectra of ResNet/VGG (CIFAR-10/ImageNet)",
    run=_run,
)
