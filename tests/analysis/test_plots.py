"""Every plot writes a PNG and an SVG (matplotlib, no pyplot)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import eigenscope as es
from eigenscope import analysis as ea


def _check(paths, base):
    assert [p.name for p in paths] == [f"{base.name}.png", f"{base.name}.svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:2000]
    assert not list(base.parent.glob(".*.tmp"))  # no temporary file left behind


@pytest.fixture(scope="module")
def density():
    lam = np.concatenate([[8.0, 5.0], np.linspace(-0.3, 1.0, 60)])
    return es.spectral_density(np.diag(lam), 20, 2, seed=0)


def test_density_plots(tmp_path, density):
    for name, fig in {
        "stem": ea.plot_stem(density),
        "density": ea.plot_density(density, label="H"),
        "linear": ea.plot_density([0.0, 1.0, 1.0, 3.0], log=False, sigma=0.1),
        "compare": ea.plot_densities({"a": density, "b": [0.0, 1.0, 2.0]}),
    }.items():
        _check(ea.save_figure(fig, tmp_path / name), tmp_path / name)


def test_save_figure_strips_a_suffix_and_is_reproducible(tmp_path, density):
    fig = ea.plot_stem(density)
    first = ea.save_figure(fig, tmp_path / "sub" / "stem.png")
    svg = first[1].read_bytes()
    ea.save_figure(fig, tmp_path / "sub" / "stem")
    assert first[1].read_bytes() == svg  # no date, fixed ids
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["stem.png", "stem.svg"]


def test_angles_plot(tmp_path):
    pa = ea.principal_angles(np.eye(6)[:, :3], np.eye(6)[:, 1:4])
    _check(ea.save_figure(ea.plot_principal_angles(pa), tmp_path / "a"), tmp_path / "a")
    fig = ea.plot_principal_angles({"early": pa, "late": pa})
    _check(ea.save_figure(fig, tmp_path / "b"), tmp_path / "b")


def test_landscape_and_tracking_plots(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (6,), generator=gen))]
    v = torch.ones(20, dtype=torch.float64) / 20**0.5
    curve = ea.loss_along(model, "cross_entropy", {"train": data, "test": data}, v, np.linspace(-1, 1, 5), label="v1")
    fig = ea.plot_loss_curves([curve, curve], quadratic=[(0.7, 0.1, 2.0), None])
    _check(ea.save_figure(fig, tmp_path / "curves"), tmp_path / "curves")
    surface = ea.loss_surface(model, "cross_entropy", data, v, -v, [-1.0, 0.0, 1.0], [-1.0, 1.0])
    _check(ea.save_figure(ea.plot_loss_surface(surface), tmp_path / "surface"), tmp_path / "surface")
    state = model.state_dict()
    t = ea.track(
        model,
        "cross_entropy",
        data,
        [state, state],
        labels=["a", "b"],
        k=2,
        k_bottom=1,
        num_steps=5,
        num_probes=1,
        trace_matvecs=0,
    )
    _check(ea.save_figure(ea.plot_tracking(t), tmp_path / "tracking"), tmp_path / "tracking")


def test_importing_analysis_loads_neither_torch_nor_matplotlib():
    code = "import sys, eigenscope.analysis; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
