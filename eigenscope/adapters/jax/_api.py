"""The public constructors: ``hessian``, ``ggn``, ``gradient_covariance``, ``empirical_fisher``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ._compile import compiled
from ._data import Batches
from ._kernels import LossFn, batch_loss
from ._operator import CurvatureOperator
from ._params import FlatParams, flatten_params
from ._sharding import resolve_mesh

ModelFn = Callable[[Any, Any], Any]
OutputLoss = Callable[[Any, Any], jax.Array]

_COMMON_DOC = """params
        The parameters to differentiate: any pytree of float32 or float64 arrays, all of one
        dtype (the operator's). The flat vector is ``jax.flatten_util.ravel_pytree(params)``.
        To hold some parameters fixed, close over them in the loss instead of passing them.
    data
        A list (or another re-iterable) of ``(inputs, targets)`` batches; ``inputs`` and
        ``targets`` are JAX or NumPy arrays or pytrees of them, and the leading dimension of
        (the first leaf of) ``targets`` is the batch size. The batches are moved to the
        parameters' device once, here, floating-point leaves cast to the parameters' dtype.
        Generators and other one-shot iterators are refused.
    reduction
        ``"mean"`` (the matrix of the mean loss over the N samples) or ``"sum"`` (N times it).
    vectorize
        How the vectors of a block are multiplied, after one linearization per batch:
        ``True``: all at once, ``jax.vmap``; ``False``: the per-vector program unrolled b
        times (blocks wider than 8 in chunks of 8); ``"auto"`` (default): ``False`` on CPU,
        where an 8-vector product of the benchmark CNN ran 2× faster unrolled (XLA's CPU
        convolutions gain nothing from a batched tangent) though it compiled up to 2.5×
        slower, ``True`` on GPU and TPU.
    compiler_options
        Passed to ``jax.jit`` for the per-batch functions. On CPU,
        ``{"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
        "xla_cpu_use_fusion_emitters": False}`` compiled the benchmark HVPs up to 6× faster for
        products 1.6–3.2× slower: worth it for small models and short runs.
    mesh
        Data parallelism over the devices of a ``jax.sharding.Mesh``: every batch is split
        along its leading (sample) axis over the mesh's ``data_axis`` (a batch whose size
        that axis does not divide is replicated: each device computes all of it), the
        parameters and the operator's vectors are replicated on the mesh (``A.device`` is
        their ``NamedSharding``: put a vector there with ``jax.device_put(v, A.device)``),
        and XLA sums the devices' contributions inside the compiled product. The operator
        equals the single-device one up to rounding. One process (its local devices) only.
    data_axis
        The mesh axis the samples are split over; ``None``: the mesh's only axis, or the
        one named ``"data"``.

    Returns
    -------
    CurvatureOperator
        An ``eigenscope.LinearOperator`` of shape ``(n, n)``, ``symmetric=True``, on JAX arrays of
        the parameters' dtype and device. Each product runs one ``jax.jit``-compiled function per
        batch, traced once per distinct batch shape and block width.
"""


def _check_callable(fn: Any, name: str, signature: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be a callable {signature}, got {type(fn).__name__}")


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _check_scalar(out: Any, what: str) -> None:
    """``out`` (from ``jax.eval_shape``) must be one floating-point scalar."""
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(
            f"{what} must return one scalar array (the mean loss of the batch), got a {type(out).__name__}"
        )
    if out.shape != ():
        raise ValueError(
            f"{what} must return a scalar (the mean loss of the batch), got shape {out.shape}; reduce it with jnp.mean"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{what} must return a floating-point loss, got dtype {out.dtype}")


def _resolve_vectorize(vectorize: bool | str, theta: jax.Array) -> bool:
    if vectorize == "auto":
        # Measured on CPU (benchmarks/bench_jax_adapters.py): unrolled beats vmap there.
        return all(d.platform != "cpu" for d in theta.devices())
    if not isinstance(vectorize, bool):
        raise ValueError(f"vectorize must be True, False or 'auto', got {vectorize!r}")
    return vectorize


class _Setup:
    """Parameters and data, validated once."""

    def __init__(
        self,
        params: Any,
        data: Iterable[Any],
        reduction: str,
        vectorize: bool | str,
        compiler_options: Mapping[str, Any] | None,
        mesh: Mesh | None,
        data_axis: str | None,
    ) -> None:
        _check_reduction(reduction)
        if compiler_options is not None and not isinstance(compiler_options, Mapping):
            raise TypeError(f"compiler_options must be a mapping or None, got {type(compiler_options).__name__}")
        self.sharding = resolve_mesh(mesh, data_axis)
        self.flat: FlatParams = flatten_params(params)
        if self.sharding is not None:
            # Replicated parameters: every device holds θ and the operator's vectors.
            self.flat = dataclasses.replace(self.flat, theta=jax.device_put(self.flat.theta, self.sharding.replicated))
        self.batches = Batches(data, device=self.flat.device, dtype=self.flat.dtype, sharding=self.sharding)
        self.reduction = reduction
        self.vectorize = _resolve_vectorize(vectorize, self.flat.theta)
        self.compiler_options = compiler_options

    def first_shape(self, fn: Callable[..., Any]) -> Any:
        """The shape/dtype ``fn(θ, inputs, targets)`` returns on batch 0 (traced, not run)."""
        inputs, targets = self.batches.first()
        return jax.eval_shape(fn, self.flat.theta, inputs, targets)

    def operator(self, kind: str, compiled_kind: str, fns: tuple[Any, ...], **kw: Any) -> CurvatureOperator:
        return CurvatureOperator(
            kind=kind,
            compiled=compiled(compiled_kind, fns, self.flat.structure, self.vectorize, self.compiler_options),
            flat=self.flat,
            batches=self.batches,
            reduction=self.reduction,
            vectorize=self.vectorize,
            sharding=self.sharding,
            **kw,
        )


def hessian(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    *,
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
) -> CurvatureOperator:
    """The Hessian of the mean loss over all the data, ``H = Σ_b (n_b/N) ∇²L_b(θ)``.

    ``L_b = loss_fn(params, inputs_b, targets_b)`` is batch ``b``'s mean loss and ``n_b`` its
    size: batches of unequal size are weighted by their size, so ``H`` is the Hessian of the
    mean over the ``N`` samples.

    A product ``H_b v`` is forward over reverse, ``jax.jvp`` of ``jax.grad``; the vectors of a
    block share the forward and backward pass (see ``vectorize``). Cost per product with a
    block of ``k`` vectors, per batch: one forward and one backward pass, plus per vector one
    forward-mode sweep through both (one HVP measured about 2 gradients).

    Parameters
    ----------
    loss_fn
        ``loss_fn(params, inputs, targets)`` -> the *mean* loss of the batch (a 0-d array).
    """
    _check_callable(loss_fn, "loss_fn", "loss_fn(params, inputs, targets) -> mean loss")
    setup = _Setup(params, data, reduction, vectorize, compiler_options, mesh, data_axis)
    _check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "loss_fn")
    return setup.operator("hessian", "hessian", (loss_fn,))


def ggn(
    model_fn: ModelFn,
    output_loss: OutputLoss,
    params: Any,
    data: Iterable[Any],
    *,
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
) -> CurvatureOperator:
    """The generalised Gauss-Newton matrix ``G = Σ_b (n_b/N) J_bᵀ H_ℓ,b J_b``.

    ``J_b`` is the Jacobian of ``model_fn(params, inputs_b)`` with respect to the parameters
    and ``H_ℓ,b`` the Hessian of ``output_loss(outputs, targets_b)`` (the batch's mean loss)
    with respect to the outputs. ``G`` is positive semi-definite when the loss is convex in
    the outputs (cross-entropy on logits, squared error, BCE with logits).

    ``J v`` by forward mode, ``H_ℓ u`` by ``jax.jvp`` of ``jax.grad`` of ``output_loss``, ``Jᵀw``
    by reverse mode. Cost per product with a block of ``k`` vectors, per batch: one forward
    pass, plus per vector a forward-mode pass, a loss-Hessian product and a backward pass.

    Parameters
    ----------
    model_fn
        ``model_fn(params, inputs)`` -> outputs (an array or a pytree of arrays).
    output_loss
        ``output_loss(outputs, targets)`` -> the *mean* loss of the batch (a 0-d array).
    """
    _check_callable(model_fn, "model_fn", "model_fn(params, inputs) -> outputs")
    _check_callable(output_loss, "output_loss", "output_loss(outputs, targets) -> mean loss")
    setup = _Setup(params, data, reduction, vectorize, compiler_options, mesh, data_axis)

    def loss_fn(p: Any, inputs: Any, targets: Any) -> jax.Array:
        return output_loss(model_fn(p, inputs), targets)

    _check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "output_loss")
    return setup.operator("ggn", "ggn", (model_fn, output_loss))


def gradient_covariance(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    *,
    centered: bool = False,
    per: Literal["sample", "batch"] = "sample",
    per_sample_loss: Callable[[Any, Any, Any], jax.Array] | None = None,
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
) -> CurvatureOperator:
    """The second moment of per-sample or per-batch gradients, optionally centred.

    - ``per="sample"``: ``M = (1/N) Σ_i gᵢ gᵢᵀ`` with ``gᵢ = ∇ℓᵢ(θ)`` the gradient of sample
      ``i``'s loss (the empirical Fisher for a log-likelihood loss);
    - ``per="batch"``: ``M = Σ_b (n_b/N) g_b g_bᵀ`` with ``g_b = ∇L_b(θ)`` the minibatch gradient;
    - ``centered=True`` returns ``M − ḡḡᵀ``, ``ḡ = ∇L(θ)`` the full-data gradient (computed
      once, at the first product).

    Per-sample losses: ``ℓᵢ = loss_fn(params, inputs[i:i+1], targets[i:i+1])``, i.e. ``loss_fn``
    called on a batch of *one* sample (every leaf of ``inputs`` and ``targets`` sliced along
    its leading axis, which must be the batch dimension), mapped over the samples with
    ``jax.vmap``; or ``per_sample_loss(params, inputs, targets)`` -> shape ``(n_b,)`` when
    given (for losses that are not a plain mean over samples, or inputs with leaves that
    have no batch dimension). Batch 0 checks that the mean of the per-sample losses equals
    ``loss_fn``.

    Products never form a per-sample gradient: ``M_b v = Jᵀ(J v)/n_b`` with ``J`` the Jacobian
    of the per-sample losses (``J v`` by forward mode, ``Jᵀu`` by reverse mode). Cost per
    product with a block of ``k`` vectors, per batch: ``per="sample"``: one forward pass plus a
    forward-mode and a backward pass per vector; ``per="batch"``: one forward and one
    backward pass whatever ``k``.

    Parameters
    ----------
    loss_fn
        ``loss_fn(params, inputs, targets)`` -> the *mean* loss of the batch (a 0-d array).
    centered
        Subtract ``ḡḡᵀ``.
    per
        ``"sample"`` or ``"batch"``.
    per_sample_loss
        Optional ``(params, inputs, targets) -> (n_b,)`` per-sample losses whose mean is ``loss_fn``.
    """
    _check_callable(loss_fn, "loss_fn", "loss_fn(params, inputs, targets) -> mean loss")
    if per not in ("sample", "batch"):
        raise ValueError(f"per must be 'sample' or 'batch', got {per!r}")
    if per_sample_loss is not None and per != "sample":
        raise ValueError("per_sample_loss applies to per='sample' only")
    setup = _Setup(params, data, reduction, vectorize, compiler_options, mesh, data_axis)
    _check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "loss_fn")
    details: dict[str, Any] = {"per": per}
    if per == "batch":
        return setup.operator("gradient_covariance", "batch_covariance", (loss_fn,), centered=centered, details=details)
    if per_sample_loss is None:
        setup.batches.check_per_sample()
        source = "loss_fn on one-sample batches (vmap)"
    else:
        _check_callable(per_sample_loss, "per_sample_loss", "per_sample_loss(params, inputs, targets) -> (n_b,)")
        source = "per_sample_loss"
    details["per_sample_loss"] = source
    op = setup.operator(
        "gradient_covariance", "sample_covariance", (loss_fn, per_sample_loss), centered=centered, details=details
    )
    _check_per_sample(op, source, setup)
    return op


def _check_per_sample(op: CurvatureOperator, source: str, setup: _Setup) -> None:
    """On batch 0: per-sample losses of shape ``(n_0,)`` whose mean is the batch loss."""
    inputs, targets = setup.batches.first()
    check = op._compiled.per_sample_and_mean
    n = setup.batches.batch_sizes[0]
    shape = jax.eval_shape(check, setup.flat.theta, inputs, targets)[0]
    if not isinstance(shape, jax.ShapeDtypeStruct) or shape.shape != (n,):
        got = shape.shape if isinstance(shape, jax.ShapeDtypeStruct) else type(shape).__name__
        raise ValueError(f"per-sample losses ({source}) have shape {got}, expected ({n},) on batch 0")
    values, value = jax.device_get(check(setup.flat.theta, inputs, targets))
    mean, value = float(np.mean(values)), float(value)
    if not np.isfinite(value):
        raise FloatingPointError(f"the loss of batch 0 is {value}")
    tol = 1e3 * float(jnp.finfo(setup.flat.dtype).eps) * max(1.0, abs(value))
    if not abs(mean - value) <= tol:  # also catches NaN
        raise ValueError(
            f"the mean of the per-sample losses ({source}) is {mean!r} but loss_fn gives {value!r} on batch 0; "
            "the loss is not a mean over independent samples (normalised by the whole batch, or coupling the "
            "samples): pass per_sample_loss=(params, inputs, targets) -> (batch_size,) whose mean is loss_fn"
        )


def empirical_fisher(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    **kwargs: Any,
) -> CurvatureOperator:
    """The empirical Fisher ``F = (1/N) Σ_i ∇ℓᵢ ∇ℓᵢᵀ``: :func:`gradient_covariance` with
    ``per="sample"`` and ``centered=False`` (other keywords are passed on)."""
    return gradient_covariance(loss_fn, params, data, per="sample", centered=False, **kwargs)


hessian.__doc__ = (hessian.__doc__ or "") + _COMMON_DOC
ggn.__doc__ = (ggn.__doc__ or "") + _COMMON_DOC
gradient_covariance.__doc__ = (gradient_covariance.__doc__ or "") + _COMMON_DOC
