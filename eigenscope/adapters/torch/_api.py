"""The public constructors: ``hessian``, ``ggn``, ``gradient_covariance``, ``empirical_fisher``,
``layerwise``."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from .._batches import ForwardArg, TargetsArg
from .._kinds import KindName, curvature_kind, one_per_kind
from .._options import document
from ._distributed import ProcessGroupArg, data_parallel
from ._docs import PARAMETERS, RAISES, RETURNS
from ._ggn import GGNFwdRev, GGNRevRev, OutputHessian
from ._gradient_covariance import BatchGradient, SampleFwdRev, SampleRevRev
from ._hessian import HessianFwdRev, HessianRevRev
from ._kernel import Kernel
from ._losses import KINDS as LOSS_KINDS
from ._losses import LossFn, check_kind_matches, loss_kind, resolve_loss
from ._losses import per_sample_loss as _per_sample_fn
from ._operator import CurvatureOperator
from ._options import BlocksArg, Mode, TorchOptions
from ._outputs import OutputArg
from ._params import ParamsArg, group_by_module, select_params
from ._setup import Setup, construct, make_batches


def hessian(
    model: nn.Module,
    loss_fn: LossFn | str | None,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = "auto",
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
    targets: TargetsArg = "labels",
    forward: ForwardArg = None,
    output: OutputArg = None,
    dropout: Literal["on", "off"] = "on",
    compile: bool | Literal["auto"] = "auto",
) -> CurvatureOperator:
    """The Hessian of the mean loss over all the data, ``H = Σ_b (n_b/N) ∇²L_b(θ)``.

    ``L_b`` is batch ``b``'s mean loss and ``n_b`` its size, so batches of unequal size
    are weighted by their size: ``H`` is the Hessian of the mean over the ``N`` samples.

    Cost per product with a block of ``k`` vectors, per batch: ``"rev-rev"``: one forward
    and one backward pass (with ``create_graph``), then one more backward pass per vector
    through the retained graph (none of the first two with ``cache_graphs``);
    ``"fwd-rev"``: ``k`` forward-and-backward passes in dual numbers.
    """

    def kernel(setup: Setup) -> tuple[Kernel, dict[str, Any]]:
        cls = HessianRevRev if setup.mode == "rev-rev" else HessianFwdRev
        return cls(setup.fmodel, vectorize=setup.vectorize), {}

    return construct(model, loss_fn, data, locals(), kernel)


def ggn(
    model: nn.Module,
    loss_fn: LossFn | str | None,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    loss_hessian: Literal["auto", "cross_entropy", "mse", "bce", "causal_lm", "autodiff"] = "auto",
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = "auto",
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
    targets: TargetsArg = "labels",
    forward: ForwardArg = None,
    output: OutputArg = None,
    dropout: Literal["on", "off"] = "on",
    compile: bool | Literal["auto"] = "auto",
) -> CurvatureOperator:
    """The generalised Gauss-Newton matrix ``G = Σ_b (n_b/N) J_bᵀ H_ℓ,b J_b``.

    ``J_b`` is the Jacobian of the model's outputs on batch ``b`` with respect to the
    parameters and ``H_ℓ,b`` the Hessian of the batch's mean loss with respect to those
    outputs. ``G`` is positive semi-definite when the loss is convex in the outputs.

    ``loss_hessian`` chooses ``H_ℓ``: ``"auto"`` uses a closed form when ``loss_fn`` is torch's
    cross-entropy (``diag(p) − ppᵀ`` per sample, divided by the batch size), MSE
    (``2I/numel``), BCE with logits (``diag(σ(1−σ))/numel``) with default options or
    ``"causal_lm"`` (``diag(p) − ppᵀ`` per predicted token, divided by their number), and
    differentiates ``loss_fn`` twice with respect to the outputs otherwise (``"autodiff"``).
    Naming a closed form asserts that ``loss_fn`` computes that loss (checked on batch 0).
    The outputs the loss takes must be one tensor (the logits of a ``ModelOutput`` are
    picked for a named loss; see ``output``); ``loss_fn=None`` (the model's own loss) is
    refused: ``H_ℓ`` needs the loss as a function of the outputs.

    Cost per product with a block of ``k`` vectors, per batch: ``"rev-rev"``: one forward
    pass and one backward pass (``Jᵀu`` with ``create_graph``), then per vector a pass
    through that graph (``Jv``) and one backward pass (``Jᵀ H_ℓ J v``); ``"fwd-rev"``: one
    forward and one backward pass, then per vector a forward pass in dual numbers and a
    backward pass.
    """

    def kernel(setup: Setup) -> tuple[Kernel, dict[str, Any]]:
        loss = setup.require_loss("the GGN")
        if loss_hessian == "auto":
            closed = loss_kind(loss)
        elif loss_hessian == "autodiff":
            closed = None
        elif loss_hessian in LOSS_KINDS:
            closed = loss_hessian
            check_kind_matches(closed, loss, setup.outputs, setup.batches.first()[1])
        else:
            raise ValueError(f"loss_hessian must be 'auto', 'autodiff' or one of {LOSS_KINDS}, got {loss_hessian!r}")
        if not isinstance(setup.outputs, torch.Tensor):
            raise TypeError(
                f"the GGN needs the outputs the loss takes as one tensor, got {type(setup.outputs).__name__}; "
                "choose it with output='logits' (a key or attribute), output=index or output=(outputs -> tensor)"
            )
        ignore_index = int(getattr(loss, "ignore_index", -100))
        out_hessian = OutputHessian(loss, closed, ignore_index=ignore_index)
        cls = GGNRevRev if setup.mode == "rev-rev" else GGNFwdRev
        return cls(setup.fmodel, out_hessian, vectorize=setup.vectorize), {"loss_hessian": closed or "autodiff"}

    return construct(model, loss_fn, data, locals(), kernel)


def gradient_covariance(
    model: nn.Module,
    loss_fn: LossFn | str | None,
    data: Iterable[Any],
    *,
    params: ParamsArg = None,
    centered: bool = False,
    per: Literal["sample", "batch"] = "sample",
    per_sample_loss: LossFn | None = None,
    mode: Mode = "auto",
    vectorize: bool | Literal["auto"] = "auto",
    cache_graphs: bool | Literal["auto"] = "auto",
    max_cache_bytes: int | None = None,
    stream: bool = False,
    blocks: BlocksArg = None,
    reduction: Literal["mean", "sum"] = "mean",
    allow_stochastic: bool = False,
    process_group: ProcessGroupArg = "auto",
    targets: TargetsArg = "labels",
    forward: ForwardArg = None,
    output: OutputArg = None,
    dropout: Literal["on", "off"] = "on",
    compile: bool | Literal["auto"] = "auto",
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
    losses equals ``loss_fn``. For ``"causal_lm"`` the samples are the predicted tokens
    (per-token gradients, batches weighted by their token counts); ``loss_fn=None`` (the
    model's own loss) needs ``per="batch"`` or ``per_sample_loss``. With BatchNorm in train
    mode a sample's loss depends on the whole batch, and ``gᵢ`` is the gradient of that loss.

    Cost per product with a block of ``k`` vectors, per batch: ``per="sample"``, rev-rev: one
    forward and one backward pass, then two passes per vector; fwd-rev: a forward and a
    backward pass, then a dual forward pass and a backward pass per vector. ``per="batch"``:
    one forward and one backward pass (none with ``cache_graphs``, which keeps the ``g_b``).
    """

    def kernel(setup: Setup) -> tuple[Kernel, dict[str, Any]]:
        if per == "batch":
            return BatchGradient(setup.fmodel), {}
        if per_sample_loss is None:
            setup.require_loss("per-sample gradients (per='sample')")
        fn, source = _per_sample_fn(setup.loss_fn, per_sample_loss)
        setup.check_per_sample(fn, source)
        cls = SampleRevRev if setup.mode == "rev-rev" else SampleFwdRev
        return cls(setup.fmodel, fn, vectorize=setup.vectorize), {"per_sample_loss": source}

    return construct(model, loss_fn, data, locals(), kernel)


def empirical_fisher(
    model: nn.Module, loss_fn: LossFn | str | None, data: Iterable[Any], *, params: ParamsArg = None, **kwargs: Any
) -> CurvatureOperator:
    """The empirical Fisher ``F = (1/N) Σ_i ∇ℓᵢ ∇ℓᵢᵀ``: :func:`gradient_covariance` with
    ``per="sample"`` and ``centered=False`` (other keywords are passed on)."""
    return gradient_covariance(model, loss_fn, data, params=params, per="sample", centered=False, **kwargs)


def _reraise(exc: BaseException) -> Any:
    raise exc


_KINDS = one_per_kind(
    {"hessian": hessian, "ggn": ggn, "gradient_covariance": gradient_covariance}, "the torch adapter's constructors"
)
"""Kind name (:data:`eigenscope.adapters.KINDS`) -> its constructor."""


def layerwise(
    model: nn.Module,
    loss_fn: LossFn | str | None,
    data: Iterable[Any],
    *,
    kind: KindName = "hessian",
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
    constructor = _KINDS[curvature_kind(kind, what="kind").name]
    try:
        names, tensors = select_params(model, params)
        options = TorchOptions.from_arguments({**kwargs, "stream": stream})
        resolved = None if loss_fn is None else resolve_loss(loss_fn)
        batches = make_batches(data, resolved, options, tensors[0].device, tensors[0].dtype)
    except Exception as exc:
        # The other ranks are about to agree on their first operator: join them with the error.
        data_parallel(partial(_reraise, exc), kwargs.get("process_group", "auto"))
        raise
    return {
        module: constructor(model, loss_fn, batches, params=group, **kwargs)
        for module, group in group_by_module(names).items()
    }


for _constructor in (hessian, ggn, gradient_covariance):
    document(_constructor, PARAMETERS, returns=RETURNS, raises=RAISES)
