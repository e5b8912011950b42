"""Stochastic Lanczos quadrature: moments, kernels, negative mass and the random-matrix checks of seed 002."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eigenscope as es
import eigenscope.backends as eb
from eigenscope.testing import orthogonal_matrix, symmetric_with_spectrum
from tests._helpers import asarray


@given(pair=symmetric_with_spectrum(min_n=10, max_n=30, low=-2, high=1, max_gap=0.3), seed=st.integers(0, 2**16))
def test_moments_equal_hutchinson_on_the_same_probes(pair, seed):
    # Per probe z, m steps reproduce zᵀAʲz/‖z‖² for j ≤ 2m − 1; averaged over probes that is
    # exactly the Hutchinson estimate of tr(Aʲ)/n with the same (normalized) probes.
    a, _ = pair
    n = a.shape[0]
    m, p = 4, 3
    z = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, p))
    s = es.spectral_density(a, m, p, probes=z)
    for j in range(2 * m):
        aj = np.linalg.matrix_power(a, j)
        hutch = np.mean(np.einsum("ip,ij,jp->p", z, aj, z) / np.sum(z * z, axis=0))
        assert abs(s.moments(j) - hutch) <= 1e-10 * max(1.0, abs(hutch))


def test_rows_are_probability_measures(xp, dtype):
    lam = np.linspace(-1, 2, 40)
    q = orthogonal_matrix(40, 0)
    s = es.spectral_density(asarray((q * lam) @ q.T, xp, dtype), 12, 3, seed=1)
    assert s.nodes.shape == (3, 12) and s.num_matvecs == 36 and s.dimension == 40
    np.testing.assert_allclose(s.weights.sum(axis=1), 1.0, atol=1e-5)
    lo, hi = s.support
    assert lo >= -1 - 1e-4 and hi <= 2 + 1e-4


def test_full_steps_recover_the_exact_spectrum():
    lam = np.array([-3.0, -1.0, 0.5, 2.0, 7.0])
    q = orthogonal_matrix(5, 1)
    s = es.spectral_density((q * lam) @ q.T, 5, 1, seed=0)
    np.testing.assert_allclose(np.sort(s.stem()[0]), lam, atol=1e-12)


def test_smoothed_density_integrates_to_one():
    lam = np.linspace(0, 1, 200) ** 2
    s = es.spectral_density(np.diag(lam), 30, 2, seed=0)
    for kernel in ("gaussian", "lorentzian"):
        sigma = s.default_sigma()
        grid = np.linspace(-400 * sigma, 1 + 400 * sigma, 200001) if kernel == "lorentzian" else s.grid(4000)
        area = np.trapezoid(s.density(grid, kernel=kernel), grid)
        assert abs(area - 1) < (2e-3 if kernel == "lorentzian" else 1e-6)


def test_wigner_semicircle_support():
    # Wigner matrix scaled by 1/√n: the semicircle on [−2, 2]; one probe, m = 30.
    n = 1000
    g = np.random.default_rng(0).standard_normal((n, n))
    w = (g + g.T) / np.sqrt(2 * n)
    s = es.spectral_density(w, 30, 1, seed=0)
    lo, hi = s.support
    assert abs(lo + 2) < 0.1 and abs(hi - 2) < 0.1
    grid = np.linspace(-2.5, 2.5, 501)
    semicircle = np.sqrt(np.clip(4 - grid**2, 0, None)) / (2 * np.pi)
    est = s.density(grid, sigma=0.1)
    assert np.trapezoid(np.abs(est - semicircle), grid) < 0.25
    assert abs(s.moments(2) - 1.0) < 0.1  # second moment of the semicircle


@pytest.mark.parametrize(("q", "zero_mass"), [(2.0, 0.0), (0.5, 0.5)])
def test_marchenko_pastur(q, zero_mass):
    # H = XᵀX / T with X of shape (T, n), q = T/n: support [(1 − 1/√q)², (1 + 1/√q)²],
    # and a mass 1 − q at zero when q < 1.
    n = 800
    t = int(q * n)
    x = np.random.default_rng(1).standard_normal((t, n))
    h = x.T @ x / t
    s = es.spectral_density(h, 30, 1, seed=0)
    nodes, weights = s.stem()
    lam_plus = (1 + 1 / np.sqrt(q)) ** 2
    assert abs(nodes.max() - lam_plus) < 0.1 * lam_plus
    near_zero = weights[np.abs(nodes) < 1e-6].sum()
    assert abs(near_zero - zero_mass) < 0.05
    if q > 1:
        lam_minus = (1 - 1 / np.sqrt(q)) ** 2
        assert abs(nodes.min() - lam_minus) < 0.05


def test_synthetic_network_like_spectrum():
    # Seed 002, section 5.3: 470 eigenvalues U[0, 15], 20 U[0, 60], 10 U[−10, 0], the rest 0;
    # a single probe with m = 30 recovers the support, the outliers' range and the mass at zero.
    rng = np.random.default_rng(0)
    lam = np.concatenate([rng.uniform(0, 15, 470), rng.uniform(0, 60, 20), rng.uniform(-10, 0, 10), np.zeros(500)])
    q = orthogonal_matrix(lam.size, 0)
    s = es.spectral_density((q * lam) @ q.T, 30, 1, seed=0)
    lo, hi = s.support
    span = lam.max() - lam.min()
    assert abs(lo - lam.min()) < 1e-4 * span and abs(hi - lam.max()) < 1e-4 * span
    nodes, weights = s.stem()
    assert abs(weights[np.argmin(np.abs(nodes))] - 0.5) < 0.05
    assert abs(s.negative_mass() - 0.01) < 0.01
    assert abs(s.trace() - lam.sum()) < 0.1 * abs(lam.sum())


def test_negative_mass_ignores_a_split_zero_node():
    s = es.SpectralDensity(
        nodes=np.array([[-1e-9, 1e-9, 1.0, 2.0]]),
        weights=np.array([[0.3, 0.3, 0.2, 0.2]]),
        num_matvecs=4,
        dimension=100,
        num_steps=np.array([4]),
    )
    assert s.negative_mass() == 0.0
    s2 = s.__class__(
        nodes=np.array([[-0.5, 1e-9, 1.0, 2.0]]),
        weights=np.array([[0.1, 0.5, 0.2, 0.2]]),
        num_matvecs=4,
        dimension=100,
        num_steps=np.array([4]),
    )
    assert s2.negative_mass() == pytest.approx(0.1)


def test_outlier_deflation_puts_back_exact_atoms():
    lam = np.concatenate([np.linspace(0, 1, 297), [20.0, 30.0, 50.0]])
    q = orthogonal_matrix(lam.size, 2)
    s = es.spectral_density((q * lam) @ q.T, 20, 2, seed=0, deflate_outliers=3)
    np.testing.assert_allclose(s.outliers, [20.0, 30.0, 50.0], atol=1e-8)
    np.testing.assert_allclose(s.weights.sum(axis=1), 1.0, atol=1e-12)
    assert s.support[1] == pytest.approx(50.0)
    bulk = s.nodes[:, :20][s.weights[:, :20] > 0]
    assert bulk.max() <= 1.0 + 1e-8  # the bulk no longer sees the outliers
    assert abs(s.trace() - lam.sum()) < 0.05 * lam.sum()


def test_same_seed_same_density(xp):
    a = asarray(np.diag(np.linspace(-1, 1, 30)), xp)
    s1, s2 = es.spectral_density(a, 8, 2, seed=3), es.spectral_density(a, 8, 2, seed=3)
    np.testing.assert_array_equal(s1.nodes, s2.nodes)


def test_errors():
    a = np.diag(np.arange(5.0))
    with pytest.warns(es.EigenscopeWarning, match="clamped"):
        es.spectral_density(a, 10, 1, seed=0)
    with pytest.raises(ValueError, match="num_probes"):
        es.spectral_density(a, 2, 0)
    s = es.spectral_density(a, 3, 1, seed=0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        s.density(np.zeros(3), kernel="box")
    with pytest.raises(ValueError, match="sigma must be positive"):
        s.density(np.zeros(3), sigma=0.0)
    with pytest.raises(ValueError, match="probes expected 5 rows"):
        es.spectral_density(a, 2, 1, probes=np.ones((4, 1)))


def test_basis_location_and_local_reorth_agree_on_moments():
    lam = np.linspace(-1, 1, 80) ** 3
    a = np.diag(lam)
    full = es.spectral_density(a, 10, 3, seed=4)
    host_s = es.spectral_density(a, 10, 3, seed=4, reorth="host")
    local = es.spectral_density(a, 10, 3, seed=4, reorth="local")
    np.testing.assert_allclose(host_s.nodes, full.nodes, atol=1e-12)
    for j in range(4):
        assert abs(local.moments(j) - full.moments(j)) < 1e-10


def test_deflated_density_is_reproducible_and_keeps_the_seeds_probes(xp):
    # The outliers' start vectors come from a stream spawned off the seed after the probes are
    # drawn: same seed, same numbers on every backend (JAX keys included), and the probes are
    # the ones the same seed gives without deflation.
    lam = np.concatenate([np.linspace(-1, 1, 38), [5.0, 9.0]])
    a = asarray(np.diag(lam), xp)
    s1 = es.spectral_density(a, 8, 2, seed=5, deflate_outliers=2)
    s2 = es.spectral_density(a, 8, 2, seed=5, deflate_outliers=2)
    np.testing.assert_array_equal(s1.nodes, s2.nodes)
    np.testing.assert_array_equal(s1.outliers, s2.outliers)
    np.testing.assert_allclose(s1.outliers, [5.0, 9.0], rtol=1e-6)
    probes = eb.random_source(5, xp=xp, device=eb.default_device(xp)).probes((40, 2), xp.float64, "rademacher")
    explicit = es.spectral_density(a, 8, 2, probes=probes, seed=5, deflate_outliers=2)
    # Same probes (projected off the same outliers, found from different start vectors).
    np.testing.assert_allclose(explicit.nodes, s1.nodes, atol=1e-6)
