"""Discrete measures: any object with nodes and weights, agreeing with SpectralDensity; the layer's imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import eigenscope as es
from eigenscope import metrics as em

METRICS = Path(em.__file__).parent


def _slq():
    return es.spectral_density(np.diag(np.linspace(-1.0, 4.0, 60)), 25, 3, seed=2)


def test_a_spectral_density_is_a_discrete_measure_read_as_is():
    d = _slq()
    assert isinstance(d, em.DiscreteMeasure)
    assert em.as_density(d) is d
    assert em.negative_mass(d) == d.negative_mass()


def test_any_object_with_nodes_and_weights_is_accepted():
    @dataclass(frozen=True)
    class Mine:
        nodes: np.ndarray
        weights: np.ndarray

    one_probe = Mine(np.array([-2.0, 1.0, 3.0]), np.array([0.25, 0.25, 0.5]))  # 1-D: one probe
    e = em.spectral_energy(one_probe)
    assert (e.l1_positive, e.l1_negative, e.dimension) == (1.75, 0.5, 3)
    assert em.density_wasserstein(one_probe, ([-2.0, 1.0, 3.0], [0.25, 0.25, 0.5])) == 0.0
    two_probes = Mine(np.array([[0.0, 1.0], [0.0, 3.0]]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert em.spectral_energy(two_probes).l1_positive == pytest.approx(1.0)  # (0.5 * 1 + 0.5 * 3) / 2
    with pytest.raises(ValueError, match="one shape"):
        em.as_density(Mine(np.zeros(3), np.ones(2)))
    with pytest.raises(ValueError, match="non-negative"):
        em.as_density(Mine(np.zeros(2), np.array([1.0, -1.0])))


def test_density_from_eigenvalues_is_a_uniform_measure():
    d = em.density_from_eigenvalues([3.0, -1.0, 0.0, 2.0])
    assert d.dimension == 4 and d.num_probes == 1
    np.testing.assert_array_equal(d.stem()[1], [0.25] * 4)
    assert d.moments(1) == pytest.approx(1.0)
    assert isinstance(d, es.SpectralDensity) and d.num_matvecs == 0
    with pytest.raises(ValueError, match="kernel"):
        d.density([0.0], kernel="box")
    with pytest.raises(ValueError, match="sigma"):
        d.density([0.0], sigma=0.0)


def test_importing_metrics_loads_no_framework():
    code = "import sys, eigenscope.metrics; print(sorted(m for m in ('torch', 'jax', 'cupy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    assert sorted(em.__all__) == sorted(set(em.__all__))
    for name in em.__all__:
        assert getattr(em, name) is not None
