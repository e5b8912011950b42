"""``CurvatureOperator``: a per-batch curvature kernel, compiled once, summed over the data."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import backends
from ...linop import LinearOperator
from ._compile import Compiled
from ._data import Batches
from ._params import FlatParams
from ._sharding import DataSharding

_XP = backends.resolve_namespace(jnp)

MAX_UNROLL = 8
"""Most vectors per pass over the data when the per-vector program is unrolled
(``vectorize=False``): compile time grows with the number of copies, so a wider block is
multiplied in chunks of this many columns (each chunk a pass over the data)."""


class CurvatureOperator(LinearOperator):
    """A curvature matrix of a JAX model over a data set, as an eigenscope operator.

    ``A = scale · Σ_b (n_b / N) A_b`` where ``A_b`` is the kind's matrix for batch ``b``'s mean
    loss (Hessian, GGN or gradient second moment), ``n_b`` its size, ``N`` the number of
    samples and ``scale`` 1 (``reduction="mean"``) or ``N`` (``"sum"``). Built by
    :func:`hessian`, :func:`ggn`, :func:`gradient_covariance`. Products take and return JAX
    arrays of shape ``(n,)`` / ``(n, b)`` with the parameters' dtype and device, ``n`` the
    length of ``ravel_pytree(params)``; :meth:`unflatten` maps a vector back to the pytree.

    The operator is evaluated at the ``params`` it was built with (JAX arrays are
    immutable: build a new operator for new parameters). The per-batch product is one
    ``jax.jit``-compiled function, traced once per distinct batch shape and block width
    (an uneven last batch adds one trace; so does a new number of vectors ``b``), and shared
    with every operator of the same kind built from the same functions (by identity) and
    parameter structure: an operator at new parameters of the same model compiles nothing.

    Attributes
    ----------
    kind : str
        ``"hessian"``, ``"ggn"`` or ``"gradient_covariance"``.
    reduction : str
        ``"mean"`` or ``"sum"``.
    vectorize : bool
        Whether the vectors of a block share one ``jax.vmap``-ed pass (else the per-vector
        program is unrolled).
    centered : bool
        Whether ``ḡḡᵀ`` is subtracted (gradient covariance).
    details : dict
        Kind-specific choices (``per``, the source of the per-sample losses).
    num_params, num_samples, num_batches : int
        ``n``, ``N`` and the number of batches; ``batch_sizes`` lists the ``n_b``.
    param_paths : tuple[str, ...]
        The leaves of ``params`` in flat-vector order (``jax.tree_util.keystr`` paths).
    num_matvecs : int
        Vectors multiplied so far (a block of b counts b).
    num_calls : int
        Calls of ``matvec``/``matmat``.
    num_forward_passes : int
        Per-batch products (one forward and first-order pass each), summed over batches.
    num_vector_passes : int
        Per-vector passes over one batch, summed over batches and vectors.
    mesh : jax.sharding.Mesh | None
        With ``mesh=``, the mesh whose ``data_axis`` the batches are split over
        (``num_replicated_batches`` of them could not be split evenly and are replicated).
    num_traces : int
        Times the per-batch product was traced (and so compiled) by ``jax.jit`` during this
        operator's products (0 when an earlier operator already compiled every shape).
    """

    def __init__(
        self,
        *,
        kind: str,
        compiled: Compiled,
        flat: FlatParams,
        batches: Batches,
        reduction: str,
        vectorize: bool,
        sharding: DataSharding | None = None,
        centered: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        n = flat.num_params
        super().__init__(shape=(n, n), dtype=flat.dtype, device=flat.device, xp=_XP, symmetric=True)
        self.kind = kind
        self.reduction = reduction
        self.vectorize = vectorize
        self.centered = centered
        self.details = dict(details or {})
        self._flat = flat
        self._batches = batches
        self._compiled = compiled
        self._sharding = sharding
        total = batches.num_samples
        # Mean over samples: batch b weighs n_b / N, never 1 / num_batches.
        self._weights = [
            jax.device_put(np.asarray(size / total, dtype=flat.dtype), flat.device) for size in batches.batch_sizes
        ]
        self._gbar: jax.Array | None = None
        self._mean_loss: float | None = None
        self.num_traces = 0
        self.reset_counters()

    # ---- description -----------------------------------------------------------
    @property
    def num_params(self) -> int:
        """``n``, the length of the flat parameter vector."""
        return self._flat.num_params

    @property
    def num_samples(self) -> int:
        """``N``, samples over all batches."""
        return self._batches.num_samples

    @property
    def num_batches(self) -> int:
        """Number of batches."""
        return self._batches.num_batches

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Samples per batch."""
        return self._batches.batch_sizes

    @property
    def mesh(self) -> Any:
        """The ``jax.sharding.Mesh`` the data is split over, or ``None``."""
        return None if self._sharding is None else self._sharding.mesh

    @property
    def data_axis(self) -> str | None:
        """The mesh axis the samples are split over, or ``None``."""
        return None if self._sharding is None else self._sharding.axis

    @property
    def num_replicated_batches(self) -> int:
        """Batches whose size the data axis does not divide, replicated on every device."""
        return self._batches.num_replicated

    @property
    def num_batch_shapes(self) -> int:
        """Distinct batch shapes: each costs one compilation per block width."""
        return self._batches.num_shapes

    @property
    def param_paths(self) -> tuple[str, ...]:
        """The leaves of ``params`` in flat-vector order."""
        return self._flat.paths

    def reset_counters(self) -> None:
        """Set the product and pass counters to zero (``num_traces`` is kept)."""
        self.num_matvecs = 0
        self.num_calls = 0
        self.num_forward_passes = 0
        self.num_vector_passes = 0

    def __repr__(self) -> str:
        sharding = self._sharding
        place = f"device={self.device}" if sharding is None else f"mesh={sharding.axis}:{sharding.size}"
        return (
            f"<CurvatureOperator {self.kind} n={self.num_params} N={self.num_samples} "
            f"batches={self.num_batches} vectorize={self.vectorize} dtype={backends.dtype_name(self.dtype)} "
            f"{place}>"
        )

    # ---- flat vectors <-> parameters --------------------------------------------
    def parameters_vector(self) -> jax.Array:
        """The parameters as one flat ``(n,)`` vector."""
        return self._flat.theta

    def unflatten(self, v: jax.Array) -> Any:
        """A flat ``(n,)`` vector (an eigenvector, say) as a pytree shaped like ``params``."""
        self._check_operand(v, 1, self.num_params, "unflatten")
        return self._flat.unravel(v)

    # ---- first-order quantities ---------------------------------------------------
    def _first_order(self) -> None:
        acc = jnp.zeros(self.num_params, dtype=self.dtype, device=self.device)
        status = self._new_status()
        for (index, inputs, targets, _), weight in zip(self._batches, self._weights, strict=True):
            acc, status = self._compiled.value_and_grad(acc, status, index, weight, self._flat.theta, inputs, targets)
        losses = self._check_status(status, "gradient")
        self._gbar = acc
        self._mean_loss = float(np.dot(losses, self.batch_sizes) / self.num_samples)

    def gradient(self) -> jax.Array:
        """``∇L(θ)``, the gradient of the mean loss over all the data (``(n,)``, computed once
        and cached: the parameters never change). Costs one forward and one backward pass
        per batch."""
        if self._gbar is None:
            self._first_order()
        return self._gbar

    def loss(self) -> float:
        """The mean loss over all the data (computed with :meth:`gradient`, cached)."""
        if self._mean_loss is None:
            self._first_order()
        return self._mean_loss

    def clear_cache(self) -> None:
        """Forget the cached gradient and loss (the compiled functions are kept)."""
        self._gbar = None
        self._mean_loss = None

    # ---- products -------------------------------------------------------------------
    def _new_status(self) -> jax.Array:
        return jnp.zeros((self.num_batches, 2), dtype=self.dtype, device=self.device)

    def _check_status(self, status: jax.Array, what: str) -> np.ndarray:
        """One transfer to the host: raise ``FloatingPointError`` naming the first batch whose
        loss, or whose contribution to the product, is NaN or Inf; return the losses."""
        host = np.asarray(jax.device_get(status), dtype=np.float64)
        losses, finite = host[:, 0], host[:, 1]
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            raise FloatingPointError(f"the loss of batch {int(bad[0])} is {float(losses[bad[0]])}")
        bad = np.flatnonzero(finite != 1.0)
        if bad.size:
            raise FloatingPointError(
                f"{self.kind} {what} returned NaN or Inf on batch {int(bad[0])} (call {self.num_calls} of this "
                "operator) although every batch loss was finite"
            )
        return losses

    def _matmat(self, x: jax.Array) -> jax.Array:
        b = x.shape[1]
        self.num_calls += 1
        self.num_matvecs += b
        if b == 0:
            return jnp.zeros((self.num_params, 0), dtype=self.dtype, device=self.device)
        if self.vectorize or b <= MAX_UNROLL:
            return self._product(x)
        chunks = [self._product(x[:, j : j + MAX_UNROLL]) for j in range(0, b, MAX_UNROLL)]
        return jnp.concatenate(chunks, axis=1)

    def _product(self, x: jax.Array) -> jax.Array:
        """One pass over the data for the block ``x``."""
        b = x.shape[1]
        acc = jnp.zeros_like(x)
        status = self._new_status()
        traces = self._compiled.traces
        for (index, inputs, targets, _), weight in zip(self._batches, self._weights, strict=True):
            acc, status = self._compiled.step(acc, status, index, weight, self._flat.theta, inputs, targets, x)
            self.num_forward_passes += 1
            self.num_vector_passes += b
        self.num_traces += self._compiled.traces - traces
        self._check_status(status, "product")
        if self.centered:
            gbar = self.gradient()
            acc = acc - gbar[:, None] * (gbar @ x)[None, :]
        if self.reduction == "sum":
            acc = acc * self.num_samples
        return acc
