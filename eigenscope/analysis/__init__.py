"""Curvature analysis: one call for the standard analysis, loss landscapes, tracking, plots, ``eigenscope analyze``.

>>> import eigenscope as es
>>> from eigenscope import analysis as ea
>>> report = ea.analyze_curvature(H, k=10, gradient=H.gradient(), seed=0)    # doctest: +SKIP
>>> report.scalars()                                                          # doctest: +SKIP
>>> d = es.spectral_density(H, 80, 2, seed=0)                                 # doctest: +SKIP
>>> ea.spectral_energy(d), ea.negative_mass(d)                                # doctest: +SKIP

This is the application layer. The metrics on spectra and subspaces
(:func:`spectral_energy`, :func:`principal_angles`, ...) are defined in
:mod:`eigenscope.metrics` and re-exported here; they need only NumPy/SciPy and work on
every backend. The loss landscape, checkpoint tracking, :func:`curvature_operator` and
the ``eigenscope analyze`` job (:func:`run_analyze`) need PyTorch, imported when one of
those names is first used; the plots need matplotlib (the ``plot`` extra), imported
inside each plotting function.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..metrics import (
    DensityGrid,
    PrincipalAngles,
    SpectralEnergy,
    as_density,
    common_grid,
    density_from_eigenvalues,
    density_kl,
    density_wasserstein,
    gradient_fraction,
    gradient_fraction_profile,
    negative_mass,
    normalized_inner_product,
    orthonormalize,
    outlier_ratio,
    principal_angles,
    spectral_energy,
)
from ._loading import JobError
from ._matrices import MATRICES, OLD_MATRIX_NAMES, curvature_operator, matrix_name
from ._plots import (
    plot_densities,
    plot_density,
    plot_loss_curves,
    plot_loss_surface,
    plot_principal_angles,
    plot_stem,
    plot_tracking,
    save_figure,
)
from ._progress import CountingOperator, ProgressFactory, no_progress, tqdm_progress
from ._report import CurvatureReport, analyze_curvature
from ._settings import AnalyzeSettings

# Names whose modules import PyTorch (or, for remove_staging, the job's output handling):
# imported on first use so that this package works without torch.
_LAZY = {
    "LossCurve": "_landscape",
    "LossSurface": "_landscape",
    "loss_along": "_landscape",
    "loss_surface": "_landscape",
    "Tracking": "_tracking",
    "track": "_tracking",
    "load_checkpoint": "_checkpoints",
    "read_checkpoint": "_checkpoints",
    "run_analyze": "_job",
    "remove_staging": "_output",
}

__all__ = [
    "MATRICES",
    "OLD_MATRIX_NAMES",
    "AnalyzeSettings",
    "CountingOperator",
    "CurvatureReport",
    "DensityGrid",
    "JobError",
    "LossCurve",
    "LossSurface",
    "PrincipalAngles",
    "ProgressFactory",
    "SpectralEnergy",
    "Tracking",
    "analyze_curvature",
    "as_density",
    "common_grid",
    "curvature_operator",
    "density_from_eigenvalues",
    "density_kl",
    "density_wasserstein",
    "gradient_fraction",
    "gradient_fraction_profile",
    "load_checkpoint",
    "loss_along",
    "loss_surface",
    "matrix_name",
    "negative_mass",
    "no_progress",
    "normalized_inner_product",
    "orthonormalize",
    "outlier_ratio",
    "plot_densities",
    "plot_density",
    "plot_loss_curves",
    "plot_loss_surface",
    "plot_principal_angles",
    "plot_stem",
    "plot_tracking",
    "principal_angles",
    "read_checkpoint",
    "remove_staging",
    "run_analyze",
    "save_figure",
    "spectral_energy",
    "tqdm_progress",
    "track",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
