"""The gradient-geometry study (seed 000): its pieces against ground truth, and a quick run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.analysis.studies import _common  # noqa: E402
from eigenscope.analysis.studies._gradient_geometry_measure import (  # noqa: E402
    exact_summary,
    inner_products,
    measure_checkpoint,
    rank_k_error,
)
from tests.studies._checks import run_quick  # noqa: E402


def test_rank_k_error_keeps_the_largest_magnitudes():
    eigs = np.array([3.0, -2.0, 1.0, 0.5])
    # the best rank-2 approximation keeps 3 and −2; the error is what 1 and 0.5 carry
    assert rank_k_error(eigs[:2], float(np.sum(eigs**2))) == pytest.approx(math.sqrt(1.25 / 14.25))
    assert rank_k_error(eigs, float(np.sum(eigs**2))) == 0.0
    assert rank_k_error(eigs, 10.0) == 0.0  # an estimate of tr(H²) below Σλ² is clipped


def test_exact_summary_of_a_known_matrix():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    eigs = np.array([-4.0, -0.1, 0.2, 0.3, 1.0, 5.0])
    h = (q * eigs) @ q.T
    g = q[:, 0] + q[:, 5] + q[:, 2]  # along λ = −4, 5 (the top-2 by magnitude) and 0.2
    s = exact_summary(h, g, 2)
    assert s["gradient_fraction"] == pytest.approx(2 / 3)
    assert s["lambda_min"] == pytest.approx(-4.0) and s["lambda_max"] == pytest.approx(5.0)
    assert s["frobenius_sq"] == pytest.approx(np.sum(eigs**2))
    assert s["rank_k_error"] == pytest.approx(math.sqrt(1 - 41 / np.sum(eigs**2)))


def test_inner_products_against_their_definition():
    star = torch.zeros(3, dtype=torch.float64)
    theta = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    recs = [
        {"theta": theta, "gradient": 2 * theta},  # −g points straight at θ*
        {"theta": theta, "gradient": torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)},  # orthogonal
        {"theta": theta, "gradient": torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)},
        {"theta": star, "gradient": theta},  # θ = θ*: undefined
    ]
    nip = inner_products(recs, star)
    assert nip[0] == pytest.approx(1.0) and nip[1] == pytest.approx(0.0)
    assert nip[2] == pytest.approx(-1 / math.sqrt(2)) and math.isnan(nip[3])


def test_measure_checkpoint_agrees_with_the_dense_hessian():
    x, y = _common.digits(120, seed=1)
    model = _common.mlp([64, 5, 10], seed=3)  # 385 parameters
    rec = measure_checkpoint(model, x, y, 10, seed=0, trace_matvecs=60, exact=True)
    ex = rec["exact"]
    assert rec["lambda_min"] == pytest.approx(ex["lambda_min"], rel=1e-6)
    assert rec["lambda_max"] == pytest.approx(ex["lambda_max"], rel=1e-6)
    assert rec["gradient_fraction"] == pytest.approx(ex["gradient_fraction"], rel=1e-5, abs=1e-8)
    assert rec["fraction_profile"][-1] == pytest.approx(rec["gradient_fraction"])
    assert np.all(np.diff(rec["fraction_profile"]) >= -1e-12)
    # Hutch++ estimate of tr(H²) within a few of its standard errors and a few percent
    assert abs(rec["frobenius_sq"] - ex["frobenius_sq"]) < max(
        4 * rec["frobenius_sq_stderr"], 0.05 * ex["frobenius_sq"]
    )
    assert rec["rank_k_error"] == pytest.approx(ex["rank_k_error"], abs=0.05)
    # the dense values themselves, from the Hessian by autograd
    h = _common.dense(_hessian(model, x, y))
    assert ex["frobenius_sq"] == pytest.approx(np.sum(h**2), rel=1e-10)


def _hessian(model, x, y):
    from eigenscope.adapters import torch as est

    return est.hessian(model, torch.nn.functional.cross_entropy, [(x, y)])


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "gg"
    saved = run_quick(
        "gradient-geometry",
        out,
        keys=[
            "gradient_in_top_subspace",
            "gradient_weakly_aligned_with_optimal_direction",
            "hessian_rank_k",
            "negative_eigenvalues_shrink",
        ],
        figures=("gradient-fraction", "inner-product", "hessian-low-rank"),
        replicates=1,
    )
    data = saved["data"]
    assert set(data["runs"]) == {"lr=0.2", "lr=0.05"}
    for reps in data["runs"].values():
        rep = reps[0]
        assert len(rep["gradient_fraction"]) == len(data["epochs"]) == len(rep["normalized_inner_product"])
        assert rep["normalized_inner_product"][-1] is None  # θ_T = θ*: undefined, saved as null
        for epoch, exact in rep["exact"].items():
            estimated = rep["estimated_at_ends"][epoch]
            assert estimated["lambda_min"] == pytest.approx(exact["lambda_min"], rel=1e-6)
            assert estimated["gradient_fraction"] == pytest.approx(exact["gradient_fraction"], rel=1e-4, abs=1e-8)
