"""Bad input gets a clear exception naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

from eigenscope.adapters import jax as ejx  # noqa: E402

from ._models import KW, mlp  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    params, model_fn, output_loss, batches = mlp(n=12, batch=4)

    def loss_fn(p, x, y):
        return output_loss(model_fn(p, x), y)

    return params, model_fn, output_loss, loss_fn, batches


def test_data_errors(setup):
    params, _, _, loss_fn, batches = setup
    with pytest.raises(ValueError, match="empty"):
        ejx.hessian(loss_fn, params, [])
    with pytest.raises(ValueError, match="batch 1 is empty"):
        ejx.hessian(loss_fn, params, [batches[0], (np.zeros((0, 5)), np.zeros(0, dtype=int))])
    with pytest.raises(TypeError, match=r"one-shot iterator.*reads the batches once.*list of batches"):
        ejx.hessian(loss_fn, params, (b for b in batches))
    with pytest.raises(TypeError, match="one-shot"):
        ejx.gradient_covariance(loss_fn, params, iter(batches))
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair.*data=\[\(inputs, targets\)\]"):
        ejx.hessian(loss_fn, params, batches[0])
    with pytest.raises(TypeError, match="iterable"):
        ejx.hessian(loss_fn, params, jnp.zeros((4, 5)))
    with pytest.raises(ValueError, match="leading batch dimension"):
        ejx.hessian(loss_fn, params, [(np.float64(2.0), np.float64(1.0))])
    with pytest.raises(TypeError, match=r"batch 0 inputs\['x'\] is a str"):
        ejx.hessian(loss_fn, params, [({"x": "abc"}, batches[0][1])])


def test_loss_errors(setup):
    params, model_fn, output_loss, _, batches = setup
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar.*shape \(4,\)"):
        ejx.hessian(lambda p, x, y: model_fn(p, x)[:, 0], params, batches)
    with pytest.raises(ValueError, match="output_loss must return a scalar"):
        ejx.ggn(model_fn, lambda o, y: o.sum(axis=1), params, batches)
    with pytest.raises(TypeError, match="loss_fn must be a callable"):
        ejx.hessian("cross_entropy", params, batches)
    with pytest.raises(TypeError, match="model_fn must be a callable"):
        ejx.ggn(None, output_loss, params, batches)
    with pytest.raises(TypeError, match="floating-point loss"):
        ejx.hessian(lambda p, x, y: jnp.sum(y), params, batches)


def test_params_errors(setup):
    _, _, _, loss_fn, batches = setup
    with pytest.raises(ValueError, match="no array leaves"):
        ejx.hessian(loss_fn, {}, batches)
    with pytest.raises(TypeError, match=r"params leaf \['n'\] has dtype int"):
        ejx.hessian(loss_fn, {"w": jnp.zeros(3), "n": jnp.zeros(2, dtype=jnp.int32)}, batches)
    with pytest.raises(TypeError, match="mix dtypes"):
        ejx.hessian(loss_fn, {"a": jnp.zeros(3), "b": jnp.zeros(2, dtype=jnp.float32)}, batches)
    with pytest.raises(TypeError, match=r"params leaf \['f'\] is a function.*eqx.partition"):
        ejx.hessian(loss_fn, {"w": jnp.zeros(3), "f": lambda: 0}, batches)
    with pytest.raises(TypeError, match="float32 or float64"):
        ejx.hessian(loss_fn, {"w": jnp.zeros(3, dtype=jnp.bfloat16)}, batches)


def test_option_errors(setup):
    params, _, _, loss_fn, batches = setup
    with pytest.raises(ValueError, match="per must be 'sample' or 'batch'"):
        ejx.gradient_covariance(loss_fn, params, batches, per="token")
    with pytest.raises(ValueError, match="reduction"):
        ejx.hessian(loss_fn, params, batches, reduction="none")
    with pytest.raises(ValueError, match="per_sample_loss applies to per='sample'"):
        ejx.gradient_covariance(loss_fn, params, batches, per="batch", per_sample_loss=lambda p, x, y: y)
    with pytest.raises(TypeError, match="compiler_options must be a mapping"):
        ejx.hessian(loss_fn, params, batches, compiler_options=["x"])


def test_per_sample_errors(setup):
    params, model_fn, output_loss, loss_fn, batches = setup

    def batch_normalised(p, x, y):  # divides by a fixed count, not by the batch size
        return output_loss(model_fn(p, x), y) * y.shape[0] / 4.0

    with pytest.raises(ValueError, match=r"not a mean over independent samples.*per_sample_loss"):
        ejx.gradient_covariance(batch_normalised, params, batches, **KW)
    with pytest.raises(ValueError, match=r"per-sample losses \(per_sample_loss\) have shape \(\), expected \(4,\)"):
        ejx.gradient_covariance(loss_fn, params, batches, per_sample_loss=loss_fn)
    shared = [({"x": x, "scale": np.ones(3)}, y) for x, y in batches]
    with pytest.raises(ValueError, match=r"batch 0 inputs\['scale'\] has shape \(3,\).*per_sample_loss"):
        ejx.gradient_covariance(lambda p, xs, y: loss_fn(p, xs["x"], y), params, shared)


def test_vector_checks(setup):
    params, _, _, loss_fn, batches = setup
    h = ejx.hessian(loss_fn, params, batches, **KW)
    n = h.shape[0]
    with pytest.raises(ValueError, match=f"expected {n} rows"):
        h @ jnp.zeros(n + 1)
    with pytest.raises(TypeError, match="dtype float64"):
        h @ jnp.zeros(n, dtype=jnp.float32)
    with pytest.raises(TypeError, match="jax array"):
        h @ np.zeros(n)
    with pytest.raises(ValueError, match=f"expected {n} rows"):
        h.unflatten(jnp.zeros(3))


def test_nan_names_the_batch(setup):
    params, model_fn, output_loss, loss_fn, batches = setup
    bad = np.array(batches[2][0])
    bad[1, 0] = np.nan
    data = [batches[0], batches[1], (bad, batches[2][1])]
    v = jnp.ones(sum(w.size + b.size for w, b in params))
    for op in (
        ejx.hessian(loss_fn, params, data, **KW),
        ejx.ggn(model_fn, output_loss, params, data, **KW),
        ejx.gradient_covariance(loss_fn, params, data, **KW),
        ejx.gradient_covariance(loss_fn, params, data, per="batch", **KW),
    ):
        with pytest.raises(FloatingPointError, match="loss of batch 2 is nan"):
            op @ v
    with pytest.raises(FloatingPointError, match="loss of batch 2 is nan"):
        ejx.hessian(loss_fn, params, data, **KW).gradient()
    # Per-sample operators evaluate batch 0 when they are built.
    with pytest.raises(FloatingPointError, match="loss of batch 0 is nan"):
        ejx.gradient_covariance(loss_fn, params, data[::-1], **KW)


def test_product_overflow_names_the_batch(setup):
    params, model_fn, output_loss, _, batches = setup

    w0 = params[0][0][0, 0]

    def loss_fn(p, x, y):
        # On batch 1 only, a term sqrt|θ₀ − w0|: its value (0) is finite, its derivatives are
        # not. The double `where` keeps the other batches' derivatives finite.
        on = x[0, 0] == batches[1][0][0, 0]
        t = jnp.where(on, p[0][0][0, 0] - w0, 1.0)
        return output_loss(model_fn(p, x), y) + jnp.where(on, jnp.sqrt(jnp.abs(t)), 0.0)

    h = ejx.hessian(loss_fn, params, batches, **KW)
    with pytest.raises(FloatingPointError, match="hessian product returned NaN or Inf on batch 1"):
        h @ jnp.ones(h.shape[0])


def test_mapping_batches(setup):
    """tfds-style ``{"image", "label"}`` batches with ``targets="label"``, and the Hugging Face
    key by default: the same operator as the pairs."""
    params, _, _, loss_fn, batches = setup
    v = jnp.asarray(np.random.default_rng(5).standard_normal(sum(w.size + b.size for w, b in params)))
    expected = ejx.hessian(loss_fn, params, batches, **KW) @ v

    def image_loss(p, x, y):
        return loss_fn(p, x["image"], y)

    tfds = [{"image": x, "label": y} for x, y in batches]
    got = ejx.hessian(image_loss, params, tfds, targets="label", **KW) @ v
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12)
    hf = [{"image": x, "labels": y} for x, y in batches]
    got = ejx.hessian(image_loss, params, hf, **KW) @ v
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12)
    with pytest.raises(TypeError, match=r"batch 0 is a mapping with no key 'labels' \(keys \['image', 'label'\]\)"):
        ejx.hessian(image_loss, params, tfds)
