"""The adapters' operators through eigenscope's algorithms, against dense eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import eigenscope as es
from eigenscope.adapters import torch as est

from . import _reference as ref


@pytest.fixture(scope="module")
def transformer(tiny):
    w = tiny["transformer"]
    dense = ref.dense_hessian(w.model, w.loss_fn, w.batches)
    return w, torch.linalg.eigvalsh(dense).numpy(), dense


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_eigsh_on_hessian(transformer, which):
    w, eigs, _ = transformer
    h = est.hessian(w.model, w.loss_fn, w.batches)
    r = es.eigsh(h, k=3, which=which, seed=0, tol=1e-10)
    expected = eigs[::-1][:3] if which == "LA" else eigs[:3]
    assert r.converged.all()
    np.testing.assert_allclose(r.eigenvalues, expected, rtol=1e-8, atol=1e-10 * abs(eigs).max())
    assert h.num_matvecs == r.num_matvecs
    assert isinstance(r.eigenvectors, torch.Tensor) and r.eigenvectors.shape == (h.shape[0], 3)


def test_block_eigsh_with_graph_cache(transformer):
    w, eigs, _ = transformer
    h = est.hessian(w.model, w.loss_fn, w.batches, cache_graphs=True)
    r = es.eigsh(h, k=4, which="LA", method="block", block_size=4, seed=1, tol=1e-10)
    np.testing.assert_allclose(r.eigenvalues, eigs[::-1][:4], rtol=1e-8, atol=1e-10 * abs(eigs).max())
    assert h.num_forward_passes == h.num_batches  # graphs built once, reused by every block product


def test_spectral_density_moments(transformer):
    w, eigs, dense = transformer
    h = est.hessian(w.model, w.loss_fn, w.batches)
    gen = torch.Generator().manual_seed(0)
    probes = torch.randint(0, 2, (h.shape[0], 2), generator=gen).to(torch.float64) * 2 - 1
    s = es.spectral_density(h, num_steps=10, probes=probes)
    assert s.num_matvecs == h.num_matvecs == 20
    # Gauss quadrature with m steps is exact for zᵀ Hʲ z / zᵀz up to degree 2m − 1.
    for j in (1, 2, 3):
        hj = torch.linalg.matrix_power(dense, j)
        exact = float(torch.mean(torch.einsum("ip,ij,jp->p", probes, hj, probes) / (probes**2).sum(0)))
        assert abs(s.moments(j) - exact) <= 1e-9 * abs(eigs).max() ** j
    lo, hi = s.support
    assert eigs.min() - 1e-9 <= lo and hi <= eigs.max() + 1e-9


def test_eigsh_on_ggn_and_covariance(tiny):
    w = tiny["vgg"]
    for build in (est.ggn, est.gradient_covariance):
        op = build(w.model, w.loss_fn, w.batches)
        dense = op.to_dense()
        eigs = torch.linalg.eigvalsh((dense + dense.T) / 2).numpy()
        r = es.eigsh(op, k=2, which="LA", seed=0, tol=1e-10)
        np.testing.assert_allclose(r.eigenvalues, eigs[::-1][:2], rtol=1e-8)


def test_trace_of_hessian(transformer):
    w, eigs, _ = transformer
    h = est.hessian(w.model, w.loss_fn, w.batches)
    exact = float(eigs.sum())
    # Hutch++ is exact once its sketch holds the whole range: n = 259 here, so use most of it.
    t = es.trace(h, 240, method="hutch++", seed=0)
    assert t.num_matvecs == h.num_matvecs == 240
    assert abs(t.estimate - exact) <= 4 * t.std_error + 1e-6 * abs(eigs).sum()
    rough = es.trace(est.hessian(w.model, w.loss_fn, w.batches), 30, method="hutchinson", seed=1)
    assert abs(rough.estimate - exact) <= 5 * rough.std_error
