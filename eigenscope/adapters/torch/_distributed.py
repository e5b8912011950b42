"""Data-parallel operators over ``torch.distributed``: one all-reduce per product.

Every rank holds a shard of the data (whole batches), builds the same operator over its
shard, and multiplies the same vectors: the Krylov loop runs replicated, so ranks that
pass the same ``seed`` draw the same probes. A product is then

    y = Σ_r Σ_{b on rank r} (n_b / N) A_b x,    N = Σ_r N_r,

each rank's partial sum followed by one ``all_reduce`` (sum) of its ``n · k`` numbers for a
block of ``k`` vectors. ``N`` is agreed once, at construction, in the same collective that
checks that the ranks built the same operator.

Failures never leave a rank waiting: the buffer of every product carries a trailer of
``3 · world_size`` numbers (rank ``r`` writes slot ``r`` of each, the others add zeros,
so every rank reads them exactly): an error code (a rank whose own product raised still
joins the collective, with zeros, and then raises its exception; the other ranks raise
:class:`DistributedError` naming it), and the sum and the norm of the rank's input block,
which must agree (ranks that multiply different vectors, e.g. probes drawn with
``seed=None``, would sum unrelated products). The process group's ``timeout`` remains the
last resort for a rank that never reaches a collective at all.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

ProcessGroupArg = Any
"""What ``process_group=`` accepts: ``"auto"``, a ``torch.distributed.ProcessGroup``,
``None`` or ``False``."""

# Exception types a failed rank reports by code (1 + index; anything else is "other").
_ERRORS: tuple[type[BaseException], ...] = (
    FloatingPointError,
    ValueError,
    TypeError,
    getattr(torch, "OutOfMemoryError", MemoryError),  # before RuntimeError, its base class
    MemoryError,
    RuntimeError,
)
_DTYPES = (torch.float32, torch.float64)
_MESSAGE_BYTES = 480
_HEADER = 6  # failed, num_params, dtype, num_samples, num_batches, signature


class DistributedError(RuntimeError):
    """Another rank of the process group failed or disagreed.

    Raised on the ranks that did not fail themselves (the failing rank raises its own
    exception) so that every rank stops with an error instead of waiting in a collective.

    Attributes
    ----------
    ranks : tuple[int, ...]
        The ranks (in the process group) that failed; empty when the ranks disagreed.
    """

    def __init__(self, message: str, *, ranks: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.ranks = ranks


def _error_code(exc: BaseException | None) -> int:
    if exc is None:
        return 0
    for i, kind in enumerate(_ERRORS):
        if isinstance(exc, kind):
            return i + 1
    return len(_ERRORS) + 1


def _error_name(code: int) -> str:
    return _ERRORS[code - 1].__name__ if 1 <= code <= len(_ERRORS) else "an exception"


def _collective(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a collective; its own failure (a rank that never joined it within the process
    group's timeout, or died) becomes a :class:`DistributedError` saying so."""
    try:
        fn(*args, **kwargs)
    except RuntimeError as exc:
        raise DistributedError(
            f"the {fn.__name__} over the process group failed: {exc}. A rank did not join it within the "
            "group's timeout (init_process_group(timeout=...)) or stopped: every rank must build the same "
            "operators and run the same algorithms with the same seed"
        ) from exc


def resolve_group(process_group: ProcessGroupArg) -> Any:
    """The process group to reduce over, or ``None`` for a single-process operator.

    ``"auto"``: the default group when ``torch.distributed`` is initialized with more than
    one process, else none. ``None`` or ``False``: none (this process's data is the whole
    data set). A ``ProcessGroup``: that group, of which this process must be a member.
    """
    if process_group is None or process_group is False:
        return None
    if isinstance(process_group, str):
        if process_group != "auto":
            raise ValueError(f"process_group must be 'auto', a ProcessGroup, None or False, got {process_group!r}")
        if not dist.is_available() or not dist.is_initialized():
            return None
        return dist.group.WORLD if dist.get_world_size() > 1 else None
    if not dist.is_available() or not isinstance(process_group, dist.ProcessGroup):
        raise TypeError(
            "process_group must be 'auto', a torch.distributed.ProcessGroup, None or False, got "
            f"{type(process_group).__name__}"
        )
    if not dist.is_initialized():
        raise ValueError("process_group was given but torch.distributed is not initialized")
    if dist.get_rank(process_group) < 0:
        raise ValueError("this process is not a member of process_group")
    return process_group


class Communicator:
    """The process group of a data-parallel operator and its checked collectives.

    Attributes
    ----------
    group
        The ``torch.distributed`` process group.
    rank, world_size : int
        This process's rank in ``group`` and the group's size.
    num_allreduces : int
        Collectives run by products, gradients and losses (one per product or block).
    allreduce_seconds : float
        Wall time spent in them, reading back the trailer included: the transfer plus any
        wait for slower ranks (on CUDA also the queued local work, which the read
        synchronizes).
    """

    def __init__(self, group: Any) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.backend = str(dist.get_backend(group)).lower()
        self.num_allreduces = 0
        self.allreduce_seconds = 0.0

    def _meta_device(self) -> torch.device:
        # NCCL reduces only CUDA tensors; every other backend (gloo, "cpu:gloo,cuda:nccl") CPU ones.
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    # ---- construction ----------------------------------------------------------------
    def agree(self, op: Any, error: BaseException | None) -> int:
        """One ``all_gather`` of each rank's operator description (or its error): raise on
        every rank if a rank failed or the operators differ; return ``N``, the samples over
        all ranks."""
        if error is None and self.backend == "nccl" and op.device.type != "cuda":
            error = ValueError(
                f"the process group uses NCCL, which reduces CUDA tensors only, but the parameters are on {op.device}"
            )
        row = torch.zeros(_HEADER + _MESSAGE_BYTES, dtype=torch.int64)
        if error is None:
            row[:_HEADER] = torch.tensor(
                [
                    0,
                    op.num_params,
                    _DTYPES.index(op.dtype) if op.dtype in _DTYPES else -1,
                    op.num_local_samples,
                    op.num_batches,
                    zlib.crc32(repr(op._signature()).encode()),
                ]
            )
        else:
            data = f"{type(error).__name__}: {error}".encode()[:_MESSAGE_BYTES]
            row[0] = 1
            row[_HEADER : _HEADER + len(data)] = torch.tensor(list(data), dtype=torch.int64)
        device = self._meta_device()
        rows = [torch.empty_like(row, device=device) for _ in range(self.world_size)]
        _collective(dist.all_gather, rows, row.to(device), group=self.group)
        table = torch.stack(rows).cpu()
        failed = [r for r in range(self.world_size) if int(table[r, 0]) != 0]
        if failed:
            if error is not None:
                raise error
            reasons = "; ".join(
                f"rank {r}: " + bytes(int(c) for c in table[r, _HEADER:] if c).decode(errors="replace") for r in failed
            )
            raise DistributedError(
                f"{len(failed)} of {self.world_size} ranks could not build the operator ({reasons})",
                ranks=tuple(failed),
            )
        for column, what in ((1, "parameter count n"), (2, "dtype")):
            values = table[:, column].tolist()
            if len(set(values)) > 1:
                shown = values if column == 1 else [str(_DTYPES[v]) if 0 <= v < 2 else "?" for v in values]
                raise DistributedError(
                    f"the ranks built operators of different {what}: "
                    + ", ".join(f"rank {r}: {v}" for r, v in enumerate(shown))
                    + "; every rank must select the same parameters of the same model"
                )
        if len(set(table[:, 5].tolist())) > 1:
            raise DistributedError(
                "the ranks built different operators (kind, reduction, centring, parameter names and shapes or "
                "blocks differ); build the same operator on every rank, only the data may differ"
            )
        return int(table[:, 3].sum())

    # ---- products --------------------------------------------------------------------
    def allreduce(
        self,
        compute: Callable[[], torch.Tensor],
        like: torch.Tensor,
        x: torch.Tensor | None = None,
        *,
        what: str = "product",
    ) -> torch.Tensor:
        """``Σ_ranks compute()`` (a tensor shaped, typed and placed like ``like``), in one
        ``all_reduce``. A rank whose ``compute`` raises still joins the collective; then it
        re-raises and every other rank raises :class:`DistributedError` (naming ``what``
        failed). With ``x`` (the block being multiplied), also check that every rank
        multiplied the same block."""
        error: BaseException | None = None
        try:
            part = compute()
        except Exception as exc:  # joins the collective below, then re-raised
            part, error = None, exc
        size, w = like.numel(), self.world_size
        buf = torch.zeros(size + 3 * w, dtype=like.dtype, device=like.device)
        if part is not None:
            buf[:size] = part.reshape(-1)
        # This rank's slots of the trailer: its status and the fingerprint of its block,
        # computed on the device (no synchronization) in float64.
        stats = torch.zeros(3, dtype=torch.float64, device=like.device)
        stats[0] = _error_code(error)
        if x is not None:
            stats[1] = x.detach().sum(dtype=torch.float64)
            stats[2] = torch.linalg.vector_norm(x.detach(), dtype=torch.float64)
        buf[size + self.rank :: w] = stats.to(like.dtype)
        start = time.perf_counter()
        _collective(dist.all_reduce, buf, group=self.group)
        slots = buf[size:].to("cpu", torch.float64).reshape(3, w)  # the read waits for the reduction
        self.allreduce_seconds += time.perf_counter() - start
        self.num_allreduces += 1
        failed = [r for r in range(w) if slots[0, r] != 0]
        if failed:
            if error is not None:
                raise error
            who = "; ".join(f"rank {r} raised {_error_name(int(slots[0, r]))}" for r in failed)
            raise DistributedError(
                f"{who} in this {what}, out of {w} ranks (its traceback is on that rank); this rank raises too "
                "instead of waiting for it",
                ranks=tuple(failed),
            )
        if x is not None:
            sums, norms = slots[1], slots[2]
            spread, scale = float(sums.max() - sums.min()), float(norms.max())
            tol = float(torch.finfo(like.dtype).eps) ** (1 / 3)
            if torch.isfinite(slots[1:]).all() and spread > tol * max(scale, torch.finfo(like.dtype).tiny):
                raise DistributedError(
                    "the ranks multiplied different vectors (the sums of their blocks are "
                    + ", ".join(f"{float(s):.6g}" for s in sums)
                    + "): run the same algorithm on every rank and pass the same seed= to it (seed=None draws "
                    "a different seed in each process)"
                )
        return buf[:size].reshape(like.shape)


def data_parallel(build: Callable[[], Any], process_group: ProcessGroupArg) -> Any:
    """``build()`` the local operator; with a process group, agree on it across ranks (one
    ``all_gather``, raising on every rank if one failed or they differ) and attach the
    group, so that its products are summed over the ranks."""
    group = resolve_group(process_group)
    if group is None:
        return build()
    comm = Communicator(group)
    op, error = None, None
    try:
        op = build()
    except Exception as exc:  # joins the agreement, then re-raised there
        error = exc
    total = comm.agree(op, error)
    op._attach(comm, total)
    return op
