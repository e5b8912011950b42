"""The model is left exactly as it was; stochastic models are refused."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eigenscope.adapters import torch as est

from . import _reference as ref
from .conftest import assert_close, random_block


def _prepared_resnet(tiny, train: bool):
    model = copy.deepcopy(tiny["resnet"].model).train(train)
    model.blocks[0].bn1.eval()  # a mixed state: one BatchNorm in the other mode
    model.stem.weight.grad = torch.full_like(model.stem.weight, 0.25)  # a stale .grad must stay
    model.fc.bias.requires_grad_(False)  # a frozen parameter must stay frozen
    return model


@pytest.mark.parametrize("train", [True, False])
def test_model_state_is_unchanged(tiny, train):
    w = tiny["resnet"]
    model = _prepared_resnet(tiny, train)
    before = est.ModelState.capture(model)
    v = random_block(sum(p.numel() for p in model.parameters() if p.requires_grad), 2)
    ops = [
        est.hessian(model, w.loss_fn, w.batches),
        est.hessian(model, w.loss_fn, w.batches, mode="fwd-rev", vectorize=True),
        est.hessian(model, w.loss_fn, w.batches, cache_graphs=True),
        est.ggn(model, w.loss_fn, w.batches),
        est.ggn(model, w.loss_fn, w.batches, mode="fwd-rev"),
        est.gradient_covariance(model, w.loss_fn, w.batches, centered=True),
        est.gradient_covariance(model, w.loss_fn, w.batches, per="batch"),
        est.gradient_covariance(model, w.loss_fn, w.batches, mode="fwd-rev"),
    ]
    for op in ops:
        op @ v
        op @ v[:, 0]
    ops[0].gradient()
    ops[0].loss()
    after = est.ModelState.capture(model)
    assert before.differences(after) == []
    assert model.blocks[0].bn1.running_mean.equal(before.buffers["blocks.0.bn1.running_mean"])
    assert int(model.blocks[0].bn2.num_batches_tracked) == int(before.buffers["blocks.0.bn2.num_batches_tracked"])
    assert model.training is train and model.blocks[0].bn1.training is False
    assert model.fc.bias.requires_grad is False and model.fc.weight.requires_grad is True
    assert torch.equal(model.stem.weight.grad, torch.full_like(model.stem.weight, 0.25))
    assert model.fc.weight.grad is None


def test_batchnorm_train_mode_uses_batch_statistics(tiny):
    w = tiny["resnet"]
    model = copy.deepcopy(w.model).train()
    names = [k for k, p in model.named_parameters()]
    h = est.hessian(model, w.loss_fn, w.batches)
    dense = ref.dense_hessian(model, w.loss_fn, w.batches, names)
    v = random_block(h.shape[0], 2)
    assert_close(h @ v, dense @ v)
    eval_h = est.hessian(copy.deepcopy(w.model).eval(), w.loss_fn, w.batches)
    assert float((eval_h @ v - h @ v).abs().max()) > 1e-3  # the two modes are different operators


class _Dropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.lin(x))


class _HiddenNoise(nn.Module):
    """Randomness no module type reveals: only the determinism check finds it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return F.dropout(self.lin(x), 0.5, training=True)


def _batches():
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, generator=gen), torch.randint(0, 2, (4,), generator=gen))]


def test_dropout_refused_unless_allowed():
    model = _Dropout()
    with pytest.raises(ValueError, match=r"stochastic.*drop \(Dropout\).*allow_stochastic=True"):
        est.hessian(model, F.cross_entropy, _batches())
    assert est.stochastic_modules(model) == ["drop (Dropout)"]
    est.hessian(model, F.cross_entropy, _batches(), allow_stochastic=True)  # opted in
    est.hessian(model.eval(), F.cross_entropy, _batches())  # eval mode: deterministic
    est.hessian(_Dropout(p=0.0), F.cross_entropy, _batches())  # p = 0: deterministic
    assert model.training is False


def test_attention_dropout_refused():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.1, batch_first=True)
    assert "self_attn (MultiheadAttention)" in est.stochastic_modules(layer)


def test_hidden_randomness_caught_by_determinism_check():
    with pytest.raises(ValueError, match="not deterministic"):
        est.ggn(_HiddenNoise(), F.cross_entropy, _batches())
    with torch.random.fork_rng():
        est.ggn(_HiddenNoise(), F.cross_entropy, _batches(), allow_stochastic=True)


def test_global_random_state_untouched(tiny):
    w = tiny["transformer"]
    state = torch.random.get_rng_state()
    h = est.hessian(w.model, w.loss_fn, w.batches, mode="fwd-rev")
    h @ random_block(h.shape[0], 1)[:, 0]
    assert torch.equal(torch.random.get_rng_state(), state)
