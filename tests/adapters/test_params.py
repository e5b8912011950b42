"""Choosing parameters, block-diagonal views and layer-wise operators."""

from __future__ import annotations

import pytest
import torch

import eigenscope as es
from eigenscope.adapters import torch as est
from eigenscope.testing import check_operator

from . import _reference as ref
from .conftest import assert_close, random_block


@pytest.fixture(scope="module")
def wd(tiny):
    w = tiny["wide_deep"]
    names = [k for k, _ in w.model.named_parameters()]
    return w, names, ref.dense_hessian(w.model, w.loss_fn, w.batches)


def _sub(dense, slices_full, names):
    idx = torch.cat([torch.arange(slices_full[k].start, slices_full[k].stop) for k in names])
    return dense[idx][:, idx]


def _slices(model):
    out, start = {}, 0
    for k, p in model.named_parameters():
        out[k] = slice(start, start + p.numel())
        start += p.numel()
    return out


def test_leave_out_embedding_tables(wd):
    w, names, dense = wd
    kept = [k for k in names if not k.startswith(("embeddings", "wide_ids"))]
    selections = [
        ["wide_dense", "mlp"],  # module names
        [w.model.wide_dense, w.model.mlp],  # modules
        kept,  # parameter names
        [p for k, p in w.model.named_parameters() if k in kept],  # tensors
        lambda name, p: not name.startswith(("embeddings", "wide_ids")),  # predicate
    ]
    for sel in selections:
        h = est.hessian(w.model, w.loss_fn, w.batches, params=sel)
        assert list(h.param_names) == kept
        assert_close(h.to_dense(), _sub(dense, _slices(w.model), kept))
    check_operator(h)


def test_blocks_module_is_block_diagonal(wd):
    w, _, dense = wd
    h = est.hessian(w.model, w.loss_fn, w.batches, blocks="module")
    groups = h.blocks
    assert list(groups) == ["embeddings.0", "embeddings.1", "embeddings.2", "wide_ids", "wide_dense", "mlp.0", "mlp.2"]
    expected = torch.zeros_like(dense)
    sl = _slices(w.model)
    for block in groups.values():
        idx = torch.cat([torch.arange(sl[k].start, sl[k].stop) for k in block])
        expected[idx[:, None], idx[None, :]] = dense[idx][:, idx]
    v = random_block(h.shape[0], 3)
    assert_close(h @ v, expected @ v)
    ops = est.layerwise(w.model, w.loss_fn, w.batches)
    assert list(ops) == list(groups)
    for name, op in ops.items():
        assert op.param_names == groups[name]
        assert_close(op.to_dense(), _sub(dense, sl, groups[name]))
    diag = es.block_diag(*ops.values())
    assert_close(diag @ v, expected @ v)
    check_operator(h)


def test_blocks_custom_and_centered_covariance(wd):
    w = wd[0]
    blocks = {"tables": ["embeddings", "wide_ids"], "rest": ["wide_dense", "mlp"]}
    m = est.gradient_covariance(w.model, w.loss_fn, w.batches, per="batch", centered=True, blocks=blocks)
    full = est.gradient_covariance(w.model, w.loss_fn, w.batches, per="batch", centered=True).to_dense()
    dense = m.to_dense()
    k = sum(w.model.get_submodule(f"embeddings.{i}").weight.numel() for i in range(3)) + w.model.wide_ids.weight.numel()
    assert_close(dense[:k, :k], full[:k, :k])
    assert_close(dense[k:, k:], full[k:, k:])
    assert float(dense[:k, k:].abs().max()) == 0.0


def test_layerwise_ggn_kind(tiny):
    w = tiny["transformer"]
    ops = est.layerwise(w.model, w.loss_fn, w.batches, kind="ggn", params=["layers.0.linear1", "head"])
    assert list(ops) == ["layers.0.linear1", "head"]
    full = est.ggn(w.model, w.loss_fn, w.batches, params=["layers.0.linear1", "head"]).to_dense()
    k = ops["layers.0.linear1"].shape[0]
    assert_close(ops["layers.0.linear1"].to_dense(), full[:k, :k])
    assert_close(ops["head"].to_dense(), full[k:, k:])


def test_tied_weights_counted_once(tiny):
    w = tiny["causal_lm"]
    assert w.model.head.weight is w.model.embed.weight
    h = est.hessian(w.model, w.loss_fn, w.batches)
    assert "head.weight" not in h.param_names and "embed.weight" in h.param_names
    assert h.num_params == sum(p.numel() for p in w.model.parameters())
    tied = est.hessian(w.model, w.loss_fn, w.batches, params=["head.weight"])  # the alias names the same tensor
    assert tied.param_names == ("embed.weight",)
