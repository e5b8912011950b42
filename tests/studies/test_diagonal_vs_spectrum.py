"""The diagonal-vs-spectrum study (seed 002): random-matrix laws, distances, and a quick run end to end."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import eigenscope as es  # noqa: E402
from eigenscope.analysis.studies._common import serial_blas  # noqa: E402
from eigenscope.analysis.studies._diagonal_vs_spectrum_measure import (  # noqa: E402
    curvature_comparison,
    law_atoms,
    law_support,
    random_matrix_distances,
    synthetic,
    synthetic_eigenvalues,
    wigner,
    wishart,
)
from eigenscope.metrics import density_wasserstein  # noqa: E402
from tests.studies._checks import run_quick  # noqa: E402


@pytest.mark.parametrize(
    ("name", "mean", "variance"),
    [
        ("wigner", 0.0, 1.0),  # semicircle of radius 2
        ("marchenko-pastur", 1.0, 0.5),  # ratio c = 1/2: mean 1, variance c
        ("synthetic", 0.47 * 7.5 + 0.02 * 30 - 0.01 * 5, None),
    ],
)
def test_law_atoms_have_the_laws_moments(name, mean, variance):
    atoms = law_atoms(name)
    lo, hi = law_support(name)
    assert atoms.min() >= lo and atoms.max() <= hi
    assert atoms.mean() == pytest.approx(mean, abs=1e-3)
    if variance is not None:
        assert atoms.var() == pytest.approx(variance, abs=2e-3)
    if name == "synthetic":
        assert np.mean(atoms == 0) == pytest.approx(0.5)


def test_synthetic_matrix_has_the_stated_spectrum():
    d = synthetic_eigenvalues(200, seed=4)
    assert np.sum(d == 0) == 100 and np.sum(d < 0) == 2 and d.max() <= 60 and d.min() >= -10
    np.testing.assert_allclose(np.linalg.eigvalsh(synthetic(200, seed=4)), d, atol=1e-10)


def test_exact_spectra_approach_their_laws():
    law = law_atoms("wigner")
    with serial_blas():
        goe, mp_eigs = np.linalg.eigvalsh(wigner(400, seed=0)), np.linalg.eigvalsh(wishart(400, seed=0))
        other = np.linalg.eigvalsh(wishart(400, seed=0, aspect=4.0))
    assert density_wasserstein(goe, law) < 0.02
    assert density_wasserstein(law + 0.3, law) == pytest.approx(0.3, rel=1e-6)  # W1 of a shift is the shift
    mp = density_wasserstein(mp_eigs, law_atoms("marchenko-pastur"))
    assert mp < 0.03
    assert density_wasserstein(other, law_atoms("marchenko-pastur")) > 3 * mp  # another ratio, another law


def test_random_matrix_distances_of_a_diagonal_matrix():
    """For a diagonal matrix the diagonal is the spectrum: both distances to the law agree exactly."""
    d = np.sort(np.random.default_rng(1).uniform(-2, 2, 300))
    r = random_matrix_distances("wigner", np.diag(d), num_steps=30, seed=0)
    assert r["w1_diagonal"] == pytest.approx(r["w1_exact"], rel=1e-12)
    assert r["support_width"] == 4.0 and r["w1_slq_rel"] == pytest.approx(r["w1_slq"] / 4)


def test_curvature_comparison_on_known_operators():
    rng = np.random.default_rng(0)
    eigs = np.linspace(-1.0, 5.0, 40)
    diag_op = es.aslinearoperator(torch.tensor(np.diag(eigs)))
    r = curvature_comparison(diag_op, num_steps=40, diag_matvecs=120, seed=0)
    assert r["w1_diagonal"] == pytest.approx(0.0, abs=1e-12)  # a diagonal matrix: diagonal = spectrum
    assert r["diag_max_over_lam_max"] == pytest.approx(1.0)
    assert r["w1_diagonal_est"] == pytest.approx(0.0, abs=1e-10)  # diag++ with 120 // 3 = n sketch columns: exact
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    rotated = es.aslinearoperator(torch.tensor((q * eigs) @ q.T))
    r = curvature_comparison(rotated, num_steps=40, diag_matvecs=30, seed=0)
    # 40 steps on a 40×40 matrix: the Ritz values are the eigenvalues (weighted by one probe's overlaps)
    np.testing.assert_allclose(np.sort(r["slq_nodes"]), eigs, atol=1e-8)
    assert r["slq_max_over_lam_max"] == pytest.approx(1.0)
    assert r["diag_max_over_lam_max"] < 1.0 and r["w1_diagonal"] > 0.1  # diagonal entries are Rayleigh quotients
    np.testing.assert_allclose(r["diagonal"], np.diag((q * eigs) @ q.T), atol=1e-12)


def test_quick_run_writes_claims_figures_and_report(tmp_path):
    out = tmp_path / "dvs"
    saved = run_quick(
        "diagonal-vs-spectrum",
        out,
        keys=["diagonal_spectrum_far", "diagonal_misses_top", "slq_recovers_laws", "diagonal_fails_random"],
        figures=("mlp_cdfs", "random_matrices"),
    )
    settings = saved["settings"]
    spectra = saved["data"]["spectra_mlp_replicate_0"]
    assert len(spectra["hessian"]["eigenvalues"]) == settings["parameters_P"]
    assert (
        len(saved["data"]["spectra_random_matrices_replicate_0"]["wigner"]["eigenvalues"])
        == (settings["random_matrix_size"])
    )
