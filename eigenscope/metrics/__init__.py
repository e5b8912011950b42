"""Metrics on spectra and subspaces, on every backend.

The numbers the curvature literature reports about a spectrum or an eigenspace, computed
from results the algorithms already returned: no operator is applied here.

>>> import numpy as np
>>> import eigenscope as es
>>> from eigenscope import metrics as em
>>> A = np.diag(np.linspace(-1.0, 4.0, 50))
>>> d = es.spectral_density(A, 20, 2, seed=0)        # any object with nodes and weights will do
>>> e = em.spectral_energy(d)
>>> round(e.l1_positive - e.l1_negative, 6) == round(d.moments(1), 6)
True
>>> top = es.eigsh(A, 3, which="LA", seed=0)
>>> round(em.outlier_ratio(top.eigenvalues, 3), 4)
1.0538
>>> g = np.ones(50)
>>> round(em.gradient_fraction(g, top.eigenvectors), 4)
0.06
>>> em.density_wasserstein([0.0, 1.0], [0.5, 1.5])
0.5

Spectra (a :class:`DiscreteMeasure`: an :class:`eigenscope.SpectralDensity`, any object with
``nodes`` and ``weights``, eigenvalues, or ``(nodes, weights)``): :func:`spectral_energy`,
:func:`negative_mass`, :func:`outlier_ratio`, :func:`density_kl`,
:func:`density_wasserstein`, :func:`common_grid`. Subspaces (vectors of length n stay on
their backend; only k×k matrices and scalars reach the host): :func:`orthonormalize`,
:func:`principal_angles`, :func:`gradient_fraction`, :func:`gradient_fraction_profile`,
:func:`normalized_inner_product`.

This package reads the algorithms' results (one layer up from :mod:`eigenscope.algorithms`,
which never imports it) and uses :mod:`eigenscope.backends` and NumPy/SciPy; it imports no
array framework.
"""

from ._density import DensityLike, DiscreteMeasure, as_density, density_from_eigenvalues
from ._distances import DensityGrid, common_grid, density_kl, density_wasserstein
from ._spectrum import SpectralEnergy, negative_mass, outlier_ratio, spectral_energy
from ._subspace import (
    PrincipalAngles,
    gradient_fraction,
    gradient_fraction_profile,
    normalized_inner_product,
    orthonormalize,
    principal_angles,
)

__all__ = [
    "DensityGrid",
    "DensityLike",
    "DiscreteMeasure",
    "PrincipalAngles",
    "SpectralEnergy",
    "as_density",
    "common_grid",
    "density_from_eigenvalues",
    "density_kl",
    "density_wasserstein",
    "gradient_fraction",
    "gradient_fraction_profile",
    "negative_mass",
    "normalized_inner_product",
    "orthonormalize",
    "outlier_ratio",
    "principal_angles",
    "spectral_energy",
]
