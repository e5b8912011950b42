"""Bad input gets a clear exception naming the problem."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eigenscope.adapters import torch as est


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _batches(n=3, size=4):
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (size,), generator=gen))
        for _ in range(n)
    ]


def test_empty_data():
    with pytest.raises(ValueError, match="empty"):
        est.hessian(_model(), F.cross_entropy, [])


def test_empty_batch():
    x = torch.zeros(0, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="batch 1 is empty"):
        est.hessian(_model(), F.cross_entropy, [*_batches(1), (x, torch.zeros(0, dtype=torch.int64))])


def test_one_shot_iterator_refused():
    batches = _batches()
    with pytest.raises(TypeError, match=r"one-shot iterator.*list of batches or a DataLoader"):
        est.hessian(_model(), F.cross_entropy, (b for b in batches))
    with pytest.raises(TypeError, match="one-shot"):
        est.ggn(_model(), F.cross_entropy, iter(batches))


def test_unwrapped_single_batch():
    x, y = _batches(1)[0]
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair.*data=\[\(inputs, targets\)\]"):
        est.hessian(_model(), F.cross_entropy, (x, y))
    with pytest.raises(TypeError, match="iterable"):
        est.hessian(_model(), F.cross_entropy, x)


def test_loss_not_scalar():
    loss = lambda o, y: F.cross_entropy(o, y, reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match="scalar"):
        est.hessian(_model(), loss, _batches())


def test_params_without_grad():
    model = _model()
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match=r"0\.weight.*requires_grad=False"):
        est.hessian(model, F.cross_entropy, _batches(), params=["0.weight", "2.weight"])
    h = est.hessian(model, F.cross_entropy, _batches())  # params=None skips frozen parameters
    assert "0.weight" not in h.param_names
    assert model[0].weight.requires_grad is False


def test_bad_params():
    with pytest.raises(ValueError, match="neither a parameter nor a module"):
        est.hessian(_model(), F.cross_entropy, _batches(), params=["nope"])
    with pytest.raises(ValueError, match="not a parameter of the model"):
        est.hessian(_model(), F.cross_entropy, _batches(), params=[torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="selects no parameter"):
        est.hessian(_model(), F.cross_entropy, _batches(), params=lambda name, p: False)
    with pytest.raises(TypeError, match="names, modules or parameter tensors"):
        est.hessian(_model(), F.cross_entropy, _batches(), params=[3])
    with pytest.raises(ValueError, match="cover every selected parameter"):
        est.hessian(_model(), F.cross_entropy, _batches(), blocks=[["0"]])
    with pytest.raises(ValueError, match="overlap"):
        est.hessian(_model(), F.cross_entropy, _batches(), blocks=[["0", "2"], ["2.bias"]])


def test_vector_checks():
    h = est.hessian(_model(), F.cross_entropy, _batches())
    n = h.shape[0]
    with pytest.raises(ValueError, match=f"expected {n} rows"):
        h @ torch.zeros(n + 1, dtype=torch.float64)
    with pytest.raises(TypeError, match="dtype float64"):
        h @ torch.zeros(n, dtype=torch.float32)
    with pytest.raises(TypeError, match="torch array"):
        h @ __import__("numpy").zeros(n)
    with pytest.raises(ValueError, match="expected 26 rows"):
        h.unflatten(torch.zeros(3, dtype=torch.float64))


def test_nan_loss_names_the_batch():
    batches = _batches()
    bad = batches[2][0].clone()
    bad[1, 0] = float("nan")
    batches[2] = (bad, batches[2][1])
    v = torch.ones(26, dtype=torch.float64)
    for build, kw in [
        (est.hessian, {}),
        (est.hessian, {"mode": "fwd-rev"}),
        (est.ggn, {}),
        (est.gradient_covariance, {}),
        (est.gradient_covariance, {"per": "batch"}),
    ]:
        op = build(_model(), F.cross_entropy, batches, **kw)
        with pytest.raises(FloatingPointError, match="loss of batch 2 is nan"):
            op @ v
    batches[0] = batches[2]
    with pytest.raises(FloatingPointError, match="loss of batch 0 is nan"):
        est.hessian(_model(), F.cross_entropy, batches)


def test_bad_options():
    m, b = _model(), _batches()
    with pytest.raises(ValueError, match="mode"):
        est.hessian(m, F.cross_entropy, b, mode="forward")
    with pytest.raises(ValueError, match="vectorize"):
        est.hessian(m, F.cross_entropy, b, vectorize="yes")
    with pytest.raises(ValueError, match="cache_graphs"):
        est.hessian(m, F.cross_entropy, b, cache_graphs="yes")
    with pytest.raises(ValueError, match="per"):
        est.gradient_covariance(m, F.cross_entropy, b, per="token")
    with pytest.raises(ValueError, match="reduction"):
        est.ggn(m, F.cross_entropy, b, reduction="none")
    with pytest.raises(ValueError, match="loss_hessian"):
        est.ggn(m, F.cross_entropy, b, loss_hessian="hinge")
    with pytest.raises(ValueError, match="differs from torch's mean mse"):
        est.ggn(m, lambda o, y: F.cross_entropy(o, y), b, loss_hessian="mse")
    with pytest.raises(ValueError, match="unknown loss name"):
        est.hessian(m, "hinge", b)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        est.hessian(lambda x: x, F.cross_entropy, b)
    with pytest.raises(ValueError, match="kind"):
        est.layerwise(m, F.cross_entropy, b, kind="fisher")


def test_ggn_needs_tensor_output():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2).double()

        def forward(self, x):
            return self.lin(x), x

    loss = lambda out, y: F.cross_entropy(out[0], y)  # noqa: E731
    with pytest.raises(TypeError, match="one tensor"):
        est.ggn(Pair(), loss, _batches())
    est.hessian(Pair(), loss, _batches())  # the Hessian takes any output structure


def test_per_sample_loss_mismatch():
    # A loss whose reduction='none' is not per sample (sum instead of mean): caught on batch 0.
    def loss(o, y, reduction="mean"):
        values = F.cross_entropy(o, y, reduction="none")
        return values.mean() if reduction == "mean" else 2 * values

    with pytest.raises(ValueError, match="mean of the per-sample losses"):
        est.gradient_covariance(_model(), loss, _batches())


def test_shuffling_loader_refused_when_streaming():
    x = torch.randn(8, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (8,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=True)
    with pytest.raises(ValueError, match="shuffl"):
        est.hessian(_model(), F.cross_entropy, loader, stream=True)
