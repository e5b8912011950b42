"""Models, training and spectral measurements of the study ``normalization-and-residuals``.

Small VGG- and ResNet-style networks from :mod:`eigenscope.zoo` (one input channel, 8×8
digits), trained with SGD; at chosen epochs the Hessian of the training loss on a fixed
batch is measured with eigenscope: SLQ density (energies, negative mass, extremal Ritz
values) and the top eigenvalues by ``eigsh`` (outlier ratio λ₁/λ_K). Torch is imported
inside the functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _common

NUM_CLASSES = 10

# name -> (family, batchnorm, residual); the order of the figures and tables.
VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "VGG": ("vgg", False, False),
    "VGG+BN": ("vgg", True, False),
    "ResNet": ("resnet", False, True),
    "ResNet+BN": ("resnet", True, True),
    "plain+BN": ("resnet", True, False),
}


@dataclass(frozen=True)
class Scale:
    """The sizes of one run of the study (full or quick)."""

    num_train: int
    hessian_samples: int
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    lr_drop_factor: float
    vgg_config: tuple[int | str, ...]
    resnet_widths: tuple[int, ...]
    slq_steps: int
    slq_probes: int
    eigsh_tol: float

    @property
    def checkpoints(self) -> tuple[int, ...]:
        """Epochs measured: 0, E/4, E/2, 3E/4, E (deduplicated)."""
        e = self.epochs
        return tuple(sorted({0, max(1, e // 4), e // 2, (3 * e) // 4, e}))

    @property
    def drop_epoch(self) -> int:
        """The first epoch run at the dropped learning rate (right after the E/2 checkpoint)."""
        return self.epochs // 2 + 1


def build_model(variant: str, scale: Scale, seed: int, device: str) -> Any:
    """The network ``variant`` of :data:`VARIANTS`, seeded, float32, on ``device``.

    VGG: ``zoo.VGG(scale.vgg_config)``; ResNet / plain: ``zoo.ResNet`` of depth 6 (a stem and two
    basic blocks) with ``scale.resnet_widths``, with or without shortcuts. Cost: negligible.
    """
    import torch

    from ... import zoo

    family, bn, residual = VARIANTS[variant]
    torch.manual_seed(seed)
    if family == "vgg":
        model = zoo.VGG(scale.vgg_config, in_channels=1, num_classes=NUM_CLASSES, batchnorm=bn)
    else:
        depth = 2 * len(scale.resnet_widths) + 2
        model = zoo.ResNet(
            depth, scale.resnet_widths, in_channels=1, num_classes=NUM_CLASSES, batchnorm=bn, residual=residual
        )
    return model.to(device=device, dtype=torch.float32)


def spectrum_summary(
    model: Any,
    batch: tuple[Any, Any],
    scale: Scale,
    seed: int,
    *,
    top: bool,
    train_mode: bool = True,
    covariance: bool = False,
) -> dict[str, Any]:
    """Measure the Hessian ``H = ∇²L`` of the mean cross-entropy on ``batch`` at the model's parameters.

    SLQ (``scale.slq_steps`` Lanczos steps × ``scale.slq_probes`` Rademacher probes) gives the
    discrete measure, its L1/L2 energies by sign (``spectral_energy``), the negative mass and
    the extremal Ritz values (λ_max, λ_min estimates: Lanczos finds the extremes first). With
    ``top``, ``eigsh`` adds the top K = 10 eigenvalues and the outlier ratio λ₁/λ₁₀; with
    ``covariance``, the same for the per-sample gradient second moment
    ``M = (1/N) Σᵢ ∇ℓᵢ∇ℓᵢᵀ`` (``est.gradient_covariance``). BatchNorm
    uses batch statistics when ``train_mode`` (the training loss), population statistics
    otherwise; the model's own mode is restored. Cost: ``steps × probes`` products, plus
    about 80–150 for each ``eigsh``.
    """
    import torch

    import eigenscope as es
    from eigenscope import metrics as em
    from eigenscope.adapters import torch as est

    was_training = model.training
    model.train(train_mode)
    try:
        H = est.hessian(model, torch.nn.functional.cross_entropy, [batch])
        density = es.spectral_density(H, scale.slq_steps, scale.slq_probes, seed=seed)
        energy = em.spectral_energy(density)
        lo, hi = density.support
        out: dict[str, Any] = {
            "lambda_max_ritz": float(hi),
            "lambda_min_ritz": float(lo),
            "l1_positive": energy.l1_positive,
            "l1_negative": energy.l1_negative,
            "l2_positive": energy.l2_positive,
            "l2_negative": energy.l2_negative,
            "l1_total": energy.l1_positive + energy.l1_negative,
            "negative_l1_share": energy.l1_negative / max(energy.l1_positive + energy.l1_negative, 1e-300),
            "negative_mass": em.negative_mass(density),
            "nodes": np.asarray(density.nodes).tolist(),
            "weights": np.asarray(density.weights).tolist(),
        }
        if top:
            lam, ok = _top(H, scale, seed)
            out["top_eigenvalues"] = lam.tolist()
            out["lambda_max"] = float(lam[0])
            out["outlier_ratio"] = em.outlier_ratio(lam, NUM_CLASSES)
            out["eigsh_converged"] = ok
        if covariance:
            M = est.gradient_covariance(model, torch.nn.functional.cross_entropy, [batch], per="sample")
            lam, ok = _top(M, scale, seed)
            out["covariance_top_eigenvalues"] = lam.tolist()
            out["covariance_outlier_ratio"] = em.outlier_ratio(lam, NUM_CLASSES)
            out["covariance_eigsh_converged"] = ok
        out["num_matvecs"] = int(H.num_matvecs)
        out["loss"] = float(H.loss())
    finally:
        model.train(was_training)
    return out


def _top(op: Any, scale: Scale, seed: int) -> tuple[np.ndarray, bool]:
    """The top K = 10 eigenvalues of ``op`` (``es.eigsh``, block Lanczos), descending, and whether they converged.

    A budget overrun is recorded (``False``), not raised as a warning. Cost: about 80–150 products.
    """
    import eigenscope as es

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = es.eigsh(op, NUM_CLASSES, which="LA", tol=scale.eigsh_tol, method="block", seed=seed, max_matvecs=600)
    lam = np.sort(np.asarray(res.eigenvalues, dtype=np.float64))[::-1]
    return lam, bool(np.all(res.converged)) and not caught


def train_and_measure(
    variant: str,
    scale: Scale,
    data: tuple[Any, Any],
    seed: int,
    device: str,
    *,
    lr_drop: bool = False,
    measure_from: int = 0,
    tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train ``variant`` with SGD (momentum) on ``data`` and measure the Hessian at the checkpoints.

    The Hessian batch is the first ``scale.hessian_samples`` training samples (one batch, so
    BatchNorm's batch statistics are those of that batch). ``eigsh`` runs at the first and
    last checkpoint; BatchNorm networks also get the population-statistics (eval-mode)
    spectrum at the last one. With ``lr_drop`` the learning rate is multiplied by
    ``scale.lr_drop_factor`` from :attr:`Scale.drop_epoch` on; checkpoints before
    ``measure_from`` are skipped (a run with the drop is identical to the one without
    until then). Cost: ``epochs × num_train`` sample gradients plus the measurements.
    """
    x, y = data
    model = build_model(variant, scale, seed, device)
    batch = (x[: scale.hessian_samples], y[: scale.hessian_samples])
    first, last = scale.checkpoints[0], scale.checkpoints[-1]
    records: dict[int, dict[str, Any]] = {}
    eval_record: dict[str, Any] = {}

    def on_epoch(epoch: int) -> None:
        """Measure at the checkpoints (train mode; eval mode too at the last one for BN networks)."""
        if epoch not in scale.checkpoints or epoch < measure_from:
            return
        records[epoch] = spectrum_summary(
            model, batch, scale, seed + epoch, top=epoch in (first, last), covariance=epoch == last and not lr_drop
        )
        if epoch == last and VARIANTS[variant][1]:
            eval_record.update(spectrum_summary(model, batch, scale, seed + epoch, top=True, train_mode=False))
        if tick is not None:
            tick()

    drop = (scale.drop_epoch, scale.lr_drop_factor) if lr_drop else None
    losses = _common.train(
        model,
        x,
        y,
        epochs=scale.epochs,
        batch_size=scale.batch_size,
        lr=scale.lr,
        momentum=scale.momentum,
        seed=seed,
        lr_drop=drop,
        on_epoch=on_epoch,
    )
    return {
        "variant": variant,
        "seed": seed,
        "lr_drop": list(drop) if drop else None,
        "train_loss": losses,
        "checkpoints": {str(k): v for k, v in sorted(records.items())},
        "eval_mode_final": eval_record or None,
    }


def log_ratio(a: float, b: float) -> float:
    """``ln(a/b)`` for positive a, b; NaN otherwise (a replicate that cannot be compared)."""
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        return math.nan
    return math.log(a / b)


def exact_check(scale: Scale, seed: int, device: str, *, channels: tuple[int, int] = (4, 4)) -> dict[str, Any]:
    """Library versus exact spectrum on a tiny BatchNorm VGG (1 → ``channels`` channels) at initialization.

    Forms the dense Hessian on the study's Hessian batch with ``_common.dense`` (n products),
    diagonalizes it with ``numpy.linalg.eigh``, and compares λ_max of ``eigsh``, the extremal
    Ritz values and the energies of SLQ, and the Wasserstein distance between the SLQ measure
    and the exact eigenvalue distribution. Cost: about n + 250 products of a tiny network
    (n = 246 parameters for ``channels = (4, 4)``).
    """
    import torch

    import eigenscope as es
    from eigenscope import metrics as em
    from eigenscope.adapters import torch as est

    from ... import zoo

    x, y = _common.digits(scale.hessian_samples, seed=seed, flatten=False)
    torch.manual_seed(seed)
    model = (
        zoo.VGG((channels[0], "M", channels[1]), in_channels=1, num_classes=NUM_CLASSES, batchnorm=True)
        .to(device)
        .double()
    )
    H = est.hessian(model, torch.nn.functional.cross_entropy, [(x.to(device), y.to(device))])
    exact = np.linalg.eigvalsh(_common.dense(H))
    density = es.spectral_density(H, 40, 4, seed=seed)
    top = es.eigsh(H, NUM_CLASSES, which="LA", seed=seed)
    e_slq, e_exact = em.spectral_energy(density), em.spectral_energy(exact)
    return {
        "parameters": int(H.shape[0]),
        "lambda_max_exact": float(exact[-1]),
        "lambda_max_eigsh": float(np.max(top.eigenvalues)),
        "outlier_ratio_exact": em.outlier_ratio(exact[-NUM_CLASSES:], NUM_CLASSES),
        "outlier_ratio_eigsh": em.outlier_ratio(top.eigenvalues, NUM_CLASSES),
        "lambda_min_exact": float(exact[0]),
        "lambda_min_ritz": float(density.support[0]),
        "l1_negative_share_exact": e_exact.l1_negative / (e_exact.l1_positive + e_exact.l1_negative),
        "l1_negative_share_slq": e_slq.l1_negative / (e_slq.l1_positive + e_slq.l1_negative),
        "wasserstein_slq_exact": em.density_wasserstein(density, exact),
        "exact_eigenvalues": exact.tolist(),
    }
