"""Curvature analysis: metrics on spectra and subspaces, loss landscapes, tracking, plots.

>>> import eigenscope as es
>>> from eigenscope import analysis as ea
>>> d = es.spectral_density(H, 80, 2, seed=0)                          # doctest: +SKIP
>>> ea.spectral_energy(d), ea.negative_mass(d)                           # doctest: +SKIP
>>> top = es.eigsh(H, 10, which="LA", seed=0)                            # doctest: +SKIP
>>> ea.outlier_ratio(top.eigenvalues, 10), ea.gradient_fraction(g, top.eigenvectors)  # doctest: +SKIP

The metrics on spectra and subspaces need only NumPy/SciPy and work on every backend.
The loss landscape, checkpoint tracking and ``curvature_operator`` need PyTorch, imported
when one of those names is first used; the plots need matplotlib (the ``plot`` extra),
imported inside each plotting function.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._density_metrics import (
    DensityGrid,
    SpectralEnergy,
    as_density,
    common_grid,
    density_from_eigenvalues,
    density_kl,
    density_wasserstein,
    negative_mass,
    outlier_ratio,
    spectral_energy,
)
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
from ._subspace import (
    PrincipalAngles,
    gradient_fraction,
    gradient_fraction_profile,
    normalized_inner_product,
    orthonormalize,
    principal_angles,
)

# PyTorch-only names, imported on first use so that this package works without torch.
_LAZY = {
    "LossCurve": "_landscape",
    "LossSurface": "_landscape",
    "loss_along": "_landscape",
    "loss_surface": "_landscape",
    "Tracking": "_tracking",
    "track": "_tracking",
    "MATRICES": "_matrices",
    "curvature_operator": "_matrices",
    "load_checkpoint": "_matrices",
    "read_checkpoint": "_matrices",
}

__all__ = [
    "MATRICES",
    "CountingOperator",
    "CurvatureReport",
    "DensityGrid",
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
