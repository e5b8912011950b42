"""Named workloads: a model, its loss and its batches, built from fixed seeds.

``workload("W1")`` gives the same weights, data and batches on every run and to every
tool, as ``BENCHMARKS.md`` asks; ``size="tiny"`` gives models of a few hundred
parameters for tests (dense Hessians stay cheap), ``size="large"`` the GPU sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import _data
from ._resnet import ResNet
from ._transformer import CausalLM, TransformerClassifier, lm_loss
from ._vgg import VGG
from ._widedeep import WideAndDeep

SIZES = ("tiny", "default", "large")


@dataclass(frozen=True)
class Workload:
    """A model with its loss and data.

    Attributes
    ----------
    name
        The canonical workload name (``"resnet"``, ``"transformer"``, ...).
    model
        The ``nn.Module``, in the mode the workload prescribes (W1: eval mode).
    loss_fn
        ``loss_fn(outputs, targets)`` -> the mean loss of a batch.
    batches
        A list of ``(inputs, targets)`` batches.
    size
        ``"tiny"``, ``"default"`` or ``"large"``.
    """

    name: str
    model: nn.Module
    loss_fn: Callable[..., torch.Tensor]
    batches: list[tuple[Any, torch.Tensor]]
    size: str

    @property
    def num_params(self) -> int:
        """Number of trainable parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @property
    def num_samples(self) -> int:
        """Number of samples over all batches."""
        return sum(int(t.shape[0]) for _, t in self.batches)


def _calibrate_batchnorm(model: nn.Module, batches: list[tuple[Any, torch.Tensor]]) -> None:
    """Set BatchNorm running statistics to the data's population statistics (one pass in
    train mode with a cumulative average), so that eval mode sees sensible activations."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the pass
    model.train()
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    for m in norms:
        m.momentum = 0.1  # back to PyTorch's default


def _resnet(size: str, seed: int, dtype: torch.dtype, **kw: Any) -> tuple[nn.Module, Callable, list]:
    cfg = {
        "tiny": {"depth": 6, "widths": (2, 3), "num_classes": 3, "image_size": 6, "n": 10, "batch": 4},
        "default": {"depth": 14, "widths": (16, 32, 64), "num_classes": 10, "image_size": 32, "n": 512, "batch": 256},
        "large": {"depth": 20, "widths": (16, 32, 64), "num_classes": 10, "image_size": 32, "n": 10240, "batch": 512},
    }[size]
    cfg.update(kw)
    model = ResNet(
        cfg["depth"],
        cfg["widths"],
        num_classes=cfg["num_classes"],
        residual=cfg.get("residual", True),
        batchnorm=cfg.get("batchnorm", True),
    )
    batches = _data.images(
        cfg["n"], cfg["batch"], image_size=cfg["image_size"], num_classes=cfg["num_classes"], seed=seed, dtype=dtype
    )
    return model, F.cross_entropy, batches


def _vgg(size: str, seed: int, dtype: torch.dtype, **kw: Any) -> tuple[nn.Module, Callable, list]:
    cfg = {
        "tiny": {"config": (2, "M", 4, "M"), "num_classes": 3, "image_size": 8, "n": 10, "batch": 4},
        "default": {"config": (16, "M", 32, "M", 64, 64, "M"), "num_classes": 10, "image_size": 32, "n": 512},
        "large": {"config": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"), "num_classes": 10, "n": 10240},
    }[size]
    cfg = {"image_size": 32, "batch": 256, **cfg, **kw}
    model = VGG(cfg["config"], num_classes=cfg["num_classes"], batchnorm=cfg.get("batchnorm", True))
    batches = _data.images(
        cfg["n"], cfg["batch"], image_size=cfg["image_size"], num_classes=cfg["num_classes"], seed=seed, dtype=dtype
    )
    return model, F.cross_entropy, batches


_TRANSFORMER = {
    "tiny": {"vocab_size": 11, "seq_len": 5, "d_model": 4, "num_heads": 2, "num_layers": 1, "dim_feedforward": 8},
    "default": {"vocab_size": 1000, "seq_len": 32, "d_model": 64, "num_heads": 4, "num_layers": 2},
    "large": {"vocab_size": 1000, "seq_len": 32, "d_model": 256, "num_heads": 8, "num_layers": 6},
}


def _transformer(size: str, seed: int, dtype: torch.dtype, **kw: Any) -> tuple[nn.Module, Callable, list]:
    arch = {"dim_feedforward": 4 * _TRANSFORMER[size]["d_model"], **_TRANSFORMER[size]}
    data = {"tiny": (10, 4, 3), "default": (512, 128, 10), "large": (8192, 512, 10)}[size]
    n, batch, num_classes = kw.pop("num_samples", data[0]), kw.pop("batch_size", data[1]), data[2]
    arch.update(kw)
    model = TransformerClassifier(num_classes=num_classes, **arch)
    batches = _data.token_classification(
        n, batch, vocab_size=arch["vocab_size"], seq_len=arch["seq_len"], num_classes=num_classes, seed=seed
    )
    return model, F.cross_entropy, batches


def _causal_lm(size: str, seed: int, dtype: torch.dtype, **kw: Any) -> tuple[nn.Module, Callable, list]:
    arch = {
        "tiny": {"vocab_size": 7, "seq_len": 4, "d_model": 4, "num_heads": 2, "num_layers": 1, "dim_feedforward": 8},
        "default": {"vocab_size": 256, "seq_len": 32, "d_model": 64, "num_heads": 4, "num_layers": 2},
        "large": {"vocab_size": 1024, "seq_len": 64, "d_model": 256, "num_heads": 8, "num_layers": 6},
    }[size]
    data = {"tiny": (10, 4), "default": (512, 128), "large": (8192, 256)}[size]
    n, batch = kw.pop("num_samples", data[0]), kw.pop("batch_size", data[1])
    arch.update(kw)
    model = CausalLM(**arch)
    batches = _data.language_modeling(n, batch, vocab_size=arch["vocab_size"], seq_len=arch["seq_len"], seed=seed)
    return model, lm_loss, batches


def _wide_deep(size: str, seed: int, dtype: torch.dtype, **kw: Any) -> tuple[nn.Module, Callable, list]:
    arch = {
        "tiny": {"num_fields": 3, "num_ids": 5, "embed_dim": 2, "num_dense": 2, "hidden": (4,)},
        "default": {"num_fields": 8, "num_ids": 1000, "embed_dim": 16, "num_dense": 4, "hidden": (64, 32)},
        "large": {"num_fields": 26, "num_ids": 1000, "embed_dim": 16, "num_dense": 13, "hidden": (256, 128)},
    }[size]
    data = {"tiny": (10, 4), "default": (4096, 1024), "large": (102400, 4096)}[size]
    n, batch = kw.pop("num_samples", data[0]), kw.pop("batch_size", data[1])
    arch.update(kw)
    model = WideAndDeep(**arch)
    batches = _data.click_through(
        n,
        batch,
        num_fields=arch["num_fields"],
        num_ids=arch["num_ids"],
        num_dense=arch["num_dense"],
        seed=seed,
        dtype=dtype,
    )
    return model, F.binary_cross_entropy_with_logits, batches


_BUILDERS: dict[str, Callable[..., tuple[nn.Module, Callable, list]]] = {
    "resnet": _resnet,
    "vgg": _vgg,
    "transformer": _transformer,
    "causal_lm": _causal_lm,
    "wide_deep": _wide_deep,
}
ALIASES = {"W1": "resnet", "W2": "transformer", "W3": "wide_deep"}
NAMES = tuple(_BUILDERS)


def workload(
    name: str,
    size: str = "default",
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> Workload:
    """Build a named workload with fixed seeds.

    Parameters
    ----------
    name
        ``"resnet"`` (alias ``"W1"``), ``"transformer"`` (``"W2"``), ``"wide_deep"``
        (``"W3"``), ``"vgg"`` or ``"causal_lm"``.
    size
        ``"tiny"`` (a few hundred parameters, ~10 samples in batches of 4: for tests),
        ``"default"`` (the CPU sizes of ``BENCHMARKS.md``) or ``"large"`` (GPU sizes).
    seed
        Seeds the weights (through a forked, restored global generator: the caller's
        random state is left as it was) and the data.
    dtype, device
        Where the model and the floating-point data live.
    overrides
        Architecture or data options of the builder (``residual=False``,
        ``batchnorm=False``, ``num_samples=``, ``batch_size=``, ...).

    Notes
    -----
    W1 (``resnet``) is returned in eval mode with BatchNorm running statistics set to the
    data's statistics; the other models are in train mode (they have no dropout and no
    BatchNorm, so both modes compute the same function).
    """
    key = ALIASES.get(name, name)
    if key not in _BUILDERS:
        raise ValueError(f"unknown workload {name!r}; choose one of {sorted(NAMES + tuple(ALIASES))}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if key in ("resnet", "vgg"):
        overrides = {
            ("n" if k == "num_samples" else "batch" if k == "batch_size" else k): v for k, v in overrides.items()
        }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, loss_fn, batches = _BUILDERS[key](size, seed, dtype, **overrides)
    model = model.to(dtype=dtype)
    if key == "resnet":
        _calibrate_batchnorm(model, batches)
        model.eval()
    if device is not None:
        model = model.to(device)
        batches = [(_to_device(x, device), _to_device(y, device)) for x, y in batches]
    return Workload(name=key, model=model, loss_fn=loss_fn, batches=batches, size=size)


def _to_device(obj: Any, device: Any) -> Any:
    if isinstance(obj, dict):
        return {k: v.to(device) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(v.to(device) for v in obj)
    return obj.to(device)
