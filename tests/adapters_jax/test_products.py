"""Products agree with dense float64 autodiff (``jax.hessian``, explicit Jacobians and
per-sample gradients) on an MLP, a CNN, an attention block and a Wide&Deep (dict inputs,
integer ids), with an uneven last batch (10 samples in batches of 4, 4, 2)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.testing import check_operator  # noqa: E402

from . import _reference as ref  # noqa: E402
from ._models import KW, assert_close, mlp, random_block  # noqa: E402

NAMES = ["mlp", "cnn", "attention", "wide_deep"]


_DENSE: dict = {}


def dense(m, kind):
    """The dense float64 reference of ``kind`` for model ``m``, computed once per session."""
    key = (m.name, kind)
    if key not in _DENSE:
        if kind == "hessian":
            _DENSE[key] = ref.dense_hessian(m.loss_fn, m.params, m.batches)
        elif kind == "ggn":
            _DENSE[key] = ref.dense_ggn(m.model_fn, m.output_loss, m.params, m.batches)
        else:
            _DENSE[key] = ref.per_sample_gradients(m.loss_fn, m.params, m.batches)
    return _DENSE[key]


# Every test multiplies blocks of 3 (check_operator's width) and single vectors, with the
# same batches, so that the compiled products are shared between tests.
B = 3


def hessian(m, batches=None, **kw):
    return ejx.hessian(m.loss_fn, m.params, m.batches if batches is None else batches, **{**KW, **kw})


def ggn(m, batches=None, **kw):
    return ejx.ggn(m.model_fn, m.output_loss, m.params, m.batches if batches is None else batches, **{**KW, **kw})


def covariance(m, batches=None, **kw):
    return ejx.gradient_covariance(m.loss_fn, m.params, m.batches if batches is None else batches, **{**KW, **kw})


@pytest.mark.parametrize("name", NAMES)
def test_hessian_matches_dense(models, name):
    m = models[name]
    h = hessian(m)
    full = dense(m, "hessian")
    n = full.shape[0]
    assert h.shape == (n, n) and h.symmetric and h.dtype == jnp.float64
    assert h.batch_sizes == (4, 4, 2)
    v = random_block(n, B)
    assert_close(h @ v, full @ v)


@pytest.mark.parametrize("name", NAMES)
def test_ggn_matches_dense(models, name):
    m = models[name]
    g = ggn(m)
    full = dense(m, "ggn")
    v = random_block(full.shape[0], B, seed=1)
    assert_close(g @ v, full @ v)
    assert np.linalg.eigvalsh(np.asarray(full)).min() >= -1e-12 * np.abs(np.asarray(full)).max()  # PSD


@pytest.mark.parametrize("name", NAMES)
def test_gradient_covariance_matches_per_sample_gradients(models, name):
    m = models[name]
    grads = dense(m, "per_sample_gradients")  # (N, n), explicit
    big_n, n = grads.shape
    v = random_block(n, B, seed=2)
    second_moment = grads.T @ (grads @ v) / big_n
    gbar = grads.mean(axis=0)
    assert_close(covariance(m) @ v, second_moment)
    if name in ("cnn", "wide_deep"):
        return  # centring and per-batch gradients do not depend on the model: two models suffice
    centered = covariance(m, centered=True)
    assert_close(centered @ v, second_moment - gbar[:, None] * (gbar @ v)[None, :])
    per_batch = covariance(m, per="batch")
    expected = sum(w * g[:, None] * (g @ v)[None, :] for w, g in ref.batch_gradients(m.loss_fn, m.params, m.batches))
    assert_close(per_batch @ v, expected)


def test_explicit_per_sample_loss(models):
    m = models["mlp"]

    def per_sample(params, x, y):
        logp = jax.nn.log_softmax(m.model_fn(params, x))
        return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]

    default = covariance(m)
    given = covariance(m, per_sample_loss=per_sample)
    assert given.details["per_sample_loss"] == "per_sample_loss"
    v = random_block(default.shape[0], B)
    assert_close(given @ v, default @ v)


def test_batch_split_changes_nothing(models):
    m = models["mlp"]
    whole = [(np.concatenate([x for x, _ in m.batches]), np.concatenate([y for _, y in m.batches]))]
    v = random_block(hessian(m).shape[0], B)
    for build in (hessian, ggn, covariance):
        assert_close(build(m) @ v, build(m, whole) @ v)


@pytest.mark.parametrize("kind", ["hessian", "ggn", "sample", "batch", "centered"])
def test_matmat_equals_columnwise_matvec_and_conformance(models, kind):
    m = models["attention"]
    op = {
        "hessian": lambda: hessian(m),
        "ggn": lambda: ggn(m),
        "sample": lambda: covariance(m),
        "batch": lambda: covariance(m, per="batch"),
        "centered": lambda: covariance(m, centered=True),
    }[kind]()
    v = random_block(op.shape[0], B, seed=3)
    block = op @ v
    for j in range(B):
        assert_close(block[:, j], op @ v[:, j], rtol=1e-12)
    check_operator(op)  # 3 matvecs, a matmat of 3, 1 matvec
    assert (op.num_calls, op.num_matvecs) == (1 + B + 5, B + B + 7)


def test_unrolled_equals_vmapped(models):
    m = models["mlp"]
    vmapped, unrolled = hessian(m, vectorize=True), hessian(m, vectorize=False)  # every kind maps alike
    assert vmapped.vectorize and not unrolled.vectorize
    assert not hessian(m, vectorize="auto").vectorize  # on CPU: unrolled
    v = random_block(vmapped.shape[0], 10, seed=4)
    assert_close(unrolled @ v[:, :B], vmapped @ v[:, :B], rtol=1e-12)
    unrolled.reset_counters()
    assert_close(unrolled @ v, dense(m, "hessian") @ v)  # 10 columns: chunks of 8 and 2
    assert unrolled.num_forward_passes == 2 * 3
    with pytest.raises(ValueError, match="vectorize must be True, False or 'auto'"):
        hessian(m, vectorize="yes")


def test_counters_and_empty_block(models):
    m = models["mlp"]
    h = hessian(m)
    n = h.shape[0]
    h @ random_block(n, B)
    assert (h.num_calls, h.num_matvecs, h.num_forward_passes, h.num_vector_passes) == (1, 3, 3, 9)
    assert (h @ jnp.zeros((n, 0))).shape == (n, 0)
    h.reset_counters()
    assert (h.num_calls, h.num_matvecs, h.num_forward_passes, h.num_vector_passes) == (0, 0, 0, 0)


def test_reduction_sum_is_n_times_mean(models):
    m = models["mlp"]
    mean = hessian(m)
    total = hessian(m, reduction="sum")
    v = random_block(mean.shape[0], B)
    assert_close(total @ v, 10 * (mean @ v))


def test_gradient_loss_and_unflatten(models):
    m = models["attention"]
    h = hessian(m)
    assert_close(h.gradient(), ref.dense_gradient(m.loss_fn, m.params, m.batches))
    theta, _ = ravel_pytree(m.params)
    expected = ref.dense_loss(m.loss_fn, m.params, m.batches)
    assert abs(h.loss() - float(expected)) <= 1e-12 * abs(float(expected))
    assert_close(h.parameters_vector(), theta, rtol=0)
    tree = h.unflatten(theta)
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(m.params)
    assert h.param_paths[0] == "['bias']"  # dict keys in sorted order, as ravel_pytree flattens
    # The batches were placed on the device once, at construction.
    assert all(isinstance(a, jax.Array) for a in jax.tree_util.tree_leaves(h._batches.batches))


def test_float32_parameters(models):
    m64 = models["mlp"]
    params, model_fn, output_loss, batches = mlp(dtype=np.float32)  # the same model and data in float32
    m = type(m64)("mlp32", params, model_fn, output_loss, batches)
    h = hessian(m)  # float64 NumPy inputs are cast to float32
    assert h.dtype == jnp.float32
    v = random_block(h.shape[0], B, dtype=np.float32)
    y = h @ v
    assert y.dtype == jnp.float32
    assert_close(y, dense(m64, "hessian") @ v.astype(jnp.float64), rtol=1e-5)
    with pytest.raises(TypeError, match="dtype float32"):
        h @ v.astype(jnp.float64)
    g = ggn(m)
    assert g.dtype == jnp.float32 and (g @ v).dtype == jnp.float32
    assert h.gradient().dtype == jnp.float32
