"""The hessian-vs-second-moment study (seed 004): its pieces against ground truth, and a quick run end to end."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.adapters import torch as est  # noqa: E402
from eigenscope.analysis.studies import _common  # noqa: E402
from eigenscope.analysis.studies._hessian_vs_second_moment_measure import (  # noqa: E402
    aligned_cosine,
    batch_gradients,
    measure_checkpoint,
    random_subspace_baseline,
    second_moment_eigh,
    second_moment_from_gradients,
)
from tests.studies._checks import run_quick  # noqa: E402
from tests.studies._torch_checks import flat_loss  # noqa: E402

CE = torch.nn.functional.cross_entropy


def _tiny():
    """A 2-layer ReLU network on 30 Gauss-10 points: 8·6 + 6 + 6·10 + 10 = 124 parameters."""
    x, y = _common.gauss10(30, 8, seed=1)
    return _common.mlp([8, 6, 10], seed=2), x, y


def test_batch_gradients_and_second_moment_match_explicit_jacobians_and_the_library():
    model, x, y = _tiny()
    data = _common.batches(x, y, 4)  # 8 batches, the last of 2 samples: weights n_b / N
    g, w = batch_gradients(model, CE, data)
    theta = _common.flat_parameters(model)
    explicit = np.stack(
        [torch.autograd.functional.jacobian(flat_loss(model, xb, yb), theta).numpy() for xb, yb in data]
    )
    np.testing.assert_allclose(g, explicit, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, [4 / 30] * 7 + [2 / 30])
    m = second_moment_from_gradients(g, w)
    ref = sum(wb * np.outer(gb, gb) for gb, wb in zip(explicit, w, strict=True))
    np.testing.assert_allclose(m, ref, rtol=1e-10, atol=1e-14)
    lib = _common.dense(est.gradient_covariance(model, CE, data, per="batch"))
    np.testing.assert_allclose(lib, ref, rtol=1e-9, atol=1e-14)
    # the per-sample second moment is a different matrix (about B times larger here)
    per_sample = _common.dense(est.gradient_covariance(model, CE, data, per="sample"))
    assert np.linalg.norm(per_sample - ref) > 0.1 * np.linalg.norm(ref)
    # ... which batches of one sample give (the study's empirical Fisher)
    fisher = second_moment_from_gradients(*batch_gradients(model, CE, _common.batches(x, y, 1)))
    np.testing.assert_allclose(fisher, per_sample, rtol=1e-9, atol=1e-14)


def test_second_moment_eigh_matches_a_dense_eigendecomposition():
    rng = np.random.default_rng(0)
    g, w = rng.standard_normal((5, 40)), np.full(5, 0.2)
    values, vectors = second_moment_eigh(g, w)
    m = second_moment_from_gradients(g, w)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(m), atol=1e-12)
    assert np.count_nonzero(values) == 5
    np.testing.assert_allclose(m @ vectors, vectors * values[::-1][:5], atol=1e-12)


def test_measure_checkpoint_matches_explicit_hessian_and_residual():
    model, x, y = _tiny()
    rec = measure_checkpoint(model, x, y, 2)  # 15 batches: M has rank 15
    theta = _common.flat_parameters(model)
    h = torch.autograd.functional.hessian(flat_loss(model, x, y), theta).numpy()
    jac = [
        torch.autograd.functional.jacobian(flat_loss(model, xb, yb), theta).numpy()
        for xb, yb in _common.batches(x, y, 2)
    ]
    m = sum(np.outer(j, j) for j in jac) / len(jac)
    hp = m - h
    assert rec["hp_over_h"] == pytest.approx(np.linalg.norm(hp) / np.linalg.norm(h), rel=1e-8)
    assert rec["hp_plus_h_over_h"] == pytest.approx(np.linalg.norm(m) / np.linalg.norm(h), rel=1e-8)
    assert rec["cos_hp_minus_h"] == pytest.approx(-np.sum(hp * h) / (np.linalg.norm(hp) * np.linalg.norm(h)), rel=1e-8)
    wh, wp = np.linalg.eigvalsh(h), np.linalg.eigvalsh(hp)
    np.testing.assert_allclose(rec["H_ends"][:15], wh[::-1][:15], atol=1e-10)
    np.testing.assert_allclose(rec["Hp_ends"][:15], wp[:15], atol=1e-10)  # H_p: most negative first
    assert rec["m_check"] < 1e-9
    assert len(rec["cosines"]) == 15 and all(0 <= c <= 1 + 1e-12 for c in rec["cosines"])
    with pytest.raises(ValueError, match="rank"):
        measure_checkpoint(model, x, y, 5)  # 6 batches: no top-15 subspace of M


def test_slq_beside_the_exact_spectrum_is_close():
    model, x, y = _tiny()
    from eigenscope.analysis.studies._hessian_vs_second_moment_measure import SLQSettings

    rec = measure_checkpoint(model, x, y, 2, slq=SLQSettings(40, 2, 0))
    for name in ("H", "M", "Hp"):
        assert rec["slq"][name]["w1_rel"] < 0.02, name


def test_aligned_cosine_of_identical_and_random_subspaces():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((300, 15))
    assert aligned_cosine(q, q @ rng.standard_normal((15, 15))) == pytest.approx(1.0)
    # a subspace sharing exactly 10 directions: the 10 largest cosines are 1
    shared = np.concatenate([q[:, :10], rng.standard_normal((300, 5))], axis=1)
    assert aligned_cosine(q, shared) == pytest.approx(1.0)
    draws = random_subspace_baseline(300, seed=0, draws=10)
    assert len(draws) == 10 and 0.05 < np.mean(draws) < 0.4


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "hvsm"
    saved = run_quick(
        "hessian-vs-second-moment",
        out,
        keys=["top_subspaces_aligned", "residual_significant_close_to_minus_h"],
        figures=("spectra-over-training", "principal-angles", "residual", "slq-vs-exact"),
        replicates=1,
    )
    for key in ("gauss10", "digits"):
        series = saved["data"][key]
        rep = series["replicates"][0]
        assert len(rep["aligned_cos"]) == len(series["epochs"]) == len(rep["cosines"])
        # the study's M is the library's batch-level second moment, checked against plain autograd
        assert max(rep["m_check"]) < 1e-8
        # SLQ agrees with the exact spectra to a small fraction of their width
        assert all(v["w1_relative"] < 0.05 for mats in rep["slq"].values() for v in mats.values())
        assert series["random_baseline"]["mean"] < 0.5
        assert set(saved["data"]["slq_vs_exact"][key]) == {"H", "M", "Hp"}
