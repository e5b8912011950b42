"""The framework-free curvature core: the registry of kinds, the options, the operator base.

The base is exercised here through a NumPy subclass whose per-batch matrices are known, so
that its share of every product (batch weights, centring, reduction, counters, checks) is
tested without torch or JAX; the adapters' own tests check their kernels against dense
autodiff.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing

import numpy as np
import pytest

from eigenscope import adapters
from eigenscope.adapters import KINDS, CurvatureOperatorBase, CurvatureOptions, curvature_kind
from eigenscope.adapters._data import SizedBatches
from eigenscope.adapters._kinds import one_per_kind
from eigenscope.adapters._options import SHARED_PARAMETERS, document


# ---- the registry ----------------------------------------------------------------
def test_registry_names():
    assert tuple(KINDS) == ("hessian", "ggn", "gradient_covariance")
    assert typing.get_args(adapters.KindName) == tuple(KINDS)
    assert [name for name, kind in KINDS.items() if kind.per_sample] == ["gradient_covariance"]
    assert adapters.PER == ("sample", "batch")
    for name, kind in KINDS.items():
        assert kind.name == name and curvature_kind(name) is kind and kind.summary


def test_unknown_kind_lists_the_names():
    with pytest.raises(ValueError, match="matrix must be one of hessian, ggn, gradient_covariance, got 'fisher'"):
        curvature_kind("fisher")
    with pytest.raises(ValueError, match="kind must be one of"):
        curvature_kind("sample_covariance", what="kind")  # per-sample vs per-batch is per=, not a kind


def test_one_per_kind_refuses_missing_and_unknown_kinds():
    table = {name: name.upper() for name in KINDS}
    assert dict(one_per_kind(table, "t")) == table
    with pytest.raises(RuntimeError, match=r"missing \['ggn'\]"):
        one_per_kind({k: v for k, v in table.items() if k != "ggn"}, "t")
    with pytest.raises(RuntimeError, match=r"not registered \['batch_covariance'\]"):
        one_per_kind({**table, "batch_covariance": 0}, "t")


def test_every_kind_is_a_constructor_of_both_adapters():
    """The invariant: a registered name is a public constructor, of that name, in both adapters."""
    import eigenscope.adapters.torch as est

    ejx = pytest.importorskip("eigenscope.adapters.jax")
    for module in (est, ejx):
        for name in KINDS:
            fn = getattr(module, name)
            assert name in module.__all__ and callable(fn) and fn.__name__ == name, (module.__name__, name)
        assert issubclass(module.CurvatureOperator, CurvatureOperatorBase)
        # One name per matrix: per-sample and per-batch covariance are per= of one constructor.
        assert inspect.signature(module.gradient_covariance).parameters["per"].default == "sample"
        assert not hasattr(module, "sample_covariance") and not hasattr(module, "batch_covariance")


def test_jax_kernels_cover_every_kind():
    pytest.importorskip("jax")
    from eigenscope.adapters.jax import _kernels

    assert tuple(_kernels.BUILDERS) == tuple(KINDS)


def test_importing_the_core_imports_no_framework():
    code = (
        "import sys, eigenscope.adapters, eigenscope.adapters._data, eigenscope.adapters._operator, "
        "eigenscope.adapters._options; print('torch' in sys.modules, 'jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# ---- the options -------------------------------------------------------------------
def test_options_validate_once():
    options = CurvatureOptions()
    assert (options.reduction, options.vectorize, options.centered, options.per) == ("mean", "auto", False, None)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'none'"):
        CurvatureOptions(reduction="none")
    with pytest.raises(ValueError, match="vectorize must be True, False or 'auto', got 'yes'"):
        CurvatureOptions(vectorize="yes")
    with pytest.raises(ValueError, match="vectorize must be True, False or 'auto', got 1"):
        CurvatureOptions(vectorize=1)
    with pytest.raises(ValueError, match="per must be 'sample' or 'batch', got 'token'"):
        CurvatureOptions(per="token")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.reduction = "sum"
    with pytest.raises(TypeError):
        CurvatureOptions("sum")  # keyword-only


def test_options_from_arguments_and_vectorize():
    options = CurvatureOptions.from_arguments({"reduction": "sum", "vectorize": False, "model": object()})
    assert options == CurvatureOptions(reduction="sum", vectorize=False)
    assert options.resolve_vectorize(True) is False
    assert CurvatureOptions().resolve_vectorize(True) is True
    assert CurvatureOptions().resolve_vectorize(False) is False
    assert CurvatureOptions(vectorize=True).resolve_vectorize(False) is True


def test_torch_options():
    from eigenscope.adapters.torch._options import TorchOptions

    assert TorchOptions().product_mode == "rev-rev"
    assert TorchOptions(mode="fwd-rev").product_mode == "fwd-rev"
    with pytest.raises(ValueError, match="mode must be"):
        TorchOptions(mode="forward")
    with pytest.raises(ValueError, match="cache_graphs must be"):
        TorchOptions(cache_graphs="yes")
    with pytest.raises(ValueError, match="cache_graphs needs mode='rev-rev'"):
        TorchOptions(mode="fwd-rev", cache_graphs=True)
    with pytest.raises(ValueError, match="reduction"):  # the shared checks run too
        TorchOptions(reduction="none")


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_constructors_keep_their_keywords_and_document_them(framework):
    """Every keyword of a constructor is documented, and every option field is a keyword of
    the constructors (with the field's default)."""
    if framework == "torch":
        import eigenscope.adapters.torch as module
        from eigenscope.adapters.torch._options import TorchOptions as Options
    else:
        module = pytest.importorskip("eigenscope.adapters.jax")
        from eigenscope.adapters.jax._options import JaxOptions as Options
    defaults = {f.name: f.default for f in dataclasses.fields(Options)}
    for name in KINDS:
        fn = getattr(module, name)
        parameters = inspect.signature(fn).parameters
        for p in parameters:
            assert f"\n    {p}\n" in fn.__doc__, (name, p)
        for field, default in defaults.items():
            if field in ("centered", "per") and not KINDS[name].per_sample:
                assert field not in parameters
                continue
            expected = "sample" if field == "per" else default
            assert parameters[field].default == expected, (name, field)


def test_document_refuses_an_undocumented_parameter():
    def f(a, *, reduction="mean"):
        """Summary."""

    with pytest.raises(RuntimeError, match=r"no documentation for parameters \['a'\]"):
        document(f, {}, returns="int")
    document(f, {"a": "The a."}, returns="int\n    An int.")
    assert SHARED_PARAMETERS["reduction"].strip() in f.__doc__
    assert "\n    a\n        The a.\n" in f.__doc__ and "Returns\n    -------\n    int\n        An int." in f.__doc__


# ---- the operator base, on a NumPy subclass ------------------------------------------
class _Batches(SizedBatches):
    def __init__(self, sizes):
        self.batch_sizes = tuple(sizes)


class _Dense(CurvatureOperatorBase):
    """Batch ``b`` has the matrix ``A_b``, gradient ``g_b`` and loss ``L_b``."""

    def __init__(self, mats, grads, losses, sizes, kind="gradient_covariance", **options):
        super().__init__(
            kind=kind,
            num_params=mats[0].shape[0],
            dtype=np.float64,
            device="cpu",
            xp=np,
            batches=_Batches(sizes),
            options=CurvatureOptions(**options),
            details={"source": "dense"},
        )
        self.mats, self.grads, self.losses = mats, grads, losses

    def _data_product(self, x):
        self.num_forward_passes += len(self.mats)
        self.num_vector_passes += len(self.mats) * x.shape[1]
        return sum(self._batch_weight(n) * (a @ x) for a, n in zip(self.mats, self.batch_sizes, strict=True))

    def _full_gradient(self):
        return sum(self._batch_weight(n) * g for g, n in zip(self.grads, self.batch_sizes, strict=True))

    def _loss_sum(self):
        return float(np.dot(self.losses, self.batch_sizes))

    def _unflatten(self, v):
        return {"w": v.reshape(2, -1)}

    def parameters_vector(self):
        return np.zeros(self.num_params)

    def _describe(self):
        return "dense"


@pytest.fixture
def dense():
    rng = np.random.default_rng(0)
    sizes = (4, 4, 2)  # unequal: a mean over batches would differ from the mean over samples
    mats = [(lambda m: m + m.T)(rng.standard_normal((6, 6))) for _ in sizes]
    grads = [rng.standard_normal(6) for _ in sizes]
    return mats, grads, [0.5, 1.0, 4.0], sizes


def test_base_weights_batches_by_size(dense):
    mats, grads, losses, sizes = dense
    op = _Dense(mats, grads, losses, sizes, kind="hessian")
    x = np.random.default_rng(1).standard_normal((6, 3))
    expected = (4 * mats[0] + 4 * mats[1] + 2 * mats[2]) / 10
    np.testing.assert_allclose(op @ x, expected @ x, rtol=1e-13)
    np.testing.assert_allclose(op.gradient(), (4 * grads[0] + 4 * grads[1] + 2 * grads[2]) / 10, rtol=1e-13)
    assert op.loss() == pytest.approx((4 * 0.5 + 4 * 1.0 + 2 * 4.0) / 10, rel=1e-15)
    assert (op.kind, op.per, op.centered, op.reduction) == ("hessian", None, False, "mean")
    assert op.details == {"source": "dense"}  # no per= for a kind without it
    assert repr(op) == "<_Dense hessian n=6 N=10 batches=3 dense>"


def test_base_finishing_steps(dense):
    mats, grads, losses, sizes = dense
    plain = _Dense(mats, grads, losses, sizes, per="batch")
    op = _Dense(mats, grads, losses, sizes, per="batch", centered=True, reduction="sum")
    assert op.details == {"per": "batch", "source": "dense"} and op.per == "batch"
    assert op._matrix_signature() == ("gradient_covariance", "sum", True, "batch")
    x = np.random.default_rng(2).standard_normal((6, 2))
    g = plain.gradient()
    np.testing.assert_allclose(op @ x, 10 * (plain @ x - np.outer(g, g @ x)), rtol=1e-12)
    np.testing.assert_allclose(op @ x[:, 0], 10 * (plain @ x[:, 0] - g * (g @ x[:, 0])), rtol=1e-12)


def test_base_counters_and_empty_block(dense):
    op = _Dense(*dense)
    op @ np.ones((6, 3))
    op @ np.ones(6)
    assert (op.num_calls, op.num_matvecs, op.num_forward_passes, op.num_vector_passes) == (2, 4, 6, 12)
    empty = op @ np.ones((6, 0))
    assert empty.shape == (6, 0) and (op.num_calls, op.num_matvecs, op.num_forward_passes) == (3, 4, 6)
    op.reset_counters()
    assert (op.num_calls, op.num_matvecs, op.num_forward_passes, op.num_vector_passes) == (0, 0, 0, 0)


def test_base_unflatten_is_checked(dense):
    op = _Dense(*dense)
    assert op.unflatten(np.arange(6.0))["w"].shape == (2, 3)
    with pytest.raises(ValueError, match="unflatten expected 6 rows"):
        op.unflatten(np.ones(5))


def test_base_gradient_is_cached(dense):
    op = _Dense(*dense)
    calls = []
    compute = op._full_gradient
    op._full_gradient = lambda: calls.append(1) or compute()
    g = op.gradient()
    assert op.gradient() is g and len(calls) == 1
    op.clear_cache()
    op.gradient()
    assert len(calls) == 2


def test_base_refuses_nan_products(dense):
    mats, grads, losses, sizes = dense
    mats = [m.copy() for m in mats]
    mats[1][0, 0] = np.nan
    op = _Dense(mats, grads, losses, sizes)
    with pytest.raises(FloatingPointError, match=r"gradient_covariance product returned NaN or Inf \(call 1"):
        op @ np.ones(6)


def test_base_refuses_an_unregistered_kind(dense):
    with pytest.raises(ValueError, match="matrix must be one of"):
        _Dense(*dense, kind="fisher")


# ---- both adapters build every kind under its one name --------------------------------
def test_torch_builds_every_kind_by_name():
    import torch
    from torch.nn import functional as F

    import eigenscope.adapters.torch as est
    from eigenscope.adapters.torch._options import TorchOptions

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    for name in KINDS:
        op = getattr(est, name)(model, F.cross_entropy, batches, reduction="sum")
        assert op.kind == name and isinstance(op.options, TorchOptions) and op.options.reduction == "sum"
        assert op.per == ("sample" if KINDS[name].per_sample else None)
        blocks = est.layerwise(model, F.cross_entropy, batches, kind=name)
        assert [b.kind for b in blocks.values()] == [name]
    covariance = est.gradient_covariance(model, F.cross_entropy, batches, per="batch", centered=True)
    assert (covariance.kind, covariance.per, covariance.centered) == ("gradient_covariance", "batch", True)
    assert covariance.details["per"] == "batch"
    with pytest.raises(ValueError, match="kind must be one of hessian, ggn, gradient_covariance"):
        est.layerwise(model, F.cross_entropy, batches, kind="batch_covariance")


def test_jax_builds_every_kind_by_name():
    jnp = pytest.importorskip("jax.numpy")
    import eigenscope.adapters.jax as ejx
    from eigenscope.adapters.jax._options import JaxOptions

    fast = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    params = {"w": jnp.asarray(np.random.default_rng(0).standard_normal((3, 2)), dtype=jnp.float32)}
    x = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    y = np.array([0.5, 1.0, 0.0, 0.2, 1.0, 0.3], dtype=np.float32)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]

    def model_fn(p, inputs):
        return (inputs @ p["w"])[:, 0]

    def output_loss(out, targets):
        return jnp.mean((out - targets) ** 2)

    def loss_fn(p, inputs, targets):
        return output_loss(model_fn(p, inputs), targets)

    first = {"ggn": (model_fn, output_loss)}
    for name in KINDS:
        op = getattr(ejx, name)(*first.get(name, (loss_fn,)), params, batches, compiler_options=fast)
        assert op.kind == name and isinstance(op.options, JaxOptions) and op.options.compiler_options == fast
        assert op.per == ("sample" if KINDS[name].per_sample else None)
    covariance = ejx.gradient_covariance(loss_fn, params, batches, per="batch", compiler_options=fast)
    assert (covariance.kind, covariance.per, covariance.details) == ("gradient_covariance", "batch", {"per": "batch"})
    assert covariance._compiled is not op._compiled  # per= is part of what is compiled
