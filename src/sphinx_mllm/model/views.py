"""The views an encoder sees: the global view and the raster crops of one padded-square image.

This runs inside the model (on the model's device), so it lives in the model package; the
processor only produces the padded, normalised square (``processing.image_to_tensor``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_bicubic(x: torch.Tensor, size: int) -> torch.Tensor:
    """In-model resize as the original does it: bicubic through fp16, no antialias; identity if same."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x.half(), size=(size, size), mode="bicubic", align_corners=False).to(x.dtype)


def make_views(images: torch.Tensor, view_size: int, grid: int) -> torch.Tensor:
    """(N, 3, S, S) -> (V*N, 3, v, v) stacked view-major: [global(N), crop_0(N), ...].

    The global view is the image resized to v; with grid g > 1 the crops are the g x g raster
    tiles of the image resized to g*v (a no-op when S == g*v, as for SPHINX-1k's 448 -> 2x224).
    """
    views = [resize_bicubic(images, view_size)]
    if grid > 1:
        big = resize_bicubic(images, grid * view_size)
        views += [big[:, :, r * view_size:(r + 1) * view_size, c * view_size:(c + 1) * view_size]
                  for r in range(grid) for c in range(grid)]
    return torch.cat(views, dim=0)
