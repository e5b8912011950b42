"""Misuse that used to pass silently or fail deep inside torch gets a clear error: a summed
loss, one-shot data when streaming, a model cast, moved or changed after the operator was
built."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eigenscope.adapters import torch as est

KINDS = [est.hessian, est.ggn, est.gradient_covariance]


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()


def _batches(n=2, size=6, regression=False):
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        x = torch.randn(size, 3, generator=gen, dtype=torch.float64)
        y = torch.randn(size, 3, generator=gen, dtype=torch.float64) if regression else torch.randint(0, 3, (size,))
        out.append((x, y))
    return out


# ---- a summed loss -------------------------------------------------------------------------
SUMMED = {
    "CrossEntropyLoss(sum)": (nn.CrossEntropyLoss(reduction="sum"), False),
    "MSELoss(sum)": (nn.MSELoss(reduction="sum"), True),
    "callable summing": (lambda o, y: F.cross_entropy(o, y, reduction="none").sum(), False),
    # Documented: a sum over a fixed divisor is additive, so it is refused too.
    "sum / nominal batch size": (lambda o, y: F.cross_entropy(o, y, reduction="sum") / 6, False),
}


@pytest.mark.parametrize("build", KINDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", list(SUMMED))
def test_summed_loss_refused(build, name):
    loss, regression = SUMMED[name]
    with pytest.raises(ValueError, match=r"sum-reduced.*reduction='mean'.*reduction='sum' to this constructor"):
        build(_model(), loss, _batches(regression=regression))


def test_summed_loss_refused_in_float32_and_with_adapter_sum():
    model, batches = _model().float(), [(x.float(), y) for x, y in _batches()]
    with pytest.raises(ValueError, match="sum-reduced"):
        est.hessian(model, nn.CrossEntropyLoss(reduction="sum"), batches)
    # reduction="sum" on the adapter does not make a summed loss right: it would count N twice.
    with pytest.raises(ValueError, match="sum-reduced"):
        est.ggn(_model(), nn.CrossEntropyLoss(reduction="sum"), _batches(), reduction="sum")


def _gaussian_nll(o, y):
    # Negative on well-fitted samples: a mean of losses of either sign.
    return F.gaussian_nll_loss(o, y, torch.full_like(o, 1e-2))


def _must_be_six(o, y):
    if o.shape[0] != 6:
        raise RuntimeError("this loss needs batches of 6")
    return F.cross_entropy(o, y)


MEANS = {
    "label smoothing": (nn.CrossEntropyLoss(label_smoothing=0.2), False, 6),
    "class weights": (nn.CrossEntropyLoss(weight=torch.tensor([0.2, 1.0, 5.0], dtype=torch.float64)), False, 6),
    "ignore_index": (nn.CrossEntropyLoss(ignore_index=0), False, 6),
    "odd batch": (F.cross_entropy, False, 5),
    "mse": ("mse", True, 6),
    "negative values": (_gaussian_nll, True, 6),
    "loss with a fixed batch size": (_must_be_six, False, 6),
    # One sample: sum and mean coincide, so nothing can be told and nothing is wrong.
    "batch of one, mean": (F.cross_entropy, False, 1),
    "batch of one, sum": (nn.CrossEntropyLoss(reduction="sum"), False, 1),
}


@pytest.mark.parametrize("build", [est.hessian, est.ggn], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", list(MEANS))
def test_mean_losses_accepted(build, name):
    loss, regression, size = MEANS[name]
    op = build(_model(), loss, _batches(size=size, regression=regression))
    assert op.num_samples == 2 * size


def test_reduction_check_costs_no_forward_pass():
    calls = []
    model = _model()
    model.register_forward_hook(lambda *_: calls.append(1))
    est.hessian(model, F.cross_entropy, _batches(), allow_stochastic=True, cache_graphs=False)  # no re-run
    assert len(calls) == 1  # batch 0's forward pass only: the halves reuse its outputs


# ---- one-shot data with stream=True ------------------------------------------------------------
class OneShot:
    """Iterable but not an iterator: ``__iter__`` hands out the same generator every time."""

    def __init__(self, batches, passes=1):
        self._batches, self._passes = batches, passes

    def __iter__(self):
        if self._passes <= 0:
            return iter(())
        self._passes -= 1
        return iter(self._batches)


class GeneratorDataset(torch.utils.data.IterableDataset):
    def __init__(self, batches):
        self._it = iter(batches)

    def __iter__(self):
        return self._it


@pytest.mark.parametrize("build", KINDS, ids=lambda f: f.__name__)
def test_stream_refuses_one_shot_iterable(build):
    with pytest.raises(TypeError, match=r"stream=True.*OneShot yielded no batch.*one-shot iterable.*DataLoader"):
        build(_model(), F.cross_entropy, OneShot(_batches()), stream=True)


def test_stream_refuses_one_shot_loader_and_generator():
    loader = torch.utils.data.DataLoader(GeneratorDataset(_batches()), batch_size=None)
    with pytest.raises(TypeError, match=r"DataLoader yielded no batch on a later pass.*one-shot iterable"):
        est.hessian(_model(), F.cross_entropy, loader, stream=True)
    with pytest.raises(TypeError, match=r"one-shot iterator.*list of batches or a DataLoader"):
        est.hessian(_model(), F.cross_entropy, (b for b in _batches()), stream=True)


def test_stream_data_exhausted_at_a_product():
    op = est.hessian(_model(), F.cross_entropy, OneShot(_batches(), passes=2), stream=True)
    with pytest.raises(TypeError, match=r"yielded no batch on a later pass.*re-iterable"):
        op @ torch.ones(op.shape[0], dtype=torch.float64)


def test_one_shot_iterable_without_stream_is_read_once():
    op = est.hessian(_model(), F.cross_entropy, OneShot(_batches()))
    v = torch.ones(op.shape[0], dtype=torch.float64)
    assert torch.equal(op @ v, op @ v)


# ---- the model changed after the operator was built ---------------------------------------------
@pytest.mark.parametrize("build", KINDS, ids=lambda f: f.__name__)
def test_model_cast_after_build(build):
    model = _model()
    op = build(model, F.cross_entropy, _batches())
    v = torch.ones(op.shape[0], dtype=torch.float64)
    before = op @ v
    model.float()
    message = r"changed since this \w+ operator was built: parameter '0\.weight' is now torch\.float32 on cpu, "
    message += r"it was torch\.float64 on cpu.*Build the operator again"
    with pytest.raises(RuntimeError, match=message):
        op @ v
    with pytest.raises(RuntimeError, match=message):  # the vector cast along: still the model is named
        op @ v.float()
    for call in (op.gradient, op.loss, op.parameters_vector):
        with pytest.raises(RuntimeError, match="changed since"):
            call()
    model.double()  # the same tensors, back in their dtype: the operator works again
    assert torch.equal(op @ v, before)


def test_cached_graphs_refused_after_cast():
    model = _model()
    op = est.hessian(model, F.cross_entropy, _batches(), cache_graphs=True)
    model.float()
    with pytest.raises(RuntimeError, match=r"now torch\.float32"):
        op @ torch.ones(op.shape[0], dtype=torch.float64)


def test_model_moved_after_build():
    model = _model()
    op = est.ggn(model, F.cross_entropy, _batches())
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)  # .to() keeps the tensor objects
    try:
        model.to("meta")
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    with pytest.raises(RuntimeError, match=r"'0\.weight' is now torch\.float64 on meta, it was torch\.float64 on cpu"):
        op @ torch.ones(op.shape[0], dtype=torch.float64)


def test_replaced_parameters_refused():
    model = _model()
    op = est.hessian(model, F.cross_entropy, _batches())
    v = torch.ones(op.shape[0], dtype=torch.float64)
    with torch.no_grad():
        model[0].weight.add_(0.1)  # written in place (an optimizer step): fine
    op @ v
    layer = model[2]
    model[2] = nn.Linear(4, 3).double()
    with pytest.raises(RuntimeError, match=r"parameter '2\.weight' is a new tensor.*Build the operator again"):
        op @ v
    model[2] = layer
    layer.bias = None  # a parameter removed
    with pytest.raises(RuntimeError, match="it has 3 parameter tensors, 4 when the operator was built"):
        op @ v
