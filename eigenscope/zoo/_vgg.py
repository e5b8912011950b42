"""VGG-style convolutional networks (Simonyan & Zisserman 2015), small enough for a CPU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class VGG(nn.Module):
    """Stacks of 3×3 convolutions (+ BatchNorm) + ReLU with 2×2 max pooling, then global
    average pooling and a linear classifier.

    Parameters
    ----------
    config
        Channels of each convolution, ``"M"`` for a max-pooling layer.
    batchnorm
        Put a BatchNorm layer after every convolution.
    """

    def __init__(
        self,
        config: Sequence[int | str] = (16, "M", 32, "M", 64, 64, "M"),
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            width = int(item)
            layers.append(nn.Conv2d(c_in, width, 3, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            c_in = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(n, in_channels, h, w)`` -> logits ``(n, num_classes)``."""
        return self.classifier(self.features(x).mean(dim=(2, 3)))
