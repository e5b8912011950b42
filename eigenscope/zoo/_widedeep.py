"""Wide & Deep recommender (Cheng et al. 2016) for click-through prediction."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WideAndDeep(nn.Module):
    """``logit = wide(ids, dense) + deep(ids, dense)``.

    - wide: a linear model over the one-hot categorical ids (a 1-d embedding per id) and
      the dense features;
    - deep: one embedding table per categorical field (``embed_dim`` each), concatenated
      with the dense features, through an MLP with ReLU.

    ``forward(ids, dense)``: ``ids`` ``(n, num_fields)`` int64 with values in
    ``[0, num_ids)``, ``dense`` ``(n, num_dense)`` -> logits ``(n,)`` (use BCE with logits).
    The embedding tables (``embeddings.*``) hold most parameters; leave them out of a
    curvature operator with ``params=`` when only the MLP matters.
    """

    def __init__(
        self,
        num_fields: int = 8,
        num_ids: int = 1000,
        *,
        embed_dim: int = 16,
        num_dense: int = 4,
        hidden: Sequence[int] = (64, 32),
    ) -> None:
        super().__init__()
        self.num_ids = num_ids
        self.embeddings = nn.ModuleList(nn.Embedding(num_ids, embed_dim) for _ in range(num_fields))
        for table in self.embeddings:
            nn.init.normal_(table.weight, std=0.1)
        self.wide_ids = nn.Embedding(num_fields * num_ids, 1)
        nn.init.zeros_(self.wide_ids.weight)
        self.wide_dense = nn.Linear(num_dense, 1)
        layers: list[nn.Module] = []
        width = num_fields * embed_dim + num_dense
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("field_offsets", torch.arange(num_fields) * num_ids, persistent=False)

    def forward(self, ids: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        wide = self.wide_ids(ids + self.field_offsets).sum(dim=(1, 2)) + self.wide_dense(dense)[:, 0]
        embedded = [table(ids[:, f]) for f, table in enumerate(self.embeddings)]
        deep = self.mlp(torch.cat([*embedded, dense], dim=1))[:, 0]
        return wide + deep
