"""CIFAR-style residual networks (He et al. 2016, "Deep residual learning", section 4.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; the shortcut is a 1×1 convolution
    (+ BN) where the shape changes ("option B"), the identity otherwise, and absent when
    ``residual=False`` (a plain network of the same depth)."""

    def __init__(self, c_in: int, c_out: int, stride: int, *, residual: bool, batchnorm: bool) -> None:
        super().__init__()
        # A convolution followed by BatchNorm needs no bias: BN's shift replaces it.
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batchnorm)
        self.bn1 = _norm(c_out, batchnorm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batchnorm)
        self.bn2 = _norm(c_out, batchnorm)
        self.residual = residual
        self.shortcut: nn.Module = nn.Identity()
        if residual and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batchnorm), _norm(c_out, batchnorm)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + self.shortcut(x)
        return torch.relu(out)


class ResNet(nn.Module):
    """CIFAR-style ResNet: a 3×3 stem, ``len(widths)`` stages of basic blocks (stride 2 at the
    start of every stage but the first), global average pooling and a linear classifier.

    Parameters
    ----------
    depth
        ``2 · len(widths) · blocks_per_stage + 2`` (8, 14, 20, 32, ... for three stages).
    widths
        Channels of each stage; ``(16, 32, 64)`` is the ResNet-20 of the paper.
    residual, batchnorm
        Switch the shortcuts and the BatchNorm layers off to study their effect on the spectrum.
    """

    def __init__(
        self,
        depth: int = 20,
        widths: Sequence[int] = (16, 32, 64),
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        residual: bool = True,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        per_stage, rest = divmod(depth - 2, 2 * len(widths))
        if rest or per_stage < 1:
            raise ValueError(f"depth must be 2·{len(widths)}·k + 2 for widths {tuple(widths)}, got {depth}")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=not batchnorm)
        self.stem_bn = _norm(widths[0], batchnorm)
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for i, width in enumerate(widths):
            for j in range(per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(c_in, width, stride, residual=residual, batchnorm=batchnorm))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(n, in_channels, h, w)`` -> logits ``(n, num_classes)``."""
        out = torch.relu(self.stem_bn(self.stem(x)))
        out = self.blocks(out)
        return self.fc(out.mean(dim=(2, 3)))
