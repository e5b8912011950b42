"""Subspace metrics against hand-computable cases, on NumPy and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

import eigenscope as es
from eigenscope import metrics as em


@pytest.fixture(params=["numpy", "torch"])
def to_backend(request):
    """Convert a float64 NumPy array to the backend under test."""
    if request.param == "numpy":
        return lambda a: np.asarray(a, dtype=np.float64)
    torch = pytest.importorskip("torch")
    return lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))


def _e(n, *idx):
    out = np.zeros((n, len(idx)))
    for j, i in enumerate(idx):
        out[i, j] = 1.0
    return out


def test_principal_angles_of_known_subspaces(to_backend):
    # span(e1, e2) and span(e1, cos a e2 + sin a e3): angles 0 and a.
    a = 0.3
    u = _e(5, 0, 1)
    v = np.zeros((5, 2))
    v[0, 0] = 1.0
    v[1, 1], v[2, 1] = math.cos(a), math.sin(a)
    pa = em.principal_angles(to_backend(u), to_backend(v))
    np.testing.assert_allclose(pa.angles, [0.0, a], atol=1e-12)
    np.testing.assert_allclose(pa.cosines, [1.0, math.cos(a)], atol=1e-12)
    np.testing.assert_allclose(pa.degrees, np.degrees([0.0, a]), atol=1e-10)
    assert pa.overlap == pytest.approx((1 + math.cos(a) ** 2) / 2)


def test_principal_angles_orthogonal_and_identical(to_backend):
    pa = em.principal_angles(to_backend(_e(6, 0, 1)), to_backend(_e(6, 2, 3)))
    np.testing.assert_allclose(pa.angles, [math.pi / 2] * 2, atol=1e-12)
    assert pa.overlap == pytest.approx(0.0, abs=1e-24)
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((20, 4)))[0]
    pa = em.principal_angles(to_backend(q), to_backend(q @ np.diag([2.0, -1.0, 3.0, 0.5])))  # same span
    np.testing.assert_allclose(pa.angles, 0.0, atol=1e-7)


def test_principal_angles_tiny_angle_is_accurate(to_backend):
    # arccos of a cosine 1 - 5e-19 would give 0: the sines keep it.
    a = 1e-9
    u = _e(3, 0)
    v = np.array([[math.cos(a)], [math.sin(a)], [0.0]])
    assert em.principal_angles(to_backend(u), to_backend(v)).angles[0] == pytest.approx(a, rel=1e-6)


def test_principal_angles_match_scipy_for_unequal_dimensions(to_backend):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 5)), rng.standard_normal((30, 3))
    expected = np.sort(scipy.linalg.subspace_angles(a, b))
    got = em.principal_angles(to_backend(a), to_backend(b))
    np.testing.assert_allclose(got.angles, expected, atol=1e-10)
    np.testing.assert_allclose(em.principal_angles(to_backend(b), to_backend(a)).angles, expected, atol=1e-10)
    assert got.cosines.shape == (3,)


def test_gradient_fraction_for_a_diagonal_hessian(to_backend):
    # H = diag(10, 5, 1, 0.1, 0.01): the top-2 eigenspace is span(e1, e2).
    h = np.diag([0.1, 10.0, 0.01, 5.0, 1.0])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    top = es.eigsh(to_backend(h), 2, which="LA", seed=0)
    expected = (2.0**2 + 4.0**2) / np.sum(g**2)
    assert em.gradient_fraction(to_backend(g), top.eigenvectors) == pytest.approx(expected)
    profile = em.gradient_fraction_profile(to_backend(g), top.eigenvectors)
    np.testing.assert_allclose(profile, [4.0 / 55, 20.0 / 55])


def test_gradient_fraction_orthonormalizes_first(to_backend):
    g = np.array([3.0, 4.0, 12.0])
    basis = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])  # span(e1, e2), not orthonormal
    assert em.gradient_fraction(to_backend(g), to_backend(basis)) == pytest.approx(25.0 / 169.0)
    # Orthonormal columns may skip the QR and give the same number.
    q = _e(3, 0, 1)
    assert em.gradient_fraction(to_backend(g), to_backend(q), assume_orthonormal=True) == pytest.approx(25.0 / 169.0)
    assert em.gradient_fraction(to_backend(g), to_backend(g)) == pytest.approx(1.0)
    assert math.isnan(em.gradient_fraction(to_backend(np.zeros(3)), to_backend(q)))


def test_normalized_inner_product(to_backend):
    theta_star = np.array([1.0, 1.0, 1.0])
    theta = np.array([2.0, 1.0, 1.0])
    assert em.normalized_inner_product(to_backend([5.0, 0, 0]), to_backend(theta), to_backend(theta_star)) == 1.0
    assert em.normalized_inner_product(to_backend([-1.0, 0, 0]), to_backend(theta), to_backend(theta_star)) == -1.0
    assert em.normalized_inner_product(to_backend([0.0, 1.0, 0]), to_backend(theta), to_backend(theta_star)) == 0.0
    val = em.normalized_inner_product(to_backend([1.0, 1.0, 0]), to_backend(theta), to_backend(theta_star))
    assert val == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(em.normalized_inner_product(to_backend([1.0, 0, 0]), to_backend(theta), to_backend(theta)))


def test_shape_errors(to_backend):
    with pytest.raises(ValueError, match="length"):
        em.gradient_fraction(to_backend(np.ones(3)), to_backend(np.ones((4, 1))))
    with pytest.raises(ValueError, match="cannot orthonormalize"):
        em.orthonormalize(to_backend(np.ones((2, 3))))
    with pytest.raises(ValueError, match="shape"):
        em.normalized_inner_product(to_backend(np.ones(3)), to_backend(np.ones(4)), to_backend(np.ones(4)))
