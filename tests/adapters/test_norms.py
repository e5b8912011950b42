"""BatchNorm as elementwise arithmetic: the same function and derivatives as the fused kernel."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eigenscope.adapters import torch as est
from eigenscope.adapters.torch import _norms
from eigenscope.adapters.torch._routing import rerouted
from tests._helpers import rewrites_taken

SHAPES = [(6, 3), (5, 3, 7), (4, 3, 5, 6), (3, 3, 2, 4, 3)]


def _args(shape, affine, seed=0):
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 3 + 1
    mean = torch.randn(c, generator=gen, dtype=torch.float64)
    var = torch.rand(c, generator=gen, dtype=torch.float64) + 0.5
    weight = torch.randn(c, generator=gen, dtype=torch.float64) if affine else None
    bias = torch.randn(c, generator=gen, dtype=torch.float64) if affine else None
    return x, mean, var, weight, bias


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_same_values_and_second_derivatives(shape, affine, training):
    x, mean, var, weight, bias = _args(shape, affine)
    stats = (None, None) if training else (mean, var)
    leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias) if t is not None]

    def parts(ts):
        it = iter(ts)
        xx = next(it)
        return xx, (next(it) if affine else None), (next(it) if affine else None)

    def fused(*ts):
        xx, w, b = parts(ts)
        return F.batch_norm(xx, *stats, w, b, training=training, eps=1e-3)

    def elementwise(*ts):
        xx, w, b = parts(ts)
        out = _norms.elementwise_batch_norm(xx, *stats, w, b, training=training, eps=1e-3)
        assert out is not None
        return out

    torch.testing.assert_close(elementwise(*leaves), fused(*leaves), rtol=1e-13, atol=1e-13)

    # A nonlinear scalar of the output, so that second derivatives exercise every term.
    ramp = torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)

    def scalar(fn):
        return lambda *ts: (torch.tanh(fn(*ts)) * ramp).sum()

    vs = [torch.randn_like(t) for t in leaves]
    _, hv_fused = torch.autograd.functional.hvp(scalar(fused), tuple(leaves), tuple(vs))
    _, hv_elem = torch.autograd.functional.hvp(scalar(elementwise), tuple(leaves), tuple(vs))
    for a, b in zip(hv_elem, hv_fused, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "case",
    [
        "train_with_running_stats",
        "eval_without_running_stats",
        "half",
        "bfloat16",
        "one_value_per_channel",
        "one_dimension",
        "train_eps_zero",
    ],
)
def test_left_to_the_fused_kernel(case):
    x, mean, var, weight, bias = _args((4, 3, 5), True)
    kwargs = {"training": False, "eps": 1e-5}
    stats = (mean, var)
    if case == "train_with_running_stats":
        kwargs["training"] = True  # would update the running statistics
    elif case == "eval_without_running_stats":
        stats = (None, None)
    elif case in ("half", "bfloat16"):
        dtype = torch.float16 if case == "half" else torch.bfloat16
        x, mean, var, weight, bias = (t.to(dtype) for t in (x, mean, var, weight, bias))
    elif case == "one_value_per_channel":
        x, kwargs["training"], stats = x[:1, :, :1], True, (None, None)
    elif case == "one_dimension":
        x = x[0, :, 0]
    elif case == "train_eps_zero":
        kwargs.update(training=True, eps=0.0)
        stats = (None, None)
    assert _norms.elementwise_batch_norm(x, *stats, weight, bias, **kwargs) is None


def test_mode_keeps_the_fused_behaviour_where_it_does_not_rewrite():
    bn = nn.BatchNorm1d(3).double().train()
    x = torch.randn(8, 3, dtype=torch.float64)
    ref = copy.deepcopy(bn)
    with rerouted(_norms.batch_norm_routes()):
        y = bn(x)  # train mode with running statistics: fused, and they are updated
    torch.testing.assert_close(y, ref(x))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    assert int(bn.num_batches_tracked) == 1
    with rerouted(_norms.batch_norm_routes()), pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(x[:1])


@pytest.mark.parametrize("train", [True, False])
def test_curvature_products_use_it(tiny, monkeypatch, train):
    w = tiny["resnet"]
    model = copy.deepcopy(w.model).train(train)
    calls = rewrites_taken(monkeypatch, _norms, "elementwise_batch_norm")
    H = est.hessian(model, w.loss_fn, w.batches)
    H @ torch.ones(H.shape[0], dtype=torch.float64)
    assert calls and all(calls)


def test_models_without_batch_norm_are_called_as_they_are(tiny, monkeypatch):
    w = tiny["wide_deep"]
    assert not _norms.has_batch_norm(w.model)
    calls = rewrites_taken(monkeypatch, _norms, "elementwise_batch_norm")
    H = est.hessian(w.model, w.loss_fn, w.batches)
    H @ torch.ones(H.shape[0], dtype=torch.float64)
    assert not calls
