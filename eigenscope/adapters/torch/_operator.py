"""``CurvatureOperator``: a curvature kernel summed over the data, on flat parameter vectors."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch
from torch import nn

from ... import backends
from .._operator import CurvatureOperatorBase
from ._cache import first_cache_entry
from ._compiled import CompiledProduct, CompileReport, compile_signature
from ._data import Batches
from ._distributed import Communicator
from ._functional import FunctionalModel, grad, leaves
from ._guard import ModelGuard
from ._kernel import Kernel, check_loss
from ._options import TorchOptions
from ._params import ParamSpec

_XP = backends.resolve_namespace(torch)


class CurvatureOperator(CompileReport, CurvatureOperatorBase):
    """A curvature matrix of a PyTorch model over a data set, as an eigenscope operator.

    The matrix, its weighting of the batches, the counters and the attributes shared with
    the JAX adapter are those of :class:`eigenscope.adapters.CurvatureOperatorBase`. Built by
    :func:`hessian`, :func:`ggn`, :func:`gradient_covariance`; products take and return torch
    tensors of shape ``(n,)`` / ``(n, b)`` on the parameters' device and dtype, ``n`` the
    number of selected parameters (flattened in ``model.named_parameters()`` order; see
    :attr:`param_slices`).

    Every product is evaluated at the model's parameters *as they are when it runs*. The
    model itself is never modified: see :func:`hessian` for the guarantee. A product (or
    ``gradient()``, ``loss()``, ``parameters_vector()``) raises ``RuntimeError`` if the
    model's parameter tensors were cast, moved or replaced since the operator was built
    (``model.double()``, ``model.to(device)``, a reassigned module): build it again.

    Attributes
    ----------
    mode : str
        ``"rev-rev"`` or ``"fwd-rev"``: how the products differentiate.
    vectorize : bool
        Whether the vectors of a block share one batched (``vmap``) pass.
    param_names, param_shapes : tuple
        The selected parameters, in flat-vector order.
    num_samples, num_batches : int
        With a process group, ``N`` counts the samples of all ranks and the batches are this
        rank's (``num_local_samples`` of them).
    process_group
        The ``torch.distributed`` process group the products are summed over, or ``None``;
        ``rank`` and ``world_size`` are this process's place in it (0 and 1 without one).
    blocks : dict[str, tuple[str, ...]] | None
        With ``blocks=``, the diagonal blocks (name -> parameter names); products then apply
        the block-diagonal part of the matrix.
    cache_graphs : bool
        Whether first-order graphs are kept between products; ``cache_bytes`` is the
        estimated memory of the full cache (set whenever caching was asked for) and
        ``max_cache_bytes`` the budget it was checked against.
    compile, compiled, compile_seconds, compile_reason
        ``compile=`` as given, whether products now run compiled, the seconds spent
        compiling, and why they run eagerly when they do (see :func:`hessian`).
    num_allreduces : int
        Collectives over the process group (one per product or block; 0 without a group).
    allreduce_seconds : float
        Wall time inside them: the transfer plus any wait for slower ranks.
    """

    # Every product is built afresh (joined from the per-parameter results): the Krylov
    # methods may scale it in place.
    fresh_products = True

    def __init__(
        self,
        *,
        kernel: Kernel,
        model: nn.Module,
        fmodel: FunctionalModel,
        spec: ParamSpec,
        params: list[torch.Tensor],
        batches: Batches,
        options: TorchOptions,
        blocks: dict[str, tuple[str, ...]] | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._comm: Communicator | None = None  # before the counters are reset
        super().__init__(
            kind=kernel.kind,
            num_params=spec.num_params,
            dtype=spec.dtype,
            device=spec.device,
            xp=_XP,
            batches=batches,
            options=options,
            details=details,
        )
        self.mode = options.product_mode
        self.spec = spec
        self._kernel = kernel
        self._model = model
        self._fmodel = fmodel
        self._params = params
        self._watched = [*model.parameters(), *model.buffers()]
        # What the batches, vectors and graphs were made for: these tensors, dtypes and devices.
        self._guard = ModelGuard(model)
        self._cache: dict[int, Any] = {}
        self._versions_seen = self._versions()
        self.blocks = blocks
        self._block_index = None if blocks is None else spec.block_indices(blocks.values())
        self.cache_bytes: int | None = None
        self.max_cache_bytes = options.max_cache_bytes
        self.cache_graphs = False
        if options.cache_graphs:
            self._start_cache(options.cache_graphs)
        how = options.compile
        if how == "auto" and (options.allow_stochastic or spec.device.type == "meta"):
            how = False  # random products cannot be checked against eager ones
        signature = compile_signature(kernel, model, fmodel.loss_fn, spec)
        self._compiled = CompiledProduct(kernel, fmodel, how=how, signature=signature)

    # ---- description -----------------------------------------------------------
    @property
    def vectorize(self) -> bool:
        """Whether the vectors of a block go through one ``vmap``-ed pass (``False`` after a
        ``vmap`` failed on this model and the products fell back to a loop)."""
        return bool(self._kernel.vectorize)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the selected parameters, in flat-vector order."""
        return self.spec.names

    @property
    def param_shapes(self) -> tuple[torch.Size, ...]:
        """Shapes of the selected parameters."""
        return self.spec.shapes

    @property
    def param_slices(self) -> dict[str, slice]:
        """``name -> slice`` of the flat vector."""
        return self.spec.slices

    @property
    def num_local_samples(self) -> int:
        """Samples over this process's batches (``num_samples`` without a process group)."""
        return self._batches.num_samples

    @property
    def process_group(self) -> Any:
        """The process group the products are summed over, or ``None``."""
        return None if self._comm is None else self._comm.group

    @property
    def rank(self) -> int:
        """This process's rank in :attr:`process_group` (0 without one)."""
        return 0 if self._comm is None else self._comm.rank

    @property
    def world_size(self) -> int:
        """The number of processes sharing the data (1 without a process group)."""
        return 1 if self._comm is None else self._comm.world_size

    @property
    def num_allreduces(self) -> int:
        """Collectives over the process group since the counters were reset."""
        return 0 if self._comm is None else self._comm.num_allreduces

    @property
    def allreduce_seconds(self) -> float:
        """Seconds spent in those collectives (transfer and waiting for the other ranks)."""
        return 0.0 if self._comm is None else self._comm.allreduce_seconds

    @property
    def stream(self) -> bool:
        """Whether batches are moved to the device at each product instead of once."""
        return self._batches.stream

    def reset_counters(self) -> None:
        """Set the product, pass and collective counters to zero."""
        super().reset_counters()
        if self._comm is not None:
            self._comm.num_allreduces = 0
            self._comm.allreduce_seconds = 0.0

    # ---- data parallelism ---------------------------------------------------------
    def _signature(self) -> tuple[Any, ...]:
        """What must be equal on every rank: the matrix, not the data or how it is computed."""
        return (
            *self._matrix_signature(),
            self.spec.names,
            tuple(tuple(s) for s in self.spec.shapes),
            None if self.blocks is None else tuple(self.blocks.items()),
        )

    def _attach(self, comm: Communicator, num_samples: int) -> None:
        """Sum the products over ``comm``'s ranks, whose samples number ``num_samples`` in all."""
        self._comm = comm
        self._num_samples = num_samples
        self._gbar = None

    def _reduced(
        self, compute: Any, like: torch.Tensor, x: torch.Tensor | None = None, what: str = "product"
    ) -> torch.Tensor:
        """``compute()`` summed over the ranks (just ``compute()`` without a process group),
        after checking that the model is the one it was built for."""

        def checked() -> torch.Tensor:
            # Inside the collective's guard: a rank failing the check stops every rank.
            self._guard.check(self.kind)
            return compute()

        if self._comm is None:
            return checked()
        return self._comm.allreduce(checked, like, x, what=what)

    def _describe(self) -> str:
        return (
            f"mode={self.mode} dtype={backends.dtype_name(self.dtype)} device={self.device}"
            f"{' blocks=' + str(len(self.blocks)) if self.blocks else ''}"
            f"{f' rank={self.rank}/{self.world_size}' if self._comm is not None else ''}"
        )

    # ---- the model it was built for -------------------------------------------------
    def _check_operand(self, x: Any, ndim: int, length: int, what: str) -> None:
        try:
            super()._check_operand(x, ndim, length, what)
        except (TypeError, ValueError):
            # A vector cast or moved along with the model: name the model as the cause.
            self._guard.check(self.kind)
            raise

    # ---- flat vectors <-> parameters --------------------------------------------
    def parameters_vector(self) -> torch.Tensor:
        """The current values of the selected parameters as one flat ``(n,)`` vector (a copy).

        Raises ``RuntimeError`` if the model's parameter tensors were replaced, cast or moved
        since the operator was built."""
        self._guard.check(self.kind)
        return self.spec.join([p.detach() for p in self._params])

    def _unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.spec.names, self.spec.split(v), strict=True))

    # ---- first-order quantities ---------------------------------------------------
    def gradient(self) -> torch.Tensor:
        """``∇L(θ)``, the gradient of the mean loss over all the data (``(n,)``, a copy of the
        one cached until the parameters change). Costs one forward and one backward pass per
        batch."""
        return super().gradient().clone()

    def _full_gradient(self) -> torch.Tensor:
        acc = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)

        def local() -> torch.Tensor:
            with torch.enable_grad():
                for index, inputs, targets, size in self._batches:
                    theta = leaves(self._params)
                    loss = self._fmodel.loss(theta, inputs, targets)
                    check_loss(loss, index)
                    g = grad([loss], theta, [torch.ones_like(loss)], retain_graph=False)
                    acc.add_(self.spec.join(g), alpha=self._batch_weight(size))
                    self.num_forward_passes += 1
            return acc

        return self._reduced(local, acc, what="gradient")

    def loss(self) -> float:
        """The mean loss over all the data (one forward pass per batch, no gradient)."""
        return super().loss()

    def _loss_sum(self) -> float:
        like = torch.zeros(1, dtype=self.dtype, device=self.device)

        def local() -> torch.Tensor:
            total = 0.0
            with torch.no_grad():
                for index, inputs, targets, size in self._batches:
                    value = self._fmodel.loss(self._params, inputs, targets)
                    check_loss(value, index)
                    total += float(value) * size
            return like + total

        return float(self._reduced(local, like, what="loss"))

    # ---- the graph cache ----------------------------------------------------------
    def _versions(self) -> tuple[int, ...]:
        # Version counters move with every in-place write (an optimizer step, load_state_dict).
        return tuple(t._version for t in self._watched)

    def _refresh(self) -> None:
        """Drop cached graphs and the cached gradient if any parameter or buffer was written."""
        now = self._versions()
        if now != self._versions_seen:
            self._cache.clear()
            self._gbar = None
            self._versions_seen = now

    def clear_cache(self) -> None:
        """Free the cached graphs and the cached gradient (rebuilt when next needed)."""
        self._cache.clear()
        super().clear_cache()

    def _start_cache(self, how: bool | str) -> None:
        """Keep batch 0's state if the whole cache fits the budget (see :func:`first_cache_entry`)."""
        if how == "auto" and (not self._kernel.cacheable or self._batches.stream):
            # Nothing to reuse (fwd-rev), or data too large to keep on the device (stream=True):
            # keeping every batch's activations would defeat the reason for streaming.
            return
        if not self._kernel.cacheable:
            raise ValueError(f"cache_graphs needs mode='rev-rev' (mode={self.mode!r} keeps no reusable graph)")
        entry = first_cache_entry(
            self._kernel,
            self._params,
            self._batches,
            self._watched,
            how=how,
            budget=self.max_cache_bytes,
            num_batches=self.num_batches,
            num_samples=self.num_local_samples,
        )
        self.num_forward_passes += 1
        self.cache_bytes, self.max_cache_bytes = entry.cache_bytes, entry.budget
        if entry.state is not None:
            self.cache_graphs = True
            self._cache[entry.index] = entry.state

    # ---- products -------------------------------------------------------------------
    def _matmat(self, x: torch.Tensor) -> torch.Tensor:
        return super()._matmat(x.detach())

    def _data_product(self, x: torch.Tensor) -> torch.Tensor:
        def local() -> torch.Tensor:
            with torch.enable_grad():
                return self._sum_over_batches(x) if self._block_index is None else self._block_product(x)

        # With a process group: this rank's share, then one all-reduce for the whole block.
        return self._reduced(local, x, x)

    def _center(self, y: torch.Tensor, x: torch.Tensor, gbar: torch.Tensor) -> torch.Tensor:
        if self._block_index is None:
            return super()._center(y, x, gbar)
        # M − ḡḡᵀ restricted to the diagonal blocks.
        for idx in self._block_index:
            y[idx] -= gbar[idx, None] * (gbar[idx] @ x[idx])[None, :]
        return y

    def _block_product(self, x: torch.Tensor) -> torch.Tensor:
        # Column (k, j) of the expanded block is x_j restricted to block k; one pass over the
        # data serves all blocks, sharing each batch's first-order graph.
        b, index = x.shape[1], self._block_index
        xe = x.new_zeros((self.num_params, b * len(index)))
        for k, idx in enumerate(index):
            xe[idx, k * b : (k + 1) * b] = x[idx]
        ye = self._sum_over_batches(xe)
        y = torch.empty_like(x)
        for k, idx in enumerate(index):
            y[idx] = ye[idx, k * b : (k + 1) * b]
        return y

    def _sum_over_batches(self, x: torch.Tensor) -> torch.Tensor:
        self._refresh()
        vs = self.spec.split_block(x)
        b = x.shape[1]
        compiled = self._compiled.wanted(b, self._first_batch)
        start = time.perf_counter()
        y = None
        for index, inputs, targets, size in self._batches:
            parts = None
            if compiled and self._compiled.matches(inputs, targets):
                parts = self._compiled.apply(
                    self._params, inputs, targets, vs, index, partial(self._eager_batch, index, inputs, targets)
                )
                self.num_forward_passes += b if parts is not None else 0
            if parts is None:
                parts = self._eager_batch(index, inputs, targets, vs)
            part = self.spec.join_block(parts)
            self.num_vector_passes += b
            if y is None:
                y = part.mul_(self._batch_weight(size))
            else:
                y.add_(part, alpha=self._batch_weight(size))
            del parts, part
        self._compiled.timed(time.perf_counter() - start, b, compiled and self._compiled.active)
        return y

    def _eager_batch(self, index: int, inputs: Any, targets: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Batch ``index``'s operator times the block ``vs`` with the eager kernel (its state
        from the graph cache, or built now)."""
        keep = self.cache_graphs
        state = self._cache.get(index) if keep else None
        if state is None:
            state = self._kernel.build(self._params, inputs, targets, index)
            self.num_forward_passes += 1
            if keep:
                self._cache[index] = state
        return self._kernel.apply(state, vs, keep=keep)

    def _first_batch(self) -> tuple[Any, Any]:
        _, inputs, targets, _ = next(iter(self._batches))
        return inputs, targets
