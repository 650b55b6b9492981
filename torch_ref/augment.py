"""Random shifts applied on the device from shift tables made outside (twin of ``jax_impl.augment``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shift_images(x: torch.Tensor, shifts: torch.Tensor, max_shift: int, fill: float) -> torch.Tensor:
    """Translate each image by ``shifts[i] = (dy, dx)`` pixels, filling with ``fill``.

    ``x`` is NCHW ``[B, C, H, W]``; ``out[i, :, r, c] = x[i, :, r - dy, c - dx]``
    where that lies inside the image, ``fill`` elsewhere. ``|dy|, |dx| <= max_shift``.
    """
    m = max_shift
    b, _, h, w = x.shape
    padded = F.pad(x, (m, m, m, m), value=fill)  # [B, C, H+2m, W+2m]
    shifts = shifts.long()
    rows = (m - shifts[:, 0])[:, None] + torch.arange(h, device=x.device)  # [B, H]
    cols = (m - shifts[:, 1])[:, None] + torch.arange(w, device=x.device)  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)  # [B, C, H, W]
