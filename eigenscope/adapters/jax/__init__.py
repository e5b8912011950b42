"""JAX adapters: curvature matrices of a model + loss + data as eigenscope operators.

>>> import eigenscope as es
>>> from eigenscope.adapters import jax as ejx
>>> H = ejx.hessian(loss_fn, params, batches)   # doctest: +SKIP
>>> es.eigsh(H, k=5)                              # doctest: +SKIP

``loss_fn(params, inputs, targets)`` returns the mean loss of a batch, ``params`` is any
pytree of float32 or float64 arrays and ``batches`` a list of ``(inputs, targets)`` pairs or
of mappings with the targets inside (``targets="labels"`` by default, ``targets="label"``
for TensorFlow Datasets), read as the torch adapter reads them.
Every operator is an :class:`eigenscope.LinearOperator` over ``ravel_pytree(params)`` (JAX
arrays of the parameters' dtype and device, ``symmetric=True``); the per-batch product is
compiled once by ``jax.jit`` and the full-data product is the mean over samples. With
``mesh=`` every batch is split over the devices of a ``jax.sharding.Mesh`` (see
``docs/distributed.md``).

One constructor per curvature matrix of :data:`eigenscope.adapters.KINDS`, with the
matrix's name: :func:`hessian`, :func:`ggn`, :func:`gradient_covariance` (``per="sample"``
or ``per="batch"``); :func:`empirical_fisher` is :func:`gradient_covariance` with
``per="sample"``.

Flax and Equinox models in one line, with their state (BatchNorm statistics, RNG state)
held fixed and only the trainable parameters differentiated: :func:`nnx_loss`,
:func:`linen_loss`, :func:`equinox_loss` return ``(loss_fn, params)`` (and the ``*_model``
variants ``(model_fn, params)`` for :func:`ggn`). A ``params`` pytree holding such state is
refused unless ``allow_state=True``. The constructors and the algorithms are host-side
loops: called inside ``jax.jit`` they raise :class:`TracedCallError`.
"""

from ... import backends
from ._api import empirical_fisher, ggn, gradient_covariance, hessian
from ._compile import RecompilationWarning
from ._modules import (
    LossFunction,
    ModelFunction,
    equinox_loss,
    equinox_model,
    linen_loss,
    linen_model,
    nnx_loss,
    nnx_model,
)
from ._operator import CurvatureOperator

TracedCallError = backends.TracedCallError

__all__ = [
    "CurvatureOperator",
    "LossFunction",
    "ModelFunction",
    "RecompilationWarning",
    "TracedCallError",
    "empirical_fisher",
    "equinox_loss",
    "equinox_model",
    "ggn",
    "gradient_covariance",
    "hessian",
    "linen_loss",
    "linen_model",
    "nnx_loss",
    "nnx_model",
]
