"""The lab's Part 1 CNN in PyTorch: the twin of ``jax_impl.models.cnn.CNN``.

conv1 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
conv2 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
flatten -> fc1 (128) -> ReLU -> dropout(0.5) -> fc2 (10)

Same attribute names and parameter shapes as the Flax model, in PyTorch's
layouts (conv OIHW, dense (out, in)); flatten is in NCHW order. PyTorch's
default initialisation is kept; the Flax model reproduces it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CNN(nn.Module):
    """Small MNIST CNN; takes float NCHW ``[B, 1, 28, 28]``, returns logits ``[B, 10]``."""

    def __init__(
        self,
        *,
        channels: tuple[int, int] = (32, 64),
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        pool: int = 2,
        hidden: int = 128,
        dropout: float = 0.5,
        num_classes: int = 10,
        image_size: int = 28,
        in_channels: int = 1,
    ):
        super().__init__()
        self.pool = pool
        self.num_classes, self.image_size = num_classes, image_size
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size, stride=stride, padding=padding)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size, stride=stride, padding=padding)
        side = image_size
        for _ in range(2):  # conv (stride, padding), then pool
            side = (side + 2 * padding - kernel_size) // stride + 1
            side //= pool
        self.fc1 = nn.Linear(side * side * c2, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), self.pool)  # [B, 32, 14, 14]
        x = F.max_pool2d(F.relu(self.conv2(x)), self.pool)  # [B, 64, 7, 7]
        x = torch.flatten(x, 1)  # [B, 64*7*7], C-H-W order
        x = self.dropout(F.relu(self.fc1(x)))  # [B, 128]
        return self.fc2(x)  # [B, 10]


def count_params(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
