"""What every torch constructor does before its kernel: the model, loss, parameters and data,
validated once, and the operator built from them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._batches import BatchFormat
from . import _causal_lm
from ._data import Batches
from ._distributed import data_parallel
from ._functional import FunctionalModel
from ._kernel import Kernel
from ._losses import LossFn, check_mean_reduced, check_shapes, loss_kind, resolve_loss
from ._operator import CurvatureOperator
from ._options import BlocksArg, TorchOptions
from ._outputs import logits, own_loss, selector
from ._params import ParamSpec, group_by_module, make_spec, select_params
from ._state import check_stochastic

KernelFactory = Callable[["Setup"], tuple[Kernel, dict[str, Any]]]
"""``setup -> (kernel, details)``: what a constructor adds to the shared setup."""


def construct(
    model: nn.Module,
    loss_fn: LossFn | str | None,
    data: Iterable[Any],
    arguments: Mapping[str, Any],
    kernel: KernelFactory,
) -> CurvatureOperator:
    """The operator of a constructor called with ``arguments`` (its ``locals()``).

    The options are read and checked, the model, loss and data set up, and the kernel made,
    inside the guard of :func:`data_parallel`: under a process group a rank that fails makes
    every rank raise instead of leaving them waiting.
    """

    def build() -> CurvatureOperator:
        options = TorchOptions.from_arguments(arguments)
        setup = Setup(model, loss_fn, data, options)
        made, details = kernel(setup)
        return setup.operator(made, details)

    return data_parallel(build, arguments.get("process_group", "auto"))


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


def make_batches(
    data: Iterable[Any], loss_fn: LossFn | None, options: TorchOptions, device: torch.device, dtype: torch.dtype
) -> Batches:
    """The data of an operator of ``loss_fn`` (resolved; ``None``: the model's own loss),
    read as ``options`` say (``targets=``, ``forward=``, ``stream=``): for ``"causal_lm"`` a
    batch weighs its predicted tokens and its padding is masked in the labels."""
    fmt = BatchFormat(targets=options.targets, forward=options.forward, keep_targets=loss_fn is None)
    causal = loss_fn is not None and loss_kind(loss_fn) == "causal_lm"
    return Batches(
        data,
        device=device,
        dtype=dtype,
        stream=options.stream,
        batch_format=fmt,
        need_targets=loss_fn is not None,
        count=_causal_lm.count_tokens if causal else None,
        prepare=_causal_lm.mask_padding if causal else None,
    )


def _choose_output(loss_fn: LossFn | None, options: TorchOptions, raw: Any, targets: Any) -> Any:
    """What the loss takes of the model's outputs: the ``output=`` selector; else, for a named
    or torch loss, the logits; for another callable, the outputs as they are, or their logits
    when the loss fails on a ``ModelOutput``/mapping/tuple and works on its logits."""
    if options.output is not None:
        return selector(options.output)
    if loss_fn is None or isinstance(raw, torch.Tensor):
        return None
    if loss_kind(loss_fn) is not None:
        return logits
    try:
        with torch.no_grad():
            loss_fn(raw, targets)
        return None
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        failure = exc
    try:
        with torch.no_grad():
            loss_fn(logits(raw), targets)
    except Exception:
        raise failure from None
    return logits


def _check_first_batch(
    fmodel: FunctionalModel, params: list[torch.Tensor], batches: Batches, deterministic: bool, raw: Any
) -> tuple[Any, torch.Tensor]:
    """Outputs and loss of batch 0 (``raw``: the model's outputs), checked: fitting shapes, a
    finite 0-d loss, twice the same value."""
    inputs, targets = batches.first()
    with torch.no_grad():
        outputs = raw if fmodel.select is None else fmodel.select(raw)
        if fmodel.loss_fn is None:
            loss = own_loss(raw)
        else:
            kind = loss_kind(fmodel.loss_fn)
            if kind is not None:
                check_shapes(kind, outputs, targets)
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
                    "forward pass; dropout='off' makes every dropout the identity) or pass allow_stochastic=True"
                )
    return outputs, loss


class Setup:
    """What every constructor needs, validated once: the model as a function of the
    selected parameters, the batches on the device, batch 0's outputs and loss, the blocks,
    and the options resolved for the parameters' device (``mode``, ``vectorize``)."""

    def __init__(
        self, model: nn.Module, loss_fn: LossFn | str | None, data: Iterable[Any] | Batches, options: TorchOptions
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.options = options
        self.loss_fn: LossFn | None = None if loss_fn is None else resolve_loss(loss_fn)
        self.names, self.params = select_params(model, options.params)
        self.spec: ParamSpec = make_spec(self.names, self.params)
        check_stochastic(model, options.allow_stochastic, options.dropout)
        if isinstance(data, Batches):
            self.batches = data
        else:
            self.batches = make_batches(data, self.loss_fn, options, self.spec.device, self.spec.dtype)
        self.fmodel = FunctionalModel(model, self.names, self.loss_fn, forward=options.forward, dropout=options.dropout)
        inputs, targets = self.batches.first()
        with torch.no_grad():
            raw = self.fmodel.raw_outputs(self.params, inputs)
        self.fmodel.select = _choose_output(self.loss_fn, options, raw, targets)
        self.outputs, self.loss = _check_first_batch(
            self.fmodel, self.params, self.batches, not options.allow_stochastic, raw
        )
        # A summed loss would scale every kind by the batch size, silently: refuse it here, once.
        if self.loss_fn is not None and loss_kind(self.loss_fn) != "causal_lm":
            check_mean_reduced(self.loss_fn, self.outputs, targets, self.loss, self.batches.batch_sizes[0])
        self.blocks = _resolve_blocks(model, self.names, options.blocks)
        self.mode = options.product_mode
        # Measured on CPU (benchmarks/bench_torch_adapters.py): a loop over the vectors beats vmap there.
        self.vectorize = options.resolve_vectorize(self.spec.device.type == "cuda")

    def operator(self, kernel: Kernel, details: dict[str, Any] | None = None) -> CurvatureOperator:
        """The operator applying ``kernel`` over the batches."""
        return CurvatureOperator(
            kernel=kernel,
            model=self.model,
            fmodel=self.fmodel,
            spec=self.spec,
            params=self.params,
            batches=self.batches,
            options=self.options,
            blocks=self.blocks,
            details=details,
        )

    def require_loss(self, what: str) -> LossFn:
        """The loss as a function of the outputs; ``ValueError`` for the model's own loss."""
        if self.loss_fn is None:
            raise ValueError(
                f"{what} needs the loss as a function of the model's outputs, but loss_fn=None uses the loss the "
                "model computes inside its forward pass; pass loss_fn='cross_entropy' (classification), "
                "'causal_lm' (a causal language model) or a callable loss_fn(outputs, targets)"
            )
        return self.loss_fn

    def check_per_sample(self, fn: LossFn, source: str) -> None:
        """On batch 0: per-sample losses of shape ``(n_0,)`` whose mean is the batch loss."""
        targets = self.batches.first()[1]
        n = self.batches.batch_sizes[0]
        with torch.no_grad():
            try:
                values = fn(self.outputs, targets)
            except Exception as exc:
                raise ValueError(
                    f"could not compute per-sample losses ({source}): {exc}. Pass per_sample_loss="
                    "(outputs, targets) -> tensor of shape (batch_size,)"
                ) from exc
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (n,):
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"per-sample losses ({source}) have shape {shape}, expected ({n},)")
        mean, loss = float(values.mean()), float(self.loss)
        tol = 1e3 * torch.finfo(values.dtype).eps * max(1.0, abs(loss))
        if abs(mean - loss) > tol:
            raise ValueError(
                f"the mean of the per-sample losses ({source}) is {mean!r} but loss_fn gives {loss!r} on batch 0; "
                "pass per_sample_loss=(outputs, targets) -> (batch_size,) whose mean is loss_fn"
            )
