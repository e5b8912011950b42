"""The workloads W1–W3 as every tool needs them: one model, one set of weights, one set of batches.

``Setup`` builds the zoo workload once and hands each tool the same weights and data in
the form the tool accepts:

- eigenscope: the model and batches as they are (``est.hessian``);
- PyHessian: a deep copy (it calls ``.eval()`` and writes ``.grad``); W3's dict inputs packed
  into one float tensor ``[ids | dense]`` (PyHessian calls ``model(inputs)`` and
  ``inputs.size(0)``), unpacked by a wrapper module that owns the same parameters;
- curvlinops: ``nn.Module`` losses (``CrossEntropyLoss``/``BCEWithLogitsLoss``, it makes them
  functional) and, for W3, a wrapper calling ``model(**x)`` plus a ``batch_size_fn``;
- hessian-eigenthings: ``loss_fn(model, batch)``.

W2's attention runs with the "math" kernel of ``scaled_dot_product_attention`` and without
the fused fast path of ``nn.TransformerEncoderLayer`` for every tool: the fused CPU kernels
have no second derivative, so no tool can differentiate W2 twice without this (eigenscope
does the same internally).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from eigenscope import zoo
from eigenscope.adapters import torch as est

WORKLOADS = ("W1", "W2", "W3")

# eigenscope's settings per workload: none, the defaults users get (the graph cache and the
# compiled products decide for themselves: cache_graphs="auto", compile="auto").
EIGENSCOPE_OPTIONS: dict[str, dict[str, Any]] = {"W1": {}, "W2": {}, "W3": {}}


@contextlib.contextmanager
def unfused_attention() -> Iterator[None]:
    """Attention through differentiable-twice kernels (the shim every tool gets on W2)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


class PackedInputs(nn.Module):
    """W3 for PyHessian, which needs one input tensor: ``[ids as floats | dense]``, split back.

    Ids are below 2^24, so the float round trip is exact; the parameters are the wrapped
    model's, in the same order.
    """

    def __init__(self, model: nn.Module, num_fields: int) -> None:
        super().__init__()
        self.model = model
        self.num_fields = num_fields

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, : self.num_fields].round().long()
        return self.model(ids, x[:, self.num_fields :])


class DictInputs(nn.Module):
    """``model(**x)`` for tools that call ``model(x)`` with a dict ``x`` (curvlinops on W3)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**x)


_LOSS_MODULES: dict[Any, Callable[[], nn.Module]] = {
    F.cross_entropy: nn.CrossEntropyLoss,
    F.binary_cross_entropy_with_logits: nn.BCEWithLogitsLoss,
}


def _to_dtype(obj: Any, dtype: torch.dtype) -> Any:
    if isinstance(obj, dict):
        return {k: _to_dtype(v, dtype) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor) and obj.is_floating_point():
        return obj.to(dtype)
    return obj


@dataclass
class Setup:
    """One workload at one size, with the constructors each tool needs."""

    wid: str
    size: str
    workload: zoo.Workload
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, wid: str, size: str, device: str | None = None) -> Setup:
        w = zoo.workload(wid, size, seed=0, device=device)
        return cls(wid=wid, size=size, workload=w, options=dict(EIGENSCOPE_OPTIONS.get(wid, {})))

    # ---- facts ----------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self.workload.model

    @property
    def loss_fn(self) -> Callable[..., torch.Tensor]:
        return self.workload.loss_fn

    @property
    def batches(self) -> list[tuple[Any, torch.Tensor]]:
        return self.workload.batches

    @property
    def num_params(self) -> int:
        return self.workload.num_params

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dict_inputs(self) -> bool:
        return isinstance(self.batches[0][0], dict)

    def describe(self) -> dict[str, Any]:
        w = self.workload
        return {
            "workload": self.wid,
            "model": w.name,
            "size": self.size,
            "num_params": w.num_params,
            "num_samples": w.num_samples,
            "batch_size": int(self.batches[0][1].shape[0]),
            "num_batches": len(self.batches),
            "model_mode": "train" if self.model.training else "eval",
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "eigenscope_options": self.options,
        }

    # ---- eigenscope -----------------------------------------------------------------
    def eigenscope_hessian(self, dtype: torch.dtype | None = None, **overrides: Any) -> est.CurvatureOperator:
        """``est.hessian`` with this workload's best options (``overrides`` win)."""
        model, batches = self.model, self.batches
        if dtype is not None and dtype != next(model.parameters()).dtype:
            model = copy.deepcopy(model).to(dtype)
            batches = [(_to_dtype(x, dtype), _to_dtype(y, dtype)) for x, y in batches]
        return est.hessian(model, self.loss_fn, batches, **{**self.options, **overrides})

    # ---- peers ----------------------------------------------------------------------
    def pyhessian_inputs(self) -> tuple[nn.Module, Callable, list]:
        """A deep copy of the model (packed inputs for W3) and PyHessian-style batches."""
        model = copy.deepcopy(self.model)
        batches = self.batches
        if self.dict_inputs:
            num_fields = batches[0][0]["ids"].shape[1]
            model = PackedInputs(model, num_fields)
            batches = [(torch.cat([x["ids"].to(y.dtype), x["dense"]], dim=1), y) for x, y in batches]
        return model, self.loss_fn, batches

    def loss_module(self) -> nn.Module:
        try:
            return _LOSS_MODULES[self.loss_fn]()
        except KeyError:
            raise TypeError(f"no nn.Module loss known for {self.loss_fn!r}") from None

    def curvlinops_inputs(self) -> tuple[nn.Module, nn.Module, list, dict[str, Any]]:
        """Model, loss module, batches and extra keywords for ``HessianLinearOperator``."""
        model = copy.deepcopy(self.model)
        kwargs: dict[str, Any] = {"num_data": self.workload.num_samples, "check_deterministic": False}
        if self.dict_inputs:
            model = DictInputs(model)
            kwargs["batch_size_fn"] = lambda x: x["ids"].shape[0]
        return model, self.loss_module(), self.batches, kwargs

    def eigenthings_inputs(self) -> tuple[nn.Module, Callable[[nn.Module, Any], torch.Tensor], list]:
        """Model, ``loss_fn(model, batch)`` and batches for hessian-eigenthings' ``HessianOperator``.

        ``HessianOperator`` averages its batches with equal weights; each batch loss is scaled
        by ``n_b · B / N`` (``B`` batches, ``N`` samples) so that this average is the mean over
        samples, as for every other tool (a no-op when all batches have the same size).
        """
        model = copy.deepcopy(self.model)
        loss_fn = self.loss_fn
        num_batches, total = len(self.batches), self.workload.num_samples

        def batch_loss(m: nn.Module, batch: Any) -> torch.Tensor:
            x, y = batch
            loss = loss_fn(m(**x) if isinstance(x, dict) else m(x), y)
            scale = y.shape[0] * num_batches / total
            return loss if scale == 1 else loss * scale

        return model, batch_loss, self.batches
