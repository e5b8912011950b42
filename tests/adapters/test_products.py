"""Products of the torch adapters against dense float64 autodiff, on every tiny zoo model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from eigenscope.adapters import torch as est
from eigenscope.testing import check_operator

from . import _reference as ref
from .conftest import TINY, assert_close, random_block


@pytest.fixture(scope="module")
def dense_h(tiny):
    return {name: ref.dense_hessian(w.model, w.loss_fn, w.batches) for name, w in tiny.items()}


@pytest.fixture(scope="module")
def dense_g(tiny):
    return {name: ref.dense_ggn(w.model, w.loss_fn, w.batches) for name, w in tiny.items()}


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("mode", ["rev-rev", "fwd-rev"])
def test_hessian_matches_dense(tiny, dense_h, name, mode):
    w = tiny[name]
    assert w.model.training is (name != "resnet")  # vgg, ...: BatchNorm or nothing in train mode
    h = est.hessian(w.model, w.loss_fn, w.batches, mode=mode)
    assert h.shape == dense_h[name].shape
    assert h.batch_sizes == (4, 4, 2)  # 10 samples: not a multiple of the batch size
    v = random_block(h.shape[0], 3)
    assert_close(h @ v, dense_h[name] @ v)
    assert_close(h @ v[:, 0], dense_h[name] @ v[:, 0])
    check_operator(h)


@pytest.mark.parametrize("name", ["vgg", "transformer"])
def test_hessian_to_dense(tiny, dense_h, name):
    w = tiny[name]
    assert_close(est.hessian(w.model, w.loss_fn, w.batches, vectorize=True).to_dense(), dense_h[name])


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("mode", ["rev-rev", "fwd-rev"])
def test_ggn_matches_dense(tiny, dense_g, name, mode):
    w = tiny[name]
    g = est.ggn(w.model, w.loss_fn, w.batches, mode=mode)
    expected_form = {"causal_lm": "autodiff", "wide_deep": "bce"}.get(name, "cross_entropy")
    assert g.details["loss_hessian"] == expected_form
    v = random_block(g.shape[0], 3, seed=1)
    assert_close(g @ v, dense_g[name] @ v)
    check_operator(g)


@pytest.mark.parametrize("name", ["resnet", "wide_deep"])
def test_ggn_closed_form_equals_autodiff(tiny, name):
    w = tiny[name]
    closed = est.ggn(w.model, w.loss_fn, w.batches)
    auto = est.ggn(w.model, w.loss_fn, w.batches, loss_hessian="autodiff")
    v = random_block(closed.shape[0], 2)
    assert_close(closed @ v, auto @ v)


@pytest.mark.parametrize("name", ["transformer", "vgg"])
def test_ggn_is_psd(tiny, dense_g, name):
    w = tiny[name]
    g = est.ggn(w.model, w.loss_fn, w.batches, vectorize=True).to_dense()
    assert_close(g, dense_g[name])
    eigs = torch.linalg.eigvalsh((g + g.T) / 2)
    assert float(eigs.min()) >= -1e-12 * float(eigs.abs().max())


def test_ggn_equals_hessian_for_linear_mse():
    gen = torch.Generator().manual_seed(3)
    model = torch.nn.Linear(5, 3).double()
    x, y = (
        torch.randn(11, 5, generator=gen, dtype=torch.float64),
        torch.randn(11, 3, generator=gen, dtype=torch.float64),
    )
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    h = est.hessian(model, "mse", batches).to_dense()
    g = est.ggn(model, F.mse_loss, batches).to_dense()
    assert_close(g, h, rtol=1e-12)
    assert_close(h, ref.dense_hessian(model, F.mse_loss, batches), rtol=1e-12)


def _eval_copy(w):
    model = copy.deepcopy(w.model).eval()  # per-sample gradients need per-sample losses (no batch statistics)
    return model


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("mode", ["rev-rev", "fwd-rev"])
def test_gradient_covariance_per_sample(tiny, name, mode):
    w = tiny[name]
    model = _eval_copy(w)
    rows = ref.per_sample_gradients(model, w.loss_fn, w.batches)
    n_samples = rows.shape[0]
    m = est.gradient_covariance(model, w.loss_fn, w.batches, mode=mode)
    v = random_block(m.shape[0], 3, seed=2)
    assert_close(m @ v, rows.T @ (rows @ v) / n_samples)
    gbar = rows.mean(dim=0)
    mc = est.gradient_covariance(model, w.loss_fn, w.batches, mode=mode, centered=True)
    assert_close(mc @ v, rows.T @ (rows @ v) / n_samples - gbar[:, None] * (gbar @ v)[None, :])
    check_operator(m)


@pytest.mark.parametrize("name", ["resnet", "wide_deep", "causal_lm"])
def test_gradient_covariance_per_batch(tiny, name):
    w = tiny[name]
    rows, weights = ref.batch_gradients(w.model, w.loss_fn, w.batches)
    expected = rows.T @ (weights[:, None] * rows)
    gbar = weights @ rows
    v = random_block(rows.shape[1], 2, seed=4)
    for cache in (False, True):
        m = est.gradient_covariance(w.model, w.loss_fn, w.batches, per="batch", cache_graphs=cache)
        assert_close(m @ v, expected @ v)
        mc = est.gradient_covariance(w.model, w.loss_fn, w.batches, per="batch", centered=True, cache_graphs=cache)
        assert_close(mc @ v, (expected - torch.outer(gbar, gbar)) @ v)
    check_operator(m)


def test_per_sample_loss_sources(tiny):
    w = tiny["transformer"]
    model = _eval_copy(w)
    rows = ref.per_sample_gradients(model, w.loss_fn, w.batches)
    v = random_block(rows.shape[1], 2, seed=5)
    expected = rows.T @ (rows @ v) / rows.shape[0]
    plain = lambda o, y: F.cross_entropy(o, y)  # noqa: E731  (no reduction argument: vmap fallback)
    with_reduction = lambda o, y, reduction="mean": F.cross_entropy(o, y, reduction=reduction)  # noqa: E731
    explicit = lambda o, y: F.cross_entropy(o, y, reduction="none")  # noqa: E731
    for loss_fn, kw, source in [
        (plain, {}, "vmap"),
        (with_reduction, {}, "reduction='none'"),
        (plain, {"per_sample_loss": explicit}, "per_sample_loss"),
        ("cross_entropy", {}, "cross_entropy"),
        (torch.nn.CrossEntropyLoss(), {}, "cross_entropy"),
    ]:
        m = est.gradient_covariance(model, loss_fn, w.batches, **kw)
        assert m.details["per_sample_loss"] == source
        assert_close(m @ v, expected)
    f = est.empirical_fisher(model, w.loss_fn, w.batches)
    assert_close(f @ v, expected)


def test_gradient_and_loss(tiny):
    w = tiny["wide_deep"]
    h = est.hessian(w.model, w.loss_fn, w.batches)
    assert_close(h.gradient(), ref.dense_gradient(w.model, w.loss_fn, w.batches), rtol=1e-12)
    with torch.no_grad():
        expected = sum(float(w.loss_fn(w.model(**x), y)) * y.shape[0] for x, y in w.batches) / 10
    assert abs(h.loss() - expected) < 1e-12


@pytest.mark.parametrize("kind", ["hessian", "ggn", "gradient_covariance"])
def test_modes_vectorize_and_cache_agree(tiny, kind):
    w = tiny["transformer"]
    build = getattr(est, kind)
    base = build(w.model, w.loss_fn, w.batches, mode="rev-rev", vectorize=False)
    v = random_block(base.shape[0], 4, seed=6)
    expected = base @ v
    for kw in (
        {"mode": "rev-rev", "vectorize": True},
        {"mode": "fwd-rev", "vectorize": False},
        {"mode": "fwd-rev", "vectorize": True},
        {"cache_graphs": True},
        {"cache_graphs": "auto", "vectorize": True},
        {"stream": True},
    ):
        op = build(w.model, w.loss_fn, w.batches, **kw)
        assert_close(op @ v, expected, rtol=1e-12)
        assert_close(op @ v, expected, rtol=1e-12)  # again: cached graphs are reused
        if kw.get("cache_graphs"):
            assert op.cache_graphs and op.cache_bytes > 0


def test_matmat_equals_matvec_columns(tiny):
    w = tiny["resnet"]
    for op in (est.hessian(w.model, w.loss_fn, w.batches), est.ggn(w.model, w.loss_fn, w.batches)):
        v = random_block(op.shape[0], 5, seed=7)
        block = op.matmat(v)
        for j in range(5):
            assert_close(block[:, j], op.matvec(v[:, j]), rtol=1e-13)


def test_batch_split_changes_nothing(tiny):
    w = tiny["transformer"]
    x = torch.cat([b[0] for b in w.batches])
    y = torch.cat([b[1] for b in w.batches])
    v = random_block(sum(p.numel() for p in w.model.parameters()), 2, seed=8)
    results = []
    for cuts in ([10], [3, 7], [4, 4, 2], [1] * 10):
        batches, start = [], 0
        for c in cuts:
            batches.append((x[start : start + c], y[start : start + c]))
            start += c
        results.append(est.hessian(w.model, w.loss_fn, batches) @ v)
    for r in results[1:]:
        assert_close(r, results[0], rtol=1e-12)


def test_dataloader_and_reduction_sum(tiny):
    w = tiny["resnet"]
    x = torch.cat([b[0] for b in w.batches])
    y = torch.cat([b[1] for b in w.batches])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    h_list = est.hessian(w.model, w.loss_fn, w.batches)
    h_loader = est.hessian(w.model, w.loss_fn, loader)
    h_stream = est.hessian(w.model, w.loss_fn, loader, stream=True)
    h_sum = est.hessian(w.model, w.loss_fn, loader, reduction="sum")
    v = random_block(h_list.shape[0], 2)
    expected = h_list @ v
    assert_close(h_loader @ v, expected)
    assert_close(h_stream @ v, expected)
    assert_close(h_sum @ v, 10 * expected)


def test_counters_and_cache_invalidation(tiny):
    w = tiny["vgg"]
    model = copy.deepcopy(w.model)
    h = est.hessian(model, w.loss_fn, w.batches, cache_graphs=True)
    assert h.num_forward_passes == 1  # batch 0, built to measure the cache
    v = random_block(h.shape[0], 3)
    first = h @ v
    assert (h.num_calls, h.num_matvecs, h.num_forward_passes, h.num_vector_passes) == (1, 3, 3, 9)
    h @ v[:, 0]
    assert (h.num_calls, h.num_matvecs, h.num_forward_passes, h.num_vector_passes) == (2, 4, 3, 12)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # an in-place write bumps the version counters: graphs are rebuilt
    moved = h @ v
    assert h.num_forward_passes == 6
    assert float((moved - first).abs().max()) > 1e-6
    fresh = est.hessian(model, w.loss_fn, w.batches)
    assert_close(moved, fresh @ v)
    h.reset_counters()
    assert h.num_matvecs == 0


def test_cache_budget(tiny):
    w = tiny["resnet"]
    with pytest.raises(ValueError, match="max_cache_bytes"):
        est.hessian(w.model, w.loss_fn, w.batches, cache_graphs=True, max_cache_bytes=1000)
    h = est.hessian(w.model, w.loss_fn, w.batches, cache_graphs="auto", max_cache_bytes=1000)
    assert not h.cache_graphs and h.cache_bytes > 1000
    v = random_block(h.shape[0], 2)
    assert_close(h @ v, est.hessian(w.model, w.loss_fn, w.batches) @ v, rtol=1e-13)
    with pytest.raises(ValueError, match="rev-rev"):
        est.hessian(w.model, w.loss_fn, w.batches, cache_graphs=True, mode="fwd-rev")


def test_unflatten_and_parameters_vector(tiny):
    w = tiny["wide_deep"]
    h = est.hessian(w.model, w.loss_fn, w.batches)
    theta = h.parameters_vector()
    parts = h.unflatten(theta)
    assert list(parts) == [k for k, _ in w.model.named_parameters()]
    for k, p in w.model.named_parameters():
        assert torch.equal(parts[k], p.detach())
        assert h.param_slices[k].stop - h.param_slices[k].start == p.numel()
    assert h.num_params == theta.numel() == sum(p.numel() for p in w.model.parameters())
    assert h.num_samples == 10 and h.num_batches == 3


def test_vmap_failure_falls_back_to_loop(tiny, monkeypatch):
    w = tiny["transformer"]
    h = est.hessian(w.model, w.loss_fn, w.batches, vectorize=True)
    assert h.vectorize

    def no_batching_rule(state, vs):
        raise RuntimeError("vmap: no batching rule for this op")

    monkeypatch.setattr(h._kernel, "_batched", no_batching_rule)
    v = random_block(h.shape[0], 3)
    assert_close(h @ v, est.hessian(w.model, w.loss_fn, w.batches, vectorize=False) @ v, rtol=1e-13)
    assert not h.vectorize
