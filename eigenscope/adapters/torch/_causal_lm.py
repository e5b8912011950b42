"""The named loss ``"causal_lm"``: next-token cross-entropy, mean over the predicted tokens.

For logits ``o`` of shape ``(n, T, V)`` and labels ``y`` of shape ``(n, T)``, position ``t``
predicts ``y[:, t + 1]`` (the shift Hugging Face applies for a causal language model);
labels equal to ``-100`` (``ignore_index``: padding, prompts) are not predicted. With ``C``
the number of predicted tokens of the batch,

    L = (1/C) Σ_{i, t : y[i, t+1] ≠ -100} ℓ_{i,t},   ℓ_{i,t} = −log softmax(o[i, t])[y[i, t+1]].

The *samples* of this loss are its predicted tokens: a batch weighs ``C_b`` in the mean over
the data (batches with unequal token counts are weighted by their token counts, so the
full-data operator is the matrix of the mean over every predicted token of the data), and
the per-sample gradients of ``gradient_covariance(per="sample")`` are per-token gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.nn import functional as F

IGNORE_INDEX = -100


def _check(logits: Any, labels: Any) -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"'causal_lm' needs logits and labels tensors, got {type(logits).__name__} and {type(labels).__name__}"
        )
    if logits.ndim != 3 or labels.shape != logits.shape[:2] or labels.is_floating_point():
        raise ValueError(
            f"'causal_lm' needs logits of shape (batch, length, vocabulary) and integer labels of shape "
            f"(batch, length); got logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
            f"({labels.dtype}). Pass the token ids as labels (labels=input_ids, -100 where not predicted)"
        )


class CausalLMLoss:
    """``"causal_lm"``: shifted cross-entropy, mean over the predicted tokens of the batch
    (see the module's documentation). Cost: one softmax over ``(n, T − 1, V)``."""

    kind = "causal_lm"
    ignore_index = IGNORE_INDEX

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mean loss over the predicted tokens (a 0-d tensor)."""
        _check(logits, labels)
        vocab = logits.shape[-1]
        return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)

    def per_token(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(C,)``: the loss of every predicted token, in row-major order; their mean is
        :meth:`__call__`. Integer indexing (the positions come from the labels, never from
        the logits) keeps it valid under ``torch.func`` transforms."""
        _check(logits, labels)
        vocab = logits.shape[-1]
        target = labels[:, 1:].reshape(-1)
        losses = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), target, reduction="none", ignore_index=-100)
        keep = torch.nonzero(target != IGNORE_INDEX).reshape(-1)
        return losses.index_select(-1, keep)

    def __repr__(self) -> str:
        return "causal_lm"


def count_tokens(inputs: Any, labels: Any) -> int:
    """``C_b``, the predicted tokens of a batch: labels after the shift not equal to -100,
    padding (``attention_mask == 0`` in mapping inputs) excluded."""
    labels = mask_padding(inputs, labels)
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def mask_padding(inputs: Any, labels: Any) -> Any:
    """``labels`` with ``-100`` where the inputs' ``attention_mask`` is 0 (padding is never
    predicted, whatever the labels hold there)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"'causal_lm' needs the labels as one tensor, got {type(labels).__name__}")
    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    if isinstance(mask, torch.Tensor) and mask.shape == labels.shape:
        return labels.masked_fill(mask.to(labels.device) == 0, IGNORE_INDEX)
    return labels


def closed_form(outputs: torch.Tensor, labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``u -> H_ℓ u`` for ``"causal_lm"`` with respect to the logits, ``u`` of shape
    ``(b, n, T, V)``: ``(diag(p) − ppᵀ) u / C`` at every predicted position ``(i, t)``
    (``p = softmax(o[i, t])``), zero elsewhere (the last position, ignored labels)."""
    o = outputs.detach()
    p = torch.softmax(o[:, :-1], dim=-1)
    keep = (labels[:, 1:] != IGNORE_INDEX).unsqueeze(-1).to(o.dtype)
    scale = keep / keep.sum().clamp_min(1)

    def apply(u: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(u)
        pu = p * u[:, :, :-1]
        out[:, :, :-1] = scale * (pu - p * pu.sum(dim=-1, keepdim=True))
        return out

    return apply
