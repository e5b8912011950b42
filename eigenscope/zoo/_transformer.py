"""Transformer models: an encoder classifier and a small causal language model.

Both build their layers from ``nn.TransformerEncoderLayer`` with ``dropout=0`` (a
curvature operator must be deterministic) and ``batch_first=True``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _encoder_layers(d_model: int, num_heads: int, num_layers: int, dim_feedforward: int) -> nn.ModuleList:
    return nn.ModuleList(
        nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward=dim_feedforward, dropout=0.0, batch_first=True, norm_first=True
        )
        for _ in range(num_layers)
    )


class TransformerClassifier(nn.Module):
    """Token + learned positional embedding, pre-norm encoder layers, mean pooling over the
    sequence, a final LayerNorm and a linear classifier.

    ``forward(tokens)``: ``tokens`` of shape ``(n, seq_len)`` (int64) -> logits ``(n, num_classes)``.
    """

    def __init__(
        self,
        vocab_size: int = 1000,
        seq_len: int = 32,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        self.layers = _encoder_layers(d_model, num_heads, num_layers, dim_feedforward)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h.mean(dim=1)))


class CausalLM(nn.Module):
    """A small GPT-style language model: embeddings, causal pre-norm encoder layers, a final
    LayerNorm and an output layer tied to the token embedding (``tie_weights=True``).

    ``forward(tokens)``: ``(n, seq_len)`` int64 -> next-token logits ``(n, seq_len, vocab_size)``.
    """

    def __init__(
        self,
        vocab_size: int = 256,
        seq_len: int = 32,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        self.layers = _encoder_layers(d_model, num_heads, num_layers, dim_feedforward)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        # GPT-2's initialisation: small embeddings keep the tied output logits O(1).
        nn.init.normal_(self.embed.weight, std=0.02)
        if tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        seq_len = tokens.shape[1]
        h = self.embed(tokens) + self.pos[:seq_len]
        # A boolean mask (True = masked) avoids -inf arithmetic; built per call so the model
        # carries no buffer that depends on the sequence length.
        mask = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool, device=tokens.device), diagonal=1)
        for layer in self.layers:
            h = layer(h, src_mask=mask)
        return self.head(self.norm(h))


def lm_loss(outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy of logits ``(n, seq_len, vocab)`` against targets ``(n, seq_len)``.

    ``reduction="mean"`` averages over all tokens; ``"none"`` returns the per-sequence mean,
    shape ``(n,)``, whose average is the ``"mean"`` loss (every sequence has the same length),
    which is what :func:`eigenscope.adapters.torch.gradient_covariance` needs per sample.
    """
    per_token = F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), reduction="none")
    per_sequence = per_token.reshape(targets.shape).mean(dim=1)
    if reduction == "none":
        return per_sequence
    if reduction == "mean":
        return per_token.mean()
    if reduction == "sum":
        return per_token.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
