"""``CurvatureOperatorBase``: what the curvature operators of every adapter share.

The torch and JAX ``CurvatureOperator`` subclass it and keep only framework code: how one
pass over the data multiplies a block, how the gradient and the loss are computed, how a
flat vector maps back to the parameters. The rest lives here: the matrix (kind, reduction,
centring), the weighting of the batches by their size, the counters, the finishing steps of
every product and the checked :meth:`~CurvatureOperatorBase.unflatten`.
"""

from __future__ import annotations

from typing import Any

from .. import backends
from ..linop import LinearOperator
from ._data import SizedBatches
from ._kinds import curvature_kind
from ._options import CurvatureOptions

Array = Any


class CurvatureOperatorBase(LinearOperator):
    """A curvature matrix of a model over a data set, as a symmetric eigenscope operator.

    ``A = scale · Σ_b (n_b / N) A_b`` where ``A_b`` is the kind's matrix for batch ``b``'s mean
    loss (Hessian, GGN or gradient second moment), ``n_b`` its size, ``N`` the number of
    samples and ``scale`` 1 (``reduction="mean"``) or ``N`` (``"sum"``): the matrix of the mean
    over the samples, whatever the batch sizes, never an average over batches. With
    ``centered=True`` (gradient covariance) the operator is ``A − ḡḡᵀ``, ``ḡ`` the full-data
    gradient, before the scale.

    Products take and return arrays of the adapter's framework, of shape ``(n,)`` / ``(n, b)``
    on the parameters' device and dtype, ``n`` the number of parameters differentiated.

    Attributes
    ----------
    kind : str
        The name of the matrix in :data:`eigenscope.adapters.KINDS`: ``"hessian"``, ``"ggn"``
        or ``"gradient_covariance"``.
    options : CurvatureOptions
        The options the operator was built with (the adapter's subclass of it).
    reduction : str
        ``"mean"`` or ``"sum"``.
    centered : bool
        Whether ``ḡḡᵀ`` is subtracted (gradient covariance; ``False`` for the other kinds).
    per : str | None
        ``"sample"`` or ``"batch"`` for the gradient covariance, ``None`` for the other kinds.
    details : dict
        Kind-specific choices (``per``, the source of the per-sample losses, the GGN's output
        Hessian).
    num_params, num_samples, num_batches : int
        ``n``, ``N`` and the number of batches; ``batch_sizes`` lists the ``n_b``.
    num_matvecs : int
        Vectors multiplied so far (a block of b counts b).
    num_calls : int
        Calls of ``matvec``/``matmat``.
    num_forward_passes : int
        Forward (+ first-order backward) passes over one batch, summed over batches.
    num_vector_passes : int
        Per-vector passes over one batch, summed over batches and vectors.

    Notes
    -----
    A subclass implements :meth:`_data_product` (``Σ_b (n_b/N) A_b X`` for a block),
    :meth:`_full_gradient`, :meth:`_loss_sum`, :meth:`_unflatten`,
    :meth:`parameters_vector` and :meth:`_describe`; it may override :meth:`_refresh` (drop
    what the parameters made stale), :meth:`_center` and :meth:`_check_finite`.
    """

    def __init__(
        self,
        *,
        kind: str,
        num_params: int,
        dtype: Any,
        device: Any,
        xp: Any,
        batches: SizedBatches,
        options: CurvatureOptions,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(shape=(num_params, num_params), dtype=dtype, device=device, xp=xp, symmetric=True)
        matrix = curvature_kind(kind)
        self.kind = matrix.name
        self.options = options
        self.reduction = options.reduction
        self.centered = options.centered
        self.per = options.per if matrix.per_sample else None
        self.details: dict[str, Any] = {"per": self.per} if matrix.per_sample else {}
        self.details.update(details or {})
        self._batches = batches
        self._num_samples = batches.num_samples
        self._gbar: Array | None = None
        self.reset_counters()

    # ---- description -----------------------------------------------------------
    @property
    def num_params(self) -> int:
        """``n``, the length of the flat parameter vector."""
        return self.shape[1]

    @property
    def num_samples(self) -> int:
        """``N``, the samples over all batches (of all processes sharing the data)."""
        return self._num_samples

    @property
    def num_batches(self) -> int:
        """Number of batches."""
        return self._batches.num_batches

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Samples per batch."""
        return self._batches.batch_sizes

    def _batch_weight(self, size: int) -> float:
        """The weight ``n_b / N`` of a batch of ``size`` samples: the mean over samples, never
        ``1 / num_batches``."""
        return size / self.num_samples

    def reset_counters(self) -> None:
        """Set the product and pass counters to zero."""
        self.num_matvecs = 0
        self.num_calls = 0
        self.num_forward_passes = 0
        self.num_vector_passes = 0

    def _matrix_signature(self) -> tuple[Any, ...]:
        """What defines the matrix, not the data or how it is computed: kind, reduction,
        centring, ``per``."""
        return (self.kind, self.reduction, self.centered, self.per)

    def _describe(self) -> str:
        """The adapter's part of :meth:`__repr__` (how the products run, dtype, device)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.kind} n={self.num_params} N={self.num_samples} "
            f"batches={self.num_batches} {self._describe()}>"
        )

    # ---- flat vectors <-> parameters --------------------------------------------
    def parameters_vector(self) -> Array:
        """The parameters as one flat ``(n,)`` vector, in the operator's order."""
        raise NotImplementedError

    def unflatten(self, v: Array) -> Any:
        """A flat ``(n,)`` vector (an eigenvector, say) in the structure of the parameters:
        ``{name: tensor of the parameter's shape}`` (torch, views of ``v``) or a pytree shaped
        like ``params`` (JAX)."""
        self._check_operand(v, 1, self.num_params, "unflatten")
        return self._unflatten(v)

    def _unflatten(self, v: Array) -> Any:
        raise NotImplementedError

    # ---- first-order quantities ---------------------------------------------------
    def gradient(self) -> Array:
        """``∇L(θ)``, the gradient of the mean loss over all the data (``(n,)``). Costs one
        forward and one backward pass per batch; cached until the parameters change."""
        self._refresh()
        if self._gbar is None:
            self._gbar = self._full_gradient()
        return self._gbar

    def loss(self) -> float:
        """The mean loss over all the data, ``(1/N) Σ_b n_b L_b``."""
        return self._loss_sum() / self.num_samples

    def clear_cache(self) -> None:
        """Forget the cached gradient (computed again when next needed)."""
        self._gbar = None

    def _refresh(self) -> None:
        """Drop what is stale because the parameters changed (nothing by default)."""

    def _full_gradient(self) -> Array:
        """``Σ_b (n_b/N) ∇L_b(θ)``, shape ``(n,)``."""
        raise NotImplementedError

    def _loss_sum(self) -> float:
        """``Σ_b n_b L_b``, the losses of the batches weighted by their sizes."""
        raise NotImplementedError

    # ---- products -------------------------------------------------------------------
    def _matmat(self, x: Array) -> Array:
        b = x.shape[1]
        self.num_calls += 1
        self.num_matvecs += b
        if b == 0:
            return self.xp.zeros((self.num_params, 0), dtype=self.dtype, device=self.device)
        y = self._data_product(x)
        if self.centered:
            y = self._center(y, x, self.gradient())
        if self.reduction == "sum":
            y = y * self.num_samples
        self._check_finite(y)
        return y

    def _data_product(self, x: Array) -> Array:
        """``Σ_b (n_b/N) A_b X`` for a block ``X`` of shape ``(n, b)``, ``b ≥ 1``."""
        raise NotImplementedError

    def _center(self, y: Array, x: Array, gbar: Array) -> Array:
        """``Y − ḡ (ḡᵀ X)``: the product with ``M − ḡḡᵀ`` from that with ``M``."""
        return y - gbar[:, None] * (gbar @ x)[None, :]

    def _check_finite(self, y: Array) -> None:
        """Raise ``FloatingPointError`` if the product has a NaN or Inf (one scalar to the host)."""
        if not backends.all_finite(y):
            raise FloatingPointError(
                f"{self.kind} product returned NaN or Inf (call {self.num_calls} of this operator) although "
                "every batch loss was finite"
            )
