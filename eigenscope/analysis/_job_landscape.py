"""Stage 5 of ``eigenscope analyze``: the loss along eigenvectors and on the (v1, v2) plane."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._job_curvature import CurvatureStage
from ._job_inputs import Inputs
from ._landscape import LossCurve, LossSurface, loss_along, loss_surface
from ._progress import ProgressFactory


@dataclass(frozen=True)
class Landscape:
    """The loss around the trained parameters.

    Attributes
    ----------
    radius : float
        The curves and the surface reach ``t = ±radius`` (``½ λ₁ r² = 2``).
    curves : tuple[LossCurve, ...]
        Along v1, v2 (as many as computed) and the bottom eigenvector (when computed).
    quadratic : tuple[tuple[float, float, float], ...]
        Per curve, the quadratic model ``(L(θ), gᵀv, λ)``.
    surface : LossSurface or None
        On the plane of v1 and v2.
    """

    radius: float
    curves: tuple[LossCurve, ...] = ()
    quadratic: tuple[tuple[float, float, float], ...] = ()
    surface: LossSurface | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``landscape`` section of ``results.json``."""
        return {
            "radius": self.radius,
            "curves": [c.to_dict() for c in self.curves],
            "quadratic_models": [list(q) for q in self.quadratic],
            "surface": None if self.surface is None else self.surface.to_dict(),
        }

    def fit_json(self) -> dict[str, Any]:
        """``train_accuracy`` and ``heldout`` (loss and accuracy) at the trained parameters (t = 0 of the v1 curve)."""
        out: dict[str, Any] = {"train_accuracy": None, "heldout": None}
        if not self.curves:
            return out
        curve = self.curves[0]
        mid = int(np.argmin(np.abs(curve.steps)))
        if "train" in curve.accuracy:
            out["train_accuracy"] = float(curve.accuracy["train"][mid])
        if "heldout" in curve.loss:
            out["heldout"] = {"loss": float(curve.loss["heldout"][mid])}
            if "heldout" in curve.accuracy:
                out["heldout"]["accuracy"] = float(curve.accuracy["heldout"][mid])
        return out


def explore(
    inputs: Inputs,
    curvature: CurvatureStage,
    *,
    points: int,
    surface_points: int,
    k: int,
    progress: ProgressFactory,
) -> Landscape:
    """Loss curves of ``points`` points along v1, v2 and v_min; a ``surface_points``² grid on (v1, v2)."""
    import torch

    report = curvature.report
    lam1 = report.lambda_max
    # Steps up to ±r with ½ λ₁ r² = 2: the quadratic model predicts a rise of 2 along v1.
    radius = 2.0 / math.sqrt(lam1) if lam1 > 0 else 1.0
    top = report.top
    curves, quadratic, surface = [], [], None
    if points > 0:
        steps = np.linspace(-radius, radius, max(points, 2))
        directions = [
            (f"v{i + 1} (λ={top.eigenvalues[i]:.3g})", top.eigenvectors[:, i], top.eigenvalues[i])
            for i in range(min(2, k))
        ]
        if report.bottom is not None:
            lam = report.bottom.eigenvalues[0]
            directions.append((f"v_min (λ={lam:.3g})", report.bottom.eigenvectors[:, 0], lam))
        bar = progress("loss along eigenvectors", len(directions) * steps.size)
        sets = inputs.data_sets()
        for label, v, lam in directions:
            curves.append(loss_along(inputs.model, inputs.loss_fn, sets, v, steps, label=label, progress=bar.update))
            quadratic.append((curvature.loss, float(torch.dot(curvature.gradient, v)), float(lam)))
        bar.close()
    if surface_points > 1 and k >= 2:
        grid = np.linspace(-radius, radius, surface_points)
        bar = progress("loss surface (v1, v2)", grid.size**2)
        surface = loss_surface(
            inputs.model,
            inputs.loss_fn,
            {"train": inputs.train},
            top.eigenvectors[:, 0],
            top.eigenvectors[:, 1],
            grid,
            grid,
            labels=("v1", "v2"),
            progress=bar.update,
        )
        bar.close()
    return Landscape(radius, tuple(curves), tuple(quadratic), surface)
