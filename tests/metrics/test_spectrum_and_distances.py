"""Metrics of a spectral density against hand-computable measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

import eigenscope as es
from eigenscope import metrics as em


def test_energies_of_a_known_discrete_measure():
    # Atoms -2, 1, 3 with masses 0.25, 0.25, 0.5:
    # L1+ = .25*1 + .5*3 = 1.75, L1- = .25*2 = .5, L2+ = .25*1 + .5*9 = 4.75, L2- = .25*4 = 1.
    e = em.spectral_energy(([-2.0, 1.0, 3.0], [0.25, 0.25, 0.5]))
    assert e.l1_positive == pytest.approx(1.75)
    assert e.l1_negative == pytest.approx(0.5)
    assert e.l2_positive == pytest.approx(4.75)
    assert e.l2_negative == pytest.approx(1.0)
    assert e.l1_ratio == pytest.approx(0.5 / 1.75)
    assert e.l2_ratio == pytest.approx(1.0 / 4.75)
    assert e.dimension == 3


def test_energies_of_an_exact_spectrum_give_trace_and_frobenius():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 30))
    a = (a + a.T) / 2
    lam = np.linalg.eigvalsh(a)
    e = em.spectral_energy(lam)  # mass 1/n per eigenvalue
    assert e.l1_positive - e.l1_negative == pytest.approx(np.trace(a) / 30)
    assert e.l2_positive + e.l2_negative == pytest.approx(np.sum(a * a) / 30)


def test_energies_of_slq_density_match_its_first_moment():
    a = np.diag(np.linspace(-1.0, 4.0, 50))
    d = es.spectral_density(a, 20, 3, seed=0)
    e = em.spectral_energy(d)
    assert e.l1_positive - e.l1_negative == pytest.approx(d.moments(1))
    assert e.l2_positive + e.l2_negative == pytest.approx(d.moments(2))


def test_zero_node_and_one_sided_ratios():
    e = em.spectral_energy([0.0, 1.0, 2.0])
    assert e.l1_negative == 0.0 and e.l1_ratio == 0.0
    e = em.spectral_energy([-1.0, 0.0])
    assert e.l1_ratio == math.inf
    assert math.isnan(em.spectral_energy([0.0]).l1_ratio)


def test_negative_mass_delegates_to_the_density():
    a = np.diag(np.linspace(-1.0, 4.0, 50))
    d = es.spectral_density(a, 30, 2, seed=1)
    assert em.negative_mass(d) == d.negative_mass()
    assert em.negative_mass(d, rtol=0.1) == d.negative_mass(rtol=0.1)
    # Exact spectrum: -3 and -1 are negative, 0 is the near-zero node; 2 of 5.
    assert em.negative_mass([-3.0, -1.0, 0.0, 2.0, 5.0]) == pytest.approx(0.4)


def test_outlier_ratio():
    assert em.outlier_ratio([1.0, 10.0, 2.0, 5.0]) == pytest.approx(10.0)  # K = 4: 10 / 1
    assert em.outlier_ratio([10.0, 5.0, 2.0, 1.0], 2) == pytest.approx(2.0)
    assert em.outlier_ratio([10.0, 5.0, 2.0, 1.0], 1) == pytest.approx(1.0)
    assert math.isnan(em.outlier_ratio([10.0, -1.0], 2))
    with pytest.raises(ValueError, match="k must be between"):
        em.outlier_ratio([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="at least one"):
        em.outlier_ratio([])


def test_kl_of_identical_densities_is_zero():
    d = es.spectral_density(np.diag(np.linspace(0.0, 1.0, 40)), 15, 2, seed=0)
    assert em.density_kl(d, d) == 0.0
    assert em.density_kl([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], sigma=0.1) == 0.0


def test_kl_of_two_shifted_atoms_is_that_of_two_gaussians():
    # Smoothing δ₀ and δ_c with the same Gaussian kernel: KL(N(0,σ²) ‖ N(c,σ²)) = c²/(2σ²).
    sigma, c = 0.5, 0.4
    kl = em.density_kl([0.0], [c], sigma=sigma, num_points=4000)
    assert kl == pytest.approx(c**2 / (2 * sigma**2), rel=1e-3)
    assert em.density_kl([0.0], [c], sigma=sigma) > 0


def test_kl_floor_keeps_disjoint_densities_finite():
    kl = em.density_kl([0.0], [100.0], sigma=0.1)
    assert np.isfinite(kl) and kl > 10


def test_common_grid_integrates_to_one():
    g = em.common_grid([0.0, 1.0], [3.0], sigma=0.2)
    dx = g.grid[1] - g.grid[0]
    assert np.sum(g.p) * dx == pytest.approx(1.0)
    assert np.sum(g.q) * dx == pytest.approx(1.0)
    assert g.grid[0] <= -1.0 and g.grid[-1] >= 4.0


def test_wasserstein_of_shifted_atoms():
    assert em.density_wasserstein([0.0], [2.5]) == pytest.approx(2.5)
    x = np.array([-1.0, 0.5, 3.0])
    assert em.density_wasserstein(x, x + 0.7) == pytest.approx(0.7)
    # Half the mass moves by 1.
    assert em.density_wasserstein(([0.0, 1.0], [0.5, 0.5]), [0.0]) == pytest.approx(0.5)
    d = es.spectral_density(np.diag(np.linspace(0.0, 1.0, 40)), 15, 2, seed=0)
    assert em.density_wasserstein(d, d) == 0.0


def test_density_from_eigenvalues_validates():
    d = em.density_from_eigenvalues([1.0, 2.0], [1.0, 3.0])
    _nodes, weights = d.stem()
    assert weights.tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="at least one"):
        em.density_from_eigenvalues([])
    with pytest.raises(ValueError, match="finite"):
        em.density_from_eigenvalues([1.0, np.nan])
    with pytest.raises(ValueError, match="non-negative"):
        em.density_from_eigenvalues([1.0, 2.0], [1.0, -1.0])
