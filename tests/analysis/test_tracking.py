"""Curvature analysis of a series of checkpoints, and the one-operator report."""

from __future__ import annotations

import math

import numpy as np
import pytest

import eigenscope as es
from eigenscope import analysis as ea


def test_analyze_curvature_on_a_known_spectrum():
    lam = np.concatenate([[9.0, 7.0, 5.0], np.linspace(-0.5, 1.0, 97)])
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    a = (q * lam) @ q.T
    g = q[:, :3] @ np.array([1.0, 2.0, 2.0]) + 0.0 * q[:, 50]  # entirely in the top-3 eigenspace
    r = ea.analyze_curvature(a, k=3, k_bottom=2, num_steps=40, num_probes=2, trace_matvecs=60, gradient=g, seed=0)
    np.testing.assert_allclose(r.top.eigenvalues, [9.0, 7.0, 5.0], rtol=1e-8)
    np.testing.assert_allclose(r.bottom.eigenvalues, np.sort(lam)[:2], rtol=1e-8)
    assert r.trace.estimate == pytest.approx(lam.sum(), abs=5 * r.trace.std_error + 1e-8)
    assert r.outlier_ratio == pytest.approx(9.0 / 5.0) and r.outlier_k == 3
    np.testing.assert_allclose(r.gradient_fraction, [1 / 9, 5 / 9, 1.0], rtol=1e-8)
    assert r.gradient_norm == pytest.approx(3.0)
    assert r.energy == ea.spectral_energy(r.density) and r.negative_mass == r.density.negative_mass()
    assert set(r.num_matvecs) == {"top", "bottom", "trace", "density"}
    assert r.num_matvecs["density"] == 80 and r.num_matvecs["trace"] == 60
    row = r.scalars()
    assert row["lambda_max"] == pytest.approx(9.0) and row["lambda_min"] == pytest.approx(-0.5)
    assert row["gradient_fraction"] == pytest.approx(1.0)
    d = r.to_dict()
    assert d["top"]["eigenvalues"] == r.top.eigenvalues.tolist() and "eigenvectors" not in d["top"]


def test_analyze_curvature_num_classes_and_skipped_stages():
    a = np.diag(np.arange(1.0, 31.0))
    r = ea.analyze_curvature(a, k=2, k_bottom=0, num_steps=10, num_probes=1, trace_matvecs=0, num_classes=5, seed=0)
    assert r.top.eigenvalues.size == 5 and r.bottom is None and r.trace is None
    assert r.outlier_ratio == pytest.approx(30.0 / 26.0)
    assert math.isnan(r.scalars()["trace"]) and "gradient_fraction" not in r.scalars()
    assert r.lambda_min == r.density.support[0]


def test_progress_bars_count_the_products():
    counts = {}

    class Bar:
        def __init__(self, desc):
            self.desc = desc
            counts[desc] = 0

        def update(self, n=1):
            counts[self.desc] += n

        def set_postfix_str(self, s="", refresh=True):
            pass

        def close(self):
            pass

    a = np.diag(np.arange(1.0, 41.0))
    r = ea.analyze_curvature(
        a, k=2, k_bottom=1, num_steps=10, num_probes=2, trace_matvecs=12, seed=0, progress=lambda d, t: Bar(d)
    )
    assert counts["density (SLQ)"] == 20 and counts["trace (Hutch++)"] == 12
    assert counts["top-2 eigenvalues"] == r.num_matvecs["top"] == r.top.num_matvecs


torch = pytest.importorskip("torch")


def _setup():
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    gen = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(8, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (8,), generator=gen))
        for _ in range(2)
    ]
    return model, data


def test_track_over_state_dicts_and_files(tmp_path):
    from eigenscope.adapters import torch as est

    model, data = _setup()
    first = {k: v.clone() for k, v in model.state_dict().items()}
    second = {k: v * 1.5 for k, v in first.items()}
    path = tmp_path / "second.pt"
    torch.save(second, path)
    before = est.ModelState.capture(model)
    t = ea.track(
        model, "cross_entropy", data, [first, path], k=2, k_bottom=1, num_steps=6, num_probes=1, trace_matvecs=6, seed=0
    )
    assert est.ModelState.capture(model) == before  # the checkpoints went into a copy
    assert t.labels == ("0", "second.pt")
    rows = t.to_rows()
    assert [r["label"] for r in rows] == ["0", "second.pt"]
    assert math.isnan(rows[0]["kl_to_previous"]) and rows[1]["kl_to_previous"] > 0 and rows[1]["w1_to_previous"] > 0
    assert math.isnan(rows[1]["normalized_inner_product"])  # θ* is the last checkpoint itself
    assert -1 <= rows[0]["normalized_inner_product"] <= 1
    # Each row is the analysis of that checkpoint alone.
    model.load_state_dict(first)
    H = est.hessian(model, "cross_entropy", data)
    direct = es.eigsh(H, 2, which="LA", seed=0).eigenvalues
    np.testing.assert_allclose(t.reports[0].top.eigenvalues, direct, rtol=1e-10)
    assert rows[0]["loss"] == pytest.approx(H.loss())
    d = t.to_dict()
    assert d["rows"][0]["kl_to_previous"] is None and len(d["densities"]) == 2


def test_track_reference_and_errors(tmp_path):
    model, data = _setup()
    state = model.state_dict()
    t = ea.track(
        model,
        "cross_entropy",
        data,
        [state],
        labels=["only"],
        reference={k: v + 1 for k, v in state.items()},
        k=1,
        k_bottom=0,
        num_steps=4,
        num_probes=1,
        trace_matvecs=0,
    )
    assert np.isfinite(t.to_rows()[0]["normalized_inner_product"])
    with pytest.raises(ValueError, match="does not match the model"):
        ea.track(model, "cross_entropy", data, [{"0.weight": torch.zeros(2, 2)}], k=1)
    with pytest.raises(ValueError, match="labels"):
        ea.track(model, "cross_entropy", data, [state], labels=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        ea.track(model, "cross_entropy", data, [])
    with pytest.raises(FileNotFoundError):
        ea.load_checkpoint(model, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="matrix must be"):
        ea.curvature_operator(model, "cross_entropy", data, "fisher")
