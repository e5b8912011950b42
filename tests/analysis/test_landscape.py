"""Loss along directions: the right numbers, and the model exactly as it was afterwards."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from eigenscope import analysis as ea  # noqa: E402
from eigenscope.adapters import torch as est  # noqa: E402


def _model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # BatchNorm in train mode: a forward pass would move its running statistics.
        return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).double()


def _data(seed=0, sizes=(6, 6, 3)):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen)) for n in sizes
    ]


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


def _direct_loss(model, data, theta):
    """Mean loss over samples at flat parameters theta, on a copy with the parameters written in."""
    m = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(theta, m.parameters())
    with torch.no_grad():
        total = sum(float(F.cross_entropy(m(x), y)) * y.shape[0] for x, y in data)
    return total / sum(y.shape[0] for _, y in data)


def test_model_is_exactly_unchanged(tmp_path):
    model = _model()
    model.train()
    model[3].eval()  # mixed modes must survive too
    data = _data()
    F.cross_entropy(model(data[0][0]), data[0][1]).backward()  # populate .grad
    before = est.ModelState.capture(model)
    v = torch.randn(_num_params(model), dtype=torch.float64)
    ea.loss_along(model, F.cross_entropy, {"train": data, "test": _data(1)}, v, [-1.0, 0.0, 2.0])
    ea.loss_surface(model, "cross_entropy", data, v, -v, [-1.0, 1.0], [0.5])
    after = est.ModelState.capture(model)
    assert before.differences(after) == []
    assert model.training and not model[3].training


def test_loss_along_matches_direct_evaluation():
    model = _model().eval()  # eval: BatchNorm uses its running statistics, as the copy does
    data = _data()
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    v = torch.randn(theta.shape[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    steps = np.array([-0.5, 0.0, 0.25, 1.0])
    curve = ea.loss_along(model, F.cross_entropy, data, v, steps, label="random")
    expected = [_direct_loss(model, data, theta + t * v) for t in steps]
    np.testing.assert_allclose(curve.loss["train"], expected, rtol=1e-12)
    assert curve.label == "random" and curve.direction_norm == pytest.approx(float(v.norm()))
    assert set(curve.accuracy) == {"train"} and np.all((curve.accuracy["train"] >= 0) & (curve.accuracy["train"] <= 1))
    d = curve.to_dict()
    assert d["steps"] == steps.tolist() and len(d["loss"]["train"]) == 4


def test_loss_at_zero_is_the_operator_loss():
    # Unequal batches are weighted by their size, as in the adapters.
    model = _model()
    data = _data()
    H = est.hessian(model, F.cross_entropy, data)
    curve = ea.loss_along(model, F.cross_entropy, data, torch.zeros(H.shape[0], dtype=torch.float64), [0.0])
    assert curve.loss["train"][0] == pytest.approx(H.loss(), rel=1e-12)


def test_surface_shape_and_consistency_with_lines():
    model = _model().eval()
    data = _data()
    n = _num_params(model)
    gen = torch.Generator().manual_seed(1)
    v1 = torch.randn(n, generator=gen, dtype=torch.float64)
    v2 = torch.randn(n, generator=gen, dtype=torch.float64)
    s, t = [-1.0, 0.0, 1.0], [0.0, 0.5]
    surface = ea.loss_surface(model, F.cross_entropy, {"a": data}, v1, v2, s, t, labels=("x", "y"))
    assert surface.loss["a"].shape == (3, 2) and surface.accuracy["a"].shape == (3, 2)
    line = ea.loss_along(model, F.cross_entropy, {"a": data}, v1, s)
    np.testing.assert_allclose(surface.loss["a"][:, 0], line.loss["a"], rtol=1e-12)
    assert surface.to_dict()["labels"] == ["x", "y"]


def test_regression_has_no_accuracy_and_selected_params():
    model = _model()
    gen = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 2, generator=gen, dtype=torch.float64))
    ]
    n_last = model[3].weight.numel() + model[3].bias.numel()
    curve = ea.loss_along(model, "mse", data, torch.ones(n_last, dtype=torch.float64), [0.0, 1.0], params=model[3])
    assert curve.accuracy == {}
    assert curve.loss["train"][1] != curve.loss["train"][0]
    with pytest.raises(ValueError, match="neither class logits"):
        ea.loss_along(
            model, "mse", data, torch.ones(n_last, dtype=torch.float64), [0.0], params=model[3], accuracy=True
        )


def test_bad_directions():
    model = _model()
    with pytest.raises(ValueError, match="flat vector of the"):
        ea.loss_along(model, F.cross_entropy, _data(), torch.ones(3, dtype=torch.float64), [0.0])
    with pytest.raises(ValueError, match="NaN"):
        ea.loss_along(model, F.cross_entropy, _data(), torch.full((_num_params(model),), float("nan")), [0.0])
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        ea.loss_along("model", F.cross_entropy, _data(), torch.ones(3), [0.0])
