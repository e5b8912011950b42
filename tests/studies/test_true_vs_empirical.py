"""The true-vs-empirical study (seed 003): its pieces against ground truth, and a quick run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import eigenscope as es  # noqa: E402
from eigenscope.analysis.studies import _common  # noqa: E402
from eigenscope.analysis.studies._true_vs_empirical_measure import (  # noqa: E402
    augmented_digits,
    hessian_operator,
    rank_correlation,
    spectrum,
    steps_to_epochs,
    summarize,
)
from tests.studies._checks import run_quick  # noqa: E402


def test_augmentation_without_shift_or_noise_gives_the_digits_and_is_deterministic():
    x, y = augmented_digits(50, seed=3, noise=0.0, shift=0)
    pool_x, pool_y = _common.digits(None, seed=0)
    # every draw is one of the digits, with its label
    dist = torch.cdist(x, pool_x)
    idx = dist.argmin(dim=1)
    assert torch.all(dist.min(dim=1).values == 0) and torch.equal(pool_y[idx], y)
    x2, y2 = augmented_digits(50, seed=3)
    x3, _ = augmented_digits(50, seed=3)
    assert torch.equal(x2, x3) and torch.equal(y2, y)
    assert x2.shape == (50, 64) and not torch.equal(x2, x)


def test_augmentation_shifts_by_at_most_one_pixel():
    x, _ = augmented_digits(200, seed=1, noise=0.0, shift=1)
    pool_x, _ = _common.digits(None, seed=0, flatten=False)
    padded = torch.nn.functional.pad(pool_x[:, 0], (1, 1, 1, 1))
    shifted = [padded[:, dy : dy + 8, dx : dx + 8].reshape(len(pool_x), 64) for dy in range(3) for dx in range(3)]
    found = torch.stack([torch.cdist(x, s).min(dim=1).values for s in shifted]).min(dim=0).values
    assert torch.all(found == 0)


def test_rank_correlation_matches_its_definition():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 − 6·2/(4·15)
    assert math.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))


def test_steps_to_epochs():
    assert steps_to_epochs(32, 50, 200) == 200
    assert steps_to_epochs(1024, 50, 200) == 10  # 21 batches per epoch
    assert steps_to_epochs(100, 50, 1) == 1


def test_summaries_of_a_known_spectrum():
    eigs = np.concatenate([[-2.0, -1.0], np.zeros(5), [1.0, 3.0, 10.0]])
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    op = es.aslinearoperator(torch.tensor((q * eigs) @ q.T))
    s = summarize(spectrum(op, num_steps=10, seed=0))
    assert s["lam_min"] == pytest.approx(-2.0) and s["lam_max"] == pytest.approx(10.0)
    assert s["rms_width"] == pytest.approx(np.std(eigs))
    assert math.isnan(s["bulk_width"])  # P = 10: no bulk beside 10 outliers
    bulk = summarize(spectrum(op, num_steps=10, seed=0), num_outliers=2)["bulk_width"]
    assert bulk == pytest.approx(np.std(eigs[:-2]))
    assert s["neg_mass"] == pytest.approx(0.2)
    # 10 Lanczos steps on a 10×10 matrix: the Ritz values are the eigenvalues (up to multiplicity)
    assert s["ritz_min"] == pytest.approx(-2.0) and s["ritz_max"] == pytest.approx(10.0)


def test_hessian_of_a_union_is_the_weighted_mean_and_lambda_max_is_convex():
    """H over N samples is the mean of per-sample Hessians, so H_true is the mean of empirical ones and
    λ_max(H_true) ≤ mean λ_max(H_emp) (convexity): the reason broadening is expected."""
    model = _common.mlp([64, 4, 10], seed=0)
    x, y = augmented_digits(90, seed=5)
    full = _common.dense(hessian_operator(model, x, y))
    parts = [_common.dense(hessian_operator(model, x[i : i + 30], y[i : i + 30])) for i in (0, 30, 60)]
    np.testing.assert_allclose(full, sum(parts) / 3, atol=1e-10)
    top = [np.linalg.eigvalsh(p)[-1] for p in parts]
    bottom = [np.linalg.eigvalsh(p)[0] for p in parts]
    eigs = np.linalg.eigvalsh(full)
    assert eigs[-1] <= np.mean(top) + 1e-12 and eigs[0] >= np.mean(bottom) - 1e-12


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "tve"
    saved = run_quick(
        "true-vs-empirical",
        out,
        keys=["broadened", "grows_with_ratio", "negative_mass", "slq_extremes", "trained_weights"],
        figures=("spectra", "broadening"),
        replicates=2,
    )
    # SLQ with m = 100 ≥ P finds the extremes to rounding: this claim must hold
    assert saved["verdicts"]["slq_extremes"] == "reproduced"
    settings = saved["settings"]
    assert len(settings["ratios_P_over_N"]) == len(settings["sample_sizes_N"])
    reps = saved["data"]["replicates"]
    assert len(reps) == 2 and len(reps[0]["empirical"]) == len(settings["sample_sizes_N"])
    spectra = saved["data"]["spectra_replicate_0"]
    assert len(spectra["true"]["eigenvalues"]) == settings["parameters_P"]
