"""The generic algorithms run on the JAX operators, and the same MLP in PyTorch and JAX
(the same weights) gives the same spectrum and trace to float64 precision."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402

import eigenscope as es  # noqa: E402
from eigenscope.adapters import jax as ejx  # noqa: E402

from . import _reference as ref  # noqa: E402
from ._models import KW, assert_close, mlp_model, random_block  # noqa: E402


# Every test here uses n = 57 (the MLP 5-6-3): the algorithms' own JAX operations then
# compile once for the module.
def test_algorithms_on_the_hessian(models):
    m = models["mlp"]
    h = ejx.hessian(m.loss_fn, m.params, m.batches, **KW)
    exact = np.linalg.eigvalsh(np.asarray(ref.dense_hessian(m.loss_fn, m.params, m.batches)))

    r = es.eigsh(h, k=3, seed=0)
    assert np.all(r.converged)
    np.testing.assert_allclose(np.sort(r.eigenvalues), exact[-3:], rtol=1e-8)
    assert isinstance(r.eigenvectors, jax.Array) and r.eigenvectors.shape == (h.shape[0], 3)

    t = es.trace(h, 9, method="hutch++", seed=0, block_size=3)
    assert abs(t.estimate - exact.sum()) <= 5 * t.std_error + 1e-9
    d = es.spectral_density(h, num_steps=20, num_probes=3, seed=0)
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, rtol=1e-12)
    lo, hi = d.support
    assert exact[0] - 1e-8 <= lo and hi <= exact[-1] + 1e-8


def test_ggn_spectrum_is_nonnegative(models):
    m = models["mlp"]
    g = ejx.ggn(m.model_fn, m.output_loss, m.params, m.batches, **KW)
    r = es.eigsh(g, k=2, which="SA", seed=0)
    assert r.eigenvalues.min() >= -1e-10 * es.eigsh(g, k=1, seed=0).eigenvalues[0]


# ---- PyTorch and JAX: the same model, the same numbers ---------------------------------------
SIZES = (5, 6, 3)


def _exact_trace(op, block=3):
    """``Σᵢ eᵢᵀ A eᵢ`` with blocks of identity columns (the width the products were compiled for)."""
    n, xp = op.shape[0], op.xp
    total = 0.0
    for start in range(0, n, block):
        cols = np.zeros((n, block))
        idx = np.arange(start, min(start + block, n))
        cols[idx, idx - start] = 1.0
        y = np.asarray(es.backends.to_numpy(op @ es.backends.from_numpy(cols, xp=xp, dtype=op.dtype, device=op.device)))
        total += float(np.sum(y[idx, idx - start]))
    return total


def _torch_operator(torch, model, batches):
    """The torch adapter's Hessian; without it (not importable yet), the same matrix from
    ``torch.autograd.functional.hessian`` on a function of the flat parameters."""
    try:
        from eigenscope.adapters import torch as est

        return est.hessian(model, torch.nn.functional.cross_entropy, batches)
    except ImportError:
        from torch.func import functional_call

        names = [k for k, _ in model.named_parameters()]
        shapes = [p.shape for _, p in model.named_parameters()]
        theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        total = sum(len(y) for _, y in batches)

        def loss(flat):
            state, i = {}, 0
            for k, s in zip(names, shapes, strict=True):
                state[k] = flat[i : i + s.numel()].reshape(s)
                i += s.numel()
            return sum(
                torch.nn.functional.cross_entropy(functional_call(model, state, (x,)), y) * len(y) / total
                for x, y in batches
            )

        return es.aslinearoperator(torch.autograd.functional.hessian(loss, theta))


def test_torch_and_jax_agree():
    torch = pytest.importorskip("torch", reason="the cross-framework check needs PyTorch")
    gen = torch.Generator().manual_seed(0)
    layers = []
    for a, b in itertools.pairwise(SIZES):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers[:-1]).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / 2)
    x = torch.randn(10, SIZES[0], generator=gen, dtype=torch.float64)
    y = torch.randint(0, SIZES[-1], (10,), generator=gen)
    torch_batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 10, 4)]  # 4, 4, 2

    # nn.Linear stores W as (out, in) and computes x Wᵀ + b; mlp_model does the same with a
    # list of (W, b), so ravel_pytree's order (W₀, b₀, W₁, b₁, ...) is torch's parameter order.
    linears = [mod for mod in model if isinstance(mod, torch.nn.Linear)]
    params = [(jnp.asarray(m.weight.detach().numpy()), jnp.asarray(m.bias.detach().numpy())) for m in linears]
    jax_batches = [(a.numpy(), b.numpy()) for a, b in torch_batches]

    def loss_fn(p, inputs, targets):
        logp = jax.nn.log_softmax(mlp_model(p, inputs))
        return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=1))

    h_jax = ejx.hessian(loss_fn, params, jax_batches, **KW)
    h_torch = _torch_operator(torch, model, torch_batches)
    n = h_jax.shape[0]
    assert h_torch.shape == (n, n)

    # The same vector in both flat orders gives the same product.
    v = random_block(n, 3)
    v_torch = torch.from_numpy(np.array(v))
    assert_close(h_jax @ v, (h_torch @ v_torch).numpy(), rtol=1e-12)

    top_jax = np.sort(es.eigsh(h_jax, k=5, seed=0).eigenvalues)
    top_torch = np.sort(es.eigsh(h_torch, k=5, seed=0).eigenvalues)
    np.testing.assert_allclose(top_jax, top_torch, rtol=1e-10)
    t_jax, t_torch = _exact_trace(h_jax), _exact_trace(h_torch)
    assert abs(t_jax - t_torch) <= 1e-10 * abs(t_torch)
