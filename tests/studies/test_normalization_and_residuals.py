"""The normalization-and-residuals study (seed 000): its pieces against ground truth, and a quick run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.adapters import torch as est  # noqa: E402
from eigenscope.analysis.studies import _common  # noqa: E402
from eigenscope.analysis.studies._normalization_and_residuals import QUICK  # noqa: E402
from eigenscope.analysis.studies._normalization_and_residuals_measure import (  # noqa: E402
    VARIANTS,
    Scale,
    build_model,
    log_ratio,
    spectrum_summary,
)
from tests.studies._checks import run_quick  # noqa: E402

CE = torch.nn.functional.cross_entropy
TINY = Scale(64, 32, 4, 16, 0.05, 0.9, 0.1, (2, "M", 3), (2, 3), 122, 1, 1e-8)


def test_scale_checkpoints_and_drop_epoch():
    assert TINY.checkpoints == (0, 1, 2, 3, 4)
    assert TINY.drop_epoch == 3
    assert QUICK.checkpoints == (0, 1, 2) and QUICK.drop_epoch == 2


def test_variants_build_the_networks_they_name():
    for name, (family, bn, residual) in VARIANTS.items():
        model = build_model(name, TINY, 0, "cpu")
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert has_bn == bn, name
        if family == "resnet":
            assert all(block.residual == residual for block in model.blocks), name
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    # same seed, same weights; another seed, other weights
    a, b, c = (build_model("VGG", TINY, s, "cpu") for s in (0, 0, 1))
    assert torch.equal(_common.flat_parameters(a), _common.flat_parameters(b))
    assert not torch.equal(_common.flat_parameters(a), _common.flat_parameters(c))


def _exact_spectrum(model, batch, train_mode):
    model.train(train_mode)
    h = _common.dense(est.hessian(model, CE, [batch]))
    return np.linalg.eigvalsh(h)


def test_spectrum_summary_matches_the_exact_spectrum_in_both_batchnorm_modes():
    x, y = _common.digits(TINY.hessian_samples, seed=3, flatten=False)
    model = build_model("VGG+BN", TINY, 0, "cpu").double()  # 122 parameters
    batch = (x, y)
    model.eval()  # the summary must restore the model's own mode
    spectra = {}
    for train_mode in (True, False):
        rec = spectrum_summary(model, batch, TINY, 0, top=True, train_mode=train_mode)
        assert not model.training
        exact = spectra[train_mode] = _exact_spectrum(model, batch, train_mode)
        model.eval()
        np.testing.assert_allclose(rec["top_eigenvalues"], exact[::-1][:10], rtol=1e-6, atol=1e-9)
        assert rec["outlier_ratio"] == pytest.approx(exact[-1] / exact[-10], rel=1e-6)
        # 122 Lanczos steps on n = 122 parameters: the Krylov space is the whole space
        assert rec["lambda_max_ritz"] == pytest.approx(exact[-1], rel=1e-6)
        assert rec["lambda_min_ritz"] == pytest.approx(exact[0], rel=1e-6)
        # ... so every SLQ node is an eigenvalue (Lanczos sees one copy of each distinct one)
        nodes = np.ravel(rec["nodes"])
        assert np.max(np.min(np.abs(nodes[:, None] - exact[None, :]), axis=1)) < 1e-7 * np.abs(exact).max()
        nodes, weights = np.ravel(rec["nodes"]), np.ravel(rec["weights"])
        neg, pos = -np.sum(weights * np.minimum(nodes, 0)), np.sum(weights * np.maximum(nodes, 0))
        assert rec["negative_l1_share"] == pytest.approx(neg / (neg + pos), rel=1e-9)
        assert rec["eigsh_converged"]
    # batch statistics and population statistics give different Hessians
    assert not np.allclose(spectra[True], spectra[False])


def test_covariance_outlier_ratio_matches_explicit_per_sample_jacobian():
    x, y = _common.digits(TINY.hessian_samples, seed=4, flatten=False)
    model = build_model("VGG+BN", TINY, 1, "cpu").double()
    rec = spectrum_summary(model, (x, y), TINY, 0, top=False, covariance=True)
    # M = JᵀJ/N with J the Jacobian of the per-sample losses (BatchNorm with the batch's statistics)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    def losses(theta):
        params, i = {}, 0
        for n, shape in zip(names, shapes, strict=True):
            params[n] = theta[i : i + shape.numel()].reshape(shape)
            i += shape.numel()
        out = torch.func.functional_call(model, {**params, **buffers}, (x,))
        return CE(out, y, reduction="none")

    model.train()
    jac = torch.autograd.functional.jacobian(losses, _common.flat_parameters(model)).numpy()
    exact = np.linalg.eigvalsh(jac.T @ jac / len(y))[::-1]
    np.testing.assert_allclose(rec["covariance_top_eigenvalues"], exact[:10], rtol=1e-6)
    assert rec["covariance_outlier_ratio"] == pytest.approx(exact[0] / exact[9], rel=1e-6)
    assert rec["covariance_eigsh_converged"] and "top_eigenvalues" not in rec


def test_log_ratio():
    assert log_ratio(math.e, 1.0) == pytest.approx(1.0)
    assert math.isnan(log_ratio(-1.0, 1.0)) and math.isnan(log_ratio(1.0, 0.0)) and math.isnan(log_ratio(math.nan, 1))


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "nr"
    saved = run_quick(
        "normalization-and-residuals",
        out,
        keys=[
            "negative_eigenvalues_shrink",
            "batchnorm_lowers_outlier_ratio",
            "batchnorm_lowers_covariance_outlier_ratio",
            "residuals_sharpen_spectrum",
            "population_statistics_more_outliers",
            "lr_drop_flattens",
        ],
        figures=("densities", "training", "outlier-ratios"),
    )
    # one replicate; 5 networks per replicate for claim (a)
    assert len(saved["claims"][0]["criteria"][0]["quantity"]["values"]) == len(VARIANTS)
    runs = saved["data"]["runs"]
    for name in VARIANTS:
        (run,) = runs[name]
        assert sorted(map(int, run["checkpoints"])) == list(QUICK.checkpoints)
        assert (run["eval_mode_final"] is not None) == VARIANTS[name][1]
    assert sorted(map(int, runs["ResNet+BN, lr drop"][0]["checkpoints"])) == [2]
    # the library agrees with the dense eigendecomposition of the tiny network
    check = saved["data"]["exact_check"]
    assert check["lambda_max_eigsh"] == pytest.approx(check["lambda_max_exact"], rel=1e-6)
    assert check["lambda_min_ritz"] == pytest.approx(check["lambda_min_exact"], rel=1e-3)
    spread = check["lambda_max_exact"] - check["lambda_min_exact"]
    assert check["wasserstein_slq_exact"] < 0.05 * spread
