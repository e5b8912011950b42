"""Losses: names, closed-form Hessians with respect to the outputs, per-sample losses, the
check that a loss is mean-reduced."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import _causal_lm

LossFn = Callable[..., torch.Tensor]

CAUSAL_LM = _causal_lm.CausalLMLoss()
_FUNCTIONALS: dict[str, LossFn] = {
    "cross_entropy": F.cross_entropy,
    "mse": F.mse_loss,
    "bce": F.binary_cross_entropy_with_logits,
    "causal_lm": CAUSAL_LM,
}
_ALIASES = {
    "cross_entropy": "cross_entropy",
    "ce": "cross_entropy",
    "mse": "mse",
    "mse_loss": "mse",
    "bce": "bce",
    "bce_with_logits": "bce",
    "binary_cross_entropy_with_logits": "bce",
    "causal_lm": "causal_lm",
}
KINDS = ("cross_entropy", "mse", "bce", "causal_lm")


def resolve_loss(loss_fn: LossFn | str) -> LossFn:
    """A callable loss from ``loss_fn``; the strings ``"cross_entropy"``, ``"mse"`` and
    ``"bce"`` (BCE with logits) name the mean-reduced ``torch.nn.functional`` losses,
    ``"causal_lm"`` the next-token cross-entropy of a causal language model (shifted labels,
    ``-100`` ignored, mean over the predicted tokens: see ``CausalLMLoss``).

    Parameters
    ----------
    loss_fn
        A callable ``loss_fn(outputs, targets)`` (returned as it is) or a loss name:
        ``"cross_entropy"`` (``"ce"``), ``"mse"`` (``"mse_loss"``), ``"bce"``
        (``"bce_with_logits"``, ``"binary_cross_entropy_with_logits"``), ``"causal_lm"``.

    Returns
    -------
    Callable
        ``(outputs, targets) -> 0-d tensor``.

    Raises
    ------
    ValueError
        An unknown loss name.
    TypeError
        Neither a callable nor a string.
    """
    if isinstance(loss_fn, str):
        key = _ALIASES.get(loss_fn)
        if key is None:
            raise ValueError(f"unknown loss name {loss_fn!r}; use one of {sorted(_ALIASES)} or pass a callable")
        return _FUNCTIONALS[key]
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(outputs, targets) or a name, got {type(loss_fn).__name__}")
    return loss_fn


def loss_kind(loss_fn: LossFn) -> str | None:
    """``"cross_entropy"``, ``"mse"``, ``"bce"`` or ``"causal_lm"`` when ``loss_fn`` is the
    mean-reduced loss of that name with default options (so its closed-form output Hessian
    applies), else ``None``."""
    for kind, fn in _FUNCTIONALS.items():
        if loss_fn is fn:
            return kind
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        plain = loss_fn.weight is None and loss_fn.label_smoothing == 0.0 and loss_fn.reduction == "mean"
        return "cross_entropy" if plain else None
    if isinstance(loss_fn, nn.MSELoss):
        return "mse" if loss_fn.reduction == "mean" else None
    if isinstance(loss_fn, nn.BCEWithLogitsLoss):
        plain = loss_fn.weight is None and loss_fn.pos_weight is None and loss_fn.reduction == "mean"
        return "bce" if plain else None
    return None


def _ignore_index(loss_fn: LossFn) -> int:
    return int(getattr(loss_fn, "ignore_index", -100))


def output_hessian_closed_form(
    kind: str, outputs: torch.Tensor, targets: Any, ignore_index: int = -100
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``u -> H_ℓ u`` for the Hessian of the mean loss of one batch with respect to the
    outputs, in closed form; ``u`` has shape ``(b, *outputs.shape)``.

    - cross-entropy (class dimension 1, integer targets): per position
      ``H = (diag(p) − p pᵀ) / M``, ``p = softmax(logits)``, ``M`` the number of
      positions not equal to ``ignore_index``;
    - MSE: ``H = (2 / numel) I``;
    - BCE with logits: ``H = diag(σ(o)(1 − σ(o))) / numel``.

    Returns ``None`` where the closed form does not apply (e.g. probability targets for
    cross-entropy); the caller then differentiates the loss twice instead.
    """
    o = outputs.detach()
    if kind == "causal_lm":
        return _causal_lm.closed_form(o, targets)
    if kind == "cross_entropy":
        if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or o.ndim < 2:
            return None
        p = torch.softmax(o, dim=1)
        keep = (targets != ignore_index).unsqueeze(1).to(o.dtype)
        scale = keep / keep.sum().clamp_min(1)

        def ce(u: torch.Tensor) -> torch.Tensor:
            pu = p * u
            return scale * (pu - p * pu.sum(dim=2, keepdim=True))

        return ce
    if kind == "mse":
        factor = 2.0 / o.numel()
        return lambda u: factor * u
    if kind == "bce":
        s = torch.sigmoid(o)
        w = s * (1 - s) / o.numel()
        return lambda u: w * u
    raise ValueError(f"unknown loss kind {kind!r}")


def check_kind_matches(kind: str, loss_fn: LossFn, outputs: torch.Tensor, targets: Any) -> None:
    """Raise ``ValueError`` unless ``loss_fn`` equals the named torch loss on one batch (run
    once when the user forces a closed form with ``loss_hessian=``)."""
    with torch.no_grad():
        ours = loss_fn(outputs, targets)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. MSE's broadcasting warning: a mismatch anyway
                ref = _FUNCTIONALS[kind](outputs, targets)
            same = bool(torch.allclose(ours, ref, rtol=1e-5, atol=1e-8 * max(1.0, float(ref.abs()))))
            found = f"{float(ours):.6g} vs {float(ref):.6g}"
        except (RuntimeError, ValueError, TypeError) as exc:
            same, found = False, f"torch's loss fails on these outputs: {exc}"
    if not same:
        raise ValueError(
            f"loss_hessian={kind!r} but loss_fn differs from torch's mean {kind} on the first batch "
            f"({found}); use loss_hessian='autodiff'"
        )


def per_sample_loss(loss_fn: LossFn, user: LossFn | None) -> tuple[LossFn, str]:
    """``(outputs, targets) -> (n,)`` per-sample losses whose mean is ``loss_fn``, and how it
    was obtained.

    In order: the user's ``per_sample_loss``; a recognised torch loss with
    ``reduction="none"``; ``loss_fn(outputs, targets, reduction="none")`` when ``loss_fn``
    takes a ``reduction`` argument; else ``torch.func.vmap`` of ``loss_fn`` over single-sample
    slices of the outputs and targets. Extra dimensions of an unreduced loss (tokens, pixels)
    are averaged per sample. The caller checks the result against ``loss_fn`` on one batch.
    """
    if user is not None:
        return user, "per_sample_loss"
    kind = loss_kind(loss_fn)
    if kind == "causal_lm":
        return CAUSAL_LM.per_token, "causal_lm (per token)"
    if kind is not None:
        fn = _FUNCTIONALS[kind]
        if kind == "cross_entropy":
            ignore = _ignore_index(loss_fn)
            return (lambda o, y: _per_sample(fn(o, y, reduction="none", ignore_index=ignore), y)), kind
        return (lambda o, y: _per_sample(fn(o, y, reduction="none"), y)), kind
    if _takes_reduction(loss_fn):
        return (lambda o, y: _per_sample(loss_fn(o, y, reduction="none"), y)), "reduction='none'"

    def vmapped(o: Any, y: Any) -> torch.Tensor:
        # Map over the tensors of the outputs with the batch's leading dimension only, and
        # give the loss each sample's outputs in the outputs' own container (a ModelOutput
        # stays one: vmap's pytrees would hand the loss a plain dict).
        n = y.shape[0] if isinstance(y, torch.Tensor) else _leading(o)
        batched: list[torch.Tensor] = []
        _collect(o, n, batched)

        def one(parts: list[torch.Tensor], yi: Any) -> torch.Tensor:
            return loss_fn(_rebuild(o, n, iter([p.unsqueeze(0) for p in parts])), _unsqueeze(yi))

        return torch.func.vmap(one)(batched, y)

    return vmapped, "vmap"


def _takes_reduction(fn: Any) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return "reduction" in sig.parameters


def _leading(obj: Any) -> int:
    found: list[torch.Tensor] = []
    _collect(obj, -1, found)
    return int(found[0].shape[0]) if found else 0


def _collect(obj: Any, n: int, out: list[torch.Tensor]) -> None:
    """The tensors of ``obj`` whose leading dimension is ``n`` (any, for ``n = -1``)."""
    if isinstance(obj, torch.Tensor):
        if obj.ndim > 0 and (n < 0 or obj.shape[0] == n):
            out.append(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _collect(v, n, out)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _collect(v, n, out)


def _rebuild(obj: Any, n: int, parts: Iterator[torch.Tensor]) -> Any:
    """``obj`` with its tensors of leading dimension ``n`` replaced by ``parts``, in the
    order of :func:`_collect`, in the same containers (a ``ModelOutput`` is rebuilt from its
    fields)."""
    if isinstance(obj, torch.Tensor):
        return next(parts) if obj.ndim > 0 and obj.shape[0] == n else obj
    if isinstance(obj, Mapping):
        fields = {k: _rebuild(v, n, parts) for k, v in obj.items()}
        try:
            return type(obj)(**fields)
        except TypeError:
            return fields
    if isinstance(obj, (tuple, list)):
        return type(obj)(_rebuild(v, n, parts) for v in obj)
    return obj


def _unsqueeze(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.unsqueeze(0)
    if isinstance(x, dict):
        return {k: _unsqueeze(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_unsqueeze(v) for v in x)
    return x


def _per_sample(values: torch.Tensor, targets: Any) -> torch.Tensor:
    n = targets.shape[0] if isinstance(targets, torch.Tensor) else values.shape[0]
    if values.ndim == 0:
        raise ValueError("the unreduced loss is a scalar; per-sample losses need a per-sample value")
    if values.shape[0] == n:
        return values.reshape(n, -1).mean(dim=1)
    raise ValueError(
        f"the unreduced loss has shape {tuple(values.shape)}, which does not start with the batch size {n}; "
        "pass per_sample_loss=(outputs, targets) -> (n,) tensor"
    )


def _rows(obj: Any, rows: slice, n: int) -> Any:
    """``obj`` restricted to the samples ``rows``: every tensor of a (nested) tuple/list/dict
    whose leading dimension is the batch size ``n`` is sliced (a view), anything else is
    kept whole (a scalar, a class-weight vector of another length)."""
    if isinstance(obj, torch.Tensor):
        return obj[rows] if obj.ndim > 0 and obj.shape[0] == n else obj
    if isinstance(obj, dict):
        return {k: _rows(v, rows, n) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_rows(v, rows, n) for v in obj)
    return obj


def _halves(loss_fn: LossFn, outputs: Any, targets: Any, n: int) -> tuple[float, float] | None:
    """``loss_fn`` on the first ``n // 2`` samples and on the others, or ``None`` when it
    cannot be evaluated on a part (a loss tied to a fixed batch size, a half with no
    counted sample giving NaN)."""
    halves = (slice(0, n // 2), slice(n // 2, n))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings of the loss were shown for the whole batch
            parts = [loss_fn(_rows(outputs, rows, n), _rows(targets, rows, n)) for rows in halves]
    except Exception:
        return None
    if not all(isinstance(p, torch.Tensor) and p.numel() == 1 and bool(torch.isfinite(p)) for p in parts):
        return None
    return float(parts[0]), float(parts[1])


def check_mean_reduced(loss_fn: LossFn, outputs: Any, targets: Any, loss: torch.Tensor, n: int) -> None:
    """Raise ``ValueError`` if ``loss_fn`` sums over the samples instead of averaging.

    ``L = loss_fn(outputs, targets)`` is compared with its values ``a`` and ``b`` on the two
    halves of the batch (slices of the outputs already computed: no forward pass, two loss
    evaluations). Any mean over samples, tokens or weights (class weights, label smoothing,
    ``ignore_index``) is a convex combination ``L = w·a + (1−w)·b``, ``w ∈ [0, 1]``, so it lies
    between ``a`` and ``b``; a sum is additive, ``L = a + b``, outside ``[min, max]`` by
    ``min(|a|, |b|)`` when ``a`` and ``b`` share a sign. Only that case is refused: it is
    where the operator would come out about ``n_b`` times too large.

    What cannot be told apart, and passes: a batch of one sample (sum and mean coincide), a
    half with zero loss, halves of opposite signs, a loss that cannot be evaluated on half a
    batch. A loss dividing a sum by a fixed number (the nominal batch size) is additive and
    is refused: it is the mean only on full batches.
    """
    if n < 2:
        return
    parts = _halves(loss_fn, outputs, targets, n)
    if parts is None:
        return
    a, b, whole = *parts, float(loss)
    # Rounding of the reductions; capped so that half precision still separates sum from mean.
    dtype = loss.dtype if loss.is_floating_point() else torch.float32
    rel = min(1e3 * float(torch.finfo(dtype).eps), 0.05)
    tol = rel * max(abs(whole), abs(a), abs(b), float(torch.finfo(torch.float64).tiny))
    outside = max(min(a, b) - whole, whole - max(a, b), 0.0)
    if outside > tol and abs(whole - (a + b)) <= tol:
        raise ValueError(
            f"loss_fn looks sum-reduced: on batch 0 ({n} samples) it gives {whole:.6g}, the sum of its values "
            f"on the two halves ({a:.6g} + {b:.6g}), where a mean would lie between them. The operator needs "
            "the mean loss of a batch: use a mean-reduced loss (reduction='mean', e.g. "
            "torch.nn.CrossEntropyLoss(), or divide the sum by the batch size), and pass reduction='sum' to "
            "this constructor for the matrix of the summed loss (N times that of the mean)"
        )


def check_shapes(kind: str, outputs: Any, targets: Any) -> None:
    """Raise ``ValueError`` with the fix when the outputs and targets of batch 0 do not fit
    the named loss ``kind`` (before torch's own, less helpful, error)."""
    if kind == "causal_lm" or not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return
    o, y = tuple(outputs.shape), tuple(targets.shape)
    fix = ""
    if kind == "cross_entropy":
        if not targets.is_floating_point():
            expected = o[:1] + o[2:]
            if y != expected:
                fix = f"integer class targets of shape {expected}"
                if y == (*expected, 1):
                    fix += " (squeeze the targets: y.squeeze(-1))"
                elif len(o) == 3 and y == o[:2]:
                    fix = (
                        "classes on dimension 1; for per-token logits (batch, length, classes) of a language "
                        "model use loss_fn='causal_lm', or output=lambda out: out.logits.transpose(1, 2)"
                    )
        elif y != o:
            fix = f"class probabilities of the outputs' shape {o}"
    elif y != o:
        fix = f"targets of the outputs' shape {o}"
        if o == (*y, 1):
            fix += " (output=lambda out: out.squeeze(-1), or targets y.unsqueeze(-1))"
        elif y == (*o, 1):
            fix += " (targets y.squeeze(-1))"
    elif kind == "bce" and not targets.is_floating_point():
        fix = "floating-point targets in [0, 1] (y.float())"
    if fix:
        raise ValueError(
            f"loss {kind!r} got outputs of shape {o} and targets of shape {y} ({targets.dtype}) on batch 0; "
            f"it needs {fix}"
        )
