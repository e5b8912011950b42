"""``compile=``: the compiled per-batch products equal the eager ones, a failure or a mismatch
falls back to eager with one warning, and ``"auto"`` compiles only when the announced run
pays the compile time back."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import eigenscope as es
from eigenscope import linop
from eigenscope.adapters import torch as est
from eigenscope.adapters.torch import _compiled

KINDS = {
    "hessian": lambda m, loss, data, **kw: est.hessian(m, loss, data, **kw),
    "ggn": lambda m, loss, data, **kw: est.ggn(m, loss, data, **kw),
    "ggn autodiff": lambda m, loss, data, **kw: est.ggn(m, loss, data, loss_hessian="autodiff", **kw),
    "per-sample second moment": lambda m, loss, data, **kw: est.gradient_covariance(m, loss, data, **kw),
}


@pytest.fixture(autouse=True)
def _own_compile_cache(tmp_path, monkeypatch):
    """Each test reads and writes its own compile index (and torch's cache, where it compiles)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(_compiled, "_cache_dir", lambda: str(tmp_path / "inductor"))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _batches(sizes=(8, 8)):
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(n, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (n,), generator=gen)) for n in sizes
    ]


def _no_compile(fn, **_):
    """``torch.compile`` replaced by the identity: the "compiled" product is the pure
    ``torch.func`` function itself, so every path is tested without compile time."""
    return fn


def _vectors(n, b=2):
    return torch.randn(n, b, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_functional_product_equals_eager(kind, monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    model, data = _model(), _batches((8, 8, 5))
    fast = KINDS[kind](model, F.cross_entropy, data, compile=True)
    slow = KINDS[kind](model, F.cross_entropy, data, compile=False)
    x = _vectors(fast.shape[0])
    y = fast @ x
    assert fast.compiled and not slow.compiled
    torch.testing.assert_close(y, slow @ x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast @ x[:, 0], slow @ x[:, 0], rtol=1e-12, atol=1e-12)


def test_shorter_last_batch_runs_eagerly(monkeypatch):
    calls = []

    def counting(fn, **_):
        def run(*args):
            calls.append(args[1].shape[0])
            return fn(*args)

        return run

    monkeypatch.setattr(_compiled.torch, "compile", counting)
    H = est.hessian(_model(), F.cross_entropy, _batches((8, 8, 5)), compile=True)
    H @ _vectors(H.shape[0], 1)[:, 0]
    assert calls and set(calls) == {8}  # batch 2 (5 samples) never reaches the compiled product


def test_mismatch_falls_back_with_one_warning(monkeypatch):
    def wrong(fn, **_):
        def run(*args):
            hv, loss = fn(*args)
            return [2 * h for h in hv], loss

        return run

    monkeypatch.setattr(_compiled.torch, "compile", wrong)
    data = _batches()
    H = est.hessian(_model(), F.cross_entropy, data, compile=True)
    ref = est.hessian(_model(), F.cross_entropy, data, compile=False)
    x = _vectors(H.shape[0])
    with pytest.warns(UserWarning, match="differs from the eager one"):
        y = H @ x
    torch.testing.assert_close(y, ref @ x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        torch.testing.assert_close(H @ x, ref @ x)
    assert not H.compiled and "differs" in H.compile_reason


def test_compile_failure_falls_back(monkeypatch):
    def broken(fn, **_):
        def run(*args):
            raise RuntimeError("cannot lower this graph")

        return run

    monkeypatch.setattr(_compiled.torch, "compile", broken)
    data = _batches()
    H = est.hessian(_model(), F.cross_entropy, data, compile=True)
    x = _vectors(H.shape[0])
    with pytest.warns(UserWarning, match="torch.compile failed: RuntimeError: cannot lower"):
        y = H @ x
    torch.testing.assert_close(y, est.hessian(_model(), F.cross_entropy, data, compile=False) @ x)
    assert not H.compiled


def test_auto_needs_an_announced_run(monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    H = est.hessian(_model(), F.cross_entropy, _batches())
    assert H.compile == "auto"
    x = _vectors(H.shape[0], 1)[:, 0]
    H @ x
    H @ x
    assert not H.compiled and H.compile_reason == "no product count announced"


def test_auto_cold_cache_never_gambles_a_short_run(monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    H = est.hessian(_model(), F.cross_entropy, _batches())
    x = _vectors(H.shape[0], 1)[:, 0]
    with linop.planned_products(10_000):
        for _ in range(3):
            H @ x
    assert not H.compiled and "cold compile cache" in H.compile_reason


def test_auto_compiles_with_a_warm_record_when_it_pays(monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    data = _batches()
    H = est.hessian(_model(), F.cross_entropy, data)
    x = _vectors(H.shape[0], 1)[:, 0]
    H @ x  # builds the cache of batch 1: not timed for the rule
    H @ x  # an eager product, timed
    key = H._compiled.key(*data[0])
    _compiled.CompileIndex().update(key, warm_s=1e-9, ratio=0.5)
    with linop.planned_products(3):
        H @ x
        assert H.compiled
    # A record whose compile time the run cannot pay back: eager.
    G = est.hessian(_model(), F.cross_entropy, data)
    G @ x
    G @ x
    _compiled.CompileIndex().update(G._compiled.key(*data[0]), warm_s=1e9, ratio=0.5)
    with linop.planned_products(3):
        G @ x
    assert not G.compiled and "warm compile" in G.compile_reason


def test_stochastic_models_are_not_compiled_by_auto():
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 3)).double().train()
    H = est.hessian(model, F.cross_entropy, _batches(), allow_stochastic=True)
    assert H.compile is False


def test_compile_argument_is_checked():
    with pytest.raises(ValueError, match="compile must be"):
        est.hessian(_model(), F.cross_entropy, _batches(), compile="yes")


def test_torch_compile_end_to_end():
    """One real ``torch.compile`` (a few seconds to a minute on a small CPU): the compiled
    product equals the eager one to rounding, and an eigsh through it is unchanged."""
    data = _batches((16, 16))
    H = est.hessian(_model(), F.cross_entropy, data, compile=True)
    ref = est.hessian(_model(), F.cross_entropy, data, compile=False)
    x = _vectors(H.shape[0], 1)[:, 0]
    torch.testing.assert_close(H @ x, ref @ x, rtol=1e-10, atol=1e-12)
    assert H.compiled and H.compile_seconds > 0
    top, top_ref = es.eigsh(H, k=2, seed=0), es.eigsh(ref, k=2, seed=0)
    torch.testing.assert_close(
        torch.as_tensor(top.eigenvalues), torch.as_tensor(top_ref.eigenvalues), rtol=1e-9, atol=0
    )


def test_compiling_records_time_and_ratio_for_the_next_run(monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    data = _batches()
    H = est.hessian(_model(), F.cross_entropy, data, compile=True)
    H @ _vectors(H.shape[0], 1)[:, 0]
    record = _compiled.CompileIndex().get(H._compiled.key(*data[0]))
    assert set(record) >= {"cold_s", "ratio"} and 0 < record["ratio"] <= 1
    again = est.hessian(_model(), F.cross_entropy, data, compile=True)
    again @ _vectors(H.shape[0], 1)[:, 0]
    assert "warm_s" in _compiled.CompileIndex().get(H._compiled.key(*data[0]))


def test_auto_without_a_measured_ratio_predicts_no_saving(monkeypatch):
    monkeypatch.setattr(_compiled.torch, "compile", _no_compile)
    data = _batches()
    H = est.hessian(_model(), F.cross_entropy, data)
    x = _vectors(H.shape[0], 1)[:, 0]
    H @ x
    H @ x
    _compiled.CompileIndex().update(H._compiled.key(*data[0]), warm_s=1e-9)
    with linop.planned_products(10_000):
        H @ x
    assert not H.compiled and "ratio not measured" in H.compile_reason
    # A measured ratio within the noise of "no faster": eager too.
    _compiled.CompileIndex().update(H._compiled.key(*data[0]), ratio=0.95)
    with linop.planned_products(10_000):
        H @ x
    assert not H.compiled and "no clear saving" in H.compile_reason
