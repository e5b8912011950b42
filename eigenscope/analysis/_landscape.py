"""The loss (and accuracy) of a PyTorch model along directions in parameter space.

``θ + t·v`` for a grid of t (a 1-D curve) and ``θ + s·v₁ + t·v₂`` (a 2-D surface), with
``v`` flat vectors over the selected parameters in the adapters' order (an eigenvector of
``est.hessian(...)``, say), on one or several data sets (train and held-out).

The model is never written to: every evaluation calls it through
``torch.func.functional_call`` with the shifted parameters and with copies of the
buffers (BatchNorm in train mode normalizes with batch statistics and updates nothing),
so parameters, buffers, ``.grad`` and train/eval mode stay exactly as they were (seed
002 looks at the loss along eigenvectors; the model must come out bit for bit the same).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..adapters.torch import Batches, FunctionalModel, make_spec, resolve_loss, select_params

DataArg = Iterable[Any] | Mapping[str, Iterable[Any]]
"""One re-iterable of ``(inputs, targets)`` batches, or ``{name: batches}`` (e.g.
``{"train": ..., "test": ...}``); a single one is named ``"train"``."""

AccuracyArg = bool | str | Callable[[Any, Any], tuple[float, float]]

ParamsArg = Any
"""The parameter selection, as the ``params=`` of :func:`eigenscope.adapters.torch.hessian`
(None: every parameter with ``requires_grad``)."""


def default_steps(num_points: int = 41, radius: float = 1.0) -> np.ndarray:
    """``num_points`` evenly spaced values of t in ``[−radius, radius]`` (0 included when odd)."""
    return np.linspace(-radius, radius, num_points)


def _correct_auto(outputs: Any, targets: Any) -> tuple[float, float] | None:
    """``(correct, counted)`` for classification outputs, or None when there is no accuracy.

    Integer targets of shape ``outputs.shape`` minus dim 1: argmax over the class dim 1
    (positions equal to -100, cross-entropy's ``ignore_index``, are not counted).
    Float targets in {0, 1} of the outputs' shape: binary, logit > 0.
    """
    if not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return None
    if not outputs.is_floating_point():
        return None
    if not targets.is_floating_point():
        if outputs.ndim < 2 or tuple(targets.shape) != (outputs.shape[0], *outputs.shape[2:]):
            return None
        keep = targets != -100
        hit = (outputs.argmax(dim=1) == targets) & keep
        return float(hit.sum()), float(keep.sum())
    if targets.shape == outputs.shape and bool(((targets == 0) | (targets == 1)).all()):
        hit = (outputs > 0) == (targets > 0.5)
        return float(hit.sum()), float(hit.numel())
    return None


class _Evaluator:
    """Loss and accuracy of the model at ``θ₀ + offset`` on named data sets, never writing the model."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Any,
        data: DataArg,
        params: ParamsArg,
        accuracy: AccuracyArg,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.loss_fn = resolve_loss(loss_fn)
        self.names, tensors = select_params(model, params)
        self.spec = make_spec(self.names, tensors)
        self.theta0 = [p.detach().clone() for p in tensors]
        self.fmodel = FunctionalModel(model, self.names, self.loss_fn)
        sets = dict(data) if isinstance(data, Mapping) else {"train": data}
        if not sets:
            raise ValueError("data holds no data set")
        self.sets = {
            name: Batches(batches, device=self.spec.device, dtype=self.spec.dtype) for name, batches in sets.items()
        }
        if accuracy is True or accuracy == "auto":
            self.accuracy: Callable[[Any, Any], tuple[float, float] | None] | None = _correct_auto
        elif accuracy is False or accuracy is None:
            self.accuracy = None
        elif callable(accuracy):
            self.accuracy = accuracy
        else:
            raise ValueError(f"accuracy must be 'auto', True, False or a callable, got {accuracy!r}")
        self.strict_accuracy = accuracy is True

    def flat(self, v: Any, name: str) -> torch.Tensor:
        """A direction as a flat tensor on the parameters' device and dtype, checked."""
        v = torch.as_tensor(v)
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.ndim != 1 or v.shape[0] != self.spec.num_params:
            raise ValueError(
                f"{name} must be a flat vector of the {self.spec.num_params} selected parameters, "
                f"got shape {tuple(v.shape)}"
            )
        v = v.detach().to(device=self.spec.device, dtype=self.spec.dtype)
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} has NaN or Inf entries")
        return v

    @torch.no_grad()
    def __call__(self, offset: torch.Tensor) -> dict[str, tuple[float, float]]:
        """``{set: (mean loss, accuracy or nan)}`` at ``θ₀ + offset``."""
        params = [p0 + d for p0, d in zip(self.theta0, self.spec.split(offset), strict=True)]
        out: dict[str, tuple[float, float]] = {}
        for name, batches in self.sets.items():
            total, correct, counted = 0.0, 0.0, 0.0
            for _, inputs, targets, size in batches:
                outputs = self.fmodel.outputs(params, inputs)
                total += float(self.loss_fn(outputs, targets)) * size  # mean over samples
                if self.accuracy is not None:
                    got = self.accuracy(outputs, targets)
                    if got is None:
                        if self.strict_accuracy:
                            raise ValueError(
                                "accuracy=True but the outputs/targets are neither class logits with integer "
                                "labels nor binary logits with 0/1 targets; pass a callable accuracy"
                            )
                    else:
                        correct += got[0]
                        counted += got[1]
            acc = correct / counted if counted > 0 else float("nan")
            out[name] = (total / batches.num_samples, acc)
        return out


@dataclass(frozen=True)
class LossCurve:
    """The loss (and accuracy) along ``θ + t·v``.

    Attributes
    ----------
    steps : numpy.ndarray, shape (m,)
        The values of t.
    loss : dict[str, numpy.ndarray]
        Per data set, the mean loss over its samples at each t, shape (m,).
    accuracy : dict[str, numpy.ndarray]
        Per data set, the accuracy at each t (only for classification; else empty).
    direction_norm : float
        ``‖v‖``: t is in units of ‖v‖ (1 for an eigenvector).
    label : str
        What the direction is (e.g. ``"v1 (λ=18.0)"``).
    """

    steps: np.ndarray
    loss: dict[str, np.ndarray]
    accuracy: dict[str, np.ndarray] = field(default_factory=dict)
    direction_norm: float = 1.0
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields for JSON output."""
        return {
            "label": self.label,
            "direction_norm": self.direction_norm,
            "steps": self.steps.tolist(),
            "loss": {k: v.tolist() for k, v in self.loss.items()},
            "accuracy": {k: v.tolist() for k, v in self.accuracy.items()},
        }


@dataclass(frozen=True)
class LossSurface:
    """The loss (and accuracy) on the plane ``θ + s·v₁ + t·v₂``.

    Attributes
    ----------
    steps1, steps2 : numpy.ndarray, shapes (m₁,), (m₂,)
        The values of s and t.
    loss : dict[str, numpy.ndarray]
        Per data set, shape (m₁, m₂): ``loss[name][i, j]`` at ``(steps1[i], steps2[j])``.
    accuracy : dict[str, numpy.ndarray]
        Per data set, same shape (classification only; else empty).
    labels : tuple[str, str]
        What ``v₁`` and ``v₂`` are.
    """

    steps1: np.ndarray
    steps2: np.ndarray
    loss: dict[str, np.ndarray]
    accuracy: dict[str, np.ndarray] = field(default_factory=dict)
    labels: tuple[str, str] = ("v1", "v2")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields for JSON output."""
        return {
            "labels": list(self.labels),
            "steps1": self.steps1.tolist(),
            "steps2": self.steps2.tolist(),
            "loss": {k: v.tolist() for k, v in self.loss.items()},
            "accuracy": {k: v.tolist() for k, v in self.accuracy.items()},
        }


def _collect(values: list[dict[str, tuple[float, float]]], shape: tuple[int, ...]):
    names = list(values[0])
    loss = {n: np.array([v[n][0] for v in values]).reshape(shape) for n in names}
    acc = {n: np.array([v[n][1] for v in values]).reshape(shape) for n in names}
    acc = {n: a for n, a in acc.items() if not np.all(np.isnan(a))}
    return loss, acc


def loss_along(
    model: nn.Module,
    loss_fn: Any,
    data: DataArg,
    direction: Any,
    steps: Sequence[float] | np.ndarray | None = None,
    *,
    params: ParamsArg = None,
    accuracy: AccuracyArg = "auto",
    label: str = "",
    progress: Callable[[int], None] | None = None,
) -> LossCurve:
    """The loss along a line through the current parameters: ``L(θ + t·v)`` for each t.

    Parameters
    ----------
    model
        The ``torch.nn.Module``, in the mode (train/eval) to evaluate it in. Never modified.
    loss_fn
        ``loss_fn(outputs, targets)`` -> mean loss of a batch, or ``"cross_entropy"``,
        ``"mse"``, ``"bce"``.
    data
        Batches of ``(inputs, targets)``, or ``{name: batches}`` for several sets (train
        and held-out); each loss is the mean over that set's samples.
    direction : torch.Tensor or array, shape (n,)
        ``v``, a flat vector over the selected parameters in ``model.named_parameters()``
        order, as the adapters' operators use (an eigenvector column of ``es.eigsh(H, …)``).
    steps : sequence of float, shape (m,)
        The values of t; default :func:`default_steps` (41 points in ``[−1, 1]``).
    params
        The parameter selection ``v`` lives in (as for ``est.hessian``); default all
        parameters with ``requires_grad``.
    accuracy
        ``"auto"`` (classification accuracy when the outputs are class logits with integer
        labels, or binary logits with 0/1 targets), ``True`` (required), ``False``, or a
        callable ``(outputs, targets) -> (correct, counted)``.
    label
        Stored with the result (for plots).
    progress
        Called with 1 after each evaluation (a progress bar's ``update``).

    Returns
    -------
    LossCurve
        Cost: ``m`` forward passes over every data set (no gradients).
    """
    ev = _Evaluator(model, loss_fn, data, params, accuracy)
    v = ev.flat(direction, "direction")
    ts = default_steps() if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    values = []
    for t in ts:
        values.append(ev(float(t) * v))
        if progress is not None:
            progress(1)
    loss, acc = _collect(values, (ts.size,))
    return LossCurve(ts, loss, acc, float(torch.linalg.vector_norm(v)), label)


def loss_surface(
    model: nn.Module,
    loss_fn: Any,
    data: DataArg,
    direction1: Any,
    direction2: Any,
    steps1: Sequence[float] | np.ndarray | None = None,
    steps2: Sequence[float] | np.ndarray | None = None,
    *,
    params: ParamsArg = None,
    accuracy: AccuracyArg = "auto",
    labels: tuple[str, str] = ("v1", "v2"),
    progress: Callable[[int], None] | None = None,
) -> LossSurface:
    """The loss on a plane through the current parameters: ``L(θ + s·v₁ + t·v₂)``.

    Takes the arguments of :func:`loss_along`, with two directions and two grids (default
    21 points in ``[−1, 1]`` each). Typically ``v₁, v₂`` are the top two Hessian
    eigenvectors; the plane then shows the sharpest curvature of the landscape.

    Returns
    -------
    LossSurface
        Cost: ``m₁ · m₂`` forward passes over every data set.
    """
    ev = _Evaluator(model, loss_fn, data, params, accuracy)
    v1 = ev.flat(direction1, "direction1")
    v2 = ev.flat(direction2, "direction2")
    s = default_steps(21) if steps1 is None else np.asarray(steps1, dtype=np.float64).reshape(-1)
    t = default_steps(21) if steps2 is None else np.asarray(steps2, dtype=np.float64).reshape(-1)
    values = []
    for a in s:
        for b in t:
            values.append(ev(float(a) * v1 + float(b) * v2))
            if progress is not None:
                progress(1)
    loss, acc = _collect(values, (s.size, t.size))
    return LossSurface(s, t, loss, acc, labels)
