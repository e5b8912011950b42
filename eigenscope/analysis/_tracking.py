"""The same curvature analysis over a series of checkpoints, collected into one table.

Seed notes 000 follow the Hessian spectrum through training: large negative eigenvalues
at initialization that shrink by orders of magnitude, a flatter density after a
learning-rate drop. :func:`track` runs :func:`analyze_curvature` on each checkpoint and
adds what only a series has: the distance of each density to the previous one, and the
alignment of the gradient with the way to the final parameters.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..adapters.torch import select_params
from ..metrics import density_kl, density_wasserstein, normalized_inner_product
from ._checkpoints import load_checkpoint
from ._matrices import curvature_operator
from ._progress import ProgressFactory, no_progress
from ._report import CurvatureReport, analyze_curvature

Checkpoint = Mapping[str, Any] | str | os.PathLike
"""A state dict, or the path of a file holding one (``torch.save(model.state_dict(), path)``)."""


@dataclass(frozen=True)
class Tracking:
    """Curvature reports of a series of checkpoints.

    Attributes
    ----------
    labels : tuple[str, ...]
        One per checkpoint (e.g. ``"epoch 0"``).
    reports : tuple[CurvatureReport, ...]
        The analysis of each checkpoint.
    extras : tuple[dict[str, float], ...]
        Per checkpoint: ``loss`` and ``normalized_inner_product`` (the cosine between the
        gradient and ``θ − θ*``, ``θ*`` the reference (by default the last checkpoint, where
        it is nan)), plus anything the caller added.
    """

    labels: tuple[str, ...]
    reports: tuple[CurvatureReport, ...]
    extras: tuple[dict[str, float], ...] = field(default_factory=tuple)

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per checkpoint: label, :meth:`CurvatureReport.scalars`, the extras,
        and ``kl_to_previous``/``w1_to_previous`` (:func:`density_kl` of the previous
        density from this one, and :func:`density_wasserstein`; nan for the first)."""
        rows = []
        for i, (label, report) in enumerate(zip(self.labels, self.reports, strict=True)):
            row: dict[str, Any] = {"label": label}
            row.update(report.scalars())
            if self.extras:
                row.update(self.extras[i])
            if i == 0:
                row["kl_to_previous"] = float("nan")
                row["w1_to_previous"] = float("nan")
            else:
                row["kl_to_previous"] = density_kl(report.density, self.reports[i - 1].density)
                row["w1_to_previous"] = density_wasserstein(report.density, self.reports[i - 1].density)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rows (NaN as None) and each checkpoint's density."""
        rows = [
            {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in self.to_rows()
        ]
        return {"rows": rows, "densities": [r.density.to_dict() for r in self.reports]}


def track(
    model: nn.Module,
    loss_fn: Any,
    data: Iterable[Any],
    checkpoints: Sequence[Checkpoint],
    *,
    labels: Sequence[str] | None = None,
    matrix: str = "hessian",
    operator_options: Mapping[str, Any] | None = None,
    reference: Checkpoint | None = None,
    progress: ProgressFactory | None = None,
    **options: Any,
) -> Tracking:
    """Run :func:`analyze_curvature` on each checkpoint of a model.

    Each checkpoint is loaded (strictly) into a *copy* of ``model``; the model itself is
    left as it was. At each, the curvature operator of ``matrix`` is built over ``data``,
    and the gradient and loss are taken for the gradient fraction and the table.

    Parameters
    ----------
    model
        The architecture (its own weights are not used unless a checkpoint is its state dict).
    loss_fn, data
        As for :func:`eigenscope.adapters.torch.hessian`.
    checkpoints
        State dicts or files (``torch.save(model.state_dict(), path)``), in training order.
    labels
        One per checkpoint; default ``"0"``, ``"1"``, … (file names for paths).
    matrix
        ``"hessian"``, ``"ggn"`` or ``"gradient_covariance"`` (see :func:`curvature_operator`).
    operator_options
        Passed to the adapter (``params=``, ``cache_graphs=``, ...).
    reference
        ``θ*`` of the normalized inner product (a state dict or file); default the last
        checkpoint.
    progress
        A progress factory; one bar per stage of each checkpoint.
    options
        Passed to :func:`analyze_curvature` (``k=``, ``num_steps=``, ``seed=``, ...). The
        same seed is used at every checkpoint, so differences are not probe noise.

    Returns
    -------
    Tracking
        ``.to_rows()`` is the table.
    """
    if not checkpoints:
        raise ValueError("track needs at least one checkpoint")
    if labels is None:
        labels = [
            os.path.basename(os.fspath(c)) if isinstance(c, (str, os.PathLike)) else str(i)
            for i, c in enumerate(checkpoints)
        ]
    if len(labels) != len(checkpoints):
        raise ValueError(f"{len(labels)} labels for {len(checkpoints)} checkpoints")
    progress = progress or no_progress
    work = copy.deepcopy(model)
    reports, extras, thetas, grads = [], [], [], []
    for label, ckpt in zip(labels, checkpoints, strict=True):
        load_checkpoint(work, ckpt)
        op = curvature_operator(work, loss_fn, data, matrix, **dict(operator_options or {}))
        g = op.gradient()
        described = _prefixed(progress, str(label))
        reports.append(analyze_curvature(op, gradient=g, progress=described, label=str(label), **options))
        extras.append({"loss": op.loss()})
        thetas.append(op.parameters_vector())
        grads.append(g)
    if reference is None:
        theta_star = thetas[-1]
    else:
        load_checkpoint(work, reference)
        _, tensors = select_params(work, dict(operator_options or {}).get("params"))
        theta_star = torch.cat([p.detach().reshape(-1) for p in tensors])
    for extra, theta, g in zip(extras, thetas, grads, strict=True):
        with torch.no_grad():
            extra["normalized_inner_product"] = normalized_inner_product(g, theta, theta_star)
    return Tracking(tuple(str(x) for x in labels), tuple(reports), tuple(extras))


def _prefixed(progress: ProgressFactory, prefix: str) -> ProgressFactory:
    def factory(description: str, total: int | None = None) -> Any:
        return progress(f"[{prefix}] {description}", total)

    return factory
