"""The adversarial strategies draw what they say, and check_operator reports bad operators as check failures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import eigenscope as es
from eigenscope.testing import OperatorCheckError, adversarial_matrices, adversarial_spectra, check_operator


@settings(max_examples=40)
@given(lam=adversarial_spectra(kinds=("low_rank",)))
def test_low_rank_has_a_null_space(lam):
    assert np.sum(lam == 0.0) >= lam.size - 8


@settings(max_examples=40)
@given(lam=adversarial_spectra(kinds=("exact_cluster",)))
def test_exact_clusters_repeat(lam):
    _, counts = np.unique(lam, return_counts=True)
    assert counts.max() >= 2


@settings(max_examples=30)
@given(pair=adversarial_matrices(scales=(1e150,)))
def test_matrices_have_the_spectrum(pair):
    a, lam = pair
    scale = np.abs(lam).max()
    np.testing.assert_allclose(np.linalg.eigvalsh(a), lam, atol=1e-12 * scale)


def test_check_operator_reports_a_wrong_shape_as_a_check_failure():
    op = es.LinearOperator.from_matvec(lambda x: np.ones(3), shape=(5, 5), dtype=np.float64)
    with pytest.raises(OperatorCheckError, match="shape"):
        check_operator(op)
