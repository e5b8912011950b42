"""The public constructors: ``hessian``, ``ggn``, ``gradient_covariance``, ``empirical_fisher``,
``layerwise``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from ._data import Batches
from ._distributed import ProcessGroupArg, data_parallel
from ._functional import FunctionalModel
from ._ggn import GGNFwdRev, GGNRevRev, OutputHessian
from ._gradcov import BatchGradient, SampleFwdRev, SampleRevRev
from ._hessian import HessianFwdRev, HessianRevRev
from ._losses import KINDS, LossFn, check_kind_matches, check_mean_reduced, loss_kind, resolve_loss
from ._losses import per_sample_loss as _per_sample_fn
from ._operator import CurvatureOperator
from ._params import ParamsArg, ParamSpec, group_by_module, make_spec, select_params
from ._state import check_stochastic

Mode = Literal["auto", "rev-rev", "fwd-rev"]
BlocksArg = None | Literal["module"] | Mapping[str, ParamsArg] | Sequence[ParamsArg]

_COMMON_DOC = """
    Parameters
    ----------
    model
        The ``torch.nn.Module``, in the mode (train/eval) the curvature is wanted in.
    loss_fn
        ``loss_fn(outputs, targets)`` -> the *mean* loss of a batch (a 0-d tensor), such as
        ``torch.nn.functional.cross_entropy``; or the name ``"cross_entropy"``, ``"mse"``
        or ``"bce"`` (BCE with logits). A summed loss (``reduction="sum"``) is refused: it
        is checked on batch 0 by comparing the loss with its values on the two halves of the
        batch (two loss evaluations, no forward pass); ``reduction="sum"`` below gives the
        matrix of the summed loss.
    data
        A re-iterable of ``(inputs, targets)`` batches: a list or a ``DataLoader``.
        ``inputs`` is passed as ``model(x)`` for a tensor, ``model(*x)`` for a tuple and
        ``model(**x)`` for a dict; the leading dimension of ``targets`` is the batch size.
        Generators and other one-shot iterators are refused.
    params
        The parameters to differentiate: ``None`` (all with ``requires_grad``), names of
        parameters or modules, modules, parameter tensors, or a predicate
        ``(name, parameter) -> bool``. The others are held fixed (no gradient is formed
        for them: leaving out embedding tables saves their backward pass).
    mode
        ``"rev-rev"`` (double backward) or ``"fwd-rev"`` (``torch.func`` forward over
        reverse); ``"auto"`` picks ``"rev-rev"``, which measured faster on CPU.
    vectorize
        Batch the vectors of a block through one ``vmap``-ed pass; ``"auto"``: on CUDA
        only (on CPU it measured slower than a loop over the vectors).
    cache_graphs
        Keep every batch's first-order graph between products, so that a product costs
        only the per-vector passes (``mode="rev-rev"`` only). It holds about
        ``cache_bytes`` (estimated from batch 0 when the operator is built: the memory
        autograd saves for it, times the number of batches); over ``max_cache_bytes``
        ``True`` raises ``ValueError`` and ``"auto"`` falls back to not caching. Graphs
        are rebuilt automatically when a parameter or buffer is written in place.
    max_cache_bytes
        The budget for the cache; ``None`` is half the free memory of the device (GPU) or
        half the host's available memory (CPU).
    stream
        Move each batch to the device at every product instead of once at construction.
    blocks
        ``"module"`` (one block per module owning parameters), a mapping
        ``name -> params`` or a sequence of ``params`` selections partitioning the selected
        parameters: the operator then applies only the diagonal blocks (a block-diagonal
        approximation). One product costs one first-order pass per batch and one
        per-vector pass per block and vector. :func:`layerwise` returns separate
        operators instead.
    reduction
        ``"mean"`` (the matrix of the mean loss over the N samples) or ``"sum"`` (N times it).
    allow_stochastic
        Accept active dropout or other randomness (refused by default, and the loss of
        the first batch is computed twice to check determinism).
    process_group
        Data parallelism over ``torch.distributed``: each rank passes its own shard of the
        data (whole batches; shards may be uneven) and every product is summed over the
        ranks with one ``all_reduce`` of ``n · k`` numbers (a block of ``k`` vectors), so
        that every rank gets the full-data product, the mean over the samples of all ranks.
        ``"auto"`` (default): the default group when ``torch.distributed`` is initialized
        with more than one process, else none; a ``ProcessGroup``: that group; ``None`` or
        ``False``: none, this process's data is the whole data set (to build a local operator
        on one rank of a distributed job). Every rank must build the same operator (checked
        once, here, in one collective, which also counts the samples) and multiply the same
        vectors: run the same algorithm with the same ``seed`` on every rank. A rank that
        fails, here or in a product, makes every rank raise (see ``docs/distributed.md``).

    Returns
    -------
    CurvatureOperator
        A symmetric ``(n, n)`` :class:`eigenscope.LinearOperator` on torch tensors of the
        parameters' device and dtype, ``n`` the number of selected parameters.

    Raises
    ------
    TypeError
        A one-shot iterator or a malformed batch as ``data`` (with ``stream=True``, also an
        iterable that yields nothing on a second pass); a model that is not a module.
    ValueError
        Empty data, a loss that is not a 0-d tensor, a sum-reduced loss, a stochastic model,
        parameters with ``requires_grad=False`` in ``params``, bad options, a cache over its
        budget.
    DistributedError
        With a process group, on the ranks that did not fail themselves: another rank
        failed to build its operator, or the ranks built different operators.
    FloatingPointError
        A NaN or Inf loss, naming the batch (here for batch 0, at product time for the others).
"""


def _resolve_mode(mode: str, cache_graphs: bool | str) -> str:
    if mode not in ("auto", "rev-rev", "fwd-rev"):
        raise ValueError(f"mode must be 'auto', 'rev-rev' or 'fwd-rev', got {mode!r}")
    if cache_graphs not in (True, False, "auto"):
        raise ValueError(f"cache_graphs must be True, False or 'auto', got {cache_graphs!r}")
    if mode == "fwd-rev" and cache_graphs:
        raise ValueError("cache_graphs needs mode='rev-rev': forward-over-reverse keeps no reusable graph")
    # Measured on CPU (benchmarks/bench_torch_adapters.py): double backward is faster.
    return "rev-rev" if mode == "auto" else mode


def _resolve_vectorize(vectorize: bool | str, device: torch.device) -> bool:
    if vectorize == "auto":
        return device.type == "cuda"
    if not isinstance(vectorize, bool):
        raise ValueError(f"vectorize must be True, False or 'auto', got {vectorize!r}")
    return vectorize


def _resolve_blocks(model: nn.Module, names: Sequence[str], blocks: BlocksArg) -> dict[str, tuple[str, ...]] | None:
    if blocks is None:
        return None
    if isinstance(blocks, str):
        if blocks != "module":
            raise ValueError(f"blocks must be 'module', a mapping or a sequence of selections, got {blocks!r}")
        return {k: tuple(v) for k, v in group_by_module(names).items()}
    items = list(blocks.items()) if isinstance(blocks, Mapping) else [(str(i), b) for i, b in enumerate(blocks)]
    chosen = set(names)
    out: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for key, sel in items:
        block = tuple(n for n in select_params(model, sel)[0] if n in chosen)
        if not block:
            raise ValueError(f"block {key!r} holds none of the selected parameters")
        for n in block:
            if n in owner:
                raise ValueError(f"parameter {n!r} is in blocks {owner[n]!r} and {key!r}; blocks must not overlap")
            owner[n] = key
        out[key] = block
    missing = [n for n in names if n not in owner]
    if missing:
        raise ValueError(f"blocks must cover every selected parameter; missing {missing}")
    return out


def _check_first_batch(fmodel: FunctionalModel, params: list[torch.Tensor], batches: Batches, deterministic: bool):
    """Outputs and loss of batch 0, checked: a finite 0-d loss, twice the same value."""
    inputs, targets = batches.first()
    with torch.no_grad():
        outputs = fmodel.outputs(params, inputs)
        loss = fmodel.loss_fn(outputs, targets)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(
                f"loss_fn must return a scalar (0-d tensor: the mean loss of the batch), got {shape}; "
                "use reduction='mean'"
            )
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"the loss of batch 0 is {float(loss)}")
        if deterministic:
            again = fmodel.loss(params, inputs, targets)
            tol = 1e3 * torch.finfo(loss.dtype).eps * max(1.0, abs(float(loss)))
            if abs(float(again) - float(loss)) > tol:
                raise ValueError(
                    f"the model is not deterministic: the loss of batch 0 was {float(loss)!r}, then "
                    f"{float(again)!r}. Remove the randomness (dropout, noise, random augmentation in the "
                    "forward pass) or pass allow_stochastic=True"
                )
    return outputs, loss


class _Setup:
    """What every constructor needs, validated once."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | str,
        data: Iterable[Any] | Batches,
        params: ParamsArg,
        stream: bool,
        allow_stochastic: bool,
        blocks: BlocksArg,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.loss_fn = resolve_loss(loss_fn)
        self.names, self.params = select_params(model, params)
        self.spec: ParamSpec = make_spec(self.names, self.params)
        check_stochastic(model, allow_stochastic)
        if isinstance(data, Batches):
            self.batches = data
        else:
            self.batches = Batches(data, device=self.spec.device, dtype=self.spec.dtype, stream=stream)
        self.fmodel = FunctionalModel(model, self.names, self.loss_fn)
        self.outputs, self.loss = _check_first_batch(self.fmodel, self.params, self.batches, not allow_stochastic)
        # A summed loss would scale every kind by the batch size, silently: refuse it here, once.
        check_mean_reduced(self.loss_fn, self.outputs, self.batches.first()[1], self.loss, self.batches.batch_sizes[0])
        self.blocks = _resolve_blocks(model, self.names, blocks)

    def operator(self, kernel: Any, **kw: Any) -> CurvatureOperator:
        return CurvatureOperator(
            kernel=kernel,
            model=self.model,
            fmodel=self.fmodel,
            spec=self.spec,
            params=self.params,
            batches=self.batches,
            blocks=self.blocks,
            **kw,
        )


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def hessian(
    model: nn.Module,
    loss_fn: LossFn | str,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = False,
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
) -> CurvatureOperator:
    """The Hessian of the mean loss over all the data, ``H = Σ_b (n_b/N) ∇²L_b(θ)``.

    ``L_b`` is batch ``b``'s mean loss and ``n_b`` its size, so batches of unequal size
    are weighted by their size: ``H`` is the Hessian of the mean over the ``N`` samples.

    Cost per product with a block of ``k`` vectors, per batch: ``"rev-rev"``: one forward
    and one backward pass (with ``create_graph``), then one more backward pass per vector
    through the retained graph (none of the first two with ``cache_graphs``);
    ``"fwd-rev"``: ``k`` forward-and-backward passes in dual numbers.
    """

    def build() -> CurvatureOperator:
        _check_reduction(reduction)
        setup = _Setup(model, loss_fn, data, params, stream, allow_stochastic, blocks)
        resolved = _resolve_mode(mode, cache_graphs)
        vec = _resolve_vectorize(vectorize, setup.spec.device)
        kernel = (HessianRevRev if resolved == "rev-rev" else HessianFwdRev)(setup.fmodel, vectorize=vec)
        return setup.operator(
            kernel,
            mode=resolved,
            cache_graphs=cache_graphs,
            max_cache_bytes=max_cache_bytes,
            reduction=reduction,
        )

    return data_parallel(build, process_group)


def ggn(
    model: nn.Module,
    loss_fn: LossFn | str,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    loss_hessian: Literal["auto", "cross_entropy", "mse", "bce", "autodiff"] = "auto",
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = False,
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
) -> CurvatureOperator:
    """The generalised Gauss-Newton matrix ``G = Σ_b (n_b/N) J_bᵀ H_ℓ,b J_b``.

    ``J_b`` is the Jacobian of the model's outputs on batch ``b`` with respect to the
    parameters and ``H_ℓ,b`` the Hessian of the batch's mean loss with respect to those
    outputs. ``G`` is positive semi-definite when the loss is convex in the outputs.

    ``loss_hessian`` chooses ``H_ℓ``: ``"auto"`` uses a closed form when ``loss_fn`` is torch's
    cross-entropy (``diag(p) − ppᵀ`` per sample, divided by the batch size), MSE
    (``2I/numel``) or BCE with logits (``diag(σ(1−σ))/numel``) with default options, and
    differentiates ``loss_fn`` twice with respect to the outputs otherwise (``"autodiff"``).
    Naming a closed form asserts that ``loss_fn`` computes that loss (checked on batch 0).
    The model must return one tensor.

    Cost per product with a block of ``k`` vectors, per batch: ``"rev-rev"``: one forward
    pass and one backward pass (``Jᵀu`` with ``create_graph``), then per vector a pass
    through that graph (``Jv``) and one backward pass (``Jᵀ H_ℓ J v``); ``"fwd-rev"``: one
    forward and one backward pass, then per vector a forward pass in dual numbers and a
    backward pass.
    """

    def build() -> CurvatureOperator:
        _check_reduction(reduction)
        setup = _Setup(model, loss_fn, data, params, stream, allow_stochastic, blocks)
        if loss_hessian == "auto":
            kind = loss_kind(setup.loss_fn)
        elif loss_hessian == "autodiff":
            kind = None
        elif loss_hessian in KINDS:
            kind = loss_hessian
            check_kind_matches(kind, setup.loss_fn, setup.outputs, setup.batches.first()[1])
        else:
            raise ValueError(f"loss_hessian must be 'auto', 'autodiff' or one of {KINDS}, got {loss_hessian!r}")
        if not isinstance(setup.outputs, torch.Tensor):
            raise TypeError(f"the GGN needs the model to return one tensor, got {type(setup.outputs).__name__}")
        resolved = _resolve_mode(mode, cache_graphs)
        vec = _resolve_vectorize(vectorize, setup.spec.device)
        out_hessian = OutputHessian(setup.loss_fn, kind, ignore_index=int(getattr(setup.loss_fn, "ignore_index", -100)))
        kernel = (GGNRevRev if resolved == "rev-rev" else GGNFwdRev)(setup.fmodel, out_hessian, vectorize=vec)
        return setup.operator(
            kernel,
            mode=resolved,
            cache_graphs=cache_graphs,
            max_cache_bytes=max_cache_bytes,
            reduction=reduction,
            details={"loss_hessian": kind or "autodiff"},
        )

    return data_parallel(build, process_group)


def gradient_covariance(
    model: nn.Module,
    loss_fn: LossFn | str,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    centered: bool = False,
    per: Literal["sample", "batch"] = "sample",
    per_sample_loss: LossFn | None = None,
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = False,
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
) -> CurvatureOperator:
    """The second moment of per-sample or per-batch gradients, optionally centred.

    - ``per="sample"``: ``M = (1/N) Σ_i gᵢ gᵢᵀ`` with ``gᵢ = ∇ℓᵢ(θ)`` the gradient of
      sample ``i``'s loss (the empirical Fisher for a log-likelihood loss);
    - ``per="batch"``: ``M = Σ_b (n_b/N) g_b g_bᵀ`` with ``g_b = ∇L_b(θ)`` the minibatch
      gradient;
    - ``centered=True`` returns ``M − ḡḡᵀ``, ``ḡ = ∇L(θ)`` the full-data gradient (the
      covariance), at the cost of one extra pass over the data when the parameters change.

    Products never form a per-sample gradient: ``M_b v = Jᵀ(J v)/n_b`` with ``J`` the Jacobian
    of the per-sample losses. Those come from, in order: ``per_sample_loss(outputs, targets)``
    if given (must return shape ``(n_b,)``); the torch loss with ``reduction="none"`` when
    ``loss_fn`` is torch's cross-entropy, MSE or BCE with logits; ``loss_fn(outputs, targets,
    reduction="none")`` when ``loss_fn`` has a ``reduction`` parameter; else
    ``torch.func.vmap`` of ``loss_fn`` over one-sample slices. Extra dimensions of an
    unreduced loss are averaged per sample; batch 0 checks that the mean of the per-sample
    losses equals ``loss_fn``. With BatchNorm in train mode a sample's loss depends on the
    whole batch, and ``gᵢ`` is the gradient of that loss.

    Cost per product with a block of ``k`` vectors, per batch: ``per="sample"``, rev-rev: one
    forward and one backward pass, then two passes per vector; fwd-rev: a forward and a
    backward pass, then a dual forward pass and a backward pass per vector. ``per="batch"``:
    one forward and one backward pass (none with ``cache_graphs``, which keeps the ``g_b``).
    """

    def build() -> CurvatureOperator:
        _check_reduction(reduction)
        if per not in ("sample", "batch"):
            raise ValueError(f"per must be 'sample' or 'batch', got {per!r}")
        setup = _Setup(model, loss_fn, data, params, stream, allow_stochastic, blocks)
        resolved = _resolve_mode(mode, cache_graphs)
        vec = _resolve_vectorize(vectorize, setup.spec.device)
        details: dict[str, Any] = {"per": per}
        if per == "batch":
            kernel: Any = BatchGradient(setup.fmodel)
        else:
            fn, source = _per_sample_fn(setup.loss_fn, per_sample_loss)
            _check_per_sample(fn, source, setup)
            details["per_sample_loss"] = source
            kernel = (SampleRevRev if resolved == "rev-rev" else SampleFwdRev)(setup.fmodel, fn, vectorize=vec)
        return setup.operator(
            kernel,
            mode=resolved,
            cache_graphs=cache_graphs,
            max_cache_bytes=max_cache_bytes,
            reduction=reduction,
            centered=centered,
            details=details,
        )

    return data_parallel(build, process_group)


def _check_per_sample(fn: LossFn, source: str, setup: _Setup) -> None:
    targets = setup.batches.first()[1]
    n = setup.batches.batch_sizes[0]
    with torch.no_grad():
        try:
            values = fn(setup.outputs, targets)
        except Exception as exc:
            raise ValueError(
                f"could not compute per-sample losses ({source}): {exc}. Pass per_sample_loss="
                "(outputs, targets) -> tensor of shape (batch_size,)"
            ) from exc
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (n,):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"per-sample losses ({source}) have shape {shape}, expected ({n},)")
    mean, loss = float(values.mean()), float(setup.loss)
    tol = 1e3 * torch.finfo(values.dtype).eps * max(1.0, abs(loss))
    if abs(mean - loss) > tol:
        raise ValueError(
            f"the mean of the per-sample losses ({source}) is {mean!r} but loss_fn gives {loss!r} on batch 0; "
            "pass per_sample_loss=(outputs, targets) -> (batch_size,) whose mean is loss_fn"
        )


def empirical_fisher(
    model: nn.Module, loss_fn: LossFn | str, data: Iterable[Any], *, params: ParamsArg = None, **kwargs: Any
) -> CurvatureOperator:
    """The empirical Fisher ``F = (1/N) Σ_i ∇ℓᵢ ∇ℓᵢᵀ``: :func:`gradient_covariance` with
    ``per="sample"`` and ``centered=False`` (other keywords are passed on)."""
    return gradient_covariance(model, loss_fn, data, params=params, per="sample", centered=False, **kwargs)


def _reraise(exc: BaseException) -> Any:
    raise exc


_KINDS = {"hessian": hessian, "ggn": ggn, "gradient_covariance": gradient_covariance}


def layerwise(
    model: nn.Module,
    loss_fn: LossFn | str,
    data: Iterable[Any],
    *,
    kind: Literal["hessian", "ggn", "gradient_covariance"] = "hessian",
    params: ParamsArg = None,
    stream: bool = False,
    **kwargs: Any,
) -> dict[str, CurvatureOperator]:
    """One operator per module owning selected parameters: ``{module name: operator}``.

    Each operator is the diagonal block of the full matrix for that module's parameters
    (``""`` names parameters of the root module). The data are moved to the device once
    and shared (``process_group=`` and the other keywords go to every constructor).
    Combine them with ``eigenscope.block_diag(*ops.values())`` for the block-diagonal
    approximation, or pass ``blocks="module"`` to :func:`hessian` & co.,
    which applies all blocks in one pass over the data.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    try:
        names, tensors = select_params(model, params)
        batches = Batches(data, device=tensors[0].device, dtype=tensors[0].dtype, stream=stream)
    except Exception as exc:
        # The other ranks are about to agree on their first operator: join them with the error.
        data_parallel(partial(_reraise, exc), kwargs.get("process_group", "auto"))
        raise
    return {
        module: _KINDS[kind](model, loss_fn, batches, params=group, **kwargs)
        for module, group in group_by_module(names).items()
    }


hessian.__doc__ = (hessian.__doc__ or "") + _COMMON_DOC
ggn.__doc__ = (ggn.__doc__ or "") + _COMMON_DOC
gradient_covariance.__doc__ = (gradient_covariance.__doc__ or "") + _COMMON_DOC
