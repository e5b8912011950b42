"""The public strategies produce what they promise."""

from __future__ import annotations

import numpy as np
from hypothesis import given

import eigenscope.backends as eb
from eigenscope.testing import operators_with_spectrum, spectra, symmetric_with_spectrum, tolerance


@given(spectra(min_gap=0.1))
def test_spectra_sorted_with_gaps(lam):
    assert np.all(np.diff(lam) >= 0.1 - 1e-12)


@given(symmetric_with_spectrum(max_n=16))
def test_matrix_has_the_spectrum(pair):
    a, lam = pair
    np.testing.assert_array_equal(a, a.T)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(a), lam, atol=tolerance(np.float64, n=lam.size, scale=np.abs(lam).max())
    )


def test_operator_strategy_on_each_backend(xp, dtype):
    @given(operators_with_spectrum(xp=xp, dtype=dtype, max_n=10))
    def inner(pair):
        op, lam = pair
        assert op.xp is xp and op.dtype == dtype and op.symmetric
        dense = eb.to_numpy(op.to_dense()).astype(np.float64)
        scale = max(1.0, np.abs(lam).max())
        np.testing.assert_allclose(np.linalg.eigvalsh(dense), lam, atol=tolerance(dtype, n=lam.size, scale=scale))

    inner()
