"""JAX adapters: curvature matrices of a model + loss + data as eigenscope operators.

>>> import eigenscope as es
>>> from eigenscope.adapters import jax as ejx
>>> H = ejx.hessian(loss_fn, params, batches)   # doctest: +SKIP
>>> es.eigsh(H, k=5)                              # doctest: +SKIP

``loss_fn(params, inputs, targets)`` returns the mean loss of a batch, ``params`` is any
pytree of float32 or float64 arrays and ``batches`` a list of ``(inputs, targets)`` pairs.
Every operator is an :class:`eigenscope.LinearOperator` over ``ravel_pytree(params)`` (JAX
arrays of the parameters' dtype and device, ``symmetric=True``); the per-batch product is
compiled once by ``jax.jit`` and the full-data product is the mean over samples. With
``mesh=`` every batch is split over the devices of a ``jax.sharding.Mesh`` (see
``docs/distributed.md``).

One constructor per curvature matrix of :data:`eigenscope.adapters.KINDS`, with the
matrix's name: :func:`hessian`, :func:`ggn`, :func:`gradient_covariance` (``per="sample"``
or ``per="batch"``); :func:`empirical_fisher` is :func:`gradient_covariance` with
``per="sample"``.
"""

from ._api import empirical_fisher, ggn, gradient_covariance, hessian
from ._operator import CurvatureOperator

__all__ = [
    "CurvatureOperator",
    "empirical_fisher",
    "ggn",
    "gradient_covariance",
    "hessian",
]
