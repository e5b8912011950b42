"""The public constructors: ``hessian``, ``ggn``, ``gradient_covariance``, ``empirical_fisher``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import jax
from jax.sharding import Mesh

from .._options import document
from ._kernels import LossFn, batch_loss
from ._operator import CurvatureOperator
from ._options import JaxOptions
from ._setup import Setup, check_callable, check_per_sample, check_scalar

ModelFn = Callable[[Any, Any], Any]
OutputLoss = Callable[[Any, Any], jax.Array]

_PARAMETERS = {
    "loss_fn": """
        ``loss_fn(params, inputs, targets)`` -> the *mean* loss of the batch (a 0-d array).
        """,
    "model_fn": """
        ``model_fn(params, inputs)`` -> outputs (an array or a pytree of arrays).
        """,
    "output_loss": """
        ``output_loss(outputs, targets)`` -> the *mean* loss of the batch (a 0-d array).
        """,
    "per_sample_loss": """
        Optional ``(params, inputs, targets) -> (n_b,)`` per-sample losses whose mean is ``loss_fn``
        (``per="sample"`` only).
        """,
    "params": """
        The parameters to differentiate: any pytree of float32 or float64 arrays, all of one
        dtype (the operator's). The flat vector is ``jax.flatten_util.ravel_pytree(params)``.
        To hold some parameters fixed, close over them in the loss instead of passing them.
        A model's state (Flax NNX variables other than ``nnx.Param``, a linen variables dict
        with ``batch_stats`` beside ``params``, an Equinox ``nn.State``) is refused: see
        :func:`nnx_loss`, :func:`linen_loss`, :func:`equinox_loss`.
        """,
    "allow_state": """
        Differentiate with respect to a model's state found in ``params`` (running statistics
        become parameters) instead of refusing it.
        """,
    "data": """
        A list (or another re-iterable) of batches: ``(inputs, targets)`` pairs, or mappings
        with the targets inside (``targets=``; the other entries, as a dict, are the
        inputs); inputs and targets are JAX or NumPy arrays or pytrees of them, and the
        leading dimension of the first array of the targets (else of the inputs) is the batch
        size. The batches are moved to the parameters' device once, here, floating-point
        leaves cast to the parameters' dtype. Generators and other one-shot iterators are
        refused (the batches are read once, here: an iterator would be empty for the next
        operator).
        """,
    "targets": """
        For mapping batches: the key of the targets (``"labels"``, the Hugging Face convention;
        ``"label"`` for TensorFlow Datasets' ``{"image", "label"}``), or a callable
        ``batch -> targets`` (the whole mapping is then the inputs). The convention of the
        torch adapter, from the same code.
        """,
    "vectorize": """
        How the vectors of a block are multiplied, after one linearization per batch:
        ``True``: all at once, ``jax.vmap``; ``False``: the per-vector program unrolled b
        times (blocks wider than 8 in chunks of 8); ``"auto"`` (default): ``False`` on CPU,
        where an 8-vector product of the benchmark CNN ran 2× faster unrolled (XLA's CPU
        convolutions gain nothing from a batched tangent) though it compiled up to 2.5×
        slower, ``True`` on GPU and TPU.
        """,
    "compiler_options": """
        Passed to ``jax.jit`` for the per-batch functions. On CPU,
        ``{"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
        "xla_cpu_use_fusion_emitters": False}`` compiled the benchmark HVPs up to 6× faster for
        products 1.6–3.2× slower: worth it for small models and short runs.
        """,
    "mesh": """
        Data parallelism over the devices of a ``jax.sharding.Mesh``: every batch is split
        along its leading (sample) axis over the mesh's ``data_axis`` (a batch whose size
        that axis does not divide is replicated: each device computes all of it), the
        parameters and the operator's vectors are replicated on the mesh (``A.device`` is
        their ``NamedSharding``: put a vector there with ``jax.device_put(v, A.device)``),
        and XLA sums the devices' contributions inside the compiled product. The operator
        equals the single-device one up to rounding. One process (its local devices) only.
        """,
    "data_axis": """
        The mesh axis the samples are split over; ``None``: the mesh's only axis, or the
        one named ``"data"``.
        """,
}
"""The words for the JAX constructors' own parameters (the shared ones are in
:data:`eigenscope.adapters._options.SHARED_PARAMETERS`)."""

_RETURNS = """
    CurvatureOperator
        An ``eigenscope.LinearOperator`` of shape ``(n, n)``, ``symmetric=True``, on JAX arrays of
        the parameters' dtype and device. Each product runs one ``jax.jit``-compiled function per
        batch, traced once per distinct batch shape and block width.
    """


def hessian(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    *,
    targets: str | Callable[[Any], Any] = "labels",
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
    allow_state: bool = False,
) -> CurvatureOperator:
    """The Hessian of the mean loss over all the data, ``H = Σ_b (n_b/N) ∇²L_b(θ)``.

    ``L_b = loss_fn(params, inputs_b, targets_b)`` is batch ``b``'s mean loss and ``n_b`` its
    size: batches of unequal size are weighted by their size, so ``H`` is the Hessian of the
    mean over the ``N`` samples.

    A product ``H_b v`` is forward over reverse, ``jax.jvp`` of ``jax.grad``; the vectors of a
    block share the forward and backward pass (see ``vectorize``). Cost per product with a
    block of ``k`` vectors, per batch: one forward and one backward pass, plus per vector one
    forward-mode sweep through both (one HVP measured about 2 gradients).
    """
    check_callable(loss_fn, "loss_fn", "loss_fn(params, inputs, targets) -> mean loss")
    options = JaxOptions.from_arguments(locals())
    setup = Setup(params, data, options, "ejx.hessian")
    check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "loss_fn")
    return setup.operator("hessian", (loss_fn,))


def ggn(
    model_fn: ModelFn,
    output_loss: OutputLoss,
    params: Any,
    data: Iterable[Any],
    *,
    targets: str | Callable[[Any], Any] = "labels",
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
    allow_state: bool = False,
) -> CurvatureOperator:
    """The generalised Gauss-Newton matrix ``G = Σ_b (n_b/N) J_bᵀ H_ℓ,b J_b``.

    ``J_b`` is the Jacobian of ``model_fn(params, inputs_b)`` with respect to the parameters
    and ``H_ℓ,b`` the Hessian of ``output_loss(outputs, targets_b)`` (the batch's mean loss)
    with respect to the outputs. ``G`` is positive semi-definite when the loss is convex in
    the outputs (cross-entropy on logits, squared error, BCE with logits).

    ``J v`` by forward mode, ``H_ℓ u`` by ``jax.jvp`` of ``jax.grad`` of ``output_loss``, ``Jᵀw``
    by reverse mode. Cost per product with a block of ``k`` vectors, per batch: one forward
    pass, plus per vector a forward-mode pass, a loss-Hessian product and a backward pass.
    """
    check_callable(model_fn, "model_fn", "model_fn(params, inputs) -> outputs")
    check_callable(output_loss, "output_loss", "output_loss(outputs, targets) -> mean loss")
    options = JaxOptions.from_arguments(locals())
    setup = Setup(params, data, options, "ejx.ggn")

    def loss_fn(p: Any, inputs: Any, targets: Any) -> jax.Array:
        return output_loss(model_fn(p, inputs), targets)

    check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "output_loss")
    return setup.operator("ggn", (model_fn, output_loss))


def gradient_covariance(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    *,
    targets: str | Callable[[Any], Any] = "labels",
    centered: bool = False,
    per: Literal["sample", "batch"] = "sample",
    per_sample_loss: Callable[[Any, Any, Any], jax.Array] | None = None,
    reduction: Literal["mean", "sum"] = "mean",
    vectorize: bool | Literal["auto"] = "auto",
    compiler_options: Mapping[str, Any] | None = None,
    mesh: Mesh | None = None,
    data_axis: str | None = None,
    allow_state: bool = False,
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
    """
    check_callable(loss_fn, "loss_fn", "loss_fn(params, inputs, targets) -> mean loss")
    options = JaxOptions.from_arguments(locals())
    if per_sample_loss is not None and per != "sample":
        raise ValueError("per_sample_loss applies to per='sample' only")
    setup = Setup(params, data, options, "ejx.gradient_covariance")
    check_scalar(setup.first_shape(batch_loss(loss_fn, setup.flat.unravel)), "loss_fn")
    if per == "batch":
        return setup.operator("gradient_covariance", (loss_fn, None))
    if per_sample_loss is None:
        setup.batches.check_per_sample()
        source = "loss_fn on one-sample batches (vmap)"
    else:
        check_callable(per_sample_loss, "per_sample_loss", "per_sample_loss(params, inputs, targets) -> (n_b,)")
        source = "per_sample_loss"
    op = setup.operator("gradient_covariance", (loss_fn, per_sample_loss), details={"per_sample_loss": source})
    check_per_sample(op, source, setup)
    return op


def empirical_fisher(
    loss_fn: LossFn,
    params: Any,
    data: Iterable[Any],
    **kwargs: Any,
) -> CurvatureOperator:
    """The empirical Fisher ``F = (1/N) Σ_i ∇ℓᵢ ∇ℓᵢᵀ``: :func:`gradient_covariance` with
    ``per="sample"`` and ``centered=False`` (other keywords are passed on)."""
    return gradient_covariance(loss_fn, params, data, per="sample", centered=False, **kwargs)


for _constructor in (hessian, ggn, gradient_covariance):
    document(_constructor, _PARAMETERS, returns=_RETURNS)
