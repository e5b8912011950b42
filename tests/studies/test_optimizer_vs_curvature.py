"""The optimizer-vs-curvature study (seed 000): its pieces against ground truth, and a quick run end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.analysis.studies import _common  # noqa: E402
from eigenscope.analysis.studies._optimizer_vs_curvature_measure import (  # noqa: E402
    correlations,
    curvature,
    normalized_wasserstein,
    per_sample_gradients,
    second_moment_diagonals,
    train_adam,
)
from tests.studies._checks import run_quick  # noqa: E402
from tests.studies._torch_checks import flat_loss  # noqa: E402

CE = torch.nn.functional.cross_entropy


def _tiny(n=12):
    """A 2-layer ReLU network on ``n`` Gauss-10 points: 6·5 + 5 + 5·10 + 10 = 95 parameters."""
    x, y = _common.gauss10(n, 6, seed=1)
    return _common.mlp([6, 5, 10], seed=2), x, y


def _gradient(model, x, y):
    model.zero_grad(set_to_none=True)
    CE(model(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double().numpy()
    model.zero_grad(set_to_none=True)
    return g


def test_per_sample_gradients_match_a_loop_of_backward_passes():
    model, x, y = _tiny()
    g = per_sample_gradients(model, x, y)
    loop = np.stack([_gradient(model, x[i : i + 1], y[i : i + 1]) for i in range(len(y))])
    np.testing.assert_allclose(g, loop, rtol=1e-10, atol=1e-14)
    # their mean is the full-batch gradient
    np.testing.assert_allclose(g.mean(axis=0), _gradient(model, x, y), rtol=1e-10, atol=1e-14)


def test_minibatch_second_moment_is_the_average_over_all_batches_without_replacement():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((6, 4))
    for b in (1, 2, 3, 6):
        brute = np.mean([np.mean(g[list(idx)], axis=0) ** 2 for idx in itertools.combinations(range(6), b)], axis=0)
        d = second_moment_diagonals(g, b)
        np.testing.assert_allclose(d["minibatch"], brute, rtol=1e-12)
    np.testing.assert_allclose(d["per_sample"], np.mean(g**2, axis=0))
    np.testing.assert_allclose(second_moment_diagonals(g, 1)["minibatch"], d["per_sample"])
    np.testing.assert_allclose(second_moment_diagonals(g, 6)["minibatch"], d["mean_gradient_sq"])


def test_adam_second_moment_after_one_full_batch_step_is_the_squared_gradient():
    model, x, y = _tiny()
    g0 = _gradient(model, x, y)
    v_hat, losses, steps = train_adam(model, x, y, epochs=1, batch_size=len(y), lr=1e-3, seed=0)
    assert steps == 1 and len(losses) == 1
    np.testing.assert_allclose(v_hat, g0**2, rtol=1e-6, atol=1e-20)
    # two steps: v̂ = (β₂ g₀² (1 − β₂) + (1 − β₂) g₁²) / (1 − β₂²)
    model, x, y = _tiny()
    g0 = _gradient(model, x, y)
    twin, _, _ = _tiny()
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    opt.zero_grad()
    CE(twin(x), y).backward()
    opt.step()
    g1 = _gradient(twin, x, y)
    v_hat, _, steps = train_adam(model, x, y, epochs=2, batch_size=len(y), lr=1e-3, seed=0)
    b2 = 0.999
    np.testing.assert_allclose(v_hat, (b2 * (1 - b2) * g0**2 + (1 - b2) * g1**2) / (1 - b2**2), rtol=1e-6)


def test_curvature_matches_explicit_hessian_and_second_moment():
    model, x, y = _tiny(40)
    g = per_sample_gradients(model, x, y)
    rec = curvature(model, x, y, g, batch_size=8, seed=0, diag_matvecs=400)
    theta = _common.flat_parameters(model)
    f = flat_loss(model, x, y)

    h = torch.autograd.functional.hessian(f, theta).numpy()
    np.testing.assert_allclose(rec["hessian_diag"], np.diag(h), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(rec["hessian_eigenvalues"], np.linalg.eigvalsh(h), atol=1e-10)
    np.testing.assert_allclose(rec["second_moment_eigenvalues"], np.linalg.eigvalsh(g.T @ g / 40), atol=1e-12)
    assert rec["second_moment_product_error"] < 1e-12
    # Hutchinson with 400 Rademacher probes is unbiased: close to the exact diagonals on average
    d = second_moment_diagonals(g, 8)["per_sample"]
    assert correlations(rec["second_moment_diag_hutchinson"], d)[0] > 0.9
    assert correlations(rec["hessian_diag_hutchinson"], np.diag(h))[0] > 0.8


def test_correlations_and_normalized_wasserstein():
    a = np.array([1.0, 2.0, 3.0, 10.0])
    assert correlations(a, a**3)[1] == pytest.approx(1.0)  # monotone map: Spearman 1
    assert correlations(a, a**3)[0] < 1.0
    assert correlations(a, -a)[1] == pytest.approx(-1.0)
    assert normalized_wasserstein(a, 7.0 * a) == pytest.approx(0.0, abs=1e-12)  # scale removed
    assert normalized_wasserstein(a, np.array([1.0, 1.0, 1.0, 13.0])) > 0.1


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "ovc"
    saved = run_quick(
        "optimizer-vs-curvature",
        out,
        keys=["adam_tracks_second_moment", "adam_distribution_like_second_moment"],
        figures=("scatter", "densities"),
        replicates=2,
    )
    for rec in saved["data"]["per_seed"]:
        assert rec["second_moment_product_error"] < 1e-10
        assert -1 <= rec["spearman M (per-sample)"] <= 1
    vectors = saved["data"]["per_seed"][0]["vectors"]
    n = saved["data"]["per_seed"][0]["parameters"]
    assert all(len(v) == n for v in vectors.values())
    assert min(vectors["v_hat"]) >= 0
