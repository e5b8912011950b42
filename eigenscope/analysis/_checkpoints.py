"""Reading a state dict from a file, and loading one into a model strictly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a file written by ``torch.save(model.state_dict(), path)``.

    Loaded with ``weights_only=True`` (no code from the file runs) onto the CPU. A file
    holding ``{"state_dict": ...}`` or ``{"model": ...}`` (common training-script layouts)
    is unwrapped.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing file, or one that is not a state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path!r}: {_one_line(exc)}") from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {path!r} is not a state dict (a mapping of names to tensors)")
    return dict(obj)


def load_checkpoint(model: nn.Module, checkpoint: Mapping[str, Any] | str | os.PathLike[str]) -> nn.Module:
    """Load a state dict (or a file holding one) into ``model``, strictly.

    Raises
    ------
    ValueError
        When the keys or shapes do not match the model, with a one-line message naming them.
    """
    state = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    where = f"checkpoint {os.fspath(checkpoint)!r}" if isinstance(checkpoint, (str, os.PathLike)) else "the state dict"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(f"shape mismatch (checkpoint vs model) {wrong[:3]}{' ...' if len(wrong) > 3 else ''}")
        raise ValueError(f"{where} does not match the model: " + "; ".join(parts))
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ValueError(f"{where} does not match the model: {_one_line(exc)}") from exc
    return model
