"""``CurvatureOperator``: a per-batch curvature kernel, compiled once, summed over the data."""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import backends, linop
from .._operator import CurvatureOperatorBase
from ._compile import Compiled
from ._data import Batches, stacked_groups
from ._options import JaxOptions
from ._params import FlatParams
from ._sharding import DataSharding

_XP = backends.resolve_namespace(jnp)

MAX_UNROLL = 8
"""Most vectors per pass over the data when the per-vector program is unrolled
(``vectorize=False``): compile time grows with the number of copies, so a wider block is
multiplied in equal chunks of at most this many columns (each chunk a pass over the data)."""


_as_column = jax.jit(lambda x: x.reshape(-1, 1))
_as_vector = jax.jit(lambda y: y.reshape(-1))


class CurvatureOperator(CurvatureOperatorBase):
    """A curvature matrix of a JAX model over a data set, as an eigenscope operator.

    The matrix, its weighting of the batches, the counters and the attributes shared with
    the torch adapter are those of :class:`eigenscope.adapters.CurvatureOperatorBase`. Built by
    :func:`hessian`, :func:`ggn`, :func:`gradient_covariance`. Products take and return JAX
    arrays of shape ``(n,)`` / ``(n, b)`` with the parameters' dtype and device, ``n`` the
    length of ``ravel_pytree(params)``; :meth:`unflatten` maps a vector back to the pytree.

    The operator is evaluated at the ``params`` it was built with (JAX arrays are
    immutable: build a new operator for new parameters). A product is one ``jax.jit``-compiled
    pass over the data (:attr:`fused`): the batches of one shape go through a ``lax.scan``,
    so a product costs one dispatch and one transfer, and each number of vectors ``b`` is
    traced once. Where the model applies convolutions on a CPU (XLA runs them many times
    slower inside a loop), on sharded data, or for data of more than four runs of batch
    shapes, the per-batch product is compiled instead, traced once per distinct batch shape
    and block width (an uneven last batch adds one trace). Either program is shared
    with every operator of the same kind built from equal functions (the same code and
    closed-over values; arrays a function carries as a pytree, such as the state of
    :func:`nnx_model`, are arguments of the compiled code) and parameter structure: an
    operator at new parameters of the same model compiles nothing.

    Attributes
    ----------
    vectorize : bool
        Whether the vectors of a block share one ``jax.vmap``-ed pass (else the per-vector
        program is unrolled).
    param_paths : tuple[str, ...]
        The leaves of ``params`` in flat-vector order (``jax.tree_util.keystr`` paths).
    num_forward_passes : int
        Per-batch products (one forward and first-order pass each), summed over batches.
    mesh : jax.sharding.Mesh | None
        With ``mesh=``, the mesh whose ``data_axis`` the batches are split over
        (``num_replicated_batches`` of them could not be split evenly and are replicated).
    num_traces : int
        Times the per-batch product was traced (and so compiled) by ``jax.jit`` during this
        operator's products (0 when an earlier operator already compiled every shape; not
        reset by :meth:`reset_counters`). XLA may compile a traced function again for inputs
        placed differently (committed or not to a device) without a new trace.
    compile_seconds : float
        Seconds this operator's products spent tracing and compiling the per-batch product
        (the wall time of the calls that traced; 0 when an earlier operator compiled every
        shape). The rest of a first call is products and the algorithm's own work: a first
        ``eigsh`` on a CPU is mostly this. Not reset by :meth:`reset_counters`.
    """

    def __init__(
        self,
        *,
        kind: str,
        compiled: Compiled,
        fn_arrays: tuple[Any, ...] = (),
        flat: FlatParams,
        batches: Batches,
        options: JaxOptions,
        vectorize: bool,
        sharding: DataSharding | None = None,
        details: dict[str, Any] | None = None,
        fuse: bool = False,
    ) -> None:
        super().__init__(
            kind=kind,
            num_params=flat.num_params,
            dtype=flat.dtype,
            device=flat.device,
            xp=_XP,
            batches=batches,
            options=options,
            details=details,
        )
        self.vectorize = vectorize
        self._flat = flat
        self._compiled = compiled
        self._fn_arrays = fn_arrays
        self._sharding = sharding
        self._weights = [
            jax.device_put(np.asarray(self._batch_weight(size), dtype=flat.dtype), flat.device)
            for size in batches.batch_sizes
        ]
        self._loss_total: float | None = None
        self.num_traces = 0
        self.compile_seconds = 0.0
        # For _block_pays: the single-vector program's costs.
        self._single_seconds: float | None = None
        self._single_compile_seconds = 0.0
        # JAX arrays are immutable: the zeros every product starts from are made once (the
        # status, and the accumulator of a single vector), saving two dispatches a product.
        self._zero_status = self._new_status()
        self._zero_column: jax.Array | None = None
        # The batches stacked by shape for the fused pass over the data (None: batch by batch).
        self._groups = stacked_groups(batches, self._weights) if fuse else None

    # ---- description -----------------------------------------------------------
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
    def fused(self) -> bool:
        """Whether a product is one compiled pass over all batches (else one call per batch)."""
        return self._groups is not None

    @property
    def num_batch_shapes(self) -> int:
        """Distinct batch shapes: each costs one compilation per block width."""
        return self._batches.num_shapes

    @property
    def param_paths(self) -> tuple[str, ...]:
        """The leaves of ``params`` in flat-vector order."""
        return self._flat.paths

    def _describe(self) -> str:
        sharding = self._sharding
        place = f"device={self.device}" if sharding is None else f"mesh={sharding.axis}:{sharding.size}"
        return f"vectorize={self.vectorize} dtype={backends.dtype_name(self.dtype)} {place}"

    # ---- flat vectors <-> parameters --------------------------------------------
    def parameters_vector(self) -> jax.Array:
        """The parameters as one flat ``(n,)`` vector."""
        return self._flat.theta

    def _unflatten(self, v: jax.Array) -> Any:
        return self._flat.unravel(v)

    # ---- first-order quantities ---------------------------------------------------
    def _first_order(self) -> None:
        """The gradient and the loss, in one pass over the data; both are cached (the
        parameters never change)."""
        acc = jnp.zeros(self.num_params, dtype=self.dtype, device=self.device)
        status = self._new_status()
        for (index, inputs, targets, _), weight in zip(self._batches, self._weights, strict=True):
            acc, status = self._compiled.value_and_grad(
                acc, status, index, weight, self._flat.theta, self._fn_arrays, inputs, targets
            )
        losses = self._check_status(status, "gradient")
        self._gbar = acc
        self._loss_total = float(np.dot(losses, self.batch_sizes))

    def _full_gradient(self) -> jax.Array:
        self._first_order()
        return self._gbar

    def _loss_sum(self) -> float:
        if self._loss_total is None:
            self._first_order()
        return self._loss_total

    def clear_cache(self) -> None:
        """Forget the cached gradient and loss (the compiled functions are kept)."""
        super().clear_cache()
        self._loss_total = None

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

    def _check_finite(self, y: jax.Array) -> None:
        """Nothing more to check: every batch's contribution was checked in its pass (a row of
        the status, which names the batch), without another transfer to the host."""

    def _matvec(self, x: jax.Array) -> jax.Array:
        if self._groups is not None and not self.centered and self.reduction == "mean":
            # The fused pass takes the (n,) vector itself: one dispatch for the whole product.
            self.num_calls += 1
            self.num_matvecs += 1
            return self._pass(x if x.committed else jax.device_put(x, self.device))
        # Compiled reshapes: an eager one costs about 3x a call of a compiled function
        # (40 µs against 12 µs alone, up to 0.2 ms each on a loaded CPU), two per product.
        return _as_vector(self._matmat(_as_column(x)))

    def _data_product(self, x: jax.Array) -> jax.Array:
        if not x.committed:
            # XLA compiles the product again for an uncommitted input (jnp.ones(...)) after a
            # committed one (the algorithms' vectors): place it, so both share one compilation.
            x = jax.device_put(x, self.device)
        b = x.shape[1]
        if b > 1 and not self.vectorize and not self._block_pays(min(b, MAX_UNROLL)):
            # Column by column through the single-vector program (compiled once, shared with
            # eigsh and the density): a short run never waits seconds for a wide program.
            return jnp.concatenate([self._pass(x[:, j : j + 1]) for j in range(b)], axis=1)
        if self.vectorize or b <= MAX_UNROLL:
            return self._pass(x)
        # Chunks of one width (10 vectors as 5 + 5, not 8 + 2): each width is a compilation of
        # the unrolled program, seconds on CPU; the last chunk is padded with zero columns.
        count = -(-b // MAX_UNROLL)
        width = -(-b // count)
        if count * width != b:
            x = jnp.concatenate([x, jnp.zeros((x.shape[0], count * width - b), dtype=x.dtype, device=self.device)], 1)
        chunks = [self._pass(x[:, j : j + width]) for j in range(0, count * width, width)]
        return jnp.concatenate(chunks, axis=1)[:, :b]

    def _block_pays(self, width: int) -> bool:
        """Whether to run a block of ``width`` columns as one unrolled program (compiled once
        per width, seconds on a CPU) rather than as ``width`` single-vector passes.

        Yes once that width is compiled, and for products asked for outside an algorithm (no
        announced count: the block program is what a user calling ``matmat`` gets). Inside
        an announced run (:func:`eigenscope.linop.planned_products`): only when the predicted
        saving — planned products × single-vector seconds × 0.3 (a block of 8 measured 5.1–6.2
        single products) — exceeds the predicted compile time, the single-vector program's
        (≥ 1 s) × (1 + width/4) (the 8-wide program compiled in about 3×). Until a
        single-vector pass was timed, columns go one by one.
        """
        if width in self._compiled.widths:
            return True
        plan = linop.current_plan()
        if plan is None:
            return True
        if self._single_seconds is None:
            return False
        saving = plan.count * self._single_seconds * 0.3
        return saving > max(self._single_compile_seconds, 1.0) * (1 + width / 4)

    def _pass(self, x: jax.Array) -> jax.Array:
        """One pass over the data for the block ``x`` (or a vector): ``Σ_b (n_b/N) A_b x``."""
        if self._groups is not None:
            return self._fused_pass(x)
        b = x.shape[1]
        if b == 1:
            if self._zero_column is None:
                self._zero_column = jnp.zeros_like(x)
            acc = self._zero_column
        else:
            acc = jnp.zeros_like(x)
        status = self._zero_status
        compiled = self._compiled
        traced, begin = compiled.traces, time.perf_counter()
        for (index, inputs, targets, _), weight in zip(self._batches, self._weights, strict=True):
            traces, start = compiled.traces, time.perf_counter()
            acc, status = compiled.step(
                acc, status, index, weight, self._flat.theta, self._fn_arrays, inputs, targets, x
            )
            if compiled.traces != traces:
                # This call traced and compiled (it returns once the program is dispatched).
                self.num_traces += compiled.traces - traces
                self.compile_seconds += time.perf_counter() - start
            self.num_forward_passes += 1
            self.num_vector_passes += b
        self._check_status(status, "product")
        compiled.widths.add(b)
        seconds = time.perf_counter() - begin
        if b == 1 and compiled.traces == traced:
            self._single_seconds = min(seconds, self._single_seconds or seconds)
        elif b == 1:
            self._single_compile_seconds += seconds
        return acc

    def _fused_pass(self, x: jax.Array) -> jax.Array:
        """The pass over the data as one compiled program (:meth:`Compiled.data_pass`)."""
        if x.ndim == 2 and x.shape[1] == 1:
            # One program for single vectors, shared by (n,) and (n, 1) (a compiled reshape
            # costs microseconds; a second program, seconds of compiling).
            return _as_column(self._fused_pass(_as_vector(x)))
        b = 1 if x.ndim == 1 else x.shape[1]
        compiled = self._compiled
        traces, start = compiled.traces, time.perf_counter()
        acc, status = compiled.data_pass(self._zero_status, self._flat.theta, self._fn_arrays, self._groups, x)
        traced = compiled.traces != traces
        if traced:
            self.num_traces += compiled.traces - traces
            self.compile_seconds += time.perf_counter() - start
        self.num_forward_passes += self.num_batches
        self.num_vector_passes += b * self.num_batches
        self._check_status(status, "product")
        compiled.widths.add(b)
        seconds = time.perf_counter() - start
        if b == 1 and not traced:
            self._single_seconds = min(seconds, self._single_seconds or seconds)
        elif b == 1:
            self._single_compile_seconds += seconds
        return acc
