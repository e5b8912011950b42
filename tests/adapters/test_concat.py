"""Concatenation differentiated as one split: the same values and derivatives as ``torch.cat``."""

from __future__ import annotations

import pytest
import torch
from torch.func import jvp, vmap

from eigenscope.adapters import torch as est
from eigenscope.adapters.torch import _concat
from eigenscope.adapters.torch._functional import ensure_forward_ad
from eigenscope.adapters.torch._routing import rerouted
from tests._helpers import rewrites_taken

from . import _reference as ref
from .conftest import assert_close, random_block


def _pieces(dim_size=(2, 3, 4), requires=(True, False, True)):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(5, s, 3, generator=gen, dtype=torch.float64).requires_grad_(r)
        for s, r in zip(dim_size, requires, strict=True)
    ]


@pytest.mark.parametrize("dim", [1, -2])
def test_values_and_two_derivatives_equal_torch_cat(dim):
    pieces = _pieces()
    ramp = torch.linspace(-1, 1, 5 * 9 * 3, dtype=torch.float64).reshape(5, 9, 3)

    def loss(cat):
        return (torch.tanh(cat(pieces, dim)) ** 2 * ramp).sum()

    ours = _concat.concat_for_double_backward(pieces, dim)
    torch.testing.assert_close(ours, torch.cat(pieces, dim), rtol=0, atol=0)
    wanted = [p for p in pieces if p.requires_grad]
    v = [torch.randn_like(p) for p in wanted]
    results = []
    for cat in (_concat.concat_for_double_backward, torch.cat):
        g = torch.autograd.grad(loss(cat), wanted, create_graph=True)
        hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v, strict=True)), wanted)
        results.append([*g, *hv])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_forward_mode_and_vmap():
    ensure_forward_ad()
    pieces = [p.detach() for p in _pieces()]
    tangents = tuple(torch.ones_like(p) * (i + 1) for i, p in enumerate(pieces))

    def ours(*ts):
        with rerouted(_concat.concat_routes()):
            return torch.cat([ts[0], pieces[1], ts[1]], dim=1)

    def plain(*ts):
        return torch.cat([ts[0], pieces[1], ts[1]], dim=1)

    args = (pieces[0].requires_grad_(True), pieces[2].requires_grad_(True))
    out_a, tan_a = jvp(ours, args, (tangents[0], tangents[2]))
    out_b, tan_b = jvp(plain, args, (tangents[0], tangents[2]))
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(tan_a, tan_b)
    batched = torch.randn(4, 5, 2, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(
        vmap(lambda x: _concat._Concat.apply(0, x, x * 2))(batched),
        torch.cat([batched, batched * 2], dim=1),
    )


@pytest.mark.parametrize(
    "case", ["out", "integers", "mixed_dtypes", "one", "legacy_empty", "no_grad", "none_needs_grad"]
)
def test_left_to_torch_cat(case):
    pieces = _pieces()
    kwargs = {}
    if case == "out":
        kwargs["out"] = torch.empty(5, 9, 3, dtype=torch.float64)
    elif case == "integers":
        pieces = [torch.arange(6).reshape(2, 3), torch.arange(3).reshape(1, 3)]
    elif case == "mixed_dtypes":
        pieces = [pieces[0], pieces[1].float()]
    elif case == "one":
        pieces = pieces[:1]
    elif case == "legacy_empty":
        pieces = [pieces[0], torch.empty(0, dtype=torch.float64)]
    elif case == "none_needs_grad":
        pieces = [p.detach() for p in pieces]
    if case == "no_grad":
        with torch.no_grad():
            assert _concat.concat_for_double_backward(pieces, 1) is None
        return
    assert _concat.concat_for_double_backward(pieces, 1 if case != "integers" else 0, **kwargs) is None
    with rerouted(_concat.concat_routes()):  # the mode hands these to torch.cat as they are
        if case == "out":  # out= takes no gradient: detached pieces
            torch.cat([p.detach() for p in pieces], 1, out=kwargs["out"])
        elif case not in ("mixed_dtypes",):
            torch.cat(pieces, 1 if case != "integers" else 0)


def test_the_mode_covers_every_alias():
    pieces = _pieces()
    seen = []
    with rerouted(_concat.concat_routes()):
        for out in (torch.cat(pieces, 1), torch.concat(pieces, dim=1), torch.concatenate(pieces, axis=1)):
            seen.append(out.grad_fn.name())
    assert all("_Concat" in name for name in seen), seen


def test_hessian_products_use_it(tiny, monkeypatch):
    w = tiny["wide_deep"]  # concatenates its embeddings
    calls = rewrites_taken(monkeypatch, _concat, "concat_for_double_backward")
    H = est.hessian(w.model, w.loss_fn, w.batches)
    H @ torch.ones(H.shape[0], dtype=torch.float64)
    assert any(calls)


class _DenseBlock(torch.nn.Module):
    """Concatenation along channels with BatchNorm between (a DenseNet block in miniature)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn0 = torch.nn.BatchNorm2d(2)
        self.conv1 = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(5)
        self.conv2 = torch.nn.Conv2d(5, 2, 3, padding=1)
        self.head = torch.nn.Linear(7 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x)
        x = torch.cat([x, torch.relu(self.conv1(x))], dim=1)
        x = torch.cat((x, torch.tanh(self.conv2(self.bn1(x)))), 1)
        return self.head(torch.cat([x.flatten(1)], dim=1))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("vectorize", [False, True])
def test_concatenating_batchnorm_model_matches_dense(train, vectorize):
    torch.manual_seed(0)
    model = _DenseBlock().double().train(train)
    if not train:  # running statistics that are not the identity
        for bn in (model.bn0, model.bn1):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(b, 2, 4, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (b,), generator=gen))
        for b in (4, 3)
    ]
    loss = torch.nn.functional.cross_entropy
    dense = ref.dense_hessian(model, loss, batches)
    h = est.hessian(model, loss, batches, vectorize=vectorize)
    v = random_block(h.shape[0], 2)
    assert_close(h @ v, dense @ v)
