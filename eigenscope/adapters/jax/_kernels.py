"""One batch's curvature times a block of vectors, as pure functions for ``jax.jit``.

Every kernel has the signature ``kernel(theta, inputs, targets, V) -> (Y, loss)``: ``theta``
the flat ``(n,)`` parameters, ``V`` an ``(n, b)`` block, ``Y`` the batch's matrix (for the
batch's *mean* loss) times ``V`` and ``loss`` the batch's mean loss (returned so that the
operator can name a batch whose loss is NaN without another forward pass).

Each kernel linearizes once per batch (``jax.linearize``: the forward and first backward
pass, whose residuals are kept) and then applies the linear map to every vector of the
block, either all at once (``vectorize=True``: ``jax.vmap``) or one after the other
(``vectorize=False``: the map unrolled b times in the compiled program). Either way the
first-order passes run once per batch, not once per vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._kinds import one_per_kind

Kernel = Callable[[jax.Array, Any, Any, jax.Array], tuple[jax.Array, jax.Array]]
LossFn = Callable[[Any, Any, Any], jax.Array]


def batch_loss(loss_fn: LossFn, unravel: Callable[[jax.Array], Any]) -> Callable[..., jax.Array]:
    """``(θ, inputs, targets) -> L_b(θ)`` on the flat vector."""

    def loss(theta: jax.Array, inputs: Any, targets: Any) -> jax.Array:
        return loss_fn(unravel(theta), inputs, targets)

    return loss


def over_columns(one: Callable[[jax.Array], jax.Array], v_block: jax.Array, vectorize: bool) -> jax.Array:
    """``[one(v_1), ..., one(v_b)]`` as columns, for ``v_block`` of shape ``(n, b)``.

    ``vmap`` batches every operation over the b vectors. The unrolled form repeats the
    per-vector program b times: on CPU an 8-vector product of the benchmark CNN ran twice as
    fast unrolled, for a compile 1.2–2.5× longer (which grows with b). A ``lax.map`` loop is
    not offered: XLA's CPU convolutions inside a loop body ran 30× slower.
    """
    if vectorize:
        return jax.vmap(one, in_axes=1, out_axes=1)(v_block)
    return jnp.stack([one(v_block[:, j]) for j in range(v_block.shape[1])], axis=1)


def hessian_kernel(loss_fn: LossFn, unravel: Callable[[jax.Array], Any], vectorize: bool) -> Kernel:
    """``H_b V`` by forward over reverse: ``H_b v = ∂/∂ε ∇L_b(θ + εv)``, the ``jax.jvp`` of
    ``jax.grad`` (through ``jax.linearize``, which evaluates the gradient once and keeps the
    linear map). Cost per batch: one forward and one backward pass, then per vector one
    forward-mode sweep through both (one HVP measured about 2 gradients)."""
    f = batch_loss(loss_fn, unravel)

    def kernel(theta: jax.Array, inputs: Any, targets: Any, v_block: jax.Array) -> tuple[jax.Array, jax.Array]:
        (loss, _), lin = jax.linearize(jax.value_and_grad(lambda th: f(th, inputs, targets)), theta)
        return over_columns(lambda v: lin(v)[1], v_block, vectorize), loss

    return kernel


def ggn_kernel(
    model_fn: Callable[[Any, Any], Any],
    output_loss: Callable[[Any, Any], jax.Array],
    unravel: Callable[[jax.Array], Any],
    vectorize: bool,
) -> Kernel:
    """``G_b V = J_bᵀ H_ℓ J_b V``.

    ``J_b v`` by forward mode through ``model_fn``, ``H_ℓ u`` (the Hessian of the batch's mean
    loss with respect to the outputs) by ``jax.jvp`` of ``jax.grad`` of ``output_loss``, and
    ``J_bᵀ w`` by reverse mode. ``jax.linearize`` runs the forward pass once and keeps its
    linearization; ``jax.linear_transpose`` of that linearization is the vjp (what
    ``jax.vjp`` computes) without a second forward pass. Cost per batch: one forward pass,
    then per vector one forward-mode pass, a loss-Hessian product and one backward pass.
    """

    def kernel(theta: jax.Array, inputs: Any, targets: Any, v_block: jax.Array) -> tuple[jax.Array, jax.Array]:
        outputs, jvp_fn = jax.linearize(lambda th: model_fn(unravel(th), inputs), theta)
        vjp_fn = jax.linear_transpose(jvp_fn, theta)
        _, loss_hvp = jax.linearize(jax.grad(lambda o: output_loss(o, targets)), outputs)

        def one(v: jax.Array) -> jax.Array:
            return vjp_fn(loss_hvp(jvp_fn(v)))[0]

        return over_columns(one, v_block, vectorize), output_loss(outputs, targets)

    return kernel


def per_sample_from_mean(loss_fn: LossFn) -> Callable[[Any, Any, Any], jax.Array]:
    """Per-sample losses from a mean-of-the-batch ``loss_fn``: ``ℓᵢ = loss_fn(params, xᵢ, yᵢ)``
    where ``xᵢ``/``yᵢ`` are sample ``i`` of every leaf kept as a batch of one (leading axis of
    size 1), mapped over the samples with ``jax.vmap``. ``loss_fn`` thus sees the shapes it
    sees on a batch, with batch size 1."""

    def losses(params: Any, inputs: Any, targets: Any) -> jax.Array:
        def single(x: Any, y: Any) -> jax.Array:
            one = lambda a: a[None]  # noqa: E731  (a batch of one sample)
            return loss_fn(params, jax.tree_util.tree_map(one, x), jax.tree_util.tree_map(one, y))

        return jax.vmap(single)(inputs, targets)

    return losses


def sample_covariance_kernel(
    per_sample: Callable[[Any, Any, Any], jax.Array], unravel: Callable[[jax.Array], Any], vectorize: bool
) -> Kernel:
    """``M_b V = (1/n_b) Σᵢ gᵢ gᵢᵀ V = Jᵀ(J V)/n_b`` with ``J = ∂ℓ/∂θ`` (``n_b × n``, row ``i``
    = ``gᵢᵀ``), never forming a per-sample gradient: ``J v`` by forward mode through the
    per-sample losses, ``Jᵀu`` by reverse mode (the transpose of the same linearization).
    Cost per batch: one forward pass, and per vector a forward-mode and a backward pass."""

    def kernel(theta: jax.Array, inputs: Any, targets: Any, v_block: jax.Array) -> tuple[jax.Array, jax.Array]:
        losses, jvp_fn = jax.linearize(lambda th: per_sample(unravel(th), inputs, targets), theta)
        vjp_fn = jax.linear_transpose(jvp_fn, theta)
        n_b = losses.shape[0]

        def one(v: jax.Array) -> jax.Array:
            return vjp_fn(jvp_fn(v) / n_b)[0]

        return over_columns(one, v_block, vectorize), jnp.mean(losses)

    return kernel


def batch_covariance_kernel(loss_fn: LossFn, unravel: Callable[[jax.Array], Any]) -> Kernel:
    """``M_b V = g_b (g_bᵀ V)`` with ``g_b = ∇L_b(θ)`` the minibatch gradient. Cost per batch:
    one forward and one backward pass whatever the number of vectors."""
    f = batch_loss(loss_fn, unravel)

    def kernel(theta: jax.Array, inputs: Any, targets: Any, v_block: jax.Array) -> tuple[jax.Array, jax.Array]:
        loss, g = jax.value_and_grad(f)(theta, inputs, targets)
        return g[:, None] * (g @ v_block)[None, :], loss

    return kernel


class Built(NamedTuple):
    """What a kind of operator computes per batch, on the flat vector ``θ``."""

    kernel: Kernel
    loss: Callable[..., jax.Array]  # (θ, inputs, targets) -> the batch's mean loss
    per_sample: Callable[..., jax.Array] | None  # (θ, inputs, targets) -> (n_b,) losses, per-sample kinds only


def _hessian(fns: tuple[Any, ...], per: str | None, unravel: Callable[[jax.Array], Any], vectorize: bool) -> Built:
    (loss_fn,) = fns
    return Built(hessian_kernel(loss_fn, unravel, vectorize), batch_loss(loss_fn, unravel), None)


def _ggn(fns: tuple[Any, ...], per: str | None, unravel: Callable[[jax.Array], Any], vectorize: bool) -> Built:
    model_fn, output_loss = fns

    def loss_fn(params: Any, inputs: Any, targets: Any) -> jax.Array:
        return output_loss(model_fn(params, inputs), targets)

    return Built(ggn_kernel(model_fn, output_loss, unravel, vectorize), batch_loss(loss_fn, unravel), None)


def _gradient_covariance(
    fns: tuple[Any, ...], per: str | None, unravel: Callable[[jax.Array], Any], vectorize: bool
) -> Built:
    loss_fn, per_sample_loss = fns
    loss = batch_loss(loss_fn, unravel)
    if per == "batch":
        return Built(batch_covariance_kernel(loss_fn, unravel), loss, None)
    per_sample = per_sample_loss if per_sample_loss is not None else per_sample_from_mean(loss_fn)
    return Built(sample_covariance_kernel(per_sample, unravel, vectorize), loss, batch_loss(per_sample, unravel))


BUILDERS = one_per_kind(
    {"hessian": _hessian, "ggn": _ggn, "gradient_covariance": _gradient_covariance}, "the JAX adapter's kernels"
)
"""Kind name (:data:`eigenscope.adapters.KINDS`) -> ``(fns, per, unravel, vectorize) -> Built``."""


def build(
    kind: str, per: str | None, fns: tuple[Any, ...], unravel: Callable[[jax.Array], Any], vectorize: bool
) -> Built:
    """The kernel and losses of a kind of operator.

    ``kind`` is a name of :data:`eigenscope.adapters.KINDS` and ``per`` its ``per=`` option
    (``None`` for kinds without one); ``fns`` is ``(loss_fn,)`` for ``"hessian"``,
    ``(model_fn, output_loss)`` for ``"ggn"`` and ``(loss_fn, per_sample_loss or None)`` for
    ``"gradient_covariance"``.
    """
    return BUILDERS[kind](fns, per, unravel, vectorize)
